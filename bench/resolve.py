"""Local identifier resolution: lookups/s and latency of GET /api/handles/{prefix}/{suffix}.

Fills a SQLite catalog with N device/part identifiers, serves the platform's own app (`create_app`
with the identifier room running as the platform runs it: `identifiers_running`, device naming
included; no MQTT) from a child process pinned to one core, and resolves random identifiers from this process
with C concurrent keep-alive connections for D seconds. Prints lookups/s, median and p99 as the
client saw them, and lookups per CPU-second of the server process (its own cost, whatever else
runs on the machine). Then mints `--mint` part identifiers one by one as the parts app does
(`registry.mint`, one catalog transaction each) and prints the CPU cost of one, which is what
minting adds to a platform's ingest process per part produced.

    python bench/resolve.py --count 100000 --seconds 10 --concurrency 16 --mint 2000
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
from plantwire_platform.identifiers.running import identifiers_path, identifiers_running
from plantwire_platform.identifiers.settings import IdentifierSettings
from plantwire_platform.ingest.stats import IngestStats
from plantwire_platform.store.sqlite import SqliteStore
from plantwire_platform.web.app import create_app
from plantwire_platform.web.runtime import PlatformRuntime

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


async def baseline(request: web.Request) -> web.Response:
    """The same server with no work at all: what aiohttp alone costs per request on this machine."""
    return web.Response(body=b'{"responseCode":1}', content_type="application/json")


async def serve(port: int, db_path: Path, hot: int) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    settings = IdentifierSettings(prefix=PREFIX, hot_cache_size=hot)
    store = SqliteStore.open(db_path.parent / "store.sqlite")
    async with identifiers_running(settings, db_path.parent, store) as ids:
        app = create_app(PlatformRuntime(store, IngestStats, identifiers=ids))
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


async def mint_cost(work: Path, count: int) -> None:
    """Mint `count` part identifiers through the platform's registry; CPU and wall per mint."""
    store = SqliteStore.open(work / "mint-store.sqlite")
    try:
        async with identifiers_running(IdentifierSettings(prefix=PREFIX), work / "mint", store) as ids:
            me = psutil.Process()
            cpu0, t0 = sum(me.cpu_times()[:2]), time.perf_counter()
            for i in range(count):
                values = {"machine": "cnc-1", "program": "O1001-FLANGE", "start": "2026-12-01T08:00:00Z",
                          "end": "2026-12-01T08:00:42Z", "result": "ok", "spindle_speed_mean": 7990.5,
                          "spindle_load_max": 51.2}  # fmt: skip
                await ids.service.registry.mint("part", f"cnc-1.{i}", values)
            wall, cpu = time.perf_counter() - t0, sum(me.cpu_times()[:2]) - cpu0
    finally:
        store.close()
    print(
        f"mint: {count:,} part identifiers in {wall:.1f} s = {count / wall:,.0f}/s; "
        f"{cpu / count * 1e6:,.0f} µs CPU and {wall / count * 1e3:.2f} ms wall per mint "
        f"(at one part per machine per 10 s, 1,000 machines cost {cpu / count * 100 * 100:.2f} % of a core)"
    )


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db_path = identifiers_path(Path(tmp))
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
        if args.mint:
            (Path(tmp) / "mint").mkdir()
            await mint_cost(Path(tmp), args.mint)


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
    parser.add_argument("--mint", type=int, default=2000, help="part identifiers to mint after (0: none)")
    asyncio.run(main(parser.parse_args()))
