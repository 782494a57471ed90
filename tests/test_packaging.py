"""Every package of the service is installed by pyproject.toml (a missing one only
fails on a fresh machine, where the editable install is all there is)."""

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOT_SHIPPED = {"tests", "bench"}


def test_every_top_level_package_is_in_the_install_list():
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - NOT_SHIPPED
    missing = {name for name in packages if not any(fnmatch.fnmatch(name, pattern) for pattern in include)}
    assert missing == set()
