"""The handle routes on the platform's app behind the real auth middleware and token catalog.

The platform's routes need a token (the middleware), the handle routes are public to the
middleware and check the scope themselves with the same token catalog, so Handle clients may send
Basic auth as `300:<prefix>/ADMIN`; restricted values need a token, writes an admin token.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from plantwire_platform.auth.api_auth import ApiAuth, api_auth_running
from plantwire_platform.auth.auth_settings import AuthSettings
from plantwire_platform.auth.scopes import Scope
from plantwire_platform.identifiers.running import PlatformIdentifiers, identifiers_running
from plantwire_platform.identifiers.settings import IdentifierSettings
from plantwire_platform.ingest.stats import IngestStats
from plantwire_platform.store.sqlite import SqliteStore
from plantwire_platform.web.app import create_app
from plantwire_platform.web.auth_middleware import SESSION_COOKIE, declare_routes, install
from plantwire_platform.web.route_access import PLATFORM_ROUTE_ACCESS
from plantwire_platform.web.runtime import PlatformRuntime

DEVICE = "0.TEST/device.press-1"
JSON = {"Content-Type": "application/json"}


@dataclass
class Secured:
    http: aiohttp.ClientSession
    auth: ApiAuth
    ids: PlatformIdentifiers
    admin: str
    reader: str
    app: web.Application


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
async def secured(tmp_path: Path) -> AsyncIterator[Secured]:
    store = SqliteStore.open(tmp_path / "platform.sqlite")
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(asyncio.timeout(30))
        stack.callback(store.close)
        ids = await stack.enter_async_context(identifiers_running(IdentifierSettings(), tmp_path, store))
        auth = await stack.enter_async_context(api_auth_running(AuthSettings(), tmp_path, "127.0.0.1", 8080))
        admin = await auth.tokens.create("ids-admin", Scope.ADMIN)
        reader = await auth.tokens.create("ids-reader", Scope.READ)
        app = create_app(PlatformRuntime(store, IngestStats, identifiers=ids))
        install(app, auth, [PLATFORM_ROUTE_ACCESS])
        runner = web.AppRunner(app)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        await web.TCPSite(runner, "127.0.0.1", 0).start()  # origins are not tested here: no Origin sent
        port = runner.addresses[0][1]
        http = await stack.enter_async_context(aiohttp.ClientSession(f"http://127.0.0.1:{port}"))
        await ids.service.registry.ensure_device("line-a", "press-1", {"endpoint": "opc.tcp://10.0.0.5:4840"})
        yield Secured(http, auth, ids, admin, reader, app)


async def call(s: Secured, method: str, path: str, **kw: Any) -> tuple[int, Any]:
    async with asyncio.timeout(10), s.http.request(method, path, **kw) as resp:
        return resp.status, await resp.json()


def types(body: dict[str, Any]) -> set[str]:
    return {v["type"] for v in body["values"]}


async def test_every_handle_route_is_declared_to_the_middleware(secured: Secured) -> None:
    undeclared = declare_routes(secured.app, PLATFORM_ROUTE_ACCESS)
    assert [r for r in undeclared if "handles" in r[1] or "identifiers" in r[1]] == []
    status, _ = await call(secured, "GET", "/api/devices")  # the rest of the API needs a token
    assert status == 401


async def test_resolution_is_public_and_restricted_values_need_a_platform_token(secured: Secured) -> None:
    status, body = await call(secured, "GET", f"/api/handles/{DEVICE}")
    assert (status, body["responseCode"]) == (200, 1)
    assert "endpoint" not in types(body)
    status, body = await call(secured, "GET", f"/api/handles/{DEVICE}", headers=bearer(secured.reader))
    assert status == 200 and "endpoint" in types(body)
    status, body = await call(secured, "GET", "/api/handles?prefix=0.TEST")
    assert (status, body["responseCode"]) == (401, 402)
    status, body = await call(secured, "GET", "/api/handles?prefix=0.TEST", headers=bearer(secured.reader))
    assert status == 200 and DEVICE in body["handles"]


async def test_a_logged_in_dashboard_sees_restricted_values_with_its_session_cookie(secured: Secured) -> None:
    logged_in = await secured.auth.log_in(secured.reader)
    assert logged_in is not None
    cookie = {"Cookie": f"{SESSION_COOKIE}={logged_in[0]}"}
    status, body = await call(secured, "GET", f"/api/handles/{DEVICE}", headers=cookie)
    assert status == 200 and "endpoint" in types(body)
    stale = {"Cookie": f"{SESSION_COOKIE}=not-a-session"}
    status, body = await call(secured, "GET", f"/api/handles/{DEVICE}", headers=stale)
    assert status == 200 and "endpoint" not in types(body)  # still public, nothing restricted


async def test_handle_clients_write_with_basic_auth_and_an_admin_token(secured: Secured) -> None:
    values = {"values": [{"index": 2, "type": "DESC", "data": {"format": "string", "value": "a test"}}]}
    # pyhandle percent-encodes the user `300:0.TEST/ADMIN`
    as_admin = {**JSON, **basic("300%3A0.TEST%2FADMIN", secured.admin)}
    status, body = await call(secured, "PUT", "/api/handles/0.TEST/doc.one", json=values, headers=as_admin)
    assert (status, body["responseCode"]) == (201, 1)
    status, body = await call(secured, "GET", "/api/handles/0.TEST/doc.one")
    assert status == 200 and "DESC" in types(body)

    as_reader = {**JSON, **basic("300:0.TEST/ADMIN", secured.reader)}
    status, body = await call(secured, "PUT", "/api/handles/0.TEST/doc.two", json=values, headers=as_reader)
    assert (status, body["responseCode"]) == (403, 400)

    before = secured.auth.stats.auth_failures_total["unknown_token"]
    wrong = {**JSON, **bearer("pw_" + "x" * 43)}
    status, body = await call(secured, "DELETE", "/api/handles/0.TEST/doc.one", headers=wrong)
    assert (status, body["responseCode"]) == (401, 402)
    assert secured.auth.stats.auth_failures_total["unknown_token"] == before + 1
    status, body = await call(secured, "DELETE", "/api/handles/0.TEST/doc.one", headers=bearer(secured.admin))
    assert (status, body["responseCode"]) == (200, 1)
