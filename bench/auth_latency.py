"""What the auth middleware costs on a simple GET: `/api/latest` with and without it, same run.

    .venv/bin/python bench/auth_latency.py [--requests 2000] [--rounds 6]

Two copies of the real platform app (`create_app`) on one SQLite store holding a device of 50
tags, each on its own loopback port; one is wired as the platform wires it (`secure_app`) and called with a
Bearer token. Requests go one at a time over a kept-alive connection, alternating between the two
apps in rounds (A B, B A, ...) so that machine load falls on both alike. Prints the median and p90
latency of each and the middleware's share; target: under 5 %. Also times the middleware on its own,
in-process, which the machine's load disturbs far less.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from plantwire.broker import free_port
from plantwire.wire import DataBatch, Sample
from plantwire_platform.auth.api_auth import ApiAuth
from plantwire_platform.auth.auth_settings import AuthSettings
from plantwire_platform.auth.scopes import Scope
from plantwire_platform.auth.token_catalog import tokens_path
from plantwire_platform.auth.token_service import token_service
from plantwire_platform.ingest.stats import IngestStats
from plantwire_platform.store.model import IncomingBatch
from plantwire_platform.store.sqlite import SqliteStore
from plantwire_platform.web.app import create_app, secure_app
from plantwire_platform.web.auth_middleware import auth_middleware
from plantwire_platform.web.runtime import PlatformRuntime

T0 = 1_700_000_000_000_000


def fill(store: SqliteStore) -> None:
    for step in range(100):
        samples = [Sample(f"tag{t:02d}", T0 + step * 100_000, float(step + t)) for t in range(50)]
        store.write_batches([IncomingBatch("gw", "cnc-1", DataBatch(step + 1, T0, samples))])


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}/api/latest?device=cnc-1"


async def timed_gets(http: aiohttp.ClientSession, url: str, headers: dict[str, str], n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        async with http.get(url, headers=headers) as resp:
            await resp.read()
            assert resp.status == 200, resp.status
        out.append(time.perf_counter() - started)
    return out


async def middleware_us(app: web.Application, secret: str, n: int = 20_000) -> float:
    """The middleware's own time per request, in-process: resolve, credential, scope, hand over."""
    request = make_mocked_request(
        "GET", "/api/latest?device=cnc-1", headers={"Authorization": f"Bearer {secret}"}, app=app
    )
    match_info = await app.router.resolve(request)  # the real route, as the server resolves it
    match_info.add_app(app)
    match_info.freeze()
    request._match_info = match_info

    async def handler(r: web.Request) -> web.StreamResponse:
        return ok

    ok = web.Response()
    started = time.perf_counter()
    for _ in range(n):
        await auth_middleware(request, handler)
    return (time.perf_counter() - started) / n * 1e6


async def main(requests: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore.open(Path(tmp) / "plantwire.sqlite")
        fill(store)
        async with token_service(tokens_path(Path(tmp))) as tokens:
            secret = await tokens.create("bench", Scope.READ)
            plain = create_app(PlatformRuntime(store, lambda: IngestStats(connected=True)))
            guarded = create_app(PlatformRuntime(store, lambda: IngestStats(connected=True)))
            secure_app(guarded, ApiAuth(tokens, AuthSettings(), frozenset()))  # as the platform wires it
            runners = []
            try:
                plain_runner, plain_url = await serve(plain)
                runners.append(plain_runner)
                guarded_runner, guarded_url = await serve(guarded)
                runners.append(guarded_runner)
                without: list[float] = []
                with_auth: list[float] = []
                bearer = {"Authorization": f"Bearer {secret}"}
                async with aiohttp.ClientSession() as http:
                    await timed_gets(http, plain_url, {}, 200)  # warm up both
                    await timed_gets(http, guarded_url, bearer, 200)
                    per_round = max(requests // rounds, 1)
                    for r in range(rounds):
                        pair = [(plain_url, {}, without), (guarded_url, bearer, with_auth)]
                        for url, headers, sink in pair if r % 2 == 0 else reversed(pair):
                            sink.extend(await timed_gets(http, url, headers, per_round))
            finally:
                for runner in runners:
                    await runner.cleanup()
            check_us = await middleware_us(guarded, secret)
        store.close()
    report(without, with_auth, check_us)


def report(without: list[float], with_auth: list[float], check_us: float) -> None:
    def p(values: list[float], q: int) -> float:
        return statistics.quantiles(values, n=100)[q - 1] * 1e3

    base, guarded = statistics.median(without) * 1e3, statistics.median(with_auth) * 1e3
    print(f"GET /api/latest (50 tags), {len(without)} requests each, sequential, loopback")
    print(f"  without auth: median {base:.3f} ms  p90 {p(without, 90):.3f} ms")
    print(f"  with auth:    median {guarded:.3f} ms  p90 {p(with_auth, 90):.3f} ms")
    print(f"  middleware share: {100 * (guarded - base) / base:+.1f} % of the median (target < 5 %)")
    print(f"  the middleware alone, in-process: {check_us:.1f} us per request = {check_us / 10 / base:.2f} %")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000, help="requests per app (default 2000)")
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds (default 6)")
    ns = parser.parse_args()
    asyncio.run(main(ns.requests, ns.rounds))
