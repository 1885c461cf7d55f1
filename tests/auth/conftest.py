"""Fixtures of the auth tests: a running app with the middleware and a token of each scope."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from auth_harness import Platform, auth_settings, build_app

from plantwire.broker import free_port
from plantwire_platform.auth.api_auth import ApiAuth
from plantwire_platform.auth.auth_settings import AuthSettings
from plantwire_platform.auth.scopes import Scope
from plantwire_platform.auth.token_catalog import tokens_path
from plantwire_platform.auth.token_service import token_service


@pytest.fixture
def settings() -> AuthSettings:
    return auth_settings()


@pytest.fixture
async def api(tmp_path: Path, settings: AuthSettings) -> AsyncIterator[Platform]:
    port = free_port()
    async with asyncio.timeout(30):
        async with token_service(tokens_path(tmp_path), refresh_s=0.05) as tokens:
            auth = ApiAuth(tokens, settings, settings.origins("127.0.0.1", port))
            app = build_app(auth)
            server = TestServer(app, host="127.0.0.1", port=port)
            await server.start_server()
            try:
                async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
                    p = Platform(
                        f"http://127.0.0.1:{port}",
                        f"http://127.0.0.1:{port}",
                        auth,
                        tokens,
                        app,
                        http,
                        tmp_path,
                    )
                    for scope in Scope:
                        p.secrets[scope.value] = await tokens.create(f"{scope.value}-token", scope)
                    yield p
            finally:
                await server.close()
