"""The platform's rooms and arrows (docs/architecture.md), checked on the source.

A small AST walker reads every module of `plantwire_platform` and its imports (those under
`if TYPE_CHECKING:` are annotations only and do not count as arrows).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest

import plantwire_platform

ROOT: Final = Path(plantwire_platform.__file__).parent
PACKAGE: Final = "plantwire_platform"

ROOMS: Final = ("ingest", "store", "commands", "apps", "web")
ALLOWED: Final[dict[str, set[str]]] = {
    # room -> the rooms (and top-level modules) it may import
    "store": {"store", "settings"},
    "ingest": {"ingest", "store", "settings"},
    "commands": {"commands", "store"},
    "apps": {"apps", "commands", "ingest", "store", "settings", "identifiers"},
    "builtin_apps": {"apps"},
    "identifiers": {"identifiers", "store"},
    "auth": {"auth"},
    "web": {"web", "apps", "auth", "commands", "ingest", "store", "settings", "identifiers"},
    "settings": {"settings", "store", "auth", "identifiers", "commands"},
}
"""Only `service` (the composition root) and `cli` import freely; nothing imports them but `cli`."""
SERVICES: Final = ("ingest", "store", "commands", "apps", "builtin_apps", "identifiers", "auth")
DEFERRED_IMPORTS: Final[dict[str, str]] = {
    "cli": "the platform CLI imports the service only when it runs (fast --help)",
    "apps.cli": "the app CLI imports the scaffold only when it runs",
    "store.factory": "the InfluxDB and PostgreSQL backends are optional extras, imported when configured",
    "auth.api_auth": "the PostgreSQL auth tables need asyncpg (an optional extra), imported when configured",
}
"""Modules allowed an import inside a function, and why; never to dodge a cycle."""


@dataclass(frozen=True)
class Import:
    module: str
    """The importing module, relative to the package (e.g. 'web.app')."""
    target: str
    """The imported module, absolute (e.g. 'aiohttp.web', 'plantwire_platform.store.model')."""
    names: tuple[str, ...]
    deferred: bool
    """Inside a function (not at module level)."""


def _module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports_of(path: Path, root: Path = ROOT) -> list[Import]:
    module = _module_name(path, root)
    found: list[Import] = []

    def visit(node: ast.AST, deferred: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                continue
            inner = deferred or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                found.extend(Import(module, a.name, (), inner) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                names = tuple(a.name for a in child.names)
                found.append(Import(module, child.module, names, inner))
                # `from pkg import submodule` is an arrow to the submodule too
                found.extend(Import(module, f"{child.module}.{n}", (), inner) for n in names)
            visit(child, inner)

    visit(ast.parse(path.read_text(), str(path)), False)
    return found


ALL_IMPORTS: Final = [imp for path in sorted(ROOT.rglob("*.py")) for imp in _imports_of(path)]
MODULES: Final = {_module_name(p) for p in ROOT.rglob("*.py")}


def _internal(target: str) -> str | None:
    """'plantwire_platform.web.app' -> 'web.app' if it names one of our modules, else None."""
    if not target.startswith(PACKAGE + "."):
        return None
    rel = target[len(PACKAGE) + 1 :]
    return rel if rel in MODULES else None


def _room(module: str) -> str:
    return module.split(".")[0]


def test_the_walker_sees_the_platform() -> None:
    assert {"web.app", "commands.service", "ingest.mqtt_ingest", "store.model", "service"} <= MODULES
    assert any(i.module == "web.app" and i.target == "plantwire_platform.web.runtime" for i in ALL_IMPORTS)


@pytest.mark.parametrize("room", SERVICES)
def test_services_never_import_the_web_layer_or_aiohttp_web(room: str) -> None:
    bad = [
        f"{i.module} imports {i.target}"
        for i in ALL_IMPORTS
        if _room(i.module) == room
        and (
            i.target in ("aiohttp.web", "aiohttp.web_app", "aiohttp.web_request")
            or (i.target == "aiohttp" and "web" in i.names)
            or i.target.startswith(f"{PACKAGE}.web")
            or i.target.startswith(f"{PACKAGE}.service")
        )
    ]
    assert bad == []


def test_each_room_imports_only_the_rooms_it_may() -> None:
    bad = []
    for i in ALL_IMPORTS:
        target = _internal(i.target)
        room = _room(i.module)
        if target is None or room in ("service", "cli") or i.module == "":
            continue
        if _room(target) not in ALLOWED[room]:
            bad.append(f"{i.module} -> {target}")
    assert bad == []


def test_no_import_cycles() -> None:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for i in ALL_IMPORTS:
        target = _internal(i.target)
        if target is not None and target != i.module and not i.deferred:
            graph[i.module].add(target)
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def walk(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                walk(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            walk(module, [module])
    assert cycles == []


def test_imports_inside_functions_only_where_a_reason_is_written() -> None:
    deferred = {i.module for i in ALL_IMPORTS if i.deferred and _internal(i.target) is not None}
    assert deferred <= set(DEFERRED_IMPORTS), sorted(deferred - set(DEFERRED_IMPORTS))


def test_no_private_names_imported_across_modules() -> None:
    bad = [
        f"{i.module} imports {n} from {i.target}"
        for i in ALL_IMPORTS
        if i.target.startswith(PACKAGE)
        for n in i.names
        if n.startswith("_") and not n.startswith("__")
    ]
    assert bad == []


def test_the_checks_catch_a_forbidden_arrow(tmp_path: Path) -> None:
    """The walker is not blind: a service module importing the web layer is seen as such."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from typing import TYPE_CHECKING\n"
        "from aiohttp import web\n"
        "if TYPE_CHECKING:\n    from plantwire_platform.web.app import create_app\n"
        "def f() -> None:\n    from plantwire_platform.web.runtime import RUNTIME_KEY\n"
    )
    imports = _imports_of(sample, tmp_path)
    assert [(i.target, i.deferred) for i in imports if "web" in i.target or "web" in i.names] == [
        ("aiohttp", False),
        ("aiohttp.web", False),
        ("plantwire_platform.web.runtime", True),
        ("plantwire_platform.web.runtime.RUNTIME_KEY", True),
    ]
