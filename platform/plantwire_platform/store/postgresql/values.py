"""How a point's value is kept in PostgreSQL columns, in one place so that new value shapes change it once.

Like the SQLite backend, a value keeps the type it came with: four nullable columns, at most one
set (a NULL costs one bit of the row's null bitmap):

- `fval` double precision: floats, and integers beyond 64 bits (SQLite keeps those as floats too);
- `ival` bigint: integers, and booleans as 0/1 (read back as booleans when the tag's type says so);
- `sval` text: strings (a UInt64 above 2^63-1 is its exact decimal string, as on the wire);
- `jval` jsonb: arrays and structures, read back as lists and objects (store/value_shapes.py).

PostgreSQL text cannot hold NUL characters; one is replaced by U+FFFD, so that a string nobody
can store never blocks the ingest (a point is never refused for it). JSON keeps its `\\u0000`.
"""

from __future__ import annotations

from typing import Final

import orjson

from plantwire.wire import JsonValue

BOOLEAN: Final = "Boolean"
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1

Columns = tuple[float | None, int | None, str | None, str | None]
VALUE_COLUMNS: Final = ("fval", "ival", "sval", "jval")
NUMERIC_SQL: Final = "coalesce(ival::float8, fval)"
"""The numeric reading of a point (booleans as 0/1, text as NULL), for avg/min/max."""


def to_columns(value: JsonValue) -> Columns:
    """(fval, ival, sval, jval) of a value."""
    if value is None:
        return (None, None, None, None)
    if isinstance(value, bool):
        return (None, int(value), None, None)
    if isinstance(value, int):
        if _INT64_MIN <= value <= _INT64_MAX:
            return (None, value, None, None)
        return (float(value), None, None, None)
    if isinstance(value, float):
        return (value, None, None, None)
    if isinstance(value, list | dict):
        text = orjson.dumps(value).decode()
        if "\\u0000" in text:  # jsonb refuses NUL in strings too; replaced as in text columns
            text = orjson.dumps(_without_nul(value)).decode()
        return (None, None, None, text)
    text = str(value)
    return (None, None, text.replace("\x00", "\ufffd") if "\x00" in text else text, None)


def _without_nul(value: JsonValue) -> JsonValue:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    if isinstance(value, dict):
        return {k.replace("\x00", "\ufffd"): _without_nul(v) for k, v in value.items()}
    return value


def from_columns(
    fval: float | None, ival: int | None, sval: str | None, jval: str | None, data_type: str | None
) -> JsonValue:
    """The value of the columns; a tag of type Boolean reads back as booleans."""
    if ival is not None:
        return bool(ival) if data_type == BOOLEAN else ival
    if fval is not None:
        return bool(fval) if data_type == BOOLEAN else fval
    if jval is not None:
        return orjson.loads(jval)  # jsonb holds what to_columns wrote: a list or object
    return sval
