"""What an app is: the manifest the loader validates before any of the app's code runs.

`manifest.toml` in the app's folder::

    id = "limit_alarms"            # [a-z][a-z0-9_]*, unique; names the app everywhere
    name = "Limit alarms"
    version = "1.0.0"
    api_version = 1                # the app API this app was written against
    entry = "app:LimitAlarms"      # module in the folder : App subclass
    reads = ["*:Thermal/*"]        # device:tag patterns (fnmatch) the app receives
    writes = ["cnc-*:Spindle/SpeedSetpoint"]   # device:tag the app may write
    calls = ["pump-*:Reset"]       # device:method the app may call
    [config]                       # defaults, validated by the App's Config model

A problem raises `ManifestError` naming the app and the field.
"""

from __future__ import annotations

import re
import tomllib
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

API_VERSION: Final = 1
"""The app API version this platform provides; a manifest asking for another one is refused."""

MANIFEST_FILE: Final = "manifest.toml"
_ID_RE: Final = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_ENTRY_RE: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$")


class ManifestError(Exception):
    """A manifest (or an app's config) is invalid; the message names the app and the field."""

    def __init__(self, app: str, field: str, message: str, source: str = "") -> None:
        where = f" ({source})" if source else ""
        super().__init__(f"app {app!r}{where}: {field}: {message}")
        self.app = app
        self.field = field


def split_pattern(pattern: str) -> tuple[str, str]:
    """'cnc-*:Status/State' -> ('cnc-*', 'Status/State'). Device ids never contain ':'."""
    device, sep, rest = pattern.partition(":")
    if not sep or not device or not rest:
        raise ValueError(f"{pattern!r} is not 'device:tag' (fnmatch patterns, e.g. 'cnc-*:Status/State')")
    return device, rest


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    name: str = Field(min_length=1, max_length=80)
    version: str = Field(pattern=r"^[0-9]+(\.[0-9]+){0,2}([.+-][0-9A-Za-z.]+)?$")
    api_version: int
    entry: str = "app:App"
    description: str = ""
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    calls: tuple[str, ...] = ()
    config: dict[str, Any] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _ID_RE.match(value):
            raise ValueError(f"{value!r} must be lower case letters, digits and _, starting with a letter")
        return value

    @field_validator("api_version")
    @classmethod
    def _api(cls, value: int) -> int:
        if value != API_VERSION:
            raise ValueError(f"this platform provides app API {API_VERSION}, the app asks for {value}")
        return value

    @field_validator("entry")
    @classmethod
    def _entry(cls, value: str) -> str:
        if not _ENTRY_RE.match(value):
            raise ValueError(f"{value!r} is not 'module:ClassName'")
        return value

    @field_validator("reads", "writes", "calls")
    @classmethod
    def _patterns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            split_pattern(pattern)
        return value

    def may_write(self, device: str, tag: str) -> bool:
        return _allowed(self.writes, device, tag)

    def may_call(self, device: str, method: str) -> bool:
        return _allowed(self.calls, device, method)

    def may_read(self, device: str, tag: str) -> bool:
        return _allowed(self.reads, device, tag)


def _allowed(patterns: tuple[str, ...], device: str, name: str) -> bool:
    for pattern in patterns:
        d, n = split_pattern(pattern)
        if fnmatchcase(device, d) and fnmatchcase(name, n):
            return True
    return False


def parse_manifest(data: dict[str, Any], source: str, fallback_id: str) -> Manifest:
    app = data.get("id") if isinstance(data.get("id"), str) else fallback_id
    try:
        return Manifest.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "manifest"
        message = first["msg"].removeprefix("Value error, ")
        raise ManifestError(str(app), field, message, source) from None


def read_manifest(folder: Path) -> Manifest:
    path = folder / MANIFEST_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ManifestError(folder.name, MANIFEST_FILE, f"cannot read: {err.strerror}", str(path)) from None
    except tomllib.TOMLDecodeError as err:
        raise ManifestError(folder.name, MANIFEST_FILE, f"not valid TOML: {err}", str(path)) from None
    return parse_manifest(data, str(path), folder.name)
