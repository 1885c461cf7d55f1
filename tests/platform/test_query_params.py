"""Query parameter parsing: times (absolute and relative), durations, limits, aggregates, windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import MultiDict

from plantwire.timeunits import from_iso, to_iso
from plantwire_platform.web.api_models.apps import AlarmPath
from plantwire_platform.web.api_models.commands import AuditQuery
from plantwire_platform.web.query_params import (
    MAX_BUCKETS,
    ParamError,
    bucket_count,
    parse_agg,
    parse_duration,
    parse_limit,
    parse_series_query,
    parse_time,
    validate_params,
)

NOW = 1_795_000_000_123_456  # 2026-11-19T..., with microseconds
MIN = 60_000_000
HOUR = 60 * MIN
DAY = 24 * HOUR


def test_to_iso_has_microseconds_and_z() -> None:
    assert to_iso(0) == "1970-01-01T00:00:00.000000Z"
    assert to_iso(1_000_000 * 86_400 + 1) == "1970-01-02T00:00:00.000001Z"
    # 2026-11-24 by hand: 56 years of 365 days, 14 leap days (1972..2024), 327 days of 2026 before it.
    days = 56 * 365 + 14 + (31 + 28 + 31 + 30 + 31 + 30 + 31 + 31 + 30 + 31) + 23
    us = ((days * 24 + 11) * 60 + 20) * 60 * 1_000_000 + 123_456
    assert to_iso(us) == "2026-11-24T11:20:00.123456Z"
    assert from_iso("2026-11-24T11:20:00.123456Z") == us


@given(st.integers(min_value=0, max_value=from_iso("9999-12-31T23:59:59.999999Z")))
def test_iso_round_trip_is_exact(us: int) -> None:
    assert from_iso(to_iso(us)) == us


@given(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9998, 1, 1)))
def test_from_iso_agrees_with_datetime(dt: datetime) -> None:
    aware = dt.replace(tzinfo=UTC)
    expected = (aware - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    assert from_iso(aware.isoformat()) == expected
    assert from_iso(dt.isoformat()) == expected  # naive means UTC


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("-15m", NOW - 15 * MIN),
        ("-2h", NOW - 2 * HOUR),
        ("-1d", NOW - DAY),
        ("-500ms", NOW - 500_000),
        ("-30s", NOW - 30_000_000),
        ("now-15m", NOW - 15 * MIN),
        ("-0s", NOW),
    ],
)
def test_relative_times(text: str, expected: int) -> None:
    assert parse_time(text, NOW, "start") == expected


def test_absolute_times_with_offset_z_and_naive_agree() -> None:
    z = parse_time("2026-11-24T11:20:00Z", NOW, "start")
    assert parse_time("2026-11-24T12:20:00+01:00", NOW, "start") == z
    assert parse_time("2026-11-24T06:20:00-05:00", NOW, "start") == z
    assert parse_time("2026-11-24T11:20:00", NOW, "start") == z
    assert parse_time("2026-11-24T11:20:00.5Z", NOW, "start") == z + 500_000


@pytest.mark.parametrize(
    "text",
    ["", "yesterday", "15m", "+15m", "-15x", "-m", "2026-13-01", "2026-11-24T25:00Z", "-1.5h", "nowish"],
)
def test_bad_times_name_the_parameter_and_the_forms(text: str) -> None:
    with pytest.raises(ParamError) as info:
        parse_time(text, NOW, "end")
    assert info.value.param == "end"
    assert info.value.message.startswith(f"end={text!r}")
    assert "ISO 8601" in info.value.message and "-15m" in info.value.message


def test_times_before_the_epoch_are_rejected() -> None:
    with pytest.raises(ParamError, match="before 1970"):
        parse_time("1969-12-31T23:59:59Z", NOW, "start")
    with pytest.raises(ParamError, match="before 1970"):
        parse_time("-999999999999d", NOW, "start")
    with pytest.raises(ParamError, match="before 1970"):
        parse_time("0001-01-01T00:00:00+01:00", NOW, "start")


@pytest.mark.parametrize(
    ("text", "us"),
    [("1ms", 1_000), ("500ms", 500_000), ("10s", 10_000_000), ("1m", MIN), ("1h", HOUR), ("1d", DAY)],
)
def test_durations(text: str, us: int) -> None:
    assert parse_duration(text) == us


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("0ms", "too short"), ("0s", "too short"), ("367d", "too long"), ("1w", "not a duration"), ("", "not")],
)
def test_bad_durations(text: str, fragment: str) -> None:
    with pytest.raises(ParamError, match=fragment) as info:
        parse_duration(text)
    assert info.value.param == "every"


def test_limit_and_agg() -> None:
    assert parse_limit(None) == 10_000
    assert parse_limit("1") == 1
    assert parse_limit("100000") == 100_000
    for bad in ("0", "100001", "-1", "ten", "1e3", ""):
        with pytest.raises(ParamError, match="from 1 to 100000"):
            parse_limit(bad)
    assert parse_agg("max") == "max"
    with pytest.raises(ParamError, match="avg, min, max, last, count"):
        parse_agg("mean")


def test_bucket_count_counts_aligned_buckets() -> None:
    assert bucket_count(0, 60, 10) == 6
    assert bucket_count(5, 60, 10) == 6  # [0,10) .. [50,60)
    assert bucket_count(5, 61, 10) == 7
    assert bucket_count(10, 11, 10) == 1


def test_series_defaults_to_the_last_hour() -> None:
    q = parse_series_query({"device": "d", "tag": "t"}, NOW)
    assert (q.start, q.end, q.limit, q.every, q.agg) == (NOW - HOUR, NOW, 10_000, None, None)


def test_series_every_defaults_to_avg() -> None:
    q = parse_series_query({"device": "d", "tag": "t", "start": "-1d", "every": "1m"}, NOW)
    assert (q.start, q.every, q.every_text, q.agg) == (NOW - DAY, MIN, "1m", "avg")


@pytest.mark.parametrize(
    ("query", "param", "fragment"),
    [
        ({"tag": "t"}, "device", "'device' is required"),
        ({"device": "d", "tag": ""}, "tag", "'tag' is required"),
        ({"device": "d", "tag": "t", "start": "-1h", "end": "-2h"}, "start", "must be before end"),
        ({"device": "d", "tag": "t", "start": "now"}, "start", "must be before end"),
        ({"device": "d", "tag": "t", "start": "-367d"}, "start", "366d"),
        ({"device": "d", "tag": "t", "agg": "max"}, "agg", "agg needs every"),
        ({"device": "d", "tag": "t", "every": "1m", "agg": "median"}, "agg", "avg, min, max"),
        ({"device": "d", "tag": "t", "start": "-1d", "every": "500ms"}, "every", f"at most {MAX_BUCKETS}"),
        ({"device": "d", "tag": "t", "every": "1m", "limit": "5"}, "limit", "raw points only"),
        ({"device": "d", "tag": "t", "strat": "-1h"}, "strat", "unknown query parameter"),
    ],
)
def test_bad_series_queries(query: dict[str, str], param: str, fragment: str) -> None:
    with pytest.raises(ParamError, match=fragment) as info:
        parse_series_query(query, NOW)
    assert info.value.param == param


def test_bucket_limit_boundary() -> None:
    # 100,000 one-second buckets fit exactly when the window is aligned; one more second does not.
    start = 1_700_000_000 * 1_000_000
    ok = {"device": "d", "tag": "t", "start": to_iso(start), "end": to_iso(start + MAX_BUCKETS * 1_000_000)}
    assert parse_series_query({**ok, "every": "1s"}, NOW).every == 1_000_000
    over = {**ok, "end": to_iso(start + MAX_BUCKETS * 1_000_000 + 1)}
    with pytest.raises(ParamError, match="100001 buckets"):
        parse_series_query({**over, "every": "1s"}, NOW)


@pytest.mark.parametrize(
    ("pairs", "code", "fragment"),
    [
        ([("limit", "5"), ("limit", "6")], "repeated_parameter", "more than once"),
        ([("limt", "5")], "unknown_parameter", "accepts limit, device, before"),
        ([("limit", "0")], "invalid_parameter", "limit='0' is not allowed"),
        ([("before", "9" * 30)], "invalid_parameter", "before="),
        ([("device", "")], "invalid_parameter", "'device' must not be empty"),
    ],
)
def test_validate_params_names_the_parameter(pairs: list[tuple[str, str]], code: str, fragment: str) -> None:
    with pytest.raises(ParamError) as err:
        validate_params(MultiDict(pairs), AuditQuery)
    assert err.value.code == code
    assert fragment in err.value.message


def test_validate_params_parses_and_bounds_what_it_echoes() -> None:
    q = validate_params(MultiDict([("limit", "5"), ("before", "9223372036854775807")]), AuditQuery)
    assert (q.limit, q.before, q.device) == (5, 2**63 - 1, None)
    with pytest.raises(ParamError) as err:
        validate_params({"alarm_id": "x" * 500}, AlarmPath, "path")
    assert err.value.param == "alarm_id" and len(err.value.message) < 200
