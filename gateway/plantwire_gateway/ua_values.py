"""OPC UA values (as asyncua decodes them) as wire values; docs/wire.md has the table.

`to_wire_value` runs once per notification: the common scalars (Double, Float, Boolean, integers
in the signed 64-bit range, String) are answered by the first few type checks, exactly as cheap
as before; every other shape goes through `_convert_other`.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from asyncua import ua

from plantwire import wire

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE: Final = datetime(1970, 1, 1)
_ONE_US: Final = timedelta(microseconds=1)
MAX_BYTES: Final = wire.MAX_STRING_VALUE // 4 * 3
"""A ByteString longer than this is cut to it, so its base64 text fits a wire string (4,096)."""


def to_us(dt: datetime) -> int:
    """A datetime as wire time (µs since the epoch, UTC); naive datetimes are taken as UTC."""
    return (dt - (_EPOCH if dt.tzinfo is not None else _EPOCH_NAIVE)) // _ONE_US


def to_wire_value(value: Any) -> wire.JsonValue:
    """A JSON-able value: the hot scalars first, everything else by `_convert_other`."""
    kind = type(value)
    if kind is float or kind is bool or value is None:
        return value
    if kind is int:
        if -wire.MAX_INT - 1 <= value <= wire.MAX_INT:
            return value
        return str(value)  # UInt64 above 2^63-1: its exact decimal string
    if kind is str:
        return value[: wire.MAX_STRING_VALUE]
    return _convert_other(value, 1)


def _convert_other(value: Any, depth: int) -> wire.JsonValue:
    if isinstance(value, list | tuple):
        if depth >= wire.MAX_NESTING:
            return None
        return [_nested(v, depth + 1) for v in value]
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value[:MAX_BYTES])).decode("ascii")
    if isinstance(value, datetime):
        return to_us(value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, enum.Enum) and isinstance(value.value, int):
        return int(value.value)
    if isinstance(value, int):
        number = int(value)
        return number if -wire.MAX_INT - 1 <= number <= wire.MAX_INT else str(number)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)[: wire.MAX_STRING_VALUE]
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, ua.LocalizedText):
        return value.Text
    if isinstance(value, ua.QualifiedName):
        return f"{value.NamespaceIndex}:{value.Name}" if value.NamespaceIndex else value.Name
    if isinstance(value, ua.NodeId):
        return value.to_string()
    if isinstance(value, ua.StatusCode):
        return value.value
    if isinstance(value, ua.Variant):
        return _nested(value.Value, depth)
    if isinstance(value, ua.ExtensionObject):  # a structure whose definition the server did not publish
        body = base64.b64encode(value.Body[:MAX_BYTES]).decode("ascii") if value.Body else None
        return {"type_id": value.TypeId.to_string(), "body": body}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if depth >= wire.MAX_NESTING:
            return None
        return {f.name: _nested(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value)}
    return str(value)[: wire.MAX_STRING_VALUE]


def _nested(value: Any, depth: int) -> wire.JsonValue:
    """An element of an array or a field of a structure (UInt64 the same way, as a decimal string)."""
    kind = type(value)
    if kind is float or kind is bool or value is None:
        return value
    if kind is int:
        return value if -wire.MAX_INT - 1 <= value <= wire.MAX_INT else str(value)
    if kind is str:
        return value[: wire.MAX_STRING_VALUE]
    return _convert_other(value, depth)
