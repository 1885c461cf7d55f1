"""The lock files pin every dependency pyproject.toml declares, and everything those depend on.

requirements.lock is the service's set (what deploy/Dockerfile installs), requirements-dev.lock every
extra (what ./dev and CI install). Adding a dependency without `./dev lock` fails here. The walk over
dependencies of dependencies reads the installed packages' metadata: ./dev installed them from the lock.
"""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SELF = canonicalize_name(PROJECT["project"]["name"])
EXTRAS: dict[str, list[str]] = PROJECT["project"]["optional-dependencies"]
# The environment both locks are resolved for: Python 3.11 on Linux.
TARGET = {"python_version": "3.11", "python_full_version": "3.11.0", "sys_platform": "linux",
          "platform_system": "Linux", "os_name": "posix", "platform_machine": "x86_64",
          "implementation_name": "cpython", "platform_python_implementation": "CPython"}  # fmt: skip
LOCKS = {"requirements.lock": ["influxdb", "postgresql"], "requirements-dev.lock": sorted(EXTRAS)}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def locked(lock: str) -> dict[NormalizedName, Version]:
    pins = {}
    for line in (ROOT / lock).read_text().splitlines():
        if match := _PIN.match(line):
            pins[canonicalize_name(match.group(1))] = Version(match.group(2))
    return pins


def applies(req: Requirement, extra: str = "") -> bool:
    return req.marker is None or req.marker.evaluate({**TARGET, "extra": extra})


def declared(extras: list[str]) -> list[Requirement]:
    """The project's requirements with these extras (self-references expanded), plus what builds it."""
    texts = [*PROJECT["project"]["dependencies"], *PROJECT["build-system"]["requires"]]
    todo, seen = list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for text in EXTRAS[extra]:
            req = Requirement(text)
            if canonicalize_name(req.name) == SELF:
                todo += sorted(req.extras)
            else:
                texts.append(text)
    return [r for r in map(Requirement, texts) if applies(r)]


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_every_declared_dependency_is_locked_at_an_allowed_version(lock: str) -> None:
    pins = locked(lock)
    problems = []
    for req in declared(LOCKS[lock]):
        pin = pins.get(canonicalize_name(req.name))
        if pin is None:
            problems.append(f"{req} is not in {lock}")
        elif not req.specifier.contains(pin, prereleases=True):
            problems.append(f"{req} but {lock} pins {pin}")
    assert not problems, "; ".join(problems) + ": run ./dev lock"


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_dependencies_of_dependencies_are_locked_too(lock: str) -> None:
    pins = locked(lock)
    todo = [(req, "") for req in declared(LOCKS[lock])]
    todo += [(req, extra) for req, _ in list(todo) for extra in req.extras]
    done: set[tuple[str, str]] = set()
    missing = []
    while todo:
        req, extra = todo.pop()
        name = canonicalize_name(req.name)
        if (name, extra) in done:
            continue
        done.add((name, extra))
        if name not in pins:
            continue  # a declared one: the test above names it
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            pytest.fail(f"{name} is not installed: ./dev installs {lock}")
        assert Version(dist.version) == pins[name], (
            f"{name} {dist.version} installed, {lock} pins {pins[name]}"
        )
        for text in dist.requires or []:
            dep = Requirement(text)
            wanted = [e for e in ["", *req.extras] if applies(dep, e)]
            if not wanted:
                continue
            if canonicalize_name(dep.name) not in pins:
                missing.append(f"{dep.name} (needed by {name})")
            else:
                todo += [(dep, ""), *((dep, e) for e in dep.extras)]
    assert not missing, f"{lock} lacks {sorted(set(missing))}: run ./dev lock"


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_a_lock_names_no_host_and_hashes_every_pin(lock: str) -> None:
    text = (ROOT / lock).read_text()
    assert "://" not in text and not re.search(r"^\s*--(?!hash=sha256:)", text, re.M)
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
    for entry in entries:
        if _PIN.match(entry):
            assert "--hash=sha256:" in entry, f"{lock}: no hash for {entry.splitlines()[0]}"
    assert len(locked(lock)) == len([e for e in entries if _PIN.match(e)]) > 10


def test_the_image_runs_the_versions_the_tests_ran() -> None:
    service, dev = locked("requirements.lock"), locked("requirements-dev.lock")
    assert {name: dev.get(name) for name in service} == service


def test_dev_ci_and_the_image_install_from_the_locks() -> None:
    dev = (ROOT / "dev").read_text()
    assert "DEV_LOCK=requirements-dev.lock" in dev
    assert 'install --require-hashes --no-deps -r "$DEV_LOCK"' in dev and '"${pip[@]}" check' in dev
    assert "install --no-deps --no-build-isolation -e ." in dev
    assert "./dev test" in (ROOT / ".ci" / "run").read_text()
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert dockerfile.count("pip install --no-cache-dir --require-hashes --no-deps -r") == 2
    assert "--no-deps" in dockerfile
