"""Shared by the auth tests: a real aiohttp app with the auth middleware, stand-in routes that
declare their scopes, the login and token routes, and a real SQLite token catalog."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiohttp
from aiohttp import WSMsgType, web

from plantwire_platform.auth.api_auth import ApiAuth
from plantwire_platform.auth.auth_settings import AuthSettings
from plantwire_platform.auth.scopes import Scope
from plantwire_platform.auth.token_service import AsyncTokenCatalog
from plantwire_platform.web.auth_middleware import identity_of, install, public, requires
from plantwire_platform.web.errors import error_middleware
from plantwire_platform.web.login_routes import add_login_routes
from plantwire_platform.web.responses import json_response
from plantwire_platform.web.token_routes import add_token_routes

DONE_KEY: Final = web.AppKey("done", list)
"""What the stand-in state-changing routes did: a refused request must leave it untouched."""


@requires(Scope.READ)
async def read_things(request: web.Request) -> web.Response:
    return json_response({"things": [1, 2, 3], "by": identity_of(request).name})


@requires(Scope.OPERATE)
async def write_setpoint(request: web.Request) -> web.Response:
    body = await request.json()
    request.app[DONE_KEY].append(("write", identity_of(request).name, body))
    return json_response({"written": body, "by": identity_of(request).name})


@requires(Scope.ADMIN)
async def detach(request: web.Request) -> web.Response:
    request.app[DONE_KEY].append(("detach", identity_of(request).name, None))
    return json_response({"detached": True})


async def undeclared(request: web.Request) -> web.Response:
    return json_response({"undeclared": True})


@public
async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "alive"})


@requires(Scope.READ)
async def metrics(request: web.Request) -> web.Response:
    return web.Response(text="plantwire_up 1\n")


@requires(Scope.READ)
async def page(request: web.Request) -> web.Response:
    return web.Response(text="<!doctype html><title>dashboard</title>", content_type="text/html")


@requires(Scope.READ)
async def stream(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.send_json({"hello": identity_of(request).name})
    async for msg in ws:
        if msg.type == WSMsgType.TEXT:
            await ws.send_str(msg.data)
    return ws


def build_app(auth: ApiAuth) -> web.Application:
    app = web.Application(middlewares=[error_middleware])
    app[DONE_KEY] = []
    app.router.add_get("/api/things", read_things)
    app.router.add_post("/api/devices/{device}/write", write_setpoint)
    app.router.add_delete("/api/gateways/{gateway}/devices/{device}", detach)
    app.router.add_get("/api/undeclared", undeclared)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/", page)
    app.router.add_get("/api/stream", stream)
    add_login_routes(app)
    add_token_routes(app)
    install(app, auth)
    return app


@dataclass
class Platform:
    """The running test app: its URL, auth state, token catalog and an HTTP client (no cookie jar)."""

    base: str
    origin: str
    auth: ApiAuth
    tokens: AsyncTokenCatalog
    app: web.Application
    http: aiohttp.ClientSession
    data_dir: Path
    secrets: dict[str, str] = field(default_factory=dict)

    def bearer(self, secret: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {secret}"}

    async def request(self, method: str, path: str, **kw: Any) -> tuple[int, Any, aiohttp.ClientResponse]:
        async with asyncio.timeout(10):
            async with self.http.request(method, self.base + path, allow_redirects=False, **kw) as resp:
                try:
                    body = await resp.json(content_type=None)
                except ValueError:
                    body = await resp.text()
                return resp.status, body, resp

    @property
    def done(self) -> list[Any]:
        return self.app[DONE_KEY]


def auth_settings(**overrides: Any) -> AuthSettings:
    return AuthSettings(failure_burst=5, failure_refill_s=60.0, **overrides)
