"""How a point's value is kept in PostgreSQL columns, in one place so that new value shapes change it once.

Like the SQLite backend, a value keeps the type it came with: three nullable columns, at most one
set (a NULL costs one bit of the row's null bitmap):

- `fval` double precision: floats, and integers beyond 64 bits (SQLite keeps those as floats too);
- `ival` bigint: integers, and booleans as 0/1 (read back as booleans when the tag's type says so);
- `sval` text: strings, and arrays and structures as their compact JSON text (as SQLite keeps them).

PostgreSQL text cannot hold NUL characters; one is replaced by U+FFFD, so that a string nobody
can store never blocks the ingest (a point is never refused for it).
"""

from __future__ import annotations

from typing import Final

import orjson

from plantwire.wire import JsonValue, Value

BOOLEAN: Final = "Boolean"
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1

Columns = tuple[float | None, int | None, str | None]
VALUE_COLUMNS: Final = ("fval", "ival", "sval")
NUMERIC_SQL: Final = "coalesce(ival::float8, fval)"
"""The numeric reading of a point (booleans as 0/1, text as NULL), for avg/min/max."""


def to_columns(value: JsonValue) -> Columns:
    """(fval, ival, sval) of a value."""
    if value is None:
        return (None, None, None)
    if isinstance(value, bool):
        return (None, int(value), None)
    if isinstance(value, int):
        if _INT64_MIN <= value <= _INT64_MAX:
            return (None, value, None)
        return (float(value), None, None)
    if isinstance(value, float):
        return (value, None, None)
    text = orjson.dumps(value).decode() if isinstance(value, list | dict) else str(value)
    return (None, None, text.replace("\x00", "\ufffd") if "\x00" in text else text)


def from_columns(fval: float | None, ival: int | None, sval: str | None, data_type: str | None) -> Value:
    """The value of (fval, ival, sval); a tag of type Boolean reads back as booleans."""
    if ival is not None:
        return bool(ival) if data_type == BOOLEAN else ival
    if fval is not None:
        return bool(fval) if data_type == BOOLEAN else fval
    return sval
