"""What the InfluxDB backend writes and asks: line protocol for points, Flux for the store's queries.

The data model (one point per sampled value)::

    plantwire,device=<id>,gateway=<id>,tag=<name> status=<code>i[,value=<float>][,value_bool=<b>]
        [,value_str="<text>"] <µs>

- `value` is a float for every number *and* for booleans (0/1): one numeric field per series means
  Grafana graphs any tag, avg/min/max run server-side with the store's semantics (booleans count as
  0/1), and no series ever hits InfluxDB's field type conflict (a field's type is fixed once written;
  an OPC UA Int32 that the gateway sends as 5 and later as 5.5 would be rejected if `value` were an
  integer). Integers above 2**53 lose precision; whole numbers of integer-typed tags read back as int.
- `value_bool` marks booleans so they read back as booleans; `value_str` holds text, and arrays and
  structures as their compact JSON text (they read back as that text: this backend keeps the
  earlier, scalar-only behaviour; SQLite and PostgreSQL keep them as JSON, docs/wire.md).
- `status` (the OPC UA status code) is on every point, so counting `status` counts points, and a
  null value is a point with `status` alone.
- Identity is (measurement, tag set, timestamp): a redelivered message overwrites its own points with
  the same values, which is the store's idempotency for free.
"""

from __future__ import annotations

import math
from typing import Final

import orjson

from plantwire.wire import JsonValue

MEASUREMENT: Final = "plantwire"
TAG_DEVICE: Final = "device"
TAG_GATEWAY: Final = "gateway"
TAG_TAG: Final = "tag"
FIELD_VALUE: Final = "value"
FIELD_BOOL: Final = "value_bool"
FIELD_STR: Final = "value_str"
FIELD_STATUS: Final = "status"
FIELDS: Final = (FIELD_VALUE, FIELD_BOOL, FIELD_STR, FIELD_STATUS)

MAX_TIME_US: Final = 9_223_372_036_854_775
"""InfluxDB keeps int64 nanoseconds: nothing after 2262-04-11T23:47:16.854775Z can be stored."""

FLUX_AGG: Final = {"avg": "mean", "min": "min", "max": "max"}

_ESCAPE_TAG: Final = str.maketrans(
    {",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"}
)
_ESCAPE_FIELD_STR: Final = str.maketrans({'"': r"\"", "\\": "\\\\"})


def escape_tag(text: str) -> str:
    escaped = text.translate(_ESCAPE_TAG)
    # A trailing backslash would escape the separator after it (influxdb-client does the same).
    return escaped + " " if escaped.endswith("\\") else escaped


def fields(value: JsonValue, status: int) -> str:
    if isinstance(value, bool):
        return f"status={status}i,value={int(value)},value_bool={'true' if value else 'false'}"
    if isinstance(value, int | float):
        number = float(value)
        if math.isfinite(number):
            return f"status={status}i,value={number!r}"
        return f"status={status}i"
    if isinstance(value, list | dict):  # arrays and structures: their compact JSON text (docs/wire.md)
        value = orjson.dumps(value).decode()
    if isinstance(value, str):
        return f'status={status}i,value_str="{value.translate(_ESCAPE_FIELD_STR)}"'
    return f"status={status}i"


def series_key(device: str, gateway: str, tag: str) -> str:
    """Measurement and tag set, tags sorted by key as InfluxDB recommends."""
    return f"{MEASUREMENT},device={escape_tag(device)},gateway={escape_tag(gateway)},tag={escape_tag(tag)}"


def line(key: str, ts: int, value: JsonValue, status: int) -> str:
    return f"{key} {fields(value, status)} {ts}"


# --- Flux -----------------------------------------------------------------------------------------


def flux_string(text: str) -> str:
    """A Flux string literal (Flux interpolates `${...}`, so `$` before `{` is escaped too)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${")
    return f'"{escaped}"'


def _range(start: int, end: int) -> str:
    return f"range(start: time(v: {start * 1000}), stop: time(v: {end * 1000}))"


def clamp_range(start: int, end: int) -> tuple[int, int] | None:
    """The part of [start, end) InfluxDB can hold, or None when nothing is left."""
    start, end = max(start, 0), min(end, MAX_TIME_US)
    return (start, end) if start < end else None


def _source(bucket: str, start: int, end: int, device: str, tag: str | None) -> str:
    where = f"r._measurement == {flux_string(MEASUREMENT)} and r.device == {flux_string(device)}"
    if tag is not None:
        where += f" and r.tag == {flux_string(tag)}"
    return f"from(bucket: {flux_string(bucket)})\n  |> {_range(start, end)}\n  |> filter(fn: (r) => {where})"


def series_flux(bucket: str, device: str, tag: str, start: int, end: int, limit: int) -> str:
    return (
        _source(bucket, start, end, device, tag)
        + '\n  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")'
        + "\n  |> group()"
        + '\n  |> sort(columns: ["_time"])'
        + f"\n  |> limit(n: {limit})"
        + f'\n  |> keep(columns: ["_time", "{FIELD_VALUE}", "{FIELD_BOOL}", "{FIELD_STR}", "{FIELD_STATUS}"])'
    )


def latest_flux(bucket: str, device: str) -> str:
    """The newest value of every field of every tag; the caller keeps, per tag, the newest time."""
    return (
        _source(bucket, 0, MAX_TIME_US, device, None)
        + "\n  |> last()"
        + '\n  |> keep(columns: ["_time", "_field", "_value", "tag"])'
    )


def buckets_flux(bucket: str, device: str, tag: str, start: int, end: int, every: int, agg: str) -> str:
    """Two results: `count` (points per window) and `agg` (the aggregate per window).

    Windows are aligned to the epoch; InfluxDB clips the first window's `_start` to the range start,
    so the caller aligns the returned times again.
    """
    window = f'every: {every}us, createEmpty: false, timeSrc: "_start"'
    head = "data = " + _source(bucket, start, end, device, tag) + '\n  |> group(columns: ["_field"])'
    count = (
        f'\ndata\n  |> filter(fn: (r) => r._field == "{FIELD_STATUS}")'
        f"\n  |> aggregateWindow({window}, fn: count)"
        '\n  |> keep(columns: ["_time", "_value"])'
        '\n  |> yield(name: "count")'
    )
    if agg in ("first", "last"):
        value = (
            '\ndata\n  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")'
            '\n  |> sort(columns: ["_time"])'
            f'\n  |> aggregateWindow({window}, fn: {agg}, column: "{FIELD_STATUS}")'
            f'\n  |> keep(columns: ["_time", "{FIELD_VALUE}", "{FIELD_BOOL}", "{FIELD_STR}"])'
            '\n  |> yield(name: "agg")'
        )
    elif agg == "count":
        value = ""
    else:
        value = (
            f'\ndata\n  |> filter(fn: (r) => r._field == "{FIELD_VALUE}")'
            f"\n  |> aggregateWindow({window}, fn: {FLUX_AGG[agg]})"
            '\n  |> keep(columns: ["_time", "_value"])'
            '\n  |> yield(name: "agg")'
        )
    return head + count + value
