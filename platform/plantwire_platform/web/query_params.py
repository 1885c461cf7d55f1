"""Parsing and checking of REST query and path parameters (times, durations, aggregates, limits).

Kept free of aiohttp so it can be tested on its own. Each endpoint's parameters are a pydantic
model (`web.api_models`; the same models make the OpenAPI document); `validate_params` checks a
query or the path's parts against one. Every rejection raises `ParamError`, whose message names the
parameter, quotes what was given and says what is allowed: the API returns it to the caller as is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, Field, ValidationError
from pydantic_core import ErrorDetails

from plantwire.timeunits import US_PER_MS, from_iso, to_iso
from plantwire_platform.store.model import AGGREGATES, Agg
from plantwire_platform.web.api_models.common import Strict, Text

UNITS_US: Final[dict[str, int]] = {
    "ms": US_PER_MS,
    "s": 1_000_000,
    "m": 60_000_000,
    "h": 3_600_000_000,
    "d": 86_400_000_000,
}
DURATION_PATTERN: Final = r"^[0-9]{1,12}(ms|s|m|h|d)$"
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


M = TypeVar("M", bound=BaseModel)
MAX_ECHO: Final = 80
"""At most this much of a rejected value is quoted back."""


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


_TIME_DOC: Final = (
    "ISO 8601 (e.g. 2026-11-24T11:20:00Z or with an offset; no offset means UTC), 'now', or relative "
    "to now: -15m, -2h, -1d (units ms, s, m, h, d; 'now-15m' also works)."
)
TimeText = Annotated[str, Field(min_length=1, max_length=64)]


def _when_text(parse: Any) -> BeforeValidator:
    """Run one of query_params' parsers on a query text first: its message says what is allowed."""
    return BeforeValidator(lambda v: parse(v) if isinstance(v, str) else v)


def _every_text(v: Any) -> Any:
    if isinstance(v, str):
        parse_duration(v)
    return v


class SeriesParams(Strict):
    device: Text = Field(description="Device id (see /api/devices).", examples=["press-1"])
    tag: Text = Field(examples=["temperature"])
    start: TimeText | None = Field(
        None, description=f"Window start (inclusive); default end - 1h. {_TIME_DOC}", examples=["-15m"]
    )
    end: TimeText | None = Field(
        None,
        description="Window end (exclusive); default now. Must be after start, and the window at most "
        f"366d. {_TIME_DOC}",
        examples=["now"],
    )
    limit: Annotated[int, _when_text(parse_limit)] = Field(
        DEFAULT_LIMIT,
        ge=1,
        le=MAX_LIMIT,
        description="Most raw points to return (truncated=true when more exist). Not allowed with "
        "every (400).",
    )
    every: Annotated[str, Field(pattern=DURATION_PATTERN), BeforeValidator(_every_text)] | None = Field(
        None,
        description="Bucket width: a whole number and a unit ms, s, m, h or d; at least 1ms, at most "
        f"366d, and at most {MAX_BUCKETS} buckets in the window. Not allowed with limit (400).",
        examples=["1m"],
    )
    agg: Annotated[Agg, _when_text(parse_agg)] | None = Field(
        None,
        description="Aggregate per bucket (only with every; default avg). avg/min/max use numeric "
        "values (booleans as 0/1); first (the oldest point's value), last and count use all.",
        examples=["max"],
    )


def parse_series_query(query: Mapping[str, str], now: int) -> SeriesQuery:
    """Check every parameter of GET /api/series and resolve times against `now` (µs)."""
    p = validate_params(query, SeriesParams)
    end = now if p.end is None else parse_time(p.end, now, "end")
    start = max(0, end - DEFAULT_SPAN_US) if p.start is None else parse_time(p.start, now, "start")
    if start >= end:
        raise ParamError(
            "start",
            f"start={p.start or 'end-1h'!r} ({to_iso(start)}) must be before "
            f"end={p.end or 'now'!r} ({to_iso(end)})",
            "invalid_window",
        )
    if end - start > MAX_WINDOW_US:
        raise ParamError(
            "start", "the window from start to end is longer than the maximum of 366d", "invalid_window"
        )
    if p.every is None:
        if p.agg is not None:
            raise ParamError("agg", "agg needs every: give every=<duration> (e.g. every=1m) to aggregate")
        return SeriesQuery(p.device, p.tag, start, end, p.limit, None, None, None)
    if "limit" in p.model_fields_set:
        raise ParamError("limit", "limit applies to raw points only; with every the buckets are not limited")
    every = parse_duration(p.every)
    n = bucket_count(start, end, every)
    if n > MAX_BUCKETS:
        raise ParamError(
            "every",
            f"every={p.every!r} makes {n} buckets between start and end; at most {MAX_BUCKETS} are "
            "allowed: choose a longer every or a shorter window",
            "too_many_buckets",
        )
    return SeriesQuery(p.device, p.tag, start, end, p.limit, every, p.every, p.agg or "avg")


# --- parameters checked against a model -----------------------------------------------------------


def _echo(value: object) -> str:
    text = repr(value)
    return text if len(text) <= MAX_ECHO else text[: MAX_ECHO - 3] + "..."


def _param_error(err: ErrorDetails, model: type[BaseModel], where: Literal["query", "path"]) -> ParamError:
    name = str(err["loc"][0]) if err["loc"] else "?"
    allowed = list(model.model_fields)
    cause = err.get("ctx", {}).get("error")
    if isinstance(cause, ParamError):  # one of the parsers above: its own words
        return cause
    kind = "query parameter" if where == "query" else "path part"
    if err["type"] == "extra_forbidden":
        accepts = ", ".join(allowed) if allowed else "no query parameters"
        return ParamError(
            name, f"unknown {kind} {name!r}: this endpoint accepts {accepts}", "unknown_parameter"
        )
    field = model.model_fields.get(name)
    if err["type"] == "missing" or (err.get("input") == "" and field is not None and field.is_required()):
        return ParamError(name, f"{kind} {name!r} is required and must not be empty", "missing_parameter")
    if err.get("input") == "":
        return ParamError(name, f"{kind} {name!r} must not be empty: leave it out instead")
    message = str(cause) if cause is not None else err["msg"]
    return ParamError(name, f"{name}={_echo(err.get('input'))} is not allowed: {message}")


def validate_params(
    params: Mapping[str, str], model: type[M], where: Literal["query", "path"] = "query"
) -> M:
    """`params` (a query's multidict or a route's match info) checked against `model`.

    A multidict's `keys()` lists a repeated key once, so keys are read from `items()`; a repeated
    parameter is refused (which one would count is a guess).
    """
    seen: dict[str, str] = {}
    for key, value in params.items():
        if key in seen:
            raise ParamError(key, f"query parameter {key!r} is given more than once", "repeated_parameter")
        seen[key] = value
    try:
        return model.model_validate(seen)
    except ValidationError as err:
        raise _param_error(err.errors()[0], model, where) from None
