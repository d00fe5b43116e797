"""The lock (requirements.lock): what CI tests is what ./run.sh installs.

The lock names one version (and the sha256 of each file) of every package of the runtime and of
the dev and cluster extras, for Linux x86-64 and Python 3.11. ``./run.sh`` builds ``.venv`` from
it with ``pip install --require-hashes --no-deps`` plus genre itself (editable), anew whenever the
lock changes. These tests check that the venv running them is exactly the lock, and that the
lock still satisfies the ranges ``pyproject.toml`` declares (the lock is remade on purpose, with
``./run.sh lock``: a declared range it no longer meets fails here instead of at a user's).
"""
from __future__ import annotations

import platform
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import ROOT

LOCK = ROOT / "requirements.lock"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = canonicalize_name(PYPROJECT["project"]["name"])
LOCKED_FOR = {**default_environment(), "sys_platform": "linux", "platform_machine": "x86_64",
              "platform_system": "Linux", "python_version": "3.11", "implementation_name": "cpython"}
"""The environment the lock is made for (markers are judged in it)."""


def locked() -> dict[str, str]:
    """{canonical name: version} of every ``name==version`` line of the lock."""
    pins = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", LOCK.read_text(), flags=re.MULTILINE)
    return {canonicalize_name(name): version for name, version in pins}


def test_every_locked_package_is_pinned_with_hashes():
    text = LOCK.read_text()
    assert "./run.sh lock" in text.splitlines()[1], "the lock says how it is remade"
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2].strip())
    assert len(entries) == len(locked()) > 50
    for entry in entries:
        assert re.match(r"^\S+==\S+ \\\n    --hash=sha256:[0-9a-f]{64}", entry), entry.splitlines()[0]


def test_the_lock_meets_every_declared_range():
    """pyproject.toml's dependencies and its dev and cluster extras, for Linux x86-64 and
    Python 3.11: each applies to a locked package at a version inside its range."""
    pins = locked()
    declared = [*PYPROJECT["project"]["dependencies"], *(r for extra in ("dev", "cluster")
                                                           for r in PYPROJECT["project"]["optional-dependencies"][extra])]
    checked = 0
    for line in declared:
        requirement = Requirement(line)
        if requirement.marker and not requirement.marker.evaluate(LOCKED_FOR):
            continue
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is declared but not in the lock: ./run.sh lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), \
            f"the lock has {name}=={pins[name]}, outside the declared {requirement}: ./run.sh lock"
        checked += 1
    assert checked >= 20
    assert "tensorflow-cpu" in pins and "tensorflow" not in pins  # never both


def test_the_venv_running_the_tests_is_the_lock():
    """Every package installed here is at the lock's version and every locked package is
    installed: nothing more (genre itself aside), nothing less, nothing newer."""
    if Path(sys.prefix).resolve() != (ROOT / ".venv").resolve():
        pytest.skip(f"the tests run in {sys.prefix}, not in the .venv that ./run.sh builds from the lock")
    if (sys.platform, platform.machine()) != ("linux", "x86_64"):
        pytest.skip("the lock is for Linux x86-64; ./run.sh installs the declared ranges elsewhere")
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}
    installed.pop(PROJECT)
    pins = locked()
    assert {n: v for n, v in installed.items() if pins.get(n) != v} == {}, "installed here, not as locked"
    assert sorted(set(pins) - set(installed)) == [], "locked, not installed"
