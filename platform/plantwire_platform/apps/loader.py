"""One loader for every app: folders in the apps folder, the shipped apps, and installed packages.

A folder app is `<folder>/manifest.toml` plus the module its `entry` names, imported from the file
(never "every .py in a folder"). An installed app is a package registered under the entry-point
group `plantwire.apps` (`[project.entry-points."plantwire.apps"] myapp = "myapp_pkg"`), with
`manifest.toml` next to its `__init__.py`. A bad app becomes a `LoadProblem`; the others still load.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from importlib.metadata import entry_points
from pathlib import Path
from typing import Final

from pydantic import BaseModel, ValidationError

from plantwire.logs import get_logger
from plantwire_platform.apps.api import App
from plantwire_platform.apps.manifest import (
    MANIFEST_FILE,
    Manifest,
    ManifestError,
    read_manifest,
    split_pattern,
)

log = get_logger(__name__)

ENTRY_POINT_GROUP: Final = "plantwire.apps"
BUILTIN_FOLDER: Final = Path(__file__).resolve().parent.parent / "builtin_apps"


@dataclass(frozen=True)
class AppSpec:
    manifest: Manifest
    app_class: type[App]
    source: str
    """Where it came from: a folder path or 'entry point NAME'."""


@dataclass(frozen=True)
class LoadProblem:
    app: str
    source: str
    error: str


def _import_entry(manifest: Manifest, folder: Path, package: str | None, source: str) -> type[App]:
    module_name, _, attr = manifest.entry.partition(":")
    try:
        if package is not None:
            module = importlib.import_module(f"{package}.{module_name}")
        else:
            path = folder / (module_name.replace(".", "/") + ".py")
            unique = f"plantwire_app_{manifest.id}_{module_name.replace('.', '_')}"
            spec = importlib.util.spec_from_file_location(unique, path)
            if spec is None or spec.loader is None or not path.is_file():
                raise ManifestError(manifest.id, "entry", f"no module file {path}", source)
            module = importlib.util.module_from_spec(spec)
            sys.modules[unique] = module
            spec.loader.exec_module(module)
    except ManifestError:
        raise
    except Exception as err:  # an app's import-time error must not stop the platform
        raise ManifestError(
            manifest.id, "entry", f"importing {module_name} failed: {type(err).__name__}: {err}", source
        ) from err
    cls = getattr(module, attr, None)
    if not (isinstance(cls, type) and issubclass(cls, App)):
        raise ManifestError(
            manifest.id, "entry", f"{manifest.entry} is not a subclass of plantwire App", source
        )
    if not (isinstance(cls.Config, type) and issubclass(cls.Config, BaseModel)):
        raise ManifestError(manifest.id, "entry", f"{attr}.Config is not a pydantic model", source)
    return cls


def load_folder(folder: Path, package: str | None = None) -> AppSpec:
    """Load one app folder (raises ManifestError)."""
    manifest = read_manifest(folder)
    source = str(folder)
    cls = _import_entry(manifest, folder, package, source)
    validate_config(manifest, cls, {})
    return AppSpec(manifest, cls, source)


def validate_config(manifest: Manifest, cls: type[App], overrides: dict[str, object]) -> BaseModel:
    """The manifest's [config] defaults with `overrides` on top, validated by the app's Config."""
    try:
        return cls.Config.model_validate({**manifest.config, **overrides})
    except ValidationError as err:
        first = err.errors()[0]
        field = "config." + ".".join(str(p) for p in first["loc"])
        raise ManifestError(manifest.id, field, first["msg"].removeprefix("Value error, ")) from None


def subscription_patterns(manifest: Manifest, cls: type[App], config: BaseModel) -> tuple[str, ...]:
    """What the app subscribes to: its own narrower patterns, each checked against `reads`."""
    patterns = cls.subscriptions(config)
    if patterns is None:
        return manifest.reads
    for pattern in patterns:
        try:
            device, tag = split_pattern(pattern)
        except ValueError as err:
            raise ManifestError(manifest.id, "subscriptions", str(err)) from None
        if not manifest.may_read(device, tag) and not any(
            fnmatchcase(device, d) and fnmatchcase(tag, t) for d, t in map(split_pattern, manifest.reads)
        ):
            raise ManifestError(manifest.id, "reads", f"does not allow subscribing to {pattern!r}")
    return tuple(patterns)


def _scan(folder: Path, package: str | None) -> Iterable[AppSpec | LoadProblem]:
    if not folder.is_dir():
        return
    for child in sorted(folder.iterdir()):
        if not (child / MANIFEST_FILE).is_file():
            continue
        try:
            yield load_folder(child, f"{package}.{child.name}" if package else None)
        except ManifestError as err:
            yield LoadProblem(err.app, str(child), str(err))


def _entry_point_apps() -> Iterable[AppSpec | LoadProblem]:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        source = f"entry point {ep.name} = {ep.value}"
        try:
            module = ep.load()
            folder = Path(module.__file__ or "").resolve().parent
            manifest = read_manifest(folder)
            cls = _import_entry(manifest, folder, module.__name__, source)
            validate_config(manifest, cls, {})
            yield AppSpec(manifest, cls, source)
        except ManifestError as err:
            yield LoadProblem(err.app, source, str(err))
        except Exception as err:  # a broken installed package must not stop the platform
            yield LoadProblem(ep.name, source, f"app {ep.name!r} ({source}): {type(err).__name__}: {err}")


def discover(apps_folder: Path | None, builtin: bool = True) -> tuple[list[AppSpec], list[LoadProblem]]:
    """Every app found; the first of two apps with the same id wins, the second is a problem."""
    found: list[AppSpec | LoadProblem] = []
    if builtin:
        found += _scan(BUILTIN_FOLDER, "plantwire_platform.builtin_apps")
    if apps_folder is not None:
        found += _scan(apps_folder, None)
    found += _entry_point_apps()
    specs: dict[str, AppSpec] = {}
    problems: list[LoadProblem] = []
    for item in found:
        if isinstance(item, LoadProblem):
            log.error("app_load_failed", app_id=item.app, source=item.source, error=item.error)
            problems.append(item)
        elif item.manifest.id in specs:
            other = specs[item.manifest.id].source
            error = f"app {item.manifest.id!r} ({item.source}): id: already used by {other}"
            log.error("app_load_failed", app_id=item.manifest.id, source=item.source, error=error)
            problems.append(LoadProblem(item.manifest.id, item.source, error))
        else:
            specs[item.manifest.id] = item
    return list(specs.values()), problems
