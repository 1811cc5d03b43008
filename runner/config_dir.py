"""Where the runner's config files are, for every reader of them (the `runner` command,
runner.api, validation's list of models and loggers, the reproduction script).

In a checkout (or the editable install `make install` makes) they are the repository's
top-level conf/. A built wheel cannot ship a folder above its packages, so pyproject.toml
copies conf/ into the wheel as runner/conf/ (package data): an installed runner finds its
configs there, from any working folder."""
from pathlib import Path

_HERE = Path(__file__).resolve().parent
PACKAGED = _HERE / "conf"  # the installed wheel's copy; absent in a checkout
CHECKOUT = _HERE.parent / "conf"  # the repository's, one above runner/
CONF_DIR = PACKAGED if PACKAGED.is_dir() else CHECKOUT
