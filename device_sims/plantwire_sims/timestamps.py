"""Wire time (µs since the Unix epoch) and the aware UTC datetimes asyncua encodes, exact to the µs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def us_to_datetime(ts_us: int) -> datetime:
    return EPOCH + timedelta(microseconds=ts_us)


def datetime_to_us(dt: datetime) -> int:
    if dt.tzinfo is None:  # asyncua treats naive datetimes as UTC
        dt = dt.replace(tzinfo=UTC)
    return (dt - EPOCH) // timedelta(microseconds=1)
