"""GET /api/stream and the page routes, against a real app with a real SqliteStore and LiveBus.

Points are put on the bus the way ingest does after a commit (`LiveBus.publish`), so these tests
check the endpoint's protocol and limits; test_dashboard_browser.py checks the whole path.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient, TestServer

import plantwire
from plantwire.timeunits import to_iso
from plantwire.wire import now_us
from plantwire_platform.ingest.live_bus import LiveBus, LivePoint
from plantwire_platform.ingest.stats import IngestStats
from plantwire_platform.store.sqlite import SqliteStore
from plantwire_platform.web.app import create_app
from plantwire_platform.web.openapi import openapi_document
from plantwire_platform.web.page import STATIC_DIR
from plantwire_platform.web.runtime import PlatformRuntime
from plantwire_platform.web.stream import BUFFER_POINTS, MAX_SUBSCRIPTIONS

GOOD, UNCERTAIN, BAD = 0, 0x408F0000, 0x80310000


@pytest.fixture
async def bus() -> LiveBus:
    return LiveBus(asyncio.get_running_loop())


@pytest.fixture
async def client(tmp_path: Path, bus: LiveBus) -> AsyncIterator[TestClient[Any, Any]]:
    store = SqliteStore.open(tmp_path / "p.sqlite")
    app = create_app(PlatformRuntime(store, lambda: IngestStats(connected=True), live_bus=bus))
    async with TestClient(TestServer(app)) as c:
        yield c
    store.close()


async def next_json(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    msg = await ws.receive()
    assert msg.type == WSMsgType.TEXT, msg
    body: dict[str, Any] = msg.json()
    return body


async def subscribe(ws: aiohttp.ClientWebSocketResponse, device: str, tag: str = "*") -> None:
    await ws.send_json({"subscribe": {"device": device, "tag": tag}})
    assert await next_json(ws) == {"subscribed": {"device": device, "tag": tag}}


async def points_until(ws: aiohttp.ClientWebSocketResponse, n: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    while len(got) < n:
        got += (await next_json(ws))["points"]
    return got


async def test_points_matching_the_patterns_arrive_as_json(
    client: TestClient[Any, Any], bus: LiveBus
) -> None:
    async with asyncio.timeout(20), client.ws_connect("/api/stream") as ws:
        await subscribe(ws, "cnc-*", "Spindle/*")
        t = now_us()
        bus.publish(
            [
                LivePoint("cnc-1", "Spindle/Speed", t, 1200.5, GOOD),
                LivePoint("cnc-1", "Axes/X", t, 3.0, GOOD),  # tag does not match
                LivePoint("pump-1", "Spindle/Speed", t, 9.0, GOOD),  # device does not match
                LivePoint("cnc-2", "Spindle/Load", t + 1, 0.4, UNCERTAIN),
                LivePoint("cnc-2", "Spindle/On", t + 2, True, BAD),
            ]
        )
        got = await points_until(ws, 3)
        assert got == [
            {
                "device": "cnc-1",
                "tag": "Spindle/Speed",
                "ts": to_iso(t),
                "value": 1200.5,
                "status": 0,
                "quality": "good",
            },
            {
                "device": "cnc-2",
                "tag": "Spindle/Load",
                "ts": to_iso(t + 1),
                "value": 0.4,
                "status": UNCERTAIN,
                "quality": "uncertain",
            },
            {
                "device": "cnc-2",
                "tag": "Spindle/On",
                "ts": to_iso(t + 2),
                "value": True,
                "status": BAD,
                "quality": "bad",
            },
        ]


async def test_overlapping_patterns_send_each_point_once_and_unsubscribe_stops(
    client: TestClient[Any, Any], bus: LiveBus
) -> None:
    async with asyncio.timeout(20), client.ws_connect("/api/stream") as ws:
        await subscribe(ws, "cnc-1")
        await subscribe(ws, "*", "Axes/X")
        t = now_us()
        bus.publish([LivePoint("cnc-1", "Axes/X", t, 1.0, GOOD), LivePoint("cnc-9", "Axes/X", t, 2.0, GOOD)])
        got = await points_until(ws, 2)
        assert sorted((p["device"], p["value"]) for p in got) == [("cnc-1", 1.0), ("cnc-9", 2.0)]

        await ws.send_json({"unsubscribe": {"device": "*", "tag": "Axes/X"}})
        assert await next_json(ws) == {"unsubscribed": {"device": "*", "tag": "Axes/X"}}
        bus.publish(
            [LivePoint("cnc-9", "Axes/X", t + 1, 3.0, GOOD), LivePoint("cnc-1", "A", t + 1, 4.0, GOOD)]
        )
        assert [(p["device"], p["value"]) for p in await points_until(ws, 1)] == [("cnc-1", 4.0)]
        assert bus.subscribers == 1


@pytest.mark.parametrize(
    ("sent", "code"),
    [
        ("not json", "invalid_json"),
        ('["subscribe"]', "invalid_message"),
        ('{"watch": {"device": "a"}}', "invalid_message"),
        ('{"subscribe": {"device": "a", "tags": "x"}}', "invalid_message"),
        ('{"subscribe": {"device": ""}}', "invalid_pattern"),
        ('{"subscribe": {"device": 5}}', "invalid_pattern"),
        ('{"subscribe": {"device": "' + "x" * 5000 + '"}}', "message_too_large"),
    ],
)
async def test_a_bad_message_is_answered_and_the_stream_stays_open(
    client: TestClient[Any, Any], bus: LiveBus, sent: str, code: str
) -> None:
    async with asyncio.timeout(20), client.ws_connect("/api/stream") as ws:
        await ws.send_str(sent)
        reply = await next_json(ws)
        assert reply["error"]["code"] == code and reply["error"]["message"]
        await subscribe(ws, "still-works")
        bus.publish([LivePoint("still-works", "t", now_us(), 1, GOOD)])
        assert len(await points_until(ws, 1)) == 1


async def test_subscriptions_per_stream_are_limited(client: TestClient[Any, Any], bus: LiveBus) -> None:
    async with asyncio.timeout(20), client.ws_connect("/api/stream") as ws:
        for i in range(MAX_SUBSCRIPTIONS):
            await subscribe(ws, f"d{i}")
        await ws.send_json({"subscribe": {"device": "one-more"}})
        assert (await next_json(ws))["error"]["code"] == "too_many_subscriptions"
        assert bus.subscribers == MAX_SUBSCRIPTIONS
    async with asyncio.timeout(10):
        while bus.subscribers:  # closing the socket ends every subscription
            await asyncio.sleep(0.02)


async def test_a_client_that_falls_behind_loses_the_oldest_points_and_is_told(
    client: TestClient[Any, Any], bus: LiveBus
) -> None:
    extra = 1234
    async with asyncio.timeout(30), client.ws_connect("/api/stream") as ws:
        await subscribe(ws, "flood")
        t = now_us()
        bus.publish([LivePoint("flood", "v", t + i, i, GOOD) for i in range(BUFFER_POINTS + extra)])
        told = await next_json(ws)
        assert told == {"points": [], "dropped": extra, "dropped_total": extra}
        got = await points_until(ws, BUFFER_POINTS)
        # The newest BUFFER_POINTS survive, in order.
        assert [p["value"] for p in got] == list(range(extra, BUFFER_POINTS + extra))


async def test_plain_get_is_an_api_error_and_documented(client: TestClient[Any, Any]) -> None:
    async with asyncio.timeout(10):
        resp = await client.get("/api/stream")
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == "websocket_required"
    doc = openapi_document(plantwire.__version__)
    op = doc["paths"]["/api/stream"]["get"]
    assert {"101", "400", "503"} <= set(op["responses"])
    assert "docs/stream.md" in op["description"]


async def test_without_a_live_bus_the_stream_is_unavailable(tmp_path: Path) -> None:
    store = SqliteStore.open(tmp_path / "p.sqlite")
    try:
        async with (
            asyncio.timeout(10),
            TestClient(TestServer(create_app(PlatformRuntime(store, IngestStats)))) as c,
        ):
            with pytest.raises(aiohttp.WSServerHandshakeError) as err:
                await c.ws_connect("/api/stream")
            assert err.value.status == 503
    finally:
        store.close()


async def test_shutdown_closes_open_streams_with_going_away(tmp_path: Path) -> None:
    store = SqliteStore.open(tmp_path / "p.sqlite")
    app = create_app(PlatformRuntime(store, IngestStats, live_bus=LiveBus(asyncio.get_running_loop())))
    runner = web.AppRunner(app, shutdown_timeout=30)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with asyncio.timeout(20), aiohttp.ClientSession() as http:
            async with http.ws_connect(f"http://127.0.0.1:{port}/api/stream") as ws:
                await subscribe(ws, "*")
                loop = asyncio.get_running_loop()
                started = loop.time()
                cleanup = asyncio.create_task(runner.cleanup())
                msg = await ws.receive()
                assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)
                assert ws.close_code == aiohttp.WSCloseCode.GOING_AWAY
                await cleanup
                # Not held until the 30 s shutdown timeout by the open socket.
                assert loop.time() - started < 15
    finally:
        store.close()


async def test_page_and_static_files_are_served(client: TestClient[Any, Any]) -> None:
    async with asyncio.timeout(10):
        resp = await client.get("/")
        assert resp.status == 200 and resp.content_type == "text/html"
        html = await resp.text()
        assert "/static/app.js" in html and "/static/vendor/uplot/uPlot.iife.min.js" in html
        assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
        for path in ("/static/app.js", "/static/style.css", "/static/vendor/uplot/uPlot.iife.min.js"):
            r = await client.get(path)
            assert r.status == 200, path
            assert r.headers["Cache-Control"] == "no-cache"
            assert len(await r.read()) > 1000, path
        # Nothing outside the static folder, however the path is spelled.
        for path in ("/static/../web/app.py", "/static/%2e%2e/web/app.py", "/static/nothing.js"):
            r = await client.get(path)
            assert r.status == 404, path
        # Unknown page paths get a plain 404; API paths keep the JSON error shape.
        r = await client.get("/no/such/page")
        assert r.status == 404 and r.content_type != "application/json"
        r = await client.get("/api/no/such")
        assert r.status == 404 and (await r.json())["error"]["code"] == "not_found"


def test_vendored_uplot_is_complete() -> None:
    vendor = STATIC_DIR / "vendor"
    for name in ("uPlot.iife.min.js", "uPlot.min.css", "LICENSE"):
        assert (vendor / "uplot" / name).stat().st_size > 500, name
    assert "MIT License" in (vendor / "uplot/LICENSE").read_text()
    assert "1.6.32" in (vendor / "README.md").read_text()
