"""A small upstream node on loopback for the tests: the Handle REST resolve endpoint of a recursive
resolver, and the second-level node management API (token + records), with a request log.

Only what Plantwire talks to: `GET /api/handles/{prefix}/{suffix}`, `POST /identity/token`,
`POST /identityv2/data`. `fail_next` makes the next N management calls answer 503.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class LoggedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class UpstreamNode:
    username: str = "plantwire"
    password: str = "s3cret-Pa55word!"
    handles: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    log: list[LoggedRequest] = field(default_factory=list)
    fail_next: int = 0
    tokens: set[str] = field(default_factory=set)
    url: str = ""

    def calls(self, path: str) -> list[LoggedRequest]:
        return [r for r in self.log if r.path == path]

    async def _record(self, request: web.Request) -> Any:
        body = await request.json() if request.can_read_body else None
        self.log.append(LoggedRequest(request.method, request.path, dict(request.headers), body))
        return body

    async def resolve(self, request: web.Request) -> web.Response:
        await self._record(request)
        name = f"{request.match_info['prefix']}/{request.match_info['suffix']}"
        values = self.handles.get(name)
        if values is None:
            return web.json_response({"responseCode": 100, "handle": name}, status=404)
        return web.json_response({"responseCode": 1, "handle": name, "values": values})

    async def token(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        if self.fail_next > 0:
            self.fail_next -= 1
            return web.json_response({"status": 0, "message": "busy"}, status=503)
        if body != {"username": self.username, "password": self.password}:
            return web.json_response({"status": 0, "message": "bad credentials"}, status=401)
        token = secrets.token_urlsafe(16)
        self.tokens.add(token)
        return web.json_response({"status": 1, "data": {"token": token}})

    async def data(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        if self.fail_next > 0:
            self.fail_next -= 1
            return web.json_response({"status": 0, "message": "busy"}, status=503)
        if request.headers.get("Authorization", "").removeprefix("Bearer ") not in self.tokens:
            return web.json_response({"status": 0, "message": "token expired"}, status=401)
        if not isinstance(body, dict) or not {"handle", "templateVersion", "value"} <= set(body):
            return web.json_response({"status": 0, "message": "bad record"}, status=400)
        if body["handle"] in self.records:
            return web.json_response({"status": 0, "message": "handle already exists"}, status=200)
        self.records[body["handle"]] = body
        return web.json_response({"status": 1, "message": "success"})


@asynccontextmanager
async def run_upstream_node(node: UpstreamNode) -> AsyncIterator[UpstreamNode]:
    app = web.Application()
    app.router.add_get("/api/handles/{prefix}/{suffix:.+}", node.resolve)
    app.router.add_post("/identity/token", node.token)
    app.router.add_post("/identityv2/data", node.data)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    node.url = f"http://127.0.0.1:{port}"
    try:
        yield node
    finally:
        await runner.cleanup()
