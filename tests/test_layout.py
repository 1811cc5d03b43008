"""The architecture docs/layout.md describes, checked: each package imports only the
layers below it, and files stay short enough to read top to bottom."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# package -> the runner packages (besides itself) it may import
ALLOWED = {
    "runner/report": {"runner.result"},
    "runner/tasks": {"runner.errors"},
    "runner/loggers": {"runner.result", "runner.config_dir"},
    "runner/run": {"runner.errors", "runner.result", "runner.tasks", "runner.loggers",
                   "runner.config_dir"},
    "runner/sweep": {"runner.errors", "runner.result", "runner.run", "runner.report",
                     "runner.loggers", "runner.hydra_private"},
    "models": set(),
    "data": set(),
}


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_each_package_imports_only_the_layers_below(package):
    own = package.replace("/", ".")
    bad = {}
    for path in (ROOT / package).glob("*.py"):
        outside = {n for n in imported(path)
                   if n.split(".")[0] == "runner" and not n.startswith(own)
                   and not any(n == a or n.startswith(a + ".") for a in ALLOWED[package])}
        if outside:
            bad[path.name] = sorted(outside)
    assert not bad, f"{package} imports beyond its layer: {bad}"


def test_no_source_file_is_over_300_lines():
    files = [p for folder in ("runner", "models", "data", "bench", "hydra_plugins")
             for p in (ROOT / folder).rglob("*.py")]
    long = {p.relative_to(ROOT).as_posix(): n for p in files
            if (n := len(p.read_text().splitlines())) > 300}
    assert not long, long
