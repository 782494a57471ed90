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


def test_every_dashboard_file_is_in_the_package_data():
    """A static file the globs miss is served from a checkout but 404s from an installed wheel."""
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["api.ui"]
    static = ROOT / "api" / "ui"
    files = [p.relative_to(static).as_posix() for p in (static / "static").rglob("*") if p.is_file()]
    assert "static/index.html" in files
    assert [f for f in files if not any(fnmatch.fnmatch(f, g) and f.count("/") == g.count("/") for g in globs)] == []
