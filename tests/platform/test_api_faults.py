"""Every fault schemathesis once found answers a documented 4xx, and the schema refuses what the server does.

Against the real app on a real SqliteStore (test_api's fixtures); commands here fail before anything
is sent, so no gateway is needed (the live run with one is tests/commands/test_api_schemathesis.py).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from aiohttp.test_utils import TestClient
from jsonschema import Draft202012Validator
from test_api import DEV, DOC, assert_documented, assert_error, get
from test_api import client as client  # the fixtures, shared
from test_api import fill_now as fill_now
from test_api import status as status
from test_api import store as store

from plantwire import wire
from plantwire_platform.commands.checks import NOT_KEPT

Client = TestClient[Any, Any]


async def send(client: Client, method: str, url: str, body: Any = None) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) or body is None else orjson.dumps(body)
    async with asyncio.timeout(10):
        resp = await client.request(method, url, data=data)
        assert resp.content_type == "application/json", await resp.text()
        return resp.status, orjson.loads(await resp.read())


def nested(depth: int) -> Any:
    value: Any = 1.0
    for _ in range(depth):
        value = [value]
    return value


def nested_json(depth: int) -> bytes:
    """A value nested `depth` arrays deep as JSON text (orjson writes at most 255 levels)."""
    return b'{"tag": "setpoint", "value": ' + b"[" * depth + b"1.0" + b"]" * depth + b"}"


def param_schema(path: str, method: str, name: str) -> Draft202012Validator:
    [param] = [p for p in DOC["paths"][path][method]["parameters"] if p["name"] == name]
    return Draft202012Validator(param["schema"])


def body_schema(path: str) -> Draft202012Validator:
    ref = DOC["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    return Draft202012Validator({"components": DOC["components"], **ref})


@pytest.mark.parametrize("alarm", ["9223372036854775808", "99999999999999999999999", "0", "-1", "abc"])
async def test_alarm_ids_outside_the_64_bit_range_are_400(client: Client, alarm: str) -> None:
    code, body = await send(client, "POST", f"/api/alarms/{alarm}/ack")
    assert code == 400
    assert_error(body, 400, "invalid_parameter", "alarm_id")
    assert_documented("/api/alarms/{alarm_id}/ack", code, body, "post")
    code, body = await send(client, "POST", "/api/alarms/9223372036854775807/ack")  # the largest id
    assert (code, body["error"]["code"]) == (404, "unknown_alarm")


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("before=99999999999999999999999", "before"),
        ("before=9223372036854775808", "before"),
        ("before=0", "before"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=x", "limit"),
        ("device=", "device"),
        ("nope=1", "nope"),
    ],
)
async def test_bad_audit_queries_are_400(client: Client, query: str, fragment: str) -> None:
    code, body = await get(client, f"/api/audit?{query}")
    assert code == 400, body
    assert fragment in body["error"]["message"]
    assert_documented("/api/audit", code, body)


def test_the_schema_refuses_what_the_server_refuses() -> None:
    assert not param_schema("/api/audit", "get", "limit").is_valid(0)
    assert not param_schema("/api/audit", "get", "before").is_valid(10**23)
    assert not param_schema("/api/latest", "get", "device").is_valid("")
    assert not param_schema("/api/series", "get", "tag").is_valid("")
    assert not param_schema("/api/alarms/{alarm_id}/ack", "post", "alarm_id").is_valid(2**63)
    assert not param_schema("/api/gateways/{gateway}/devices/{device}", "delete", "device").is_valid("a b")
    assert not param_schema("/api/devices/{device}/browse", "get", "timeout").is_valid(1e-300)
    write = body_schema("/api/devices/{device}/write")
    call = body_schema("/api/devices/{device}/call")
    attach = body_schema("/api/gateways/{gateway}/devices")
    assert write.is_valid({"tag": "t", "value": [1, {"a": None}]})
    assert not write.is_valid({"tag": "", "value": 1})
    assert not write.is_valid({"tag": "t", "value": 1, "timeout": 1e-300})
    assert not write.is_valid({"tag": "t", "value": 1, "timeout": 61})
    assert not call.is_valid({"method": ""})
    assert not call.is_valid({"method": "Start", "args": [{}]})
    assert not attach.is_valid({"endpoint": "opc.tcp://127.0.0.1:4840", "id": ["a"]})
    # limit with every cannot be said per parameter: both descriptions say it, the 400 is documented.
    series = {p["name"]: p for p in DOC["paths"]["/api/series"]["get"]["parameters"]}
    assert "Not allowed with every" in series["limit"]["description"]
    assert "Not allowed with limit" in series["every"]["description"]


async def test_limit_with_every_and_empty_parameters_are_400(client: Client) -> None:
    base = f"/api/series?device={DEV}&tag=temperature"
    for url, code_name, fragment in [
        (f"{base}&every=1m&limit=10", "invalid_parameter", "limit"),
        (f"/api/series?device={DEV}&tag=", "missing_parameter", "'tag'"),
        (f"{base}&start=", "invalid_parameter", "'start'"),
        ("/api/latest?device=", "missing_parameter", "'device'"),
    ]:
        code, body = await get(client, url)
        assert code == 400, (url, body)
        assert_error(body, 400, code_name, fragment)


async def test_a_nul_in_a_static_path_is_404(client: Client) -> None:
    async with asyncio.timeout(10):
        resp = await client.get("/static/a%00b")
        assert resp.status == 404
        resp = await client.get("/static/app.js")
        assert resp.status == 200


async def test_a_deeply_nested_value_is_422_and_audited_bounded(client: Client) -> None:
    code, body = await send(client, "POST", f"/api/devices/{DEV}/write", nested_json(500))
    assert code == 422
    assert_error(body, 422, "invalid_value", f"deeper than {wire.MAX_NESTING}")
    assert len(body["error"]["message"]) < 200
    assert_documented("/api/devices/{device}/write", code, body, "post")
    code, body = await get(client, f"/api/audit?device={DEV}")
    assert code == 200
    [entry] = body["entries"]
    assert (entry["action"], entry["outcome"], entry["http_status"]) == ("write", "rejected", 422)
    assert entry["request"] == {"tag": "setpoint", "value": NOT_KEPT}
    assert_documented("/api/audit", code, body)
    # Nesting within the wire's bound is kept as given (and refused for a Double tag by type).
    code, body = await send(
        client, "POST", f"/api/devices/{DEV}/write", {"tag": "setpoint", "value": nested(3)}
    )
    assert (code, body["error"]["code"]) == (422, "invalid_value")
    code, body = await get(client, f"/api/audit?device={DEV}&limit=1")
    assert body["entries"][0]["request"]["value"] == nested(3)


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        ("/api/gateways/line-a/devices", {"endpoint": "opc.tcp://127.0.0.1:4840", "id": ["x"]}, "id"),
        ("/api/gateways/line-a/devices", {"endpoint": "opc.tcp://127.0.0.1:4840", "include": "x"}, "include"),
        ("/api/gateways/line-a/devices", {"endpoint": "opc.tcp://127.0.0.1:4840", "timeout": 0}, "timeout"),
        (f"/api/devices/{DEV}/write", {"tag": "setpoint", "value": 1, "timeout": 1e-300}, "timeout"),
        (f"/api/devices/{DEV}/write", {"tag": "setpoint", "value": 1, "timeout": 60.5}, "timeout"),
        (f"/api/devices/{DEV}/write", {"tag": "", "value": 1}, "tag"),
        (f"/api/devices/{DEV}/write", {"tag": ["x"], "value": 1}, "tag"),
        (f"/api/devices/{DEV}/write", {"tag": "setpoint", "value": 1, "id": "no spaces"}, "id"),
        (f"/api/devices/{DEV}/call", {"method": ""}, "method"),
        (f"/api/devices/{DEV}/call", {"method": "Start", "args": [[1]]}, "args[0]"),
        (f"/api/devices/{DEV}/call", {"method": "Start", "timeout": 0.01}, "timeout"),
    ],
)
async def test_fields_of_the_wrong_type_or_range_are_422_naming_them(
    client: Client, path: str, payload: dict[str, Any], field: str
) -> None:
    code, body = await send(client, "POST", path, payload)
    assert code == 422, body
    assert_error(body, 422, "invalid_field", f"'{field}'")
    doc_path = (
        "/api/gateways/{gateway}/devices"
        if "gateways" in path
        else f"/api/devices/{{device}}/{path.rsplit('/', 1)[1]}"
    )
    assert_documented(doc_path, code, body, "post")


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (b"{", "not valid JSON"),
        (b"[1]", "JSON object"),
        (b'{"tag": "setpoint"}', "missing field(s): value"),
        (b'{"tag": "setpoint", "value": 1, "colour": 2}', "unknown field(s) colour"),
    ],
)
async def test_bodies_that_are_not_the_model_are_400_without_parser_text(
    client: Client, payload: bytes, fragment: str
) -> None:
    async with asyncio.timeout(10):
        resp = await client.post(f"/api/devices/{DEV}/write", data=payload)
        body = orjson.loads(await resp.read())
    assert resp.status == 400
    assert_error(body, 400, "bad_request", fragment)
    assert "line 1" not in body["error"]["message"] and "char" not in body["error"]["message"]


@pytest.mark.parametrize("device", ["a b", "x" * 65, "-lead", "a%2Fb"])
async def test_detaching_an_impossible_id_is_400_at_once(client: Client, device: str) -> None:
    began = time.monotonic()
    code, body = await send(client, "DELETE", f"/api/gateways/line-a/devices/{device}")
    assert time.monotonic() - began < 2
    assert code == 400, body
    assert_error(body, 400, "invalid_parameter", "device")
    assert_documented("/api/gateways/{gateway}/devices/{device}", code, body, "delete")


@pytest.mark.parametrize("seconds", ["1e-300", "0", "61", "x"])
async def test_query_timeouts_outside_the_range_are_400(client: Client, seconds: str) -> None:
    for url in (
        f"/api/devices/{DEV}/browse?timeout={seconds}",
        f"/api/gateways/line-a/devices/{DEV}?timeout={seconds}",
    ):
        method = "GET" if "browse" in url else "DELETE"
        code, body = await send(client, method, url)
        assert code == 400, (url, body)
        assert_error(body, 400, "invalid_parameter", "timeout")


def test_browse_documents_its_errors() -> None:
    responses = DOC["paths"]["/api/devices/{device}/browse"]["get"]["responses"]
    assert {"400", "404", "422", "502", "503", "504"} <= set(responses)
    assert "invalid_node" in responses["422"]["description"]


@pytest.mark.parametrize(
    ("node", "status", "code"),
    [
        ("ns=65536;s=x", 422, "invalid_node"),  # once crashed the gateway's OPC UA request: 502
        ("i=4294967296", 422, "invalid_node"),
        ("nonsense", 400, "invalid_parameter"),
        ("ns=2;x=1", 400, "invalid_parameter"),
    ],
)
async def test_browse_refuses_nodes_no_device_can_read_before_sending(
    client: Client, node: str, status: int, code: str
) -> None:
    code_got, body = await send(client, "GET", f"/api/devices/{DEV}/browse?node={quote(node)}")
    assert (code_got, body["error"]["code"]) == (status, code), body
    assert_documented("/api/devices/{device}/browse", code_got, body)
    assert "struct" not in body["error"]["message"] and "ushort" not in body["error"]["message"]
