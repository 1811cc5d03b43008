"""A run's identity: everything that decides its numbers, and the one check behind every reuse
of a run's work. Resume (a finished result in the run's folder: resume.py), a checkpoint (a
run continued: checkpoint.py), the result store (a run asked for again elsewhere: store.py),
the fresh-process launcher (a finished run starts no process: runner/sweep/isolate.py) and
the plan (a run shared by experiments: runner/plan.py) all ask it, so none of them reuses what
another would refuse."""
import hashlib
import json
from dataclasses import asdict, dataclass

from omegaconf import DictConfig, OmegaConf

from runner.result import SCHEMA_VERSION, run_identity, version_label

# A packed run's dropout masks: each member's own generator, seeded with dropout_seed(seed)
# (models/packed.py), not torch's global one that a run alone draws: other masks, so another
# curve. Recorded (identity, environment.dropout_masks) only where it applies: every other
# identity, store key and result is as before.
MEMBER_MASKS = "member"


def dropout_masks(config: dict, packed: bool) -> str | None:
    """MEMBER_MASKS for a run trained in a pack (runner/run/pack.py) whose model drops between
    layers (model.dropout > 0, num_layers > 1: where the packed models draw masks); else
    None (torch's global generator, or no masks at all)."""
    model = config.get("model") or {}
    drops = (model.get("dropout") or 0) > 0 and (model.get("num_layers") or 1) > 1
    return MEMBER_MASKS if packed and drops else None


def describe_masks(masks: str | None) -> str:
    return ("each pack member's own dropout generator (launcher.pack > 1)" if masks
            else "torch's global generator (trained unpacked)")


@dataclass(frozen=True)
class Identity:
    config: dict  # the config without its execution settings (runner/result.py run_identity)
    data_sha1: str | None  # the data file's
    schema_version: int | None = SCHEMA_VERSION  # the result format: how metrics are computed
    dropout_masks: str | None = None  # dropout_masks(): MEMBER_MASKS, or None (left out)

    @classmethod
    def of(cls, cfg: DictConfig | dict, data_sha1: str | None,
           packed: bool = False) -> "Identity":
        """The identity of a run of `cfg` (a composed config, or one resolved as a result
        records it) on data whose sha1 is `data_sha1`, made by this runner; `packed`: trained
        in a pack (runner/run/pack.py), which with dropout draws other masks."""
        config = cfg if isinstance(cfg, dict) else OmegaConf.to_container(cfg, resolve=True)
        return cls(run_identity(config), data_sha1, dropout_masks=dropout_masks(config, packed))

    @classmethod
    def of_result(cls, result: dict) -> "Identity":
        env = result.get("environment")
        return cls(run_identity(result.get("config", {})),
                   result.get("dataset", {}).get("sha1"), result.get("schema_version"),
                   env.get("dropout_masks") if isinstance(env, dict) else None)

    @classmethod
    def of_record(cls, record) -> "Identity | None":
        """An identity saved with as_record() (a checkpoint's); None if it is not one."""
        try:
            return cls(**record)
        except TypeError:
            return None

    def as_record(self) -> dict:
        """The fields; dropout_masks only when set, so every identity without it (and its
        digest, its store key) is what it was before the field existed."""
        record = asdict(self)
        if record["dropout_masks"] is None:
            del record["dropout_masks"]
        return record

    def differs(self, found: "Identity | None", data: str = "the data file") -> str | None:
        """Why `found` (a result's or a checkpoint's identity) is not this run's, as the end of
        a sentence about it; None when it is this run's. `data`: the data file, named."""
        if found is None:
            return "is of another run (no identity recorded)"
        if found.schema_version != self.schema_version:
            age = "an older" if (found.schema_version or 0) < (self.schema_version or 0) \
                else "a newer"
            return (f"was made by {age} runner (result schema_version "
                    f"{found.schema_version}, now {self.schema_version}) whose metrics are "
                    f"computed differently")
        if found.config != self.config:
            return "is of a different config"
        if found.dropout_masks != self.dropout_masks:
            return (f"drew its dropout masks from {describe_masks(found.dropout_masks)}, but "
                    f"this run draws them from {describe_masks(self.dropout_masks)}, so its "
                    f"curves differ")
        if found.data_sha1 != self.data_sha1:
            return (f"was trained on data with sha1 {found.data_sha1}, but {data} now has sha1 "
                    f"{self.data_sha1}")
        return None

    def digest(self) -> str:
        return _sha256(self.as_record())

    def store_key(self, env: dict) -> str | None:
        """The result store's key for this run on `env` (a result's environment): with the
        code version and what changes the floating-point arithmetic though not the experiment
        (the device's name, the cells' implementation, a CPU's thread count). None when the
        code version is unknown."""
        code = version_label(env)
        if code == "unknown":
            return None
        return _sha256({"identity": self.as_record(), "code": code,
                        "device_name": env.get("device_name"), "impl": env.get("impl"),
                        "threads": env.get("threads") if env.get("device") == "cpu" else None})


def _sha256(material: dict) -> str:
    text = json.dumps(material, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
