"""The Handle data model (RFC 3651): a handle is `prefix/suffix` with a set of typed, indexed values.

Each value carries `index` (unique within the handle, > 0), `type` (e.g. URL, HS_ADMIN), `data`,
`ttl` (seconds a resolver may cache it) and `timestamp` (last change). `scope` is Plantwire's
read restriction (None: public; 'read'/'operate'/'admin': the API token scope needed to see it).
JSON shapes follow the Handle.Net REST API.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final, Literal

Scope = Literal["read", "operate", "admin"]
SCOPE_RANK: Final[dict[str, int]] = {"read": 1, "operate": 2, "admin": 3}
ADMIN_INDEX: Final = 100
"""Index of the HS_ADMIN value (Handle convention: 100)."""
ADMIN_PERMISSIONS: Final = "011111110011"
MAX_HANDLE_LEN: Final = 512
MAX_VALUES: Final = 200
MAX_VALUE_LEN: Final = 16_384


class HandleSyntaxError(ValueError):
    """Not a valid `prefix/suffix` handle, or a value that breaks the data model."""


def scope_allows(granted: str | None, needed: str | None) -> bool:
    """Whether a token of scope `granted` (None: no token) may see a value needing `needed`."""
    if needed is None:
        return True
    return granted is not None and SCOPE_RANK.get(granted, 0) >= SCOPE_RANK[needed]


def split_handle(name: str) -> tuple[str, str]:
    """'prefix/suffix' -> (prefix, suffix); a 'hdl:' scheme is dropped. Raises HandleSyntaxError."""
    text = name.removeprefix("hdl:")
    prefix, sep, suffix = text.partition("/")
    if not sep or not prefix or not suffix:
        raise HandleSyntaxError(f"{name!r} is not a handle of the form prefix/suffix")
    if len(text) > MAX_HANDLE_LEN or any(ord(c) < 0x20 for c in text):
        raise HandleSyntaxError("a handle is at most 512 printable characters")
    return prefix, suffix


def hs_timestamp(seconds: float) -> str:
    """Handle.Net REST timestamps: ISO 8601 UTC to the second, e.g. 2026-12-01T20:31:44Z."""
    return _iso_second(int(seconds))


@lru_cache(maxsize=8192)
def _iso_second(seconds: int) -> str:
    # Values of one handle share their timestamp, and resolution formats them on every answer.
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class HandleValue:
    index: int
    type: str
    value: Any
    """A string for format 'string'; a dict for 'admin' ({handle, index, permissions})."""
    format: str = "string"
    ttl: int = 86_400
    timestamp: float = 0.0
    scope: Scope | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "type": self.type,
            "data": {"format": self.format, "value": self.value},
            "ttl": self.ttl,
            "timestamp": hs_timestamp(self.timestamp),
        }


@dataclass(frozen=True, slots=True)
class Handle:
    prefix: str
    suffix: str
    values: tuple[HandleValue, ...] = field(default_factory=tuple)

    @property
    def name(self) -> str:
        return f"{self.prefix}/{self.suffix}"

    def value(self, type_: str) -> Any:
        """The data of the first value of `type_`, or None."""
        for v in self.values:
            if v.type == type_:
                return v.value
        return None

    def visible(
        self, granted: str | None, types: frozenset[str] = frozenset(), indices: frozenset[int] = frozenset()
    ) -> list[HandleValue]:
        """The values a caller with scope `granted` may see, filtered as `?type=`/`?index=` do.

        As in the Handle.Net API, a value matches when its type is in `types` OR its index in
        `indices`; with neither filter every value matches.
        """
        out = []
        for v in self.values:
            if not scope_allows(granted, v.scope):
                continue
            if (types or indices) and v.type not in types and v.index not in indices:
                continue
            out.append(v)
        return out


def admin_value(admin_handle: str, admin_index: int, timestamp: float) -> HandleValue:
    """The HS_ADMIN value naming who may change the handle (RFC 3651 section 3.5)."""
    data = {"handle": admin_handle, "index": admin_index, "permissions": ADMIN_PERMISSIONS}
    return HandleValue(ADMIN_INDEX, "HS_ADMIN", data, "admin", 86_400, timestamp)


def value_from_json(obj: Any, timestamp: float) -> HandleValue:
    """One value of a PUT body (Handle.Net shape; `data` may be a bare string as clients send)."""
    if not isinstance(obj, dict):
        raise HandleSyntaxError("each value must be an object with index, type and data")
    index, type_, data = obj.get("index"), obj.get("type"), obj.get("data")
    if isinstance(index, str) and index.isdigit():
        index = int(index)
    if not isinstance(index, int) or isinstance(index, bool) or index <= 0:
        raise HandleSyntaxError("value index must be a positive integer")
    if not isinstance(type_, str) or not type_:
        raise HandleSyntaxError(f"value {index}: type must be a non-empty string")
    fmt = "string"
    if isinstance(data, dict):
        fmt = str(data.get("format", "string"))
        data = data.get("value")
    if fmt == "admin":
        data = _admin_data(index, data)
    elif fmt != "string" or not isinstance(data, str):
        raise HandleSyntaxError(f"value {index}: data must be a string (format 'string') or an admin value")
    elif len(data) > MAX_VALUE_LEN:
        raise HandleSyntaxError(f"value {index}: data is longer than {MAX_VALUE_LEN} characters")
    ttl = obj.get("ttl", 86_400)
    if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl < 0:
        raise HandleSyntaxError(f"value {index}: ttl must be a non-negative integer")
    return HandleValue(index, type_, data, fmt, ttl, timestamp)


def _admin_data(index: int, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict) or not isinstance(data.get("handle"), str):
        raise HandleSyntaxError(f"value {index}: an admin value needs handle, index and permissions")
    try:
        admin_index = int(data.get("index", 0))
    except (TypeError, ValueError) as err:
        raise HandleSyntaxError(f"value {index}: admin index must be an integer") from err
    return {"handle": data["handle"], "index": admin_index, "permissions": str(data.get("permissions", ""))}


def values_from_json(items: Any, timestamp: float) -> tuple[HandleValue, ...]:
    if not isinstance(items, list) or not items or len(items) > MAX_VALUES:
        raise HandleSyntaxError(f"'values' must be a list of 1 to {MAX_VALUES} values")
    values = tuple(value_from_json(v, timestamp) for v in items)
    if len({v.index for v in values}) != len(values):
        raise HandleSyntaxError("value indices must be unique within a handle")
    return values


def with_timestamp(values: tuple[HandleValue, ...], timestamp: float) -> tuple[HandleValue, ...]:
    return tuple(replace(v, timestamp=timestamp) for v in values)


def same_values(a: Handle, b: Handle) -> bool:
    """Whether two handles carry the same values, their timestamps aside."""
    return [replace(v, timestamp=0.0) for v in a.values] == [replace(v, timestamp=0.0) for v in b.values]
