"""`plantwire app new` makes an app whose own test passes, and which the loader accepts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from plantwire_platform.apps.loader import discover


def test_scaffolded_app_passes_its_test_and_loads(tmp_path: Path) -> None:
    apps = tmp_path / "apps"
    made = subprocess.run(
        [sys.executable, "-m", "plantwire", "app", "new", "spindle_watch", "--dir", str(apps)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    folder = apps / "spindle_watch"
    assert {p.name for p in folder.iterdir()} >= {"manifest.toml", "app.py", "test_app.py"}
    tested = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "1 passed" in tested.stdout
    specs, problems = discover(apps, builtin=False)
    assert problems == [] and [s.manifest.id for s in specs] == ["spindle_watch"]
    again = subprocess.run(
        [sys.executable, "-m", "plantwire", "app", "new", "spindle_watch", "--dir", str(apps)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 2 and "already exists" in again.stderr
