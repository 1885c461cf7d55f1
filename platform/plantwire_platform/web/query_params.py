"""Parsing and checking of REST query parameters (times, durations, aggregates, limits).

Kept free of aiohttp so it can be tested on its own. Every rejection raises `ParamError`, whose
message names the parameter, quotes what was given and says what is allowed: the API returns
it to the caller as is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from plantwire.timeunits import US_PER_MS, from_iso, to_iso
from plantwire_platform.store.model import AGGREGATES, Agg

UNITS_US: Final[dict[str, int]] = {
    "ms": US_PER_MS,
    "s": 1_000_000,
    "m": 60_000_000,
    "h": 3_600_000_000,
    "d": 86_400_000_000,
}
_DURATION_RE: Final = re.compile(r"^([0-9]{1,12})(ms|s|m|h|d)$")
_RELATIVE_RE: Final = re.compile(r"^(?:now)?-([0-9]{1,12})(ms|s|m|h|d)$")

DEFAULT_SPAN_US: Final = UNITS_US["h"]
MAX_WINDOW_US: Final = 366 * UNITS_US["d"]
MAX_EVERY_US: Final = MAX_WINDOW_US
MAX_BUCKETS: Final = 100_000
DEFAULT_LIMIT: Final = 10_000
MAX_LIMIT: Final = 100_000
MAX_TIME_US: Final = from_iso("9999-12-31T23:59:59.999999Z")

TIME_FORMS: Final = (
    "an ISO 8601 time such as 2026-11-24T11:20:00Z or 2026-11-24T12:20:00+01:00 (no offset means UTC), "
    "'now', or a time relative to now such as -15m, -2h, -1d (units ms, s, m, h, d)"
)
DURATION_FORMS: Final = "a whole number followed by a unit ms, s, m, h or d, such as 500ms, 10s, 1m, 1h, 1d"


class ParamError(ValueError):
    """A query parameter is missing, malformed or out of range."""

    def __init__(self, param: str, message: str, code: str = "invalid_parameter") -> None:
        super().__init__(message)
        self.param = param
        self.code = code
        self.message = message


def parse_duration(text: str, param: str = "every") -> int:
    """'500ms', '10s', '1m', '1h', '1d' -> µs (at least 1 ms, at most 366 days)."""
    m = _DURATION_RE.match(text)
    if m is None:
        raise ParamError(param, f"{param}={text!r} is not a duration: use {DURATION_FORMS}")
    us = int(m.group(1)) * UNITS_US[m.group(2)]
    if us < US_PER_MS:
        raise ParamError(param, f"{param}={text!r} is too short: the smallest is 1ms")
    if us > MAX_EVERY_US:
        raise ParamError(param, f"{param}={text!r} is too long: the largest is 366d")
    return us


def parse_time(text: str, now: int, param: str) -> int:
    """An absolute (ISO 8601) or relative ('now', '-15m') time -> µs since the epoch."""
    if text == "now":
        return now
    m = _RELATIVE_RE.match(text)
    if m is not None:
        us = now - int(m.group(1)) * UNITS_US[m.group(2)]
    else:
        # fromisoformat accepts the odd form ISO allows (basic format, a space for 'T'); digits
        # must be ASCII, which it checks itself.
        if not text or not text[0].isascii() or not text[0].isdigit():
            raise ParamError(param, f"{param}={text!r} is not a time: use {TIME_FORMS}")
        try:
            us = from_iso(text)
        except (ValueError, OverflowError) as err:
            raise ParamError(param, f"{param}={text!r} is not a time: use {TIME_FORMS}") from err
    if us < 0:
        raise ParamError(param, f"{param}={text!r} is before 1970-01-01T00:00:00Z, the earliest time stored")
    if us > MAX_TIME_US:
        raise ParamError(param, f"{param}={text!r} is after 9999-12-31T23:59:59.999999Z")
    return us


def parse_limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    if not re.fullmatch(r"[0-9]{1,7}", text) or not 1 <= int(text) <= MAX_LIMIT:
        raise ParamError("limit", f"limit={text!r} is not allowed: use a whole number from 1 to {MAX_LIMIT}")
    return int(text)


def parse_agg(text: str) -> Agg:
    for agg in AGGREGATES:
        if text == agg:
            return agg
    raise ParamError("agg", f"agg={text!r} is not an aggregate: use one of {', '.join(AGGREGATES)}")


def bucket_count(start: int, end: int, every: int) -> int:
    """How many `every`-aligned buckets [start, end) touches."""
    return (end - 1) // every - start // every + 1


def check_keys(query: Mapping[str, str], allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> None:
    """Reject unknown parameters (typos would otherwise be ignored silently) and missing ones.

    A multidict's `keys()` lists a repeated key once, so keys are read from `items()`.
    """
    keys = [key for key, _ in query.items()]
    for key in keys:
        if key not in allowed:
            raise ParamError(
                key,
                f"unknown query parameter {key!r}: this endpoint accepts {', '.join(allowed)}",
                "unknown_parameter",
            )
        if keys.count(key) > 1:
            raise ParamError(key, f"query parameter {key!r} is given more than once", "repeated_parameter")
    for key in required:
        if not query.get(key):
            raise ParamError(
                key, f"query parameter {key!r} is required and must not be empty", "missing_parameter"
            )


@dataclass(frozen=True, slots=True)
class SeriesQuery:
    device: str
    tag: str
    start: int
    end: int
    limit: int
    every: int | None
    every_text: str | None
    agg: Agg | None


SERIES_PARAMS: Final = ("device", "tag", "start", "end", "limit", "every", "agg")


def parse_series_query(query: Mapping[str, str], now: int) -> SeriesQuery:
    """Check every parameter of GET /api/series and resolve times against `now` (µs)."""
    check_keys(query, SERIES_PARAMS, required=("device", "tag"))
    end_text = query.get("end")
    end = now if end_text is None else parse_time(end_text, now, "end")
    start_text = query.get("start")
    start = max(0, end - DEFAULT_SPAN_US) if start_text is None else parse_time(start_text, now, "start")
    if start >= end:
        raise ParamError(
            "start",
            f"start={start_text or 'end-1h'!r} ({to_iso(start)}) must be before "
            f"end={end_text or 'now'!r} ({to_iso(end)})",
            "invalid_window",
        )
    if end - start > MAX_WINDOW_US:
        raise ParamError(
            "start", "the window from start to end is longer than the maximum of 366d", "invalid_window"
        )
    limit = parse_limit(query.get("limit"))
    every_text = query.get("every")
    agg_text = query.get("agg")
    if every_text is None:
        if agg_text is not None:
            raise ParamError("agg", "agg needs every: give every=<duration> (e.g. every=1m) to aggregate")
        return SeriesQuery(query["device"], query["tag"], start, end, limit, None, None, None)
    if "limit" in query:
        raise ParamError("limit", "limit applies to raw points only; with every the buckets are not limited")
    every = parse_duration(every_text)
    n = bucket_count(start, end, every)
    if n > MAX_BUCKETS:
        raise ParamError(
            "every",
            f"every={every_text!r} makes {n} buckets between start and end; at most {MAX_BUCKETS} are "
            "allowed: choose a longer every or a shorter window",
            "too_many_buckets",
        )
    agg = parse_agg(agg_text) if agg_text is not None else "avg"
    return SeriesQuery(query["device"], query["tag"], start, end, limit, every, every_text, agg)
