"""The identifier room is a service room: it never imports aiohttp's web layer or the web room."""

from __future__ import annotations

import ast
from pathlib import Path

import plantwire_platform.identifiers as room

FORBIDDEN = ("aiohttp.web", "plantwire_platform.web", "plantwire_platform.web_api")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def test_identifier_modules_do_not_import_the_web_layer() -> None:
    files = sorted(Path(room.__file__).parent.glob("*.py"))
    assert len(files) >= 8
    for path in files:
        bad = [n for n in _imports(path) if n.startswith(FORBIDDEN)]
        assert bad == [], f"{path.name} imports {bad}"
