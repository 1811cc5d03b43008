"""The README stays short, the configuration reference is the config's, and every docs page
is in the site's nav. The strict site build itself (make docs) runs in CI, .ci/run."""
import importlib.util
import re
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from tests.helpers import compose_config

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
REFERENCE = DOCS / "configuration.md"


def _generator():
    spec = importlib.util.spec_from_file_location("gen_config_reference",
                                                  DOCS / "gen_config_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_fits_on_a_screen_or_two():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; move detail into docs/"
    long = [(n, len(line)) for n, line in enumerate(lines, 1) if len(line) > 120]
    assert not long, f"README.md lines over 120 characters (line, length): {long}"


def test_readme_keeps_the_setup_commands_ci_runs():
    text = (ROOT / "README.md").read_text()
    assert "make run" in text and "\nmake test " in text


def test_reference_names_every_key_of_the_default_config_with_its_default():
    gen = _generator()
    text = REFERENCE.read_text()
    cfg = OmegaConf.to_container(compose_config(), resolve=False)
    cfg.pop("hydra", None)
    missing = [f"{key}={gen.fmt(value)}" for key, value in gen.flatten(cfg)
               if f"| `{key}` | {gen.code(value)} |" not in text]
    assert not missing, f"docs/configuration.md lacks (run make docs): {missing}"


def test_reference_names_every_group_option_and_the_default_choice():
    text = REFERENCE.read_text()
    defaults = {}
    for entry in OmegaConf.load(ROOT / "conf" / "config.yaml").defaults:
        if not isinstance(entry, str):
            defaults.update(entry)
    for group, choice in defaults.items():
        row = next((line for line in text.splitlines() if line.startswith(f"| `{group}` |")),
                   None)
        assert row is not None, f"no row for group {group}"
        assert row.split("|")[2].strip() == f"`{'null' if choice is None else choice}`", row
        for option in sorted(p.stem for p in (ROOT / "conf" / group).glob("*.yaml")):
            assert f"`{option}`" in row, f"{group}={option} missing from its row"
            assert f"**`{group}={option}`**" in text, f"{group}={option} has no entry"


@pytest.mark.slow
def test_reference_is_a_fresh_generation():
    assert REFERENCE.read_text() == _generator().render(), (
        "docs/configuration.md is stale: run `make docs` (or python docs/gen_config_reference.py)"
        " and commit it")


def test_every_docs_page_is_in_the_nav_and_every_nav_page_exists():
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]

    def pages(node):
        if isinstance(node, str):
            yield node
        elif isinstance(node, list):
            for item in node:
                yield from pages(item)
        elif isinstance(node, dict):
            for value in node.values():
                yield from pages(value)

    listed = set(pages(nav))
    on_disk = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert on_disk - listed == set(), f"docs pages not in mkdocs.yml's nav: {on_disk - listed}"
    assert listed - on_disk == set(), f"nav pages missing from docs/: {listed - on_disk}"


def test_readme_links_into_docs_resolve():
    text = (ROOT / "README.md").read_text()
    for target in re.findall(r"\]\((docs/[^)#]+)", text):
        assert (ROOT / target).is_file(), target
