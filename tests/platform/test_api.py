"""The REST API against a real SqliteStore (a file in tmp_path) filled with known data.

Expected answers are worked out by hand from the data written in `fill_store`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import orjson
import pytest
import schemathesis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker
from structlog.testing import capture_logs

import plantwire
from plantwire.timeunits import from_iso, to_iso
from plantwire.wire import DataBatch, DeviceMeta, DeviceStatus, GatewayStatus, Sample, TagInfo, now_us
from plantwire_platform.ingest.stats import IngestStats
from plantwire_platform.store.model import IncomingBatch
from plantwire_platform.store.sqlite import SqliteStore
from plantwire_platform.web.app import create_app
from plantwire_platform.web.openapi import openapi_document
from plantwire_platform.web.page import PAGE_ROUTES
from plantwire_platform.web.runtime import PlatformRuntime

GW = "line-a"
DEV = "press-1"
T0 = from_iso("2026-11-24T11:00:00Z")  # a whole minute, so 10s/30s/1m buckets start on it
S = 1_000_000
MIN = 60 * S
UNCERTAIN = 0x408F0000  # UncertainEngineeringUnitsExceeded: top bits 01
BAD = 0x80310000  # BadNoCommunication: top bits 10
# temperature every 10 s from T0 for two minutes (12 points)
TEMPS = [20.0, 22.0, 21.0, 25.0, 24.0, 26.0, 30.0, 28.0, 29.0, 31.0, 27.0, 35.0]
ENDPOINT = "opc.tcp://127.0.0.1:4840"


def fill_store(store: SqliteStore, now: int) -> None:
    """Known data: press-1 with four tags, mixer-2 with a status only."""
    store.apply_gateway_status(GW, GatewayStatus("online", T0 - MIN, "0.1.0"))
    tags = [
        TagInfo("temperature", "ns=2;s=T", "Double", "degC", "Oil temperature", False, 0.0, 250.0),
        TagInfo("running", "ns=2;s=R", "Boolean"),
        TagInfo("mode", "ns=2;s=M", "String", description="Operating mode"),
        TagInfo("setpoint", "ns=2;s=SP", "Double", "degC", writable=True, low=10.0, high=None),
        TagInfo("pressure", "ns=2;s=P", "Double", "bar"),
    ]
    store.apply_meta(GW, DEV, DeviceMeta(ENDPOINT, "ns=2;s=Press", tags, sent=T0))
    store.apply_device_status(GW, DEV, DeviceStatus("online", T0 - 30 * S, ENDPOINT))
    temps = [
        Sample("temperature", T0 + i * 10 * S, v, UNCERTAIN if i == 11 else 0) for i, v in enumerate(TEMPS)
    ]
    first = [*temps[:6], Sample("running", T0, True), Sample("running", T0 + 30 * S, False)]
    second = [
        *temps[6:],
        Sample("running", T0 + 60 * S, True, BAD),
        Sample("mode", T0 + 5 * S + 123_456, "auto"),
        # Relative to the real clock, for 'now' / '-1h' queries.
        Sample("pressure", now - 90 * MIN, 1.5),
        Sample("pressure", now - 30 * MIN, 2.5),
        Sample("pressure", now - 5 * MIN, 3.5),
    ]
    store.write_batches(
        [
            IncomingBatch(GW, DEV, DataBatch(1, T0, first)),
            IncomingBatch(GW, DEV, DataBatch(2, T0, second)),
        ]
    )
    store.apply_device_status(
        GW, "mixer-2", DeviceStatus("offline", T0 + 5 * S, "opc.tcp://127.0.0.1:4841", "connection refused")
    )


POINTS_STORED = len(TEMPS) + 3 + 1 + 3


class Status:
    """What the app's `status()` callable returns; tests change it."""

    def __init__(self) -> None:
        self.info = IngestStats(connected=True, messages=2)

    def __call__(self) -> IngestStats:
        return self.info


@pytest.fixture
def fill_now() -> int:
    """The clock when the store was filled (the `pressure` points are relative to it)."""
    return now_us()


@pytest.fixture
def store(tmp_path: Path, fill_now: int) -> Iterator[SqliteStore]:
    s = SqliteStore.open(tmp_path / "plantwire.db")
    fill_store(s, fill_now)
    yield s
    s.close()


@pytest.fixture
def status() -> Status:
    return Status()


@pytest.fixture
async def client(
    store: SqliteStore, status: Status
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    async with asyncio.timeout(10), TestClient(TestServer(create_app(PlatformRuntime(store, status)))) as c:
        yield c


async def get(client: TestClient[Any, Any], url: str, method: str = "GET") -> tuple[int, Any]:
    async with asyncio.timeout(10):
        resp = await client.request(method, url)
        assert resp.content_type == "application/json"
        return resp.status, orjson.loads(await resp.read())


# --- real responses against the generated schemas, with a real JSON Schema validator ------------

DOC = openapi_document(plantwire.__version__)
ISO_FORM = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
FORMATS = FormatChecker(formats=())


@FORMATS.checks("date-time")
def _our_iso_form(value: object) -> bool:
    return not isinstance(value, str) or ISO_FORM.fullmatch(value) is not None


def schema_errors(schema: dict[str, Any], value: Any) -> list[str]:
    """Where `value` breaks `schema` (its $refs resolved in the document's components)."""
    root = {"components": DOC["components"], **schema}
    validator = Draft202012Validator(root, format_checker=FORMATS)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(value)]


def operation_of(path: str, method: str = "get") -> dict[str, Any]:
    op: dict[str, Any] = DOC["paths"][path][method]
    return op


def assert_documented(path: str, status: int, body: Any, method: str = "get") -> None:
    """The body matches the schema the OpenAPI document gives for this path and status."""
    responses = operation_of(path, method)["responses"]
    assert str(status) in responses, f"{path} does not document status {status}"
    schema = responses[str(status)]["content"]["application/json"]["schema"]
    assert schema_errors(schema, body) == []


def assert_error(body: Any, status: int, code: str, *fragments: str) -> None:
    assert schema_errors({"$ref": "#/components/schemas/Error"}, body) == []
    err = body["error"]
    assert (err["status"], err["code"]) == (status, code)
    for fragment in fragments:
        assert fragment in err["message"]


# --- endpoints ------------------------------------------------------------------------------------


async def test_health_reports_points_version_and_ingest(client: TestClient[Any, Any], status: Status) -> None:
    code, body = await get(client, "/api/health")
    assert code == 200
    assert body == {
        "status": "ok",
        "version": plantwire.__version__,
        "points": POINTS_STORED,
        "ingest": IngestStats(connected=True, messages=2).as_json(),
    }
    assert body["ingest"]["messages"] == 2 and body["ingest"]["latency"]["count"] == 0
    assert_documented("/api/health", code, body)
    status.info = IngestStats(connected=False)
    code, body = await get(client, "/api/health")
    assert (code, body["status"]) == (200, "degraded")


async def test_devices(client: TestClient[Any, Any], fill_now: int) -> None:
    before, after = fill_now, now_us()
    code, body = await get(client, "/api/devices")
    assert code == 200
    assert_documented("/api/devices", code, body)
    mixer, press = body["devices"]  # ordered by id
    for device in (press, mixer):
        assert before <= from_iso(device.pop("first_seen")) <= after
    assert press == {
        "id": DEV,
        "gateway": GW,
        "endpoint": ENDPOINT,
        "state": "online",
        "reported_state": "online",
        "state_since": "2026-11-24T10:59:30.000000Z",
        "error": None,
        "gateway_state": "online",
        "tag_count": 5,
        # the newest point: the last temperature, or the last pressure if the clock is past it
        "last_data": to_iso(max(T0 + 110 * S, fill_now - 5 * MIN)),
        "last_seq": 2,
        "identifier": None,  # no identifier room in this runtime
    }
    assert mixer == {
        "id": "mixer-2",
        "gateway": GW,
        "endpoint": "opc.tcp://127.0.0.1:4841",
        "state": "offline",
        "reported_state": "offline",
        "state_since": "2026-11-24T11:00:05.000000Z",
        "error": "connection refused",
        "gateway_state": "online",
        "tag_count": 0,
        "last_data": None,
        "last_seq": 0,
        "identifier": None,
    }
    code, one = await get(client, f"/api/devices/{DEV}")
    assert code == 200
    assert_documented("/api/devices/{device}", code, one)
    one.pop("first_seen")
    assert one == press


async def test_tags(client: TestClient[Any, Any]) -> None:
    code, body = await get(client, f"/api/devices/{DEV}/tags")
    assert code == 200
    assert_documented("/api/devices/{device}/tags", code, body)
    assert body["device"] == DEV
    tags = {t["tag"]: t for t in body["tags"]}
    assert sorted(tags) == ["mode", "pressure", "running", "setpoint", "temperature"]
    assert tags["temperature"] == {
        "tag": "temperature",
        "node_id": "ns=2;s=T",
        "data_type": "Double",
        "unit": "degC",
        "description": "Oil temperature",
        "writable": False,
        "range": [0.0, 250.0],
        "derived_by": None,
        "value_rank": -1,
        "dims": None,
        "enum": None,
        "locale": None,
    }
    assert tags["running"]["range"] is None
    assert tags["setpoint"]["writable"] is True
    assert tags["setpoint"]["range"] == [10.0, None]
    code, body = await get(client, "/api/devices/mixer-2/tags")
    assert (code, body) == (200, {"device": "mixer-2", "tags": []})


async def test_latest(client: TestClient[Any, Any]) -> None:
    code, body = await get(client, f"/api/latest?device={DEV}")
    assert code == 200
    assert_documented("/api/latest", code, body)
    values = {v["tag"]: v for v in body["values"]}
    assert sorted(values) == ["mode", "pressure", "running", "temperature"]  # setpoint has no point
    assert values["temperature"] == {
        "tag": "temperature",
        "ts": "2026-11-24T11:01:50.000000Z",
        "value": 35.0,
        "status": UNCERTAIN,
        "quality": "uncertain",
        "unit": "degC",
    }
    assert values["running"] | {"unit": None} == {
        "tag": "running",
        "ts": "2026-11-24T11:01:00.000000Z",
        "value": True,
        "status": BAD,
        "quality": "bad",
        "unit": None,
    }
    assert values["mode"]["ts"] == "2026-11-24T11:00:05.123456Z"
    assert (values["mode"]["value"], values["mode"]["quality"]) == ("auto", "good")
    assert values["pressure"]["value"] == 3.5


async def test_raw_series_window_is_start_inclusive_end_exclusive(client: TestClient[Any, Any]) -> None:
    q = {"device": DEV, "tag": "temperature", "start": "2026-11-24T11:00:00Z", "end": "2026-11-24T11:01:00Z"}
    code, body = await get(client, f"/api/series?{urlencode(q)}")
    assert code == 200
    assert_documented("/api/series", code, body)
    assert body["start"] == "2026-11-24T11:00:00.000000Z"
    assert body["end"] == "2026-11-24T11:01:00.000000Z"
    assert (body["device"], body["tag"], body["unit"], body["truncated"]) == (
        DEV,
        "temperature",
        "degC",
        False,
    )
    assert body["points"] == [
        {"ts": f"2026-11-24T11:00:{10 * i:02d}.000000Z", "value": TEMPS[i], "status": 0} for i in range(6)
    ]


async def test_raw_series_limit_and_truncated(client: TestClient[Any, Any]) -> None:
    base = {
        "device": DEV,
        "tag": "temperature",
        "start": "2026-11-24T11:00:00Z",
        "end": "2026-11-24T11:01:00Z",
    }
    code, body = await get(client, f"/api/series?{urlencode(base | {'limit': '4'})}")
    assert code == 200
    assert [p["value"] for p in body["points"]] == TEMPS[:4]
    assert body["truncated"] is True
    code, body = await get(client, f"/api/series?{urlencode(base | {'limit': '6'})}")
    assert (len(body["points"]), body["truncated"]) == (6, False)


async def test_offsets_and_naive_times_mean_the_same_instant(client: TestClient[Any, Any]) -> None:
    base = {"device": DEV, "tag": "temperature"}
    answers = []
    for start, end in [
        ("2026-11-24T11:00:30Z", "2026-11-24T11:01:00Z"),
        ("2026-11-24T12:00:30+01:00", "2026-11-24T06:01:00-05:00"),
        ("2026-11-24T11:00:30", "2026-11-24T11:01:00.000000"),
    ]:
        code, body = await get(client, f"/api/series?{urlencode(base | {'start': start, 'end': end})}")
        assert code == 200
        answers.append(body)
    assert answers[0] == answers[1] == answers[2]
    assert [p["value"] for p in answers[0]["points"]] == TEMPS[3:6]


async def test_relative_times_against_the_clock(client: TestClient[Any, Any]) -> None:
    before = now_us()
    code, body = await get(client, f"/api/series?device={DEV}&tag=pressure")  # default: the last hour
    after = now_us()
    assert code == 200
    assert [p["value"] for p in body["points"]] == [2.5, 3.5]
    assert before <= from_iso(body["end"]) <= after
    assert from_iso(body["end"]) - from_iso(body["start"]) == 60 * MIN
    code, body = await get(client, f"/api/series?device={DEV}&tag=pressure&start=-10m&end=now")
    assert [p["value"] for p in body["points"]] == [3.5]
    code, body = await get(client, f"/api/series?device={DEV}&tag=pressure&start=-2h&end=-1h")
    assert [p["value"] for p in body["points"]] == [1.5]
    code, body = await get(client, f"/api/series?device={DEV}&tag=pressure&start=-1d&end=-100m")
    assert (code, body["points"]) == (200, [])


@pytest.mark.parametrize(
    ("every", "agg", "expected"),
    [
        # minute 0: 20 22 21 25 24 26; minute 1: 30 28 29 31 27 35
        ("1m", None, [(0, 23.0, 6), (60, 30.0, 6)]),
        ("1m", "avg", [(0, 23.0, 6), (60, 30.0, 6)]),
        ("1m", "min", [(0, 20.0, 6), (60, 27.0, 6)]),
        ("1m", "max", [(0, 26.0, 6), (60, 35.0, 6)]),
        ("1m", "last", [(0, 26.0, 6), (60, 35.0, 6)]),
        ("1m", "count", [(0, 6, 6), (60, 6, 6)]),
        ("1m", "first", [(0, 20.0, 6), (60, 30.0, 6)]),
        ("1h", "first", [(0, 20.0, 12)]),
        ("30s", "avg", [(0, 21.0, 3), (30, 25.0, 3), (60, 29.0, 3), (90, 31.0, 3)]),
        ("30000ms", "avg", [(0, 21.0, 3), (30, 25.0, 3), (60, 29.0, 3), (90, 31.0, 3)]),
        ("1h", "max", [(0, 35.0, 12)]),
    ],
)
async def test_buckets(
    client: TestClient[Any, Any], every: str, agg: str | None, expected: list[tuple[int, float, int]]
) -> None:
    q = {
        "device": DEV,
        "tag": "temperature",
        "start": to_iso(T0),
        "end": to_iso(T0 + 2 * MIN),
        "every": every,
    }
    if agg is not None:
        q["agg"] = agg
    code, body = await get(client, f"/api/series?{urlencode(q)}")
    assert code == 200
    assert_documented("/api/series", code, body)
    assert (body["every"], body["agg"], body["unit"]) == (every, agg or "avg", "degC")
    got = [(b["start"], b["value"], b["count"]) for b in body["buckets"]]
    assert got == [(to_iso(T0 + sec * S), value, count) for sec, value, count in expected]


async def test_buckets_are_aligned_to_every_not_to_start(client: TestClient[Any, Any]) -> None:
    q = {"device": DEV, "tag": "temperature", "start": "2026-11-24T11:00:15Z", "end": "2026-11-24T11:01:00Z"}
    code, body = await get(client, f"/api/series?{urlencode(q | {'every': '1m'})}")
    assert code == 200
    # The bucket starts at 11:00:00 but holds only the points from 11:00:20 on: 21 25 24 26.
    assert body["buckets"] == [
        {"start": "2026-11-24T11:00:00.000000Z", "value": 24.0, "count": 4, "skipped": 0}
    ]


async def test_openapi_document_is_served(client: TestClient[Any, Any]) -> None:
    code, body = await get(client, "/api/openapi.json")
    assert code == 200
    assert body == orjson.loads(orjson.dumps(DOC))
    assert body["openapi"].startswith("3.1")


async def test_every_route_is_documented_and_every_documented_path_routed(store: SqliteStore) -> None:
    app = create_app(PlatformRuntime(store, Status()))
    routed = {
        (route.resource.canonical, route.method.lower())
        for route in app.router.routes()
        if route.method != "HEAD"
        and route.resource is not None
        and route.resource.canonical not in PAGE_ROUTES  # the dashboard's page, not an API
    }
    documented = {(path, method) for path, ops in DOC["paths"].items() for method in ops}
    assert routed == documented
    for path, ops in DOC["paths"].items():
        for op in ops.values():
            in_path = {p["name"] for p in op["parameters"] if p["in"] == "path"}
            assert in_path == set(re.findall(r"\{(\w+)\}", path)), path
            for response in op["responses"].values():
                content = response["content"]
                # JSON everywhere, except Prometheus text on /metrics and an identifier's QR code.
                other = {
                    "/metrics": {"text/plain"},
                    "/api/handles/{prefix}/{suffix}/qr.svg": {"image/svg+xml"},
                }
                assert set(content) <= other.get(path, {"application/json"}) | {"application/json"}
                schema = next(iter(content.values()))["schema"]
                Draft202012Validator.check_schema({"components": DOC["components"], **schema})
    refs = set(re.findall(r'"\$ref":"#/components/schemas/(\w+)"', orjson.dumps(DOC).decode()))
    assert refs and refs <= set(DOC["components"]["schemas"])


def test_the_document_is_valid_openapi_3_1() -> None:
    """Schemathesis loads it with its own OpenAPI 3.1 checks; every operation is one it can test."""
    schema = schemathesis.openapi.from_dict(DOC)
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) == sum(len(ops) for ops in DOC["paths"].values())


def test_every_operation_documents_the_error_shape() -> None:
    for path, ops in DOC["paths"].items():
        for method, op in ops.items():
            assert op["operationId"] and op["summary"], (path, method)
            for status, response in op["responses"].items():
                # Identifier routes answer in the Handle.Net REST shape (responseCode) Handle clients expect.
                handle_shaped = path.startswith(("/api/handles", "/api/identifiers"))
                if int(status) >= 400 and path != "/readyz" and not handle_shaped:
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (path, method, status)


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "doc_path", "status", "code", "fragments"),
    [
        ("/api/devices/nope", "/api/devices/{device}", 404, "unknown_device", ["'nope'", "/api/devices"]),
        ("/api/devices/nope/tags", "/api/devices/{device}/tags", 404, "unknown_device", ["'nope'"]),
        ("/api/latest", "/api/latest", 400, "missing_parameter", ["'device'", "required"]),
        ("/api/latest?device=nope", "/api/latest", 404, "unknown_device", ["'nope'"]),
        ("/api/latest?device=press-1&tag=x", "/api/latest", 400, "unknown_parameter", ["'tag'", "device"]),
        ("/api/series?device=nope&tag=x", "/api/series", 404, "unknown_device", ["'nope'"]),
        ("/api/series?device=press-1&tag=nope", "/api/series", 404, "unknown_tag", ["'nope'", "'press-1'"]),
        ("/api/series?device=press-1", "/api/series", 400, "missing_parameter", ["'tag'"]),
        (
            "/api/series?device=press-1&tag=temperature&every=5x",
            "/api/series",
            400,
            "invalid_parameter",
            ["every='5x'", "500ms", "1h"],
        ),
        (
            "/api/series?device=press-1&tag=temperature&every=0s",
            "/api/series",
            400,
            "invalid_parameter",
            ["1ms"],
        ),
        (
            "/api/series?device=press-1&tag=temperature&agg=max",
            "/api/series",
            400,
            "invalid_parameter",
            ["every"],
        ),
        (
            "/api/series?device=press-1&tag=temperature&every=1m&agg=median",
            "/api/series",
            400,
            "invalid_parameter",
            ["agg='median'", "avg, min, max, last, count"],
        ),
        (
            "/api/series?device=press-1&tag=temperature&start=-1h&end=-2h",
            "/api/series",
            400,
            "invalid_window",
            ["start", "before end"],
        ),
        (
            "/api/series?device=press-1&tag=temperature&start=yesterday",
            "/api/series",
            400,
            "invalid_parameter",
            ["start='yesterday'", "ISO 8601", "-15m"],
        ),
        (
            "/api/series?device=press-1&tag=temperature&start=-400d",
            "/api/series",
            400,
            "invalid_window",
            ["366d"],
        ),
        (
            "/api/series?device=press-1&tag=temperature&start=-1d&every=1ms",
            "/api/series",
            400,
            "too_many_buckets",
            ["100000"],
        ),
        (
            "/api/series?device=press-1&tag=temperature&limit=0",
            "/api/series",
            400,
            "invalid_parameter",
            ["limit"],
        ),
        (
            "/api/series?device=press-1&tag=temperature&limit=100001",
            "/api/series",
            400,
            "invalid_parameter",
            ["1 to 100000"],
        ),
        (
            "/api/series?device=press-1&tag=temperature&tag=running",
            "/api/series",
            400,
            "repeated_parameter",
            ["'tag'"],
        ),
    ],
)
async def test_errors_have_one_shape_and_say_what_is_wrong(
    client: TestClient[Any, Any], url: str, doc_path: str, status: int, code: str, fragments: list[str]
) -> None:
    got, body = await get(client, url)
    assert got == status
    assert_error(body, status, code, *fragments)
    assert_documented(doc_path, status, body)


async def test_unknown_route_and_wrong_method(client: TestClient[Any, Any]) -> None:
    code, body = await get(client, "/api/nothing")
    assert code == 404
    assert_error(body, 404, "not_found", "/api/nothing", "/api/openapi.json")
    code, body = await get(client, "/api/health", method="POST")
    assert code == 405
    assert_error(body, 405, "method_not_allowed", "POST", "/api/health", "GET")
    async with asyncio.timeout(10):
        resp = await client.delete(f"/api/devices/{DEV}")
        assert resp.status == 405
        assert "GET" in resp.headers["Allow"]


async def test_internal_errors_are_generic_and_logged(store: SqliteStore) -> None:
    def broken_status() -> IngestStats:
        raise RuntimeError("secret internal detail")

    with capture_logs() as logged:
        async with (
            asyncio.timeout(10),
            TestClient(TestServer(create_app(PlatformRuntime(store, broken_status)))) as c,
        ):
            code, body = await get(c, "/api/health")
    assert code == 500
    assert_error(body, 500, "internal_error", "server log")
    assert "secret" not in orjson.dumps(body).decode()
    # The traceback goes to the log: the event carries the exception for the renderer to format.
    [event] = [e for e in logged if e["event"] == "api_internal_error"]
    assert (event["exc_info"], event["path"], event["log_level"]) == (True, "/api/health", "error")


async def test_devices_come_in_pages_with_filters_and_a_total(
    client: TestClient[Any, Any], store: SqliteStore, fill_now: int
) -> None:
    for i in range(5):
        store.apply_device_status(
            "line-b", f"cell-{i}", DeviceStatus("online" if i < 3 else "connecting", T0, None)
        )
    code, body = await get(client, "/api/devices?limit=2&offset=1")
    assert_documented("/api/devices", code, body)
    assert ([d["id"] for d in body["devices"]], body["total"]) == (["cell-1", "cell-2"], 7)
    assert (body["offset"], body["limit"]) == (1, 2)
    code, body = await get(client, "/api/devices?gateway=line-b&state=connecting")
    assert ([d["id"] for d in body["devices"]], body["total"]) == (["cell-3", "cell-4"], 2)
    code, body = await get(client, "/api/devices?q=PRESS")
    assert [d["id"] for d in body["devices"]] == [DEV]
    code, body = await get(client, "/api/devices?limit=0")
    assert (body["devices"], body["total"]) == ([], 7)
    for query, name in (
        ("limit=1001", "limit"),
        ("offset=-1", "offset"),
        ("state=gone", "state"),
        ("x=1", "x"),
    ):
        code, body = await get(client, f"/api/devices?{query}")
        assert code == 400, query
        assert name in body["error"]["message"], body


async def test_store_failure_is_503(client: TestClient[Any, Any], store: SqliteStore) -> None:
    code, _ = await get(client, "/api/devices")
    assert code == 200
    store.close()
    code, body = await get(client, "/api/devices")
    assert code == 503
    assert_error(body, 503, "store_unavailable", "try again")


# --- random query strings never make the server fail ---------------------------------------------

_PARAMS = st.sampled_from(["device", "tag", "start", "end", "limit", "every", "agg", "x", ""])
_VALUES = st.one_of(
    st.sampled_from([DEV, "temperature", "running", "mode", "now", "-1h", "avg", "count", "last", "1m", ""]),
    st.from_regex(r"(now)?[-+]?[0-9]{1,20}(ms|s|m|h|d|w|us)?", fullmatch=True),
    st.datetimes().map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
    st.text(max_size=30),
)


@pytest.fixture(scope="module")
def live_api(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[asyncio.AbstractEventLoop, TestClient[Any, Any]]]:
    """A client on a loop of its own, so that a synchronous hypothesis test can drive it."""
    store = SqliteStore.open(tmp_path_factory.mktemp("api") / "plantwire.db")
    fill_store(store, now_us())
    loop = asyncio.new_event_loop()
    client: TestClient[Any, Any] = TestClient(
        TestServer(create_app(PlatformRuntime(store, Status()))), loop=loop
    )
    loop.run_until_complete(asyncio.wait_for(client.start_server(), 10))
    yield loop, client
    loop.run_until_complete(asyncio.wait_for(client.close(), 10))
    loop.close()
    store.close()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pairs=st.lists(st.tuples(_PARAMS, _VALUES), max_size=6),
    base=st.sampled_from([{}, {"device": DEV, "tag": "temperature"}, {"device": DEV, "tag": "running"}]),
    raw=st.one_of(st.none(), st.text(max_size=40)),
)
def test_random_series_queries_never_fail_the_server(
    live_api: tuple[asyncio.AbstractEventLoop, TestClient[Any, Any]],
    pairs: list[tuple[str, str]],
    base: dict[str, str],
    raw: str | None,
) -> None:
    loop, client = live_api
    query = urlencode(list(base.items()) + pairs) if raw is None else quote(raw, safe="=&")
    code, body = loop.run_until_complete(get(client, f"/api/series?{query}"))
    assert code in (200, 400, 404), body
    if code == 200:
        assert_documented("/api/series", code, body)
    else:
        assert_error(body, code, body["error"]["code"])
        assert_documented("/api/series", code, body)


async def test_gateways_come_in_pages_with_device_counts_and_capped_device_lists(
    store: SqliteStore, client: TestClient[Any, Any]
) -> None:
    for i in range(5):
        store.apply_device_status("line-b", f"b-{i}", DeviceStatus("online", T0, None, None))
    store.apply_device_status("line-b", "b-gone", DeviceStatus("offline", T0, None, "detached"))
    status, body = await get(client, "/api/gateways")
    assert status == 200 and (body["total"], body["offset"], body["limit"]) == (2, 0, 100)
    by_id = {g["id"]: g for g in body["gateways"]}
    assert list(by_id) == [GW, "line-b"]
    assert by_id[GW]["device_count"] == 2 and [d["id"] for d in by_id[GW]["devices"]] == ["mixer-2", DEV]
    assert by_id[GW]["state"] == "online" and by_id[GW]["devices_url"] == f"/api/devices?gateway={GW}"
    assert by_id["line-b"]["device_count"] == 6 and len(by_id["line-b"]["devices"]) == 6
    assert by_id["line-b"]["devices"][-1]["state"] == "detached"  # b-gone sorts last
    # At most `devices` listed per gateway (first by id), the count stays whole.
    _, body = await get(client, "/api/gateways?devices=2&offset=1")
    ((line_b,),) = [body["gateways"]]
    assert (line_b["id"], line_b["device_count"], [d["id"] for d in line_b["devices"]]) == (
        "line-b",
        6,
        ["b-0", "b-1"],
    )
    _, body = await get(client, "/api/gateways?limit=1")
    assert [g["id"] for g in body["gateways"]] == [GW] and body["total"] == 2
    _, body = await get(client, "/api/gateways?limit=0&devices=0")
    assert body == {"gateways": [], "total": 2, "offset": 0, "limit": 0}
    _, body = await get(client, "/api/gateways?devices=0")
    assert [(g["devices"], g["device_count"]) for g in body["gateways"]] == [([], 2), ([], 6)]
    _, body = await get(client, by_id["line-b"]["devices_url"] + "&limit=1000")
    assert body["total"] == 6
    for bad in ("devices=1001", "limit=-1", "offset=x", "bogus=1"):
        status, body = await get(client, f"/api/gateways?{bad}")
        assert status == 400, bad
