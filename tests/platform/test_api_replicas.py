"""Stateless API replicas: two `plantwire platform` processes on one PostgreSQL schema answer for
each other's tokens, login links and sessions (docs/scaling.md, "Stateless API replicas").

Real parts: the session's Mosquitto, two platform processes (own HTTP ports, data dirs and client
ids) on the PostgreSQL database of this test run (a schema of this test), `plantwire token` as a
process. Nothing is shared between the two but the database.
"""

from __future__ import annotations

import asyncio
import functools
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from plantwire.broker import MosquittoProcess, free_port

pytestmark = pytest.mark.integration

SESSION_COOKIE = "plantwire_session"


@dataclass
class Replica:
    url: str
    env: dict[str, str]
    proc: subprocess.Popen[bytes]


def _env(dsn: str, schema: str, client_id: str, data_dir: Path, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PLANTWIRE_STORE__BACKEND": "postgresql",
        "PLANTWIRE_STORE__POSTGRESQL__DSN": dsn,
        "PLANTWIRE_STORE__POSTGRESQL__SCHEMA_NAME": schema,
        "PLANTWIRE_CLIENT_ID": client_id,
        "PLANTWIRE_APPS__BUILTIN": "false",
        "PLANTWIRE_APPS__PATH": str(tmp_path / "no-apps"),
        "PLANTWIRE_STORE__PATH": str(data_dir / "plantwire.sqlite"),
        "PLANTWIRE_AUTH__FAILURE_BURST": "1000",  # the test polls with credentials not valid yet
    }


def _spawn(argv: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log, env=env)


async def until(what: Callable[[], Awaitable[bool]], interval: float = 0.1) -> None:
    """Poll until true; the caller's asyncio.timeout bounds it."""
    while not await what():
        await asyncio.sleep(interval)


@pytest.fixture
async def replicas(
    mosquitto: MosquittoProcess, postgres_dsn: str, postgres_schema: str, unique_id: str, tmp_path: Path
) -> AsyncIterator[tuple[Replica, Replica]]:
    started: list[Replica] = []
    try:
        for name in ("a", "b"):  # both start at once on the empty schema
            port = free_port()
            env = _env(postgres_dsn, postgres_schema, f"{unique_id}-{name}", tmp_path / name, tmp_path)
            argv = [sys.executable, "-m", "plantwire", "--log-format", "json", "--log-level", "warning",
                    "platform", "--http-port", str(port), "--mqtt-port", str(mosquitto.port)]  # fmt: skip
            proc = _spawn(argv, env, tmp_path / f"replica-{name}.log")
            started.append(Replica(f"http://127.0.0.1:{port}", env, proc))
        async with aiohttp.ClientSession() as http, asyncio.timeout(60):
            for r in started:
                await until(functools.partial(_ready, http, r))
        yield started[0], started[1]
    finally:
        for r in started:
            r.proc.terminate()
        for r in started:
            try:
                r.proc.wait(30)
            except subprocess.TimeoutExpired:
                r.proc.kill()
                r.proc.wait()


async def _ready(http: aiohttp.ClientSession, replica: Replica) -> bool:
    assert replica.proc.poll() is None, "a replica stopped; its log is in tmp_path"
    try:
        async with http.get(f"{replica.url}/readyz") as resp:
            return resp.status == 200
    except aiohttp.ClientError:
        return False


def token_cli(replica: Replica, *args: str) -> list[str]:
    """`plantwire token ...` with the replica's settings (so: on the PostgreSQL catalog)."""
    done = subprocess.run(
        [sys.executable, "-m", "plantwire", "token", *args],
        env=replica.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()


async def call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    token: str | None = None,
    session: str | None = None,
    body: dict[str, Any] | None = None,
) -> tuple[int, Any, aiohttp.ClientResponse]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if session is not None:
        headers["Cookie"] = f"{SESSION_COOKIE}={session}"
        headers["Origin"] = url.split("/", 3)[0] + "//" + url.split("/", 3)[2]
    async with http.request(method, url, headers=headers, json=body, allow_redirects=False) as resp:
        payload = await resp.json(content_type=None) if resp.content_type == "application/json" else None
        return resp.status, payload, resp


async def status_of(http: aiohttp.ClientSession, url: str, **kw: Any) -> int:
    status, _, _ = await call(http, "GET", url, **kw)
    return status


async def test_tokens_links_and_sessions_work_on_either_replica(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    # The CLI, with the platform's settings, writes into the shared catalog: both replicas take it.
    admin = (await asyncio.to_thread(token_cli, a, "create", "--name", "ops", "--scope", "admin"))[-1]
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http, asyncio.timeout(30):
        for r in (a, b):
            await until(functools.partial(_is, http, f"{r.url}/api/whoami", 200, token=admin))

        # A token created through A's API works on B (within B's refresh_s).
        status, made, _ = await call(
            http, "POST", f"{a.url}/api/tokens", admin, body={"name": "grafana", "scope": "read"}
        )
        assert status == 201
        reader = made["token"]
        await until(lambda: _is(http, f"{b.url}/api/devices", 200, token=reader))

        # Revoked through B: B refuses it at once, A within a few seconds.
        status, _, _ = await call(http, "DELETE", f"{b.url}/api/tokens/grafana", admin)
        assert status == 200
        assert await status_of(http, f"{b.url}/api/devices", token=reader) == 401
        await until(lambda: _is(http, f"{a.url}/api/devices", 401, token=reader))

        # A login link issued by A, redeemed on B: a session cookie that A accepts.
        status, link, _ = await call(http, "POST", f"{a.url}/api/login-links", admin, body={})
        assert status == 201
        status, _, resp = await call(http, "GET", b.url + link["path"])
        assert status == 303 and resp.headers["Location"] == "/"
        session = resp.cookies[SESSION_COOKIE].value
        status, who, _ = await call(http, "GET", f"{a.url}/api/whoami", session=session)
        assert (status, who) == (200, {"name": "ops", "scope": "admin", "via": "session"})
        assert await status_of(http, f"{b.url}/api/whoami", session=session) == 200
        status, _, resp = await call(http, "GET", a.url + link["path"])  # used: on no replica again
        assert status == 303 and resp.headers["Location"].endswith("link=invalid")

        # Logout on A ends the session on B (B may keep a positive answer up to 1 s).
        status, _, _ = await call(http, "POST", f"{a.url}/api/logout", session=session, body={})
        assert status == 204
        assert await status_of(http, f"{a.url}/api/whoami", session=session) == 401
        await until(lambda: _is(http, f"{b.url}/api/whoami", 401, session=session))

    listed = await asyncio.to_thread(token_cli, b, "list")
    assert [line.split()[0] for line in listed[1:]] == ["ops"]  # grafana revoked, by either side


async def _is(http: aiohttp.ClientSession, url: str, expected: int, **kw: Any) -> bool:
    return await status_of(http, url, **kw) == expected
