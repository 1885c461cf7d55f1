"""Over https the session cookie is also Secure (a real TLS server with a throw-away certificate)."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from auth_harness import build_app

from plantwire.broker import free_port
from plantwire_platform.auth.api_auth import api_auth_running
from plantwire_platform.auth.auth_settings import AuthSettings
from plantwire_platform.auth.scopes import Scope

OPENSSL = shutil.which("openssl")


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A throw-away self-signed certificate for 127.0.0.1, and its key."""
    if OPENSSL is None:
        pytest.fail("openssl is needed to make a test certificate (apt-get install openssl)")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [str(OPENSSL), "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


async def test_session_cookie_is_secure_over_https(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    client_tls = ssl.create_default_context(cafile=str(cert))
    port = free_port()
    async with asyncio.timeout(30), api_auth_running(AuthSettings(), tmp_path, "127.0.0.1", port) as auth:
        secret = await auth.tokens.create("tls", Scope.READ)
        runner = web.AppRunner(build_app(auth), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", port, ssl_context=server_tls).start()
            base = f"https://127.0.0.1:{port}"
            async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
                async with http.post(
                    base + "/api/login", json={"token": secret}, headers={"Origin": base}, ssl=client_tls
                ) as resp:
                    assert resp.status == 200
                    morsel = resp.cookies["plantwire_session"]
                    assert morsel["secure"] and morsel["httponly"] and morsel["samesite"] == "Strict"
        finally:
            await runner.cleanup()
