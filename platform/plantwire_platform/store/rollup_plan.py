"""Rollups: per series, per 1-minute and 1-hour bucket, what the bucketed queries need.

Each rollup row holds, for the points of one series whose source time falls in one bucket:
`count` (all points), `n` (numeric points: integers, floats, booleans as 0/1), `min`, `max` and
`sum` of the numeric ones, and the `first` and `last` point (time and value, whatever the value).
Backends maintain them for the points newly stored only (a redelivered point changes nothing:
the rollups follow the raw dedup), off the commit path: a note per new point is written in the
transaction that stores it, and merged into the rollups later (store.sqlite_rollups,
store.postgresql.rollups); queries fold in the notes still pending.

The query planner here, shared by the backends, answers `buckets(every, agg)` from them:

- only tiers whose width divides `every` qualify (every bucket of `every` is then a whole number
  of tier buckets), the coarsest first;
- the window [start, end) is cut into the tier-aligned middle, read from the tier, and the two
  unaligned edges, read from the next finer tier and finally from raw points (`segments`), so
  partial ranges and edge buckets give the same answer as a raw scan;
- a series that ever stored a text value (strings, arrays, structures as their JSON text)
  answers `first` and `last` from raw points: its rollups keep only numbers and NULL exactly.
  count, avg, min and max skip text values in raw scans too, so rollups answer them for any series;
- times before 1970 are not rolled up (a query starting before 1970 reads raw points).

Results are those of the raw scan: counts, min, max, first and last exactly; avg is sum/n, equal to the
raw avg up to the rounding of summing floats in a different order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from plantwire.wire import JsonValue
from plantwire_platform.store.model import Agg

MINUTE_US: Final = 60_000_000
HOUR_US: Final = 3_600_000_000


@dataclass(frozen=True, slots=True)
class Tier:
    name: str
    """'1m' or '1h' (settings and docs use these names)."""
    width: int
    """Bucket width in µs."""
    table: str


TIERS: Final[tuple[Tier, ...]] = (Tier("1h", HOUR_US, "rollup_1h"), Tier("1m", MINUTE_US, "rollup_1m"))
"""Coarsest first."""

Segment = tuple[Tier | None, int, int]
"""(tier, start, end): read [start, end) from the tier, or from raw points when the tier is None."""

RollupRow = tuple[int, int, int, object, object, float | None, int, JsonValue, int, JsonValue]
"""(bucket, count, n, min, max, sum, first_ts, first_value, last_ts, last_value), as read by backends."""
EDGES: Final = ("first", "last")
"""The aggregates that are a point's value rather than a figure of the numbers."""


def _split(start: int, end: int, tiers: tuple[Tier, ...]) -> list[Segment]:
    if start >= end:
        return []
    if not tiers:
        return [(None, start, end)]
    tier, finer = tiers[0], tiers[1:]
    lo = -(-start // tier.width) * tier.width
    hi = end // tier.width * tier.width
    if lo >= hi:
        return _split(start, end, finer)
    return [*_split(start, lo, finer), (tier, lo, hi), *_split(hi, end, finer)]


def segments(start: int, end: int, every: int, agg: Agg, text_seen: bool) -> list[Segment] | None:
    """How to read the window from rollups, or None when they cannot help (read raw points)."""
    if start < 0 or every <= 0 or (agg in EDGES and text_seen):
        return None
    usable = tuple(t for t in TIERS if every % t.width == 0)
    if not usable:
        return None
    out = _split(start, end, usable)
    return out if any(tier is not None for tier, _, _ in out) else None


class Partial:
    """The aggregate state of one output bucket, fed raw points and rollup rows in any order."""

    __slots__ = ("count", "first_ts", "first_value", "last_ts", "last_value", "max", "min", "n", "sum")

    def __init__(self) -> None:
        self.count = 0
        self.n = 0
        self.min: object = None
        self.max: object = None
        self.sum = 0.0
        self.first_ts: int | None = None
        self.first_value: JsonValue = None
        self.last_ts = -1
        self.last_value: JsonValue = None

    def add_point(self, ts: int, value: JsonValue) -> None:
        self.count += 1
        if self.first_ts is None or ts < self.first_ts:
            self.first_ts, self.first_value = ts, value
        if ts > self.last_ts:
            self.last_ts, self.last_value = ts, value
        if isinstance(value, int | float):  # bool is an int: 0/1, as in raw scans
            self._numbers(1, value, value, float(value))

    def add_rollup(self, row: RollupRow) -> None:
        _, count, n, mn, mx, total, first_ts, first_value, last_ts, last_value = row
        self.count += count
        if self.first_ts is None or first_ts < self.first_ts:
            self.first_ts, self.first_value = first_ts, first_value
        if last_ts > self.last_ts:
            self.last_ts, self.last_value = last_ts, last_value
        if n:
            self._numbers(n, mn, mx, total or 0.0)

    def _numbers(self, n: int, mn: object, mx: object, total: float) -> None:
        self.n += n
        self.sum += total
        if self.min is None or mn < self.min:  # type: ignore[operator]  # numbers only
            self.min = mn
        if self.max is None or mx > self.max:  # type: ignore[operator]  # numbers only
            self.max = mx

    def value(self, agg: Agg) -> JsonValue:
        if agg == "count":
            return self.count
        if agg == "last":
            return self.last_value
        if agg == "first":
            return self.first_value
        if not self.n:
            return None
        if agg == "avg":
            return self.sum / self.n
        return self.min if agg == "min" else self.max  # type: ignore[return-value]  # a number


def fold(
    every: int,
    agg: Agg,
    points: Iterable[tuple[int, JsonValue]],
    rows: Iterable[RollupRow],
) -> list[tuple[int, JsonValue, int]]:
    """(bucket start, aggregate, count) per non-empty bucket of `every`, oldest first."""
    partials: dict[int, Partial] = {}
    for ts, value in points:
        b = ts // every * every
        p = partials.get(b)
        if p is None:
            p = partials[b] = Partial()
        p.add_point(ts, value)
    for row in rows:
        b = row[0] // every * every
        p = partials.get(b)
        if p is None:
            p = partials[b] = Partial()
        p.add_rollup(row)
    return [(b, partials[b].value(agg), partials[b].count) for b in sorted(partials) if partials[b].count]
