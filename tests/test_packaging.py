"""Packaging holds: one license, one Python floor, one list of dependencies, one set of pins.

pyproject.toml is the single source of what ncbook and the book need (lower bounds, in the
project dependencies and extras); constraints.txt only fixes their versions; the Makefile installs
exactly those extras under those constraints; README and CI name the same commands.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]


def _requirements() -> dict[str, Requirement]:
    reqs = list(PROJECT["dependencies"]) + [r for extra in PROJECT["optional-dependencies"].values() for r in extra]
    out = {}
    for line in reqs:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        assert name not in out, f"{req.name} is listed twice in pyproject.toml"
        out[name] = req
    return out


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not an exact pin (name==version)"
            pins[canonicalize_name(name)] = version.strip()
    return pins


def _installed(name: str) -> Version | None:
    try:
        return Version(Version(metadata.version(name)).public)
    except metadata.PackageNotFoundError:
        return None


def test_license_file_matches_pyproject():
    assert PROJECT["license"] == "MIT"
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Permission is hereby granted, free of charge" in text


def test_python_floor_is_310_and_agrees_with_ruff_readme_and_this_interpreter():
    floor = SpecifierSet(PROJECT["requires-python"])
    assert "3.9" not in floor and "3.10" in floor
    assert PYPROJECT["tool"]["ruff"]["target-version"] == "py310"
    assert ".".join(map(str, sys.version_info[:2])) in floor, "the tests run on a Python the package refuses"
    readme = (ROOT / "README.md").read_text()
    assert re.findall(r"Python (3\.\d+)\+", readme) == ["3.10"], "README must state the same floor, Python 3.10+"


def test_dependencies_are_listed_once_and_every_one_is_pinned():
    assert not (ROOT / "requirements.txt").exists(), "pyproject.toml is the one list of dependencies"
    reqs, pins = _requirements(), _pins()
    unpinned = sorted(set(reqs) - set(pins))
    assert not unpinned, f"constraints.txt does not pin: {unpinned}"
    # Pins of packages we do not list directly must be dependencies of ours (installed, at that version).
    stray = sorted(n for n in set(pins) - set(reqs) if _installed(n) != Version(pins[n]))
    assert not stray, f"constraints.txt pins packages that are neither listed nor installed at the pin: {stray}"
    outside = sorted(n for n, r in reqs.items() if r.specifier and not r.specifier.contains(pins[n], prereleases=True))
    assert not outside, f"pins outside pyproject's bounds: {[(n, pins[n], str(reqs[n].specifier)) for n in outside]}"


def test_makefile_installs_every_extra_under_the_constraints():
    make = (ROOT / "Makefile").read_text()
    extras = re.search(r"^EXTRAS\s*:=\s*(\S+)", make, re.M).group(1).split(",")
    assert sorted(extras) == sorted(PROJECT["optional-dependencies"]), "make setup must install every extra"
    assert re.search(r'pip install .*-c constraints\.txt -e "\.\[\$\(EXTRAS\)\]"', make)


def test_no_stale_package_data():
    setuptools = PYPROJECT["tool"]["setuptools"]
    for package in setuptools["packages"]:
        assert (ROOT / package / "__init__.py").is_file(), f"{package} is listed but is not a package"
    for package, patterns in setuptools.get("package-data", {}).items():
        for pattern in patterns:
            assert list((ROOT / package).glob(pattern)), f"package-data {package}: {pattern} matches no file"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", readme, re.S).group(1).split()
    assert block == ["make", "book", "make", "test"], "README's two commands"
    ci = [ln for ln in (ROOT / ".ci" / "run").read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert ci[-1] == "make test", "CI runs the README's test command, and nothing after it"


def test_docstrings_hold_no_control_characters():
    """A TeX macro in a non-raw docstring turns into a control character: ``"\\tau"`` is TAB + "au"."""
    import ast

    bad = []
    for path in sorted((ROOT / "ncbook").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node, clean=False) or ""
                if re.search(r"[\x00-\x08\x0b-\x1f\x7f]", doc) or "\t" in doc:
                    bad.append(f"{path.relative_to(ROOT)}:{getattr(node, 'name', '<module>')}")
    assert not bad, f"docstrings with control characters (write them as r-strings): {bad}"
