"""Upper bounds: values that pass a key's rule (an integer >= 1, a number > 0) and would then
crash or hang hours later (issue 26, defect 8). Two kinds, checked before any work:

- fixed bounds, for keys whose huge values overflow a C integer or a float32 (seed, threads,
  optim.lr), expand into a list or a loop before any memory is asked for (repeats,
  sample.num_preds, launcher.jobs_per_device), or build one Python module per unit
  (model.num_layers): BOUNDS;
- a size check, for the keys that size the network (model.num_hiddens, model.embed_size,
  model.ffn_num_hiddens, with model.num_layers, data.batch_size, data.num_steps): a lower
  bound of the memory training needs, against the memory of the device it will train on
  (size_problems). A lower bound, so a model it passes may still not fit; one it refuses
  cannot.
"""
import os

from runner.run.checks import get

# key, the largest value allowed, why, an example (each bound well above anything the study
# or its sweeps use)
BOUNDS = [
    ("seed", 2**32 - 1, "2**32 - 1, the seed range numpy and most tools take; torch's ends at "
                        "2**64", 1),
    ("threads", 1024, "more CPU threads than a machine has cores; torch's ends at 2**31", 8),
    ("repeats", 1000, "seeds per point; the sweep lists every run before the first starts", 20),
    ("optim.lr", 1e38, "float32's largest number is 3.4e38: torch cannot apply a larger lr "
                       "to float32 weights; a large lr that fits diverges, and the run says so",
     1),
    ("model.num_layers", 1024, "layers are built one by one, before any memory is asked for",
     2),
    ("sample.num_preds", 100_000, "tokens generated one at a time after training, more "
                                  "characters than the whole Time Machine", 50),
    ("launcher.jobs_per_device", 256, "each job is a worker of its own", 4),
]
GIB = 2**30


def bound_problem(key: str, value) -> str | None:
    """The line for `key=value` above its bound in BOUNDS, if any (value already passed the
    key's own rule)."""
    for name, most, why, example in BOUNDS:
        if name == key and isinstance(value, int | float) and value > most:
            shown = f"{most:,}" if isinstance(most, int) else f"{most:g}"
            return (f"{key}={value!r} is not allowed: it must be at most {shown} ({why}) "
                    f"(e.g. {key}={example})")
    return None


def bound_problems(cfg, bad: set) -> list[str]:
    """The lines of every key of BOUNDS the config sets above its bound; their keys are added
    to `bad`."""
    problems = []
    for key, *_ in BOUNDS:
        if key not in bad and (line := bound_problem(key, get(cfg, key))):
            problems.append(line)
            bad.add(key)
    return problems


# the keys that size the network, and what each becomes in the estimate when it is the culprit
SIZE_KEYS = ("model.num_hiddens", "model.embed_size", "model.ffn_num_hiddens",
             "model.num_layers", "data.batch_size", "data.num_steps")
SIZE_EXAMPLES = {"model.num_hiddens": 256, "model.embed_size": 32, "model.ffn_num_hiddens": 1024,
                 "model.num_layers": 2, "data.batch_size": 32, "data.num_steps": 35}


def parameters_at_least(sizes: dict, transformer: bool) -> int:
    """A lower bound of the network's parameters. Recurrent: each layer's input matrix (h x
    its input), whatever the cell adds (gates, a recurrent matrix, biases), an embedding table
    of at least one row and the output layer's column per direction; transformer: each
    layer's four attention matrices (h x h) and its two feed-forward ones (h x ffn). The
    vocabulary is not read yet: counted as one token."""
    h, layers = sizes["model.num_hiddens"], sizes["model.num_layers"]
    dirs = 2 if sizes.get("model.bidirectional") else 1
    if transformer:
        return layers * (4 * h * h + 2 * h * sizes["model.ffn_num_hiddens"])
    embed = sizes.get("model.embed_size") or 1  # null: one-hot, one column per token
    # the input matrices only: a cell may have no h x h matrix (SRU's recurrence is elementwise)
    return embed + dirs * h * embed + (layers - 1) * dirs * h * dirs * h + dirs * h


def training_bytes(sizes: dict, transformer: bool) -> int:
    """A lower bound of the bytes training needs, float32: the weights and their gradients
    (the optimizer's state comes on top), and one hidden state per layer, step and sequence
    kept for the backward pass."""
    dirs = 2 if sizes.get("model.bidirectional") else 1
    states = (sizes["data.batch_size"] * sizes["data.num_steps"] * sizes["model.num_layers"]
              * dirs * sizes["model.num_hiddens"])
    return 4 * (2 * parameters_at_least(sizes, transformer) + states)


def device_memory(device: str) -> tuple[int, str]:
    """The bytes of memory a run on `device` trains in, and its name: the GPU's, else this
    machine's RAM."""
    import torch

    if device != "cpu" and torch.cuda.is_available():
        index = torch.device(device).index if device.startswith("cuda:") else None
        index = torch.cuda.current_device() if index is None else index
        if index < torch.cuda.device_count():
            return torch.cuda.get_device_properties(index).total_memory, f"cuda:{index}"
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "this machine's RAM"


def size_problems(cfg, bad: set, transformer: bool) -> list[str]:
    """One line when the network cannot fit the device's memory, naming the key that, set to
    a usual value, would make it fit (else the largest one), with the estimate. Only once each
    key it reads passed its own rule."""
    keys = [*SIZE_KEYS, "model.bidirectional"]
    sizes = {key: get(cfg, key) for key in keys}
    needed = ["model.num_hiddens", "model.num_layers", "data.batch_size", "data.num_steps",
              "model.ffn_num_hiddens" if transformer else "model.embed_size"]
    if bad & set(keys) or any(not isinstance(sizes[k], int | None) for k in needed) or \
            any(sizes[k] is None for k in needed if k != "model.embed_size"):
        return []
    total = training_bytes(sizes, transformer)
    memory, where = device_memory(str(get(cfg, "device")))
    if total <= memory:
        return []
    culprits = [k for k in needed if sizes[k] and sizes[k] > SIZE_EXAMPLES[k] and
                training_bytes({**sizes, k: SIZE_EXAMPLES[k]}, transformer) <= memory]
    key = culprits[0] if culprits else max(
        (k for k in needed if sizes[k]), key=lambda k: sizes[k] / SIZE_EXAMPLES[k])
    shown = ", ".join(f"{k}={sizes[k]}" for k in needed if k != key and sizes[k] is not None)
    bad.add(key)
    return [f"{key}={sizes[key]!r} is too large: with {shown}, training needs at least "
            f"{total / GIB:.3g} GiB (float32 weights, their gradients and the hidden states "
            f"kept for the backward pass), and {where} has {memory / GIB:.3g} GiB "
            f"(e.g. {key}={SIZE_EXAMPLES[key]})"]
