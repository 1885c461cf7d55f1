"""The platform's real app with the auth wired in: every route declared, the attack refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from plantwire.broker import free_port
from plantwire_platform.auth.api_auth import ApiAuth, api_auth_running
from plantwire_platform.auth.auth_settings import AuthSettings
from plantwire_platform.auth.scopes import Scope
from plantwire_platform.auth.token_catalog import tokens_path
from plantwire_platform.auth.token_service import AsyncTokenCatalog, token_service
from plantwire_platform.ingest.stats import IngestStats
from plantwire_platform.store.sqlite import SqliteStore
from plantwire_platform.web.app import create_app, secure_app
from plantwire_platform.web.auth_middleware import declare_routes
from plantwire_platform.web.login_routes import add_login_routes
from plantwire_platform.web.route_access import PLATFORM_ROUTE_ACCESS
from plantwire_platform.web.runtime import PlatformRuntime
from plantwire_platform.web.token_routes import add_token_routes


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore.open(tmp_path / "plantwire.sqlite")
    yield s
    s.close()


@pytest.fixture
async def tokens(tmp_path: Path) -> AsyncIterator[AsyncTokenCatalog]:
    async with token_service(tokens_path(tmp_path)) as t:
        yield t


async def test_every_platform_route_is_declared(store: SqliteStore, tokens: AsyncTokenCatalog) -> None:
    app = create_app(PlatformRuntime(store, IngestStats))
    add_login_routes(app)
    add_token_routes(app)
    assert declare_routes(app, PLATFORM_ROUTE_ACCESS) == []


async def test_the_reported_attack_on_the_real_app(store: SqliteStore, tmp_path: Path) -> None:
    """No token: nothing readable, nothing writable; the cross-site text/plain setpoint is refused."""
    port = free_port()
    async with api_auth_running(AuthSettings(), tmp_path / "data", "127.0.0.1", port) as auth:
        await attack(store, auth, port)


async def attack(store: SqliteStore, auth: ApiAuth, port: int) -> None:
    tokens = auth.tokens
    app = create_app(PlatformRuntime(store, lambda: IngestStats(connected=True)))
    secure_app(app, auth)
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    base = f"http://127.0.0.1:{port}"
    read = await tokens.create("viewer", Scope.READ)
    try:
        async with asyncio.timeout(20), aiohttp.ClientSession() as http:

            async def status(method: str, path: str, **kw: object) -> int:
                async with http.request(method, base + path, allow_redirects=False, **kw) as resp:  # type: ignore[arg-type]
                    return resp.status

            assert await status("GET", "/healthz") == 200
            assert await status("GET", "/api/devices") == 401
            assert await status("GET", "/api/devices", headers={"Authorization": f"Bearer {read}"}) == 200
            attack = {"Origin": "http://evil.example", "Content-Type": "text/plain"}
            assert (
                await status("POST", "/api/devices/cnc-1/write", data='{"tag":"x","value":1}', headers=attack)
                == 403
            )
            for method, path in (
                ("POST", "/api/devices/cnc-1/write"),
                ("POST", "/api/devices/cnc-1/call"),
                ("POST", "/api/gateways/gw/devices"),
                ("POST", "/api/apps/threshold/disable"),
                ("POST", "/api/alarms/1/ack"),
            ):
                assert await status(method, path, json={}) == 401, path
                assert await status(method, path, json={}, headers={"Authorization": f"Bearer {read}"}) == 403
            assert await status("DELETE", "/api/gateways/gw/devices/cnc-1") == 401
            with pytest.raises(aiohttp.WSServerHandshakeError) as ws:
                await http.ws_connect(base + "/api/stream", origin="http://evil.example")
            assert ws.value.status == 403
    finally:
        await server.close()


async def test_the_served_openapi_document_names_each_operations_scope(
    store: SqliteStore, tmp_path: Path
) -> None:
    """The bearer scheme and every operation's scope, as the middleware enforces them."""
    port = free_port()
    async with api_auth_running(AuthSettings(), tmp_path / "data", "127.0.0.1", port) as auth:
        app = create_app(PlatformRuntime(store, IngestStats))
        secure_app(app, auth)
        reader = await auth.tokens.create("viewer", Scope.READ)
        server = TestServer(app, host="127.0.0.1", port=port)
        await server.start_server()
        try:
            async with asyncio.timeout(20), aiohttp.ClientSession() as http:
                headers = {"Authorization": f"Bearer {reader}"}
                async with http.get(f"http://127.0.0.1:{port}/api/openapi.json", headers=headers) as resp:
                    assert resp.status == 200
                    doc = await resp.json()
        finally:
            await server.close()
    scheme = doc["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    ops = {(m.upper(), p): op for p, item in doc["paths"].items() for m, op in item.items()}
    for probe in (("GET", "/healthz"), ("GET", "/readyz")):
        assert ops[probe]["security"] == [] and "x-required-scope" not in ops[probe]
    expected = {
        ("GET", "/api/latest"): "read",
        ("GET", "/metrics"): "read",
        ("POST", "/api/devices/{device}/write"): "operate",
        ("POST", "/api/alarms/{alarm_id}/ack"): "operate",
        ("DELETE", "/api/gateways/{gateway}/devices/{device}"): "admin",
        ("POST", "/api/apps/{app_id}/enable"): "admin",
    }
    for key, scope in expected.items():
        assert ops[key]["security"] == [{"bearer": []}], key
        assert ops[key]["x-required-scope"] == scope, key
        assert f"`{scope}` scope" in ops[key]["description"]
        assert {"401", "403"} <= set(ops[key]["responses"])
    # Public to the middleware: the probes, and the identifier routes (they check Bearer or Handle-style
    # Basic credentials themselves, per value).
    public = [
        k
        for k in ops
        if k in (("GET", "/healthz"), ("GET", "/readyz"))
        or k[1].startswith(("/api/handles", "/api/identifiers"))
    ]
    guarded = [k for k in ops if k not in public]
    assert all(ops[k]["security"] == [{"bearer": []}] for k in guarded), [
        k for k in guarded if ops[k]["security"] != [{"bearer": []}]
    ]
    assert all(ops[k].get("security") == [] for k in public), [(k, ops[k].get("security")) for k in public]
