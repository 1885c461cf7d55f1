"""Fixtures of the identifier tests: settings -> service on a SQLite file -> a running aiohttp app
with the Handle routes on loopback; an upstream node on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from upstream_node import UpstreamNode, run_upstream_node

from plantwire_platform.identifiers.service import IdentifierService, open_identifiers
from plantwire_platform.identifiers.settings import IdentifierSettings
from plantwire_platform.web.handle_routes import add_handle_routes

TOKENS = {"admin-token-1": "admin", "read-token-1": "read", "operate-token-1": "operate"}
ADMIN = {"Authorization": "Bearer admin-token-1"}
READ = {"Authorization": "Bearer read-token-1"}


async def verify(token: str) -> str | None:
    return TOKENS.get(token)


@dataclass
class RunningPlatform:
    url: str
    service: IdentifierService
    http: aiohttp.ClientSession
    app: web.Application


@pytest.fixture
async def upstream() -> AsyncIterator[UpstreamNode]:
    async with asyncio.timeout(10), run_upstream_node(UpstreamNode()) as node:
        yield node


@pytest.fixture
def settings(upstream: UpstreamNode) -> IdentifierSettings:
    return IdentifierSettings.model_validate(
        {
            "prefix": "0.TEST",
            "public_url": "http://127.0.0.1:8080",
            "upstream": {"url": upstream.url, "negative_ttl_s": 30, "cache_size": 100},
            "sync": {
                "url": upstream.url,
                "username": upstream.username,
                "password": upstream.password,
                "backoff_s": 0.01,
                "retries": 3,
            },
        }
    )


@pytest.fixture
async def service(settings: IdentifierSettings, tmp_path: Path) -> AsyncIterator[IdentifierService]:
    async with asyncio.timeout(10), open_identifiers(settings, tmp_path / "platform.sqlite") as svc:
        yield svc


@pytest.fixture
async def platform(service: IdentifierService) -> AsyncIterator[RunningPlatform]:
    app = web.Application()
    add_handle_routes(app, service, verify)
    runner = web.AppRunner(app)
    async with asyncio.timeout(10):
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    async with aiohttp.ClientSession(url) as http:
        yield RunningPlatform(url, service, http, app)
    async with asyncio.timeout(10):
        await runner.cleanup()
