"""The Handle.Net REST shape on a running aiohttp app: resolve, filters, scopes, PUT/DELETE, list, QR."""

from __future__ import annotations

import asyncio
import base64
import xml.etree.ElementTree as ET

import structlog
from conftest import ADMIN, READ, RunningPlatform

from plantwire_platform.identifiers.registry import LocalRegistry
from plantwire_platform.web.handle_routes import COUNTERS

META = {"endpoint": "opc.tcp://10.1.2.3:4840", "root": "ns=2;s=CNC", "tags": []}


async def _device(registry: LocalRegistry) -> str:
    return (await registry.ensure_device("line-1", "cnc-1", META)).name


async def test_resolve_answers_the_handle_net_shape_without_restricted_values(
    platform: RunningPlatform,
) -> None:
    async with asyncio.timeout(10):
        name = await _device(platform.service.registry)
        resp = await platform.http.get(f"/api/handles/{name}")
        body = await resp.json()
    assert resp.status == 200 and body["responseCode"] == 1 and body["handle"] == "0.TEST/device.cnc-1"
    by_type = {v["type"]: v for v in body["values"]}
    assert set(by_type) == {"URL", "HS_ADMIN", "gateway"}  # endpoint is scope "read"
    url = by_type["URL"]
    assert url["index"] == 1 and url["data"] == {
        "format": "string",
        "value": "http://127.0.0.1:8080/api/devices/cnc-1",
    }
    assert isinstance(url["ttl"], int) and url["timestamp"].endswith("Z")
    assert by_type["HS_ADMIN"]["data"]["format"] == "admin"


async def test_a_token_shows_restricted_values_and_filters_select(platform: RunningPlatform) -> None:
    async with asyncio.timeout(10):
        name = await _device(platform.service.registry)
        full = await (await platform.http.get(f"/api/handles/{name}", headers=READ)).json()
        assert "opc.tcp://10.1.2.3:4840" in [v["data"]["value"] for v in full["values"]]
        bad = await platform.http.get(f"/api/handles/{name}", headers={"Authorization": "Bearer nope"})
        assert "endpoint" not in [v["type"] for v in (await bad.json())["values"]]
        some = await (await platform.http.get(f"/api/handles/{name}?type=URL&index=6")).json()
        assert [v["index"] for v in some["values"]] == [1, 6]
        none = await platform.http.get(f"/api/handles/{name}?type=NOPE")
        assert none.status == 200 and (await none.json()) == {
            "responseCode": 200,
            "handle": name,
            "values": [],
        }
        bad_index = await platform.http.get(f"/api/handles/{name}?index=x")
        assert bad_index.status == 400 and (await bad_index.json())["responseCode"] == 102


async def test_unknown_local_handle_is_404_with_response_code_100(platform: RunningPlatform) -> None:
    async with asyncio.timeout(10):
        resp = await platform.http.get("/api/handles/0.TEST/device.nope")
        assert resp.status == 404
        assert await resp.json() == {"responseCode": 100, "handle": "0.TEST/device.nope"}


async def test_put_and_delete_need_an_admin_token(platform: RunningPlatform) -> None:
    body = {"values": [{"index": 1, "type": "URL", "data": {"format": "string", "value": "http://a"}}]}
    path = "/api/handles/0.TEST/part.manual.1"
    async with asyncio.timeout(10):
        anon = await platform.http.put(path, json=body)
        assert (anon.status, (await anon.json())["responseCode"]) == (401, 402)
        reader = await platform.http.put(path, json=body, headers=READ)
        assert (reader.status, (await reader.json())["responseCode"]) == (403, 400)
        assert platform.app[COUNTERS].denied == 1
        created = await platform.http.put(path, json=body, headers=ADMIN)
        assert created.status == 201 and await created.json() == {
            "responseCode": 1,
            "handle": "0.TEST/part.manual.1",
        }
        replaced = await platform.http.put(path, json=body, headers=ADMIN)
        assert replaced.status == 200
        conflict = await platform.http.put(path + "?overwrite=false", json=body, headers=ADMIN)
        assert (conflict.status, (await conflict.json())["responseCode"]) == (409, 101)
        invalid = await platform.http.put(path, json={"values": [{"index": 1}]}, headers=ADMIN)
        assert (invalid.status, (await invalid.json())["responseCode"]) == (400, 202)
        huge = {"values": [{"index": i, "type": "x", "data": "y"} for i in range(1, 300)]}
        too_many = await platform.http.put(path, json=huge, headers=ADMIN)
        assert (too_many.status, (await too_many.json())["responseCode"]) == (400, 202)
        garbage = await platform.http.put(path, data=b"{not json", headers=ADMIN)
        assert (garbage.status, (await garbage.json())["responseCode"]) == (400, 4)
        foreign = await platform.http.put("/api/handles/88.1.2/x", json=body, headers=ADMIN)
        assert (foreign.status, (await foreign.json())["responseCode"]) == (400, 301)
        assert (await platform.http.delete(path)).status == 401
        deleted = await platform.http.delete(path, headers=ADMIN)
        assert deleted.status == 200 and (await deleted.json())["responseCode"] == 1
        gone = await platform.http.delete(path, headers=ADMIN)
        assert (gone.status, (await gone.json())["responseCode"]) == (404, 100)
        assert (await platform.http.get(path)).status == 404


async def test_basic_auth_as_the_prefix_admin_maps_to_the_api_token(platform: RunningPlatform) -> None:
    body = {"values": [{"index": 1, "type": "URL", "data": "http://b"}]}
    good = base64.b64encode(b"300%3A0.TEST%2FADMIN:admin-token-1").decode()
    wrong_user = base64.b64encode(b"300:0.TEST/OTHER:admin-token-1").decode()
    async with asyncio.timeout(10):
        ok = await platform.http.put(
            "/api/handles/0.TEST/part.b.1", json=body, headers={"Authorization": f"Basic {good}"}
        )
        assert ok.status == 201
        refused = await platform.http.put(
            "/api/handles/0.TEST/part.b.2", json=body, headers={"Authorization": f"Basic {wrong_user}"}
        )
        assert refused.status == 401
        guessed = base64.b64encode(b"300:0.TEST/ADMIN:guess").decode()
        with structlog.testing.capture_logs() as logs:
            resp = await platform.http.put(
                "/api/handles/0.TEST/part.b.3", json=body, headers={"Authorization": f"Basic {guessed}"}
            )
        assert resp.status == 401
        assert await platform.service.catalog.get("0.TEST/part.b.3") is None
    assert platform.app[COUNTERS].refused_tokens == 1
    assert [e["event"] for e in logs] == ["identifier_token_refused"] and "guess" not in repr(logs)


async def test_list_pages_through_the_prefix_with_a_token(platform: RunningPlatform) -> None:
    reg = platform.service.registry
    async with asyncio.timeout(10):
        for i in range(5):
            await reg.mint("part", f"cnc-1.{i}", {"machine": "cnc-1", "start": "s", "end": "e"})
        assert (await platform.http.get("/api/handles?prefix=0.TEST")).status == 401
        body = await (
            await platform.http.get("/api/handles?prefix=0.TEST&page=1&pageSize=2", headers=READ)
        ).json()
        assert body == {
            "responseCode": 1,
            "prefix": "0.TEST",
            "totalCount": "6",
            "page": 1,
            "pageSize": 2,
            "handles": ["0.TEST/part.cnc-1.1", "0.TEST/part.cnc-1.2"],
        }
        everything = await (await platform.http.get("/api/handles", headers=READ)).json()
        assert everything["handles"][0] == "0.TEST/ADMIN" and len(everything["handles"]) == 6
        bad = await platform.http.get("/api/handles?pageSize=0", headers=READ)
        assert bad.status == 400
        other = await platform.http.get("/api/handles?prefix=88.1.2", headers=READ)
        assert (other.status, (await other.json())["responseCode"]) == (400, 301)


async def test_qr_code_is_an_svg_of_the_resolution_url(platform: RunningPlatform) -> None:
    async with asyncio.timeout(10):
        name = await _device(platform.service.registry)
        resp = await platform.http.get(f"/api/handles/{name}/qr.svg")
        svg = await resp.read()
        missing = await platform.http.get("/api/handles/0.TEST/device.none/qr.svg")
    assert resp.status == 200 and resp.content_type == "image/svg+xml"
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    title = root.find("{http://www.w3.org/2000/svg}title")
    assert title is not None and title.text == f"http://127.0.0.1:8080/api/handles/{name}"
    assert missing.status == 404


async def test_put_with_index_changes_only_the_values_sent(platform: RunningPlatform) -> None:
    path = "/api/handles/0.TEST/part.m.1"
    full = {
        "values": [
            {"index": 1, "type": "URL", "data": "http://a"},
            {"index": 2, "type": "machine", "data": "m"},
        ]
    }
    change = {
        "values": [{"index": 2, "type": "machine", "data": "n"}, {"index": 3, "type": "result", "data": "ok"}]
    }
    async with asyncio.timeout(10):
        missing = await platform.http.put(path + "?index=2", json=change, headers=ADMIN)
        assert (missing.status, (await missing.json())["responseCode"]) == (404, 100)
        assert (await platform.http.put(path, json=full, headers=ADMIN)).status == 201
        taken = await platform.http.put(path + "?index=2&overwrite=false", json=change, headers=ADMIN)
        assert (taken.status, (await taken.json())["responseCode"]) == (409, 201)
        ok = await platform.http.put(path + "?index=2&index=3", json=change, headers=ADMIN)
        assert ok.status == 200
        body = await (await platform.http.get(path)).json()
    assert [(v["index"], v["data"]["value"]) for v in body["values"]] == [
        (1, "http://a"),
        (2, "n"),
        (3, "ok"),
    ]
