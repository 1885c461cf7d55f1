"""The one owner of Plantwire's time unit: integers of µs since the epoch, UTC (the wire's unit).

Conversions to and from `datetime` and ISO 8601 text live here and nowhere else. The API always
writes UTC with six fractional digits and a ``Z`` so that every timestamp has the same shape,
sorts as text and round-trips to the exact stored microsecond.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
US_PER_MS: Final = 1_000
US_PER_S: Final = 1_000_000


def to_iso(us: int) -> str:
    """Format µs since the epoch as e.g. ``2026-11-24T11:20:00.123456Z``."""
    # timedelta arithmetic is exact for microseconds (float timestamps are not).
    return to_datetime(us).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def to_iso_opt(us: int | None) -> str | None:
    return None if us is None else to_iso(us)


def to_datetime(us: int) -> datetime:
    """The aware UTC datetime of µs since the epoch (exact)."""
    return EPOCH + timedelta(microseconds=us)


def from_datetime(dt: datetime) -> int:
    """µs since the epoch of an aware datetime; a naive one is taken as UTC."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - EPOCH
    return (delta.days * 86_400 + delta.seconds) * US_PER_S + delta.microseconds


def from_iso(text: str) -> int:
    """Parse ISO 8601 (``Z``, an offset, or naive meaning UTC). Raises ValueError."""
    return from_datetime(datetime.fromisoformat(text))
