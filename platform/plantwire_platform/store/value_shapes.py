"""Arrays, structures and UInt64 beyond 2^63-1: how every backend keeps them and aggregates them.

docs/wire.md ("Values by OPC UA type") is the contract; this module is its platform half, shared by
the SQLite and PostgreSQL stores so that both give the same answers:

- An array (JSON list) or a structure (JSON object) is one point of one series, kept as JSON
  (SQLite: a BLOB of the JSON bytes, so it can never be mistaken for a String value; PostgreSQL: a
  `jsonb` column) and read back as the same list or object.
- A UInt64 above 2^63-1 travels as its exact decimal string and is kept as that text (a signed
  64-bit column cannot hold it); the series' data type (`UInt64`, from meta) says to read it as
  an integer when aggregating. Reads give it back as the wire has it: the decimal string.
- Aggregates over such series are computed here, in Python, over the points of each bucket:
  `last` and `count` as for any series; `avg`/`min`/`max` element by element (field by field for
  structures) over the points of the same shape as the bucket's newest non-null point; points of
  another shape are left out and counted in `Bucket.skipped`. Integers (UInt64 strings included)
  are aggregated exactly: min/max give the exact integer (a decimal string above 2^63-1), avg is
  the exact sum divided once, rounded to the nearest float.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from itertools import groupby
from typing import Any, Final

from plantwire.wire import MAX_INT, JsonValue
from plantwire_platform.store.model import Agg, Bucket

UINT64: Final = "UInt64"

Shape = tuple[Any, ...] | None
"""The nesting of a value: None for a scalar, ("l", item shapes) for a list, ("d", ...) for an object."""


def is_compound(value: object) -> bool:
    """An array or a structure (kept as JSON)."""
    return type(value) is list or type(value) is dict


def aggregates_in_python(data_type: str | None, json_values: bool) -> bool:
    """Whether a series' buckets are computed here rather than by the database's SQL aggregates."""
    return json_values or data_type == UINT64


def shape(value: JsonValue) -> Shape:
    if isinstance(value, list):
        return ("l", tuple(shape(v) for v in value))
    if isinstance(value, dict):
        return ("d", tuple(sorted((k, shape(v)) for k, v in value.items())))
    return None


def _number(value: object, uint64: bool) -> int | float | None:
    if isinstance(value, int | float):  # booleans too: avg gives the fraction true, min/max a boolean
        return value
    if uint64 and isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _wire_number(value: int | float) -> int | float | str:
    """An integer beyond the signed 64-bit range as its decimal string, as the wire carries it."""
    if type(value) is int and value > MAX_INT:
        return str(value)
    return value


def _combine(items: list[Any], agg: Agg, uint64: bool) -> JsonValue:
    """avg/min/max of values of one shape, element by element."""
    first = items[0]
    if isinstance(first, list):
        return [_combine([it[i] for it in items], agg, uint64) for i in range(len(first))]
    if isinstance(first, dict):
        return {k: _combine([it[k] for it in items], agg, uint64) for k in first}
    nums = [n for n in (_number(x, uint64) for x in items) if n is not None]
    if not nums:
        return None
    if agg == "min":
        return _wire_number(min(nums))
    if agg == "max":
        return _wire_number(max(nums))
    if all(type(n) is not float for n in nums):
        return sum(nums) / len(nums)  # exact integer sum, one correctly rounded division
    return math.fsum(nums) / len(nums)


def aggregate(values: list[JsonValue], agg: Agg, data_type: str | None) -> tuple[JsonValue, int]:
    """(aggregate, points left out for another shape) of one bucket's values, oldest first."""
    if agg == "count":
        return len(values), 0
    if agg == "last":
        return values[-1], 0
    if agg == "first":
        return values[0], 0
    ref = next((v for v in reversed(values) if v is not None), None)
    if ref is None:
        return None, 0
    want = shape(ref)
    same = [v for v in values if v is not None and shape(v) == want]
    skipped = sum(1 for v in values if v is not None) - len(same)
    return _combine(same, agg, data_type == UINT64), skipped


def buckets(
    rows: Iterable[tuple[int, JsonValue]], every: int, agg: Agg, data_type: str | None
) -> list[Bucket]:
    """Buckets of `every` µs from (ts, value) rows in time order; empty buckets are left out."""
    out = []
    grouped: Iterator[tuple[int, Iterator[tuple[int, JsonValue]]]] = groupby(
        rows, key=lambda r: r[0] // every
    )
    for index, group in grouped:
        values = [v for _, v in group]
        value, skipped = aggregate(values, agg, data_type)
        out.append(Bucket(index * every, value, len(values), skipped))
    return out
