"""The launcher's settings and the sweep's points, checked before anything is planned,
launched or written (issue 26, defect 7): a setting only the launcher reads (slurm's mem_gb,
launcher.devices) would otherwise reach sbatch or every job as it is, and fail there, once per
run. Each refusal is one line naming the key the user set, in validation's form."""
import shutil
import subprocess

from omegaconf import DictConfig, ListConfig, OmegaConf

from runner.errors import ConfigError
from runner.run.bounds import bound_problems
from runner.run.checks import ABSENT, boolean, device, get, integer, optional, rule_problems

# key, check, what is allowed, an example value; each checked only where the launcher has it
LAUNCHER_RULES = [
    ("launcher.fresh_process", lambda v: v == "auto" or boolean(v),
     "auto (a fresh process per run on GPU slots), true or false", "auto"),
    ("launcher.partition", optional(lambda v: isinstance(v, str) and v.strip() != ""),
     "null (the cluster's default) or a partition's name", "gpu"),
    ("launcher.gpus_per_job", optional(integer(0)),
     "null (one GPU, none with device=cpu) or an integer >= 0", "1"),
    ("launcher.cpus_per_job", integer(1), "an integer >= 1", "4"),
    ("launcher.mem_gb", integer(1), "an integer >= 1 (GiB per job)", "16"),
    ("launcher.timeout_min", integer(1), "an integer >= 1 (minutes per job)", "120"),
    ("launcher.array_parallelism", integer(1), "an integer >= 1 (jobs running at once)", "64"),
    ("launcher.max_num_timeout", integer(0), "an integer >= 0 (requeues per job)", "3"),
]
DEVICES = ("null (every visible GPU, else the CPU) or a list of devices, each cpu, cuda or "
           "cuda:N")


def check_launcher(config: DictConfig) -> None:
    """Raise ConfigError, one line per bad launcher setting, before the launcher is built."""
    bad: set = set()
    problems = rule_problems(config, LAUNCHER_RULES, bad, optional=True)
    problems += bound_problems(config, bad)  # launcher.jobs_per_device
    problems += _device_problems(get(config, "launcher.devices"))
    if not problems and OmegaConf.select(config, "launcher.name") == "slurm":
        problems += _slurm_problems(OmegaConf.select(config, "launcher.partition"))
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))


def _device_problems(devices) -> list[str]:
    """launcher.devices: a list of device names, each one this machine has."""
    from runner.run.environment import resolve_device

    if devices is ABSENT or devices is None:  # another launcher, or every visible device
        return []
    listed = isinstance(devices, ListConfig | list)
    typed = "[" + ",".join(map(str, devices)) + "]" if listed else repr(devices)
    if not listed or not devices or not all(isinstance(d, str) and device(d) and d != "auto"
                                            for d in devices):
        return [f"launcher.devices={typed} is not allowed: it must be {DEVICES} (e.g. "
                f"launcher.devices=[cuda:0,cuda:1])"]
    for name in devices:
        try:
            resolve_device(name)
        except ConfigError as e:  # no GPU, or not that many: resolve_device says which
            why = str(e).removeprefix(f"device={name!r} but ").split(": use ")[0]
            return [f"launcher.devices={typed} is not allowed: it names {name}, and {why} "
                    f"(e.g. launcher.devices=null, every visible GPU, else the CPU)"]
    return []


def _slurm_problems(partition) -> list[str]:
    """launcher=slurm where sbatch cannot submit: no SLURM tools, no cluster configured, or
    no such partition. Asked of sinfo, which reads the configuration sbatch would."""
    fix = "(e.g. launcher=parallel, or the same command on the cluster's login node)"
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return [f"launcher=slurm is not allowed: sbatch and sinfo are not on PATH, so no job "
                f"can be submitted from this machine {fix}"]
    try:
        proc = subprocess.run(["sinfo", "--noheader", "--format=%P"], capture_output=True,
                              text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return [f"launcher=slurm is not allowed: sinfo did not answer ({e}) {fix}"]
    if proc.returncode != 0:
        said = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        return [f"launcher=slurm is not allowed: SLURM is not reachable from this machine "
                f"({said}) {fix}"]
    partitions = [p.rstrip("*") for p in proc.stdout.split()]
    if partition is not None and partition not in partitions:
        return [f"launcher.partition={partition!r} is not allowed: it must be one of "
                f"{', '.join(partitions)} (e.g. launcher.partition={partitions[0]})"
                if partitions else f"launcher.partition={partition!r} is not allowed: sinfo "
                f"lists no partition {fix}"]
    return []


def refuse_duplicate_points(overrides) -> None:
    """A sweep listing one value twice (seed=0,0) plans one run folder twice: refused."""
    for o in overrides:
        if not o.is_sweep_override():
            continue
        try:
            values = list(o.sweep_string_iterator())
        except Exception:  # a glob, resolved later: its values are distinct
            continue
        twice = [v for i, v in enumerate(values) if v in values[:i]]
        if twice:
            once = ",".join(dict.fromkeys(values))
            raise ConfigError(
                f"invalid config:\n  {o.input_line} is not allowed: it lists {o.key_or_group}="
                f"{twice[0]} {values.count(twice[0])} times, one run planned twice; list each "
                f"value once (e.g. {o.key_or_group}={once})")
