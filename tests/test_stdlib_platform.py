"""`import platform` must give the standard library everywhere, though a folder is named `platform/`."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()
CHECK = (
    "import platform, sys, plantwire_platform; "
    "print(platform.__file__); print(plantwire_platform.__file__); print(platform.python_version())"
)


def _run(code: str, cwd: Path, env: dict[str, str] | None = None) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, check=True, timeout=60
    )
    return out.stdout.splitlines()


def test_platform_is_stdlib_inside_pytest() -> None:
    assert Path(platform.__file__).resolve().parent == STDLIB
    assert platform.python_version().startswith("3.")


@pytest.mark.parametrize("cwd", [REPO, REPO / "platform", REPO / "tests"], ids=["root", "platform", "tests"])
def test_platform_is_stdlib_from_any_folder(cwd: Path) -> None:
    """The editable install (what the test command uses) and the source tree on sys.path[0]."""
    std, ours, version = _run(CHECK, cwd)
    assert Path(std).resolve().parent == STDLIB
    assert Path(ours).resolve().is_relative_to(REPO / "platform" / "plantwire_platform")
    assert version == platform.python_version()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a clean copy of the tree (an in-place build reuses stale files in build/)."""
    src = tmp_path_factory.mktemp("src") / "plantwire"
    skip = shutil.ignore_patterns(
        ".git", ".venv", "var", "build", "*.egg-info", "__pycache__", "test-artifacts"
    )
    shutil.copytree(REPO, src, ignore=skip)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "-w", str(out), str(src)],
        check=True, capture_output=True, timeout=180,
    )  # fmt: skip
    (built,) = out.glob("plantwire-*.whl")
    return built


def test_platform_is_stdlib_from_installed_wheel(wheel: Path, tmp_path: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    top_level = {name.split("/")[0] for name in names}
    assert "platform" not in top_level and "platform.py" not in top_level
    assert {"plantwire", "plantwire_platform", "plantwire_gateway", "plantwire_sims"} <= top_level
    # The wheel first on the path, as an installed wheel would be.
    std, ours, _ = _run(CHECK, tmp_path, env={"PYTHONPATH": str(wheel), "PATH": "/usr/bin:/bin"})
    assert Path(std).resolve().parent == STDLIB
    assert ".whl" in ours


def _source_files() -> set[str]:
    """Every file an installed Plantwire needs, as its path inside a wheel."""
    roots = {"plantwire": REPO / "plantwire"} | {
        p.name: p
        for folder in ("gateway", "platform", "device_sims")
        for p in (REPO / folder).glob("plantwire_*")
    }
    files = set()
    for name, root in roots.items():
        for path in root.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                files.add(f"{name}/{path.relative_to(root).as_posix()}")
    return files


def test_wheel_holds_every_module_and_data_file(wheel: Path) -> None:
    """Subpackages, shipped apps' manifests and the web page's files all reach an installed wheel."""
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = sorted(_source_files() - names)
    assert not missing, f"not in the wheel: {missing[:10]}"
