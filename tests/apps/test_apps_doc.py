"""docs/apps.md's tutorial is real: its files are extracted, loaded by the loader and tested."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pytest

from plantwire_platform.apps.loader import discover

DOC = (Path(__file__).resolve().parents[2] / "docs" / "apps.md").read_text()
BLOCK = re.compile(r"```\w+ file=(\S+)\n(.*?)```", re.S)


def test_tutorial_app_loads_and_its_test_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = dict(BLOCK.findall(DOC))
    assert set(files) == {"manifest.toml", "app.py", "test_app.py"}
    folder = tmp_path / "apps" / "hot_spindle"
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    specs, problems = discover(tmp_path / "apps", builtin=False)
    assert problems == [] and [s.manifest.id for s in specs] == ["hot_spindle"]
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(sys.modules, "app", raising=False)
    monkeypatch.delitem(sys.modules, "test_app", raising=False)
    module = importlib.import_module("test_app")
    module.test_hot_spindle()
