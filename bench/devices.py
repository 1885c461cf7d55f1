"""100,000 devices: `/api/devices` page latency and size, and memory, on a real platform process.

    python bench/devices.py [--devices 100000] [--tags 10] [--gateways 100] [--dir /tmp]

1. Registration, in this process, through the SQLite store's write path (`write_batches`: one
   message per device with one point of each of its tags, 1,000 devices per transaction), the
   way ingest registers devices that send data: devices x tags series. Printed: time, and this
   process's RSS growth (the store's series-id and sequence caches at that many series).
   States are then set (2/3 online, the rest offline), gateways reported online.
2. A real `plantwire platform` on that file (Mosquitto on a free port, the identifiers room on:
   it names every device in the background), an admin token made in its catalog. Timed, median
   of 5 each, with the answer's size: the first page, a page deep in the list, the last page,
   1,000 devices at once, an id search, a gateway + state filter, and the counts the dashboard
   asks for (limit=0); then `/api/gateways` pages. Printed: the platform's RSS once ready and after
   the requests, when the identifiers room had named every device, RSS and CPU `--settle` s later.
`list_devices()` (every device, what `/api/devices` used to answer) is timed in this process for
comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from plantwire.broker import MosquittoProcess, free_port, wait_for_port
from plantwire.extras import missing_extra_message
from plantwire.wire import DataBatch, GatewayStatus, Sample, now_us
from plantwire_platform.auth.scopes import Scope
from plantwire_platform.auth.token_catalog import TokenCatalog, tokens_path
from plantwire_platform.store.model import IncomingBatch
from plantwire_platform.store.sqlite import SqliteStore

try:
    import psutil
except ModuleNotFoundError:
    sys.exit(missing_extra_message("psutil", "bench", "bench/devices.py"))

CLI = [sys.executable, "-m", "plantwire", "--log-format", "json", "--log-level", "warning"]


def rss_mb(pid: int | None = None) -> float:
    return float(psutil.Process(pid or os.getpid()).memory_info().rss) / 2**20


def register(path: Path, devices: int, tags: int, gateways: int) -> None:
    before = rss_mb()
    t = time.perf_counter()
    ts = now_us() - 60_000_000
    with SqliteStore.open(path) as store:
        for first in range(0, devices, 1000):
            batch = [
                IncomingBatch(
                    f"gw-{d % gateways:03d}",
                    f"dev-{d:06d}",
                    DataBatch(1, ts, [Sample(f"tag{k}", ts, float(d + k)) for k in range(tags)]),
                )
                for d in range(first, min(first + 1000, devices))
            ]
            store.write_batches(batch)
        for g in range(gateways):
            store.apply_gateway_status(f"gw-{g:03d}", GatewayStatus("online", ts, "bench"))
        grown = rss_mb() - before
        took = time.perf_counter() - t
        t = time.perf_counter()
        everything = store.list_devices()
        list_ms = (time.perf_counter() - t) * 1000
        assert len(everything) == devices
    conn = sqlite3.connect(path)  # bench set-up: states in one statement instead of 100k status messages
    conn.execute(
        "UPDATE devices SET state = CASE WHEN CAST(substr(id, 5) AS INTEGER) % 3 = 2 "
        "THEN 'offline' ELSE 'online' END, state_since = ?",
        (ts,),
    )
    conn.commit()
    conn.close()
    print(f"registered {devices:,} devices x {tags} tags ({devices * tags:,} series) in {took:.0f} s; "
          f"writer-side RSS growth {grown:.0f} MB (series-id and sequence caches)")  # fmt: skip
    print(f"list_devices() in the store (what the unpaged answer read): {list_ms:,.0f} ms")


def get(url: str, token: str) -> tuple[float, int, dict[str, object]]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=60) as resp:
        body = resp.read()
    return (time.perf_counter() - t) * 1000, len(body), json.loads(body)


def wait_ready(base: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=5) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"platform at {base} not ready after {timeout} s")


def named_devices(path: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return int(conn.execute("SELECT count(*) FROM identifiers WHERE kind = 'device'").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def watch_naming(path: Path, devices: int, seconds: float, pid: int) -> str:
    """Wait `seconds`; say when (since the platform's start, its CPU then) every device was named."""
    started = psutil.Process(pid).create_time()
    deadline = time.monotonic() + seconds
    done = "not within the watch"
    while time.monotonic() < deadline:
        if done.startswith("not") and named_devices(path) >= devices:
            cpu = sum(psutil.Process(pid).cpu_times()[:2])
            done = f"{time.time() - started:.0f} s (platform CPU {cpu:.0f} s then)"
        time.sleep(1)
    return done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=100_000)
    ap.add_argument("--tags", type=int, default=10)
    ap.add_argument("--gateways", type=int, default=100)
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--settle", type=float, default=30, help="seconds to watch the platform's RSS afterwards")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="plantwire-devices-", dir=args.dir) as tmp:
        work = Path(tmp)
        store_path = work / "platform.sqlite"
        register(store_path, args.devices, args.tags, args.gateways)
        catalog = TokenCatalog(tokens_path(work))
        token = catalog.create("bench-admin", Scope.ADMIN)
        catalog.close()
        broker = MosquittoProcess(port=free_port(), data_dir=work / "mosquitto")
        broker.start()
        port = free_port()
        env = {
            **os.environ,
            "PLANTWIRE_APPS__BUILTIN": "false",
            "PLANTWIRE_APPS__PATH": str(work / "no-apps"),
        }
        argv = [*CLI, "platform", "--http-port", str(port), "--mqtt-port", str(broker.port),
                "--store", str(store_path)]  # fmt: skip
        log = (work / "platform.log").open("wb")
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log, env=env)
        try:
            wait_for_port("127.0.0.1", port, timeout=120)
            base = f"http://127.0.0.1:{port}"
            wait_ready(base)
            print(f"platform ready: RSS {rss_mb(proc.pid):.0f} MB")
            n = args.devices
            cases = [
                ("first page (100)", "/api/devices"),
                ("page at offset n/2", f"/api/devices?offset={n // 2}"),
                ("last page", f"/api/devices?offset={n - 100}"),
                ("1,000 at once", "/api/devices?limit=1000"),
                ("id search '0421'", "/api/devices?q=0421"),
                ("gateway + state filter", "/api/devices?gateway=gw-042&state=offline"),
                ("count online (limit=0)", "/api/devices?state=online&limit=0"),
                ("dashboard page (25)", "/api/devices?limit=25&offset=2500"),
            ]
            for label, path in cases:
                runs = [get(base + path, token) for _ in range(5)]
                ms = statistics.median(r[0] for r in runs)
                body = runs[-1][2]
                if label == "1,000 at once":
                    whole = runs[-1][1] * n / 1000 / 2**20
                print(f"  {label:26} {ms:8.1f} ms  {runs[-1][1] / 1024:8.1f} KB  "
                      f"devices={len(body['devices']):5}  total={body['total']:,}")  # type: ignore[arg-type]  # fmt: skip
            print(f"(all {n:,} devices in one answer, as before paging: ~{whole:.0f} MB)")
            gateway_cases = [
                ("gateways, first page", "/api/gateways"),
                ("gateways, counts only", "/api/gateways?devices=0"),
                ("gateways, 10 x 10", "/api/gateways?limit=10&devices=10"),
            ]
            for label, path in gateway_cases:
                runs = [get(base + path, token) for _ in range(5)]
                ms = statistics.median(r[0] for r in runs)
                body = runs[-1][2]
                listed = sum(len(g["devices"]) for g in body["gateways"])  # type: ignore[attr-defined]
                print(f"  {label:26} {ms:8.1f} ms  {runs[-1][1] / 1024:8.1f} KB  "
                      f"gateways={len(body['gateways']):4}  devices listed={listed:5}  total={body['total']}")  # type: ignore[arg-type]  # fmt: skip
            print(f"platform RSS after the requests: {rss_mb(proc.pid):.0f} MB")
            named_at = watch_naming(work / "identifiers.sqlite", n, args.settle, proc.pid)
            cpu = sum(psutil.Process(proc.pid).cpu_times()[:2])
            print(f"identifiers: all {n:,} devices named {named_at} after start")
            print(f"platform RSS {args.settle:.0f} s later (identifiers naming devices meanwhile): "
                  f"{rss_mb(proc.pid):.0f} MB, CPU so far {cpu:.0f} s; "
                  f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            broker.stop()


if __name__ == "__main__":
    main()
