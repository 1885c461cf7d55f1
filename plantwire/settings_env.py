"""Unknown PLANTWIRE_* environment variables stop start-up, like unknown keys in a file do.

pydantic-settings ignores environment variables that match no field, so a typo such as
``PLANTWIRE_STORE__BACKENT=influxdb`` would silently leave the default in place. `check_env_names`
walks a settings model the way pydantic-settings reads the environment (prefix ``PLANTWIRE_``,
``__`` between levels, names case-insensitive) and raises a one-line `ConfigError` naming the first
variable that matches nothing.

One environment may serve several Plantwire processes (the demo runs them in one shell), so a
service passes the top-level names other components own (`shared`); those are left alone.
"""

from __future__ import annotations

import os
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, Final

from pydantic import BaseModel

from plantwire.config import ConfigError

PREFIX: Final = "PLANTWIRE_"
DELIMITER: Final = "__"
TOOLING_NAMES: Final = frozenset({"log_level", "log_format", "venv"})
"""Read by plantwire.logs and the ./dev script, not by a settings model."""
TOOLING_PREFIXES: Final = ("test_",)
"""PLANTWIRE_TEST_*: the test suite's own switches."""
GATEWAY_SECTIONS: Final = ("id", "data_dir", "outbox", "health", "northbound", "sparkplug", "devices")
PLATFORM_SECTIONS: Final = (
    "client_id", "http", "store", "ingest", "sparkplug_host", "apps", "auth", "identifiers",
    "commands", "audit",
)  # fmt: skip
"""Each service's own top-level settings (`mqtt` is both's); a test keeps them equal to the models."""


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel class inside `annotation` (also `X | None`), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_of(arg)
            if found is not None:
                return found
    return None


def _is_mapping(annotation: Any) -> bool:
    origin = typing.get_origin(annotation) or annotation
    if origin in (typing.Union, types.UnionType):
        return any(_is_mapping(a) for a in typing.get_args(annotation))
    return isinstance(origin, type) and issubclass(origin, Mapping)


def _resolves(model: type[BaseModel], parts: list[str]) -> bool:
    fields = {name.lower(): info for name, info in model.model_fields.items()}
    info = fields.get(parts[0])
    if info is None:
        return False
    rest = parts[1:]
    if not rest:
        return True
    nested = _model_of(info.annotation)
    if nested is not None:
        return _resolves(nested, rest)
    return _is_mapping(info.annotation)  # e.g. apps.config: any key below is the app's own


def unknown_env_names(
    model: type[BaseModel], environ: Mapping[str, str], shared: Iterable[str] = ()
) -> list[str]:
    """The PLANTWIRE_* names in `environ` that match no field of `model`, sorted."""
    ignored = TOOLING_NAMES | {s.lower() for s in shared}
    unknown = []
    for name in environ:
        if not name.upper().startswith(PREFIX):
            continue
        parts = name[len(PREFIX) :].lower().split(DELIMITER)
        if parts[0] in ignored or parts[0].startswith(TOOLING_PREFIXES):
            continue
        if not _resolves(model, parts):
            unknown.append(name)
    return sorted(unknown)


def check_env_names(
    model: type[BaseModel], shared: Iterable[str] = (), environ: Mapping[str, str] | None = None
) -> None:
    """Raise ConfigError naming the first unknown PLANTWIRE_* variable (and how many more)."""
    unknown = unknown_env_names(model, os.environ if environ is None else environ, shared)
    if unknown:
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise ConfigError(f"environment: {unknown[0]}: not a setting of this service{more}")
