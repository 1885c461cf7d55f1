"""Virtualenvs of their own for peer libraries that cannot share ours (pysparkplug, pyhandle).

Each is made once, outside the repo tree, under the user's cache folder, and reused while its
marker file names the same requirement; a lock makes two test runs at once build it once.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "plantwire"


def peer_python(venv: Path, requirement: str) -> Path:
    """The interpreter of `venv`, with `requirement` installed into it (once)."""
    marker = venv / ".plantwire-installed"
    python = venv / "bin" / "python"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (marker.exists() and marker.read_text() == requirement and python.exists()):
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
            pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", requirement]
            done = subprocess.run(pip, capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                pytest.fail(f"installing {requirement} failed:\n{done.stdout}\n{done.stderr}")
            marker.write_text(requirement)
    return python
