"""Local identifier resolution: lookups/s and latency of GET /api/handles/{prefix}/{suffix}.

Fills a SQLite catalog with N device/part identifiers, serves the Handle routes from a real aiohttp
server in a child process pinned to one core, and resolves random identifiers from this process
with C concurrent keep-alive connections for D seconds. Prints lookups/s, median and p99 as the
client saw them, and lookups per CPU-second of the server process (its own cost, whatever else
runs on the machine).

    python bench/resolve.py --count 100000 --seconds 10 --concurrency 16
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import psutil
from aiohttp import web

from plantwire.broker import free_port
from plantwire_platform.identifiers.catalog import CatalogDb
from plantwire_platform.identifiers.registry import LocalRegistry
from plantwire_platform.identifiers.service import open_identifiers
from plantwire_platform.identifiers.settings import IdentifierSettings
from plantwire_platform.web.handle_routes import add_handle_routes

PREFIX = "0.TEST"


def fill(db_path: Path, count: int, settings: IdentifierSettings) -> list[str]:
    """`count` part identifiers built by the registry's own rules, inserted in one transaction."""
    registry = LocalRegistry(settings, catalog=None)  # type: ignore[arg-type]  # only _build is used
    db = CatalogDb(db_path)
    handles = []
    for i in range(count):
        values = {"machine": f"cnc-{i % 50}", "program": "O1001-FLANGE", "start": "2026-12-01T08:00:00Z",
                  "end": "2026-12-01T08:00:42Z", "result": "ok", "spindle_speed_mean": 7990.5,
                  "spindle_load_max": 51.2}  # fmt: skip
        handles.append(registry._build("part", f"part.cnc-{i % 50}.{i}", values, None))
    db.put_many(handles, time.time())
    db.close()
    return [h.name for h in handles]


async def verify_any(token: str) -> str | None:
    return None


async def baseline(request: web.Request) -> web.Response:
    """The same server with no work at all: what aiohttp alone costs per request on this machine."""
    return web.Response(body=b'{"responseCode":1}', content_type="application/json")


async def serve(port: int, db_path: Path, hot: int) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    settings = IdentifierSettings(prefix=PREFIX, hot_cache_size=hot)
    async with open_identifiers(settings, db_path) as service:
        app = web.Application()
        add_handle_routes(app, service, verify_any)
        app.router.add_get("/bench/baseline", baseline)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        print("ready", flush=True)
        await asyncio.Event().wait()


async def load(port: int, names: list[str], seconds: float, concurrency: int, server: psutil.Process) -> None:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    rng = random.Random(7)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", connector=connector) as http:

        async def worker() -> None:
            while (t0 := time.perf_counter()) < deadline:
                async with http.get(
                    f"/api/handles/{rng.choice(names)}" if names else "/bench/baseline"
                ) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"HTTP {resp.status}")
                latencies.append(time.perf_counter() - t0)

        cpu0 = sum(server.cpu_times()[:2])
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - start
        cpu = sum(server.cpu_times()[:2]) - cpu0
    q = statistics.quantiles(latencies, n=100)
    what = "resolve" if names else "baseline"
    print(
        f"{what}: {len(latencies)} lookups in {wall:.1f} s "
        f"= {len(latencies) / wall:,.0f}/s  "
        f"median {statistics.median(latencies) * 1e3:.2f} ms  p99 {q[98] * 1e3:.2f} ms  "
        f"(concurrency {concurrency}, {len(names):,} identifiers)\n"
        f"         server CPU {cpu:.1f} s: {len(latencies) / cpu:,.0f} lookups per CPU-second of its one core"
    )


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "platform.sqlite"
        t0 = time.perf_counter()
        names = fill(db_path, args.count, IdentifierSettings(prefix=PREFIX))
        print(f"filled {len(names):,} identifiers in {time.perf_counter() - t0:.1f} s")
        port = free_port()
        server = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--serve", str(port), str(db_path), str(args.hot),
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            assert server.stdout is not None
            async with asyncio.timeout(60):
                await server.stdout.readline()
            proc = psutil.Process(server.pid)
            await load(
                port, names[: args.warm] if args.warm else names, 1.0, args.concurrency, proc
            )  # warm-up
            await load(port, names, args.seconds, args.concurrency, proc)
            await load(port, [], min(args.seconds, 5.0), args.concurrency, proc)
        finally:
            server.terminate()
            await server.wait()


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--serve":
        asyncio.run(serve(int(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])))
        sys.exit(0)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--hot", type=int, default=IdentifierSettings().hot_cache_size, help="hot cache size")
    parser.add_argument("--warm", type=int, default=0, help="warm-up on the first N names only")
    asyncio.run(main(parser.parse_args()))
