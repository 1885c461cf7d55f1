"""Random query strings and path segments on every other REST endpoint, and the health/metrics endpoints."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_api import DEV, Status, assert_documented, assert_error, get
from test_api import live_api as live_api  # the module-scoped fixture, shared

from plantwire.metrics_text import MetricsText
from plantwire_platform.ingest.stats import IngestStats
from plantwire_platform.store.sqlite import SqliteStore
from plantwire_platform.web.app import create_app
from plantwire_platform.web.health import readiness
from plantwire_platform.web.runtime import PlatformRuntime

_PARAMS = st.sampled_from(["device", "tag", "start", "limit", "x", "", "device[]"])
_VALUES = st.one_of(st.sampled_from([DEV, "mixer-2", "", "*", "%", "..", "press-1/"]), st.text(max_size=30))
_SEGMENT = st.one_of(
    st.sampled_from([DEV, "mixer-2", "nope", "..", "%2F", "a" * 300]), st.text(min_size=1, max_size=40)
)

Api = tuple[asyncio.AbstractEventLoop, TestClient[Any, Any]]


def _check(path: str, documented: str, code: int, body: Any) -> None:
    assert code in (200, 400, 404), (path, body)
    if code != 200:
        assert_error(body, code, body["error"]["code"])
    assert_documented(documented, code, body)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pairs=st.lists(st.tuples(_PARAMS, _VALUES), max_size=4), raw=st.one_of(st.none(), st.text(max_size=30))
)
def test_random_latest_queries_never_fail_the_server(
    live_api: Api, pairs: list[tuple[str, str]], raw: str | None
) -> None:
    loop, client = live_api
    query = urlencode(pairs) if raw is None else quote(raw, safe="=&")
    code, body = loop.run_until_complete(get(client, f"/api/latest?{query}"))
    _check("/api/latest", "/api/latest", code, body)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    segment=_SEGMENT,
    tags=st.booleans(),
    pairs=st.lists(st.tuples(_PARAMS, _VALUES), max_size=2),
)
def test_random_device_paths_and_queries_never_fail_the_server(
    live_api: Api, segment: str, tags: bool, pairs: list[tuple[str, str]]
) -> None:
    loop, client = live_api
    path = f"/api/devices/{quote(segment, safe='')}" + ("/tags" if tags else "")
    documented = "/api/devices/{device}/tags" if tags else "/api/devices/{device}"
    code, body = loop.run_until_complete(get(client, f"{path}?{urlencode(pairs)}"))
    if code == 404 and body["error"]["code"] == "not_found":
        return  # a segment the router does not match (e.g. an encoded '/'): the generic 404
    _check(path, documented, code, body)


# --- probes and metrics ---------------------------------------------------------------------------


async def test_probes_and_metrics(live_api: Api, tmp_path: Any) -> None:
    store = SqliteStore.open(tmp_path / "p.db")
    status = Status()
    status.info = IngestStats(
        connected=True,
        subscribed=True,
        queue_depth=1,
        queue_max=10,
        messages=7,
        points_stored=5,
        duplicates=2,
        seq_gaps=0,
        decode_errors={"json": 3, "schema": 1},
        store_failing=False,
    )
    try:
        async with (
            asyncio.timeout(10),
            TestClient(TestServer(create_app(PlatformRuntime(store, status)))) as client,
        ):
            resp = await client.get("/healthz")
            assert resp.status == 200 and (await resp.json())["status"] == "alive"
            resp = await client.get("/readyz")
            assert resp.status == 200, await resp.text()
            status.info = replace(status.info, queue_depth=10)
            resp = await client.get("/readyz")
            body = await resp.json()
            assert resp.status == 503 and body["checks"]["queue_not_saturated"] is False
            resp = await client.get("/metrics")
            assert resp.status == 200 and resp.content_type == "text/plain"
            text = await resp.text()
            assert 'plantwire_platform_decode_errors_total{reason="json"} 3' in text
            assert "plantwire_platform_duplicate_points_total 2" in text
            assert "plantwire_platform_ingest_queue_depth 10" in text
            assert "# TYPE plantwire_platform_points_stored_total counter" in text
    finally:
        store.close()


def test_readiness_conditions() -> None:
    ok = IngestStats(connected=True, subscribed=True, queue_depth=0, queue_max=10)
    assert all(readiness(ok).values())
    assert readiness(replace(ok, connected=False))["mqtt_connected"] is False
    assert readiness(replace(ok, subscribed=False))["subscribed"] is False
    assert readiness(replace(ok, store_failing=True))["store_writable"] is False
    assert readiness(replace(ok, queue_depth=9))["queue_not_saturated"] is False
    assert readiness(replace(ok, writer_alive=False))["ingest_running"] is False
    assert readiness(replace(ok, reader_alive=False))["ingest_running"] is False


def test_metrics_text_format() -> None:
    out = MetricsText("x_")
    out.counter("a_total", "A.", 3, {"k": 'q"\\\n'})
    out.gauge("g", "G.", None)
    out.histogram("h", "H.", [0.1, 1.0], [1, 2, 3], 4.5)
    text = out.render()
    assert '# TYPE x_a_total counter\nx_a_total{k="q\\"\\\\\\n"} 3' in text
    assert "\nx_g " not in text and "# TYPE x_g gauge" in text
    assert 'x_h_bucket{le="0.1"} 1\nx_h_bucket{le="1.0"} 3\nx_h_bucket{le="+Inf"} 6' in text
    assert "x_h_sum 4.5\nx_h_count 6" in text
