"""Beyond the local prefix: relaying to an upstream resolver (with caches) and syncing our
identifiers to a second-level node, both against the loopback node in upstream_node.py."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import structlog
from conftest import ADMIN, RunningPlatform
from upstream_node import UpstreamNode, run_upstream_node

from plantwire_platform.identifiers.catalog import IdentifierCatalog
from plantwire_platform.identifiers.resolver import Resolver, UpstreamError
from plantwire_platform.identifiers.settings import IdentifierSettings, UpstreamSettings
from plantwire_platform.identifiers.upstream_sync import SecondLevelNodeSync, SyncError

FOREIGN = "88.118.8/part.abc"
FOREIGN_VALUES = [
    {
        "index": 1,
        "type": "URL",
        "data": {"format": "string", "value": "http://x/abc"},
        "ttl": 600,
        "timestamp": "2026-01-01T00:00:00Z",
    },
    {
        "index": 2,
        "type": "name",
        "data": {"format": "string", "value": "bearing"},
        "ttl": 600,
        "timestamp": "2026-01-01T00:00:00Z",
    },
]


async def test_other_prefixes_are_relayed_and_cached(
    platform: RunningPlatform, upstream: UpstreamNode
) -> None:
    upstream.handles[FOREIGN] = FOREIGN_VALUES
    async with asyncio.timeout(10):
        for _ in range(3):
            resp = await platform.http.get(f"/api/handles/{FOREIGN}")
            assert resp.status == 200
            assert await resp.json() == {"responseCode": 1, "handle": FOREIGN, "values": FOREIGN_VALUES}
        filtered = await (await platform.http.get(f"/api/handles/{FOREIGN}?type=name")).json()
        assert [v["index"] for v in filtered["values"]] == [2]
    assert len(upstream.calls(f"/api/handles/{FOREIGN}")) == 1
    assert platform.service.resolver.counters.cache_hits == 3


async def test_not_found_upstream_is_negatively_cached(
    platform: RunningPlatform, upstream: UpstreamNode
) -> None:
    async with asyncio.timeout(10):
        for _ in range(2):
            resp = await platform.http.get("/api/handles/88.118.8/missing")
            assert (resp.status, (await resp.json())["responseCode"]) == (404, 100)
    assert len(upstream.calls("/api/handles/88.118.8/missing")) == 1
    assert platform.service.resolver.counters.negative_hits == 1


async def test_cache_expires_by_ttl_and_is_bounded(tmp_path: object, upstream: UpstreamNode) -> None:
    upstream.handles[FOREIGN] = [dict(FOREIGN_VALUES[0], ttl=0)]
    upstream.handles["88.118.8/b"] = FOREIGN_VALUES
    upstream.handles["88.118.8/c"] = FOREIGN_VALUES
    settings = IdentifierSettings.model_validate({"upstream": {"url": upstream.url, "cache_size": 1}})
    async with asyncio.timeout(10), IdentifierCatalog(tmp_path / "c.sqlite") as cat:  # type: ignore[operator]
        async with Resolver(settings, cat) as resolver:
            await resolver.resolve(FOREIGN)
            await resolver.resolve(FOREIGN)  # ttl 0: never cached
            await resolver.resolve("88.118.8/b")
            await resolver.resolve("88.118.8/c")  # evicts b
            await resolver.resolve("88.118.8/b")
    assert len(upstream.calls(f"/api/handles/{FOREIGN}")) == 2
    assert len(upstream.calls("/api/handles/88.118.8/b")) == 2


async def test_an_unreachable_upstream_is_a_502_not_a_not_found(
    platform: RunningPlatform, tmp_path: object
) -> None:
    async with asyncio.timeout(10):
        async with run_upstream_node(UpstreamNode()) as gone:
            url = gone.url
        settings = IdentifierSettings.model_validate({"upstream": {"url": url, "timeout_s": 2}})
        async with IdentifierCatalog(tmp_path / "c.sqlite") as cat, Resolver(settings, cat) as resolver:  # type: ignore[operator]
            with pytest.raises(UpstreamError):
                await resolver.resolve(FOREIGN)
        unconfigured = Resolver(IdentifierSettings(), platform.service.catalog)
        with pytest.raises(UpstreamError, match="no upstream"):
            await unconfigured.resolve(FOREIGN)


async def test_sync_registers_new_identifiers_once_retrying_5xx_without_logging_the_secret(
    platform: RunningPlatform, upstream: UpstreamNode
) -> None:
    reg = platform.service.registry
    async with asyncio.timeout(20):
        await reg.ensure_device("line-1", "cnc-1", {"endpoint": "opc.tcp://10.0.0.9:4840"})
        await reg.mint("part", "cnc-1.7", {"machine": "cnc-1", "start": "s", "end": "e", "result": "ok"})
        upstream.records["0.TEST/ADMIN"] = {"handle": "0.TEST/ADMIN"}  # registered by someone before
        upstream.fail_next = 2
        with structlog.testing.capture_logs() as logs:
            resp = await platform.http.post("/api/identifiers/sync", headers=ADMIN)
            body = await resp.json()
        assert resp.status == 200
        assert body == {
            "responseCode": 1,
            "prefix": "0.TEST",
            "registered": 2,
            "already": 1,
            "failed": 0,
            "retries": 2,
        }
        again = await (await platform.http.post("/api/identifiers/sync", headers=ADMIN)).json()
        assert again["registered"] == again["already"] == 0
        assert (await platform.http.post("/api/identifiers/sync")).status == 401
    device = upstream.records["0.TEST/device.cnc-1"]
    assert device["templateVersion"] == "1.0"
    types = [v["type"] for v in device["value"]]
    assert "gateway" in types and "endpoint" not in types and "HS_ADMIN" not in types
    assert all(v["data"]["format"] == "string" for v in device["value"])
    logins = upstream.calls("/identity/token")
    assert logins[-1].body == {"username": "plantwire", "password": upstream.password}
    assert all(r.headers["Authorization"].startswith("Bearer ") for r in upstream.calls("/identityv2/data"))
    assert upstream.password not in repr(logs)
    assert any(e["event"] == "identifier_sync_retry" for e in logs)


async def test_sync_fails_clearly_on_bad_credentials_and_a_dead_node(
    platform: RunningPlatform, upstream: UpstreamNode, settings: IdentifierSettings
) -> None:
    catalog = platform.service.catalog
    wrong = settings.sync.model_copy(update={"password": settings.sync.password.__class__("wrong")})
    async with asyncio.timeout(20):
        with structlog.testing.capture_logs() as logs, pytest.raises(SyncError, match="refused the login"):
            await SecondLevelNodeSync(wrong, catalog).run()
        assert "wrong" not in repr(logs) and upstream.password not in repr(logs)
        upstream.fail_next = 100
        with pytest.raises(SyncError, match="unavailable"):
            await SecondLevelNodeSync(settings.sync, catalog).run()
        unsynced = await catalog.unsynced()
    assert len(upstream.calls("/identity/token")) == 1 + settings.sync.retries + 1
    assert unsynced != []  # nothing marked synced


async def test_two_platforms_pointing_at_each_other_do_not_loop(
    platform: RunningPlatform, settings: IdentifierSettings, tmp_path: Path, upstream: UpstreamNode
) -> None:
    """B relays other prefixes to A; A relays to the loopback node. A request relayed by B to A for
    a prefix A does not own either is answered 'not here' by A, not relayed on."""
    b_settings = settings.model_copy(
        update={"prefix": "0.TEST.B", "upstream": UpstreamSettings(url=platform.url)}
    )
    async with (
        asyncio.timeout(20),
        IdentifierCatalog(tmp_path / "b.sqlite") as cat,
        Resolver(b_settings, cat) as b,
    ):
        with pytest.raises(UpstreamError, match="HTTP 400"):
            await b.resolve("88.118.8/anything")
        a_local = await b.resolve("0.TEST/ADMIN")
        assert a_local is not None and a_local.source == "upstream"
        relayed = await platform.http.get("/api/handles/88.1.1/x", headers={"X-Plantwire-Relayed": "1"})
        assert (relayed.status, (await relayed.json())["responseCode"]) == (400, 301)
    assert upstream.log == []  # A never relayed what B had relayed to it
