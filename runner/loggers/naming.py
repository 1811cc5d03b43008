"""What a tracker calls a run of a sweep, from its folder's name (Hydra's override_dirname,
`model.num_hiddens=16,seed=0`) and its sweep's manifest: the keys the sweep varies, and a name
short enough for a run list."""
import json
import re
from pathlib import Path

# a key=value pair's key at the start of a folder name or after the `,` between pairs
# (`+key` and `++key`: a key added on the command line)
_KEY = re.compile(r"(?:^|,)\+{0,2}([A-Za-z_][\w.\-]*)=")


def named_keys(name: str) -> list[str]:
    """The config keys a sweep run's folder name sets: the sweep's varied keys, seed among
    them; [] for a folder named otherwise (a single run's timestamp)."""
    return _KEY.findall(name)


def varied_keys(folder: Path) -> list[str]:
    """The keys a run's sweep varies: those whose value differs across the runs its manifest
    (folder/../manifest.json) plans, or, with no manifest, the keys its folder name sets.
    A folder name holds every override of the command (data.file=tiny.txt too): a run list
    needs only what tells the runs apart."""
    try:
        runs = json.loads((Path(folder).parent / "manifest.json").read_text())["runs"]
    except (OSError, ValueError, KeyError, TypeError):
        return named_keys(Path(folder).name)
    values = [dict(o.lstrip("+~").split("=", 1) for o in r.get("overrides", []) if "=" in o)
              for r in runs]
    keys = dict.fromkeys(k for v in values for k in v)
    return [k for k in keys if len({v.get(k) for v in values}) > 1] or named_keys(
        Path(folder).name)


def short_name(name: str, keys: list[str] | None = None) -> str:
    """The folder name with each key cut to its leaf, and a leaf of several words to their
    initials: model.num_hiddens=16,seed=0 -> "nh=16 seed=0". MLflow's run list cuts names
    at about 15 characters, where the dotted keys of every run of a sweep read the same
    ("model.num_hid..."). Two keys of one name that would read the same keep their leaves.
    With `keys` (varied_keys), only their pairs: the sweep's settings held fixed go."""
    pairs = dict(zip(named_keys(name),
                     re.split(r"(?:^|,)\+{0,2}[A-Za-z_][\w.\-]*=", name)[1:]))  # key: value
    if keys and set(keys) & set(pairs):
        pairs = {k: v for k, v in pairs.items() if k in keys}
    if not pairs:
        return name
    leaves = [key.rsplit(".", 1)[-1] for key in pairs]
    short = ["".join(w[:1] for w in leaf.split("_")) if "_" in leaf else leaf
             for leaf in leaves]
    if len(set(short)) < len(short):  # num_hiddens and num_heads: both nh
        short = leaves if len(set(leaves)) == len(leaves) else list(pairs)
    return " ".join(f"{k}={v}" for k, v in zip(short, pairs.values()))
