"""Fleet load generator: G gateways x D devices x T tags at R Hz, wire v1 straight over MQTT.

No OPC UA and no gateway process: publisher processes speak the wire contract (`plantwire.wire`
encoders and topics) the way gateways do, QoS 1, one message per device per `--publish-ms` with
every tag's samples since the last one. Before the data, each device is registered (gateway
status, device `meta` with its tags, device status online).

What is sent is recorded compactly: every device sends samples k = 0, 1, ... of every tag at
ts = T0 + k * (1 s / R), numbered seq 1..n. So per device the record is (messages, samples), and
the store is checked exactly: a point of a tag is expected iff its ts is on the grid below the
device's count. Lost = expected and absent; extra = stored and not expected; duplicated = stored
more than once (the store's key forbids it: counted anyway).

The platform runs as real processes (`plantwire platform`), on SQLite or PostgreSQL, one worker or
N workers sharing the data through an MQTT shared subscription (PostgreSQL only: one store).
Printed per run: values/s sustained into the store (over the publishing window, and including the
drain), source-to-commit latency p50/p99 (the platform's ingest histogram: the sample ts is when
it was due, so a publisher or platform falling behind shows as latency), CPU of each process.

    python bench/fleet.py --gateways 4 --devices 25 --tags 20 --rate 2 --duration 20
    python bench/fleet.py --backend both --workers 2 --duration 15
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from plantwire import wire
from plantwire.broker import MosquittoProcess, free_port, wait_for_port
from plantwire.config import MqttSettings
from plantwire.extras import missing_extra_message
from plantwire.mqtt_control import new_client
from plantwire_platform.auth.api_auth import open_token_catalog
from plantwire_platform.auth.auth_database import AuthDatabase
from plantwire_platform.auth.scopes import Scope

try:
    import psutil
except ModuleNotFoundError:
    sys.exit(missing_extra_message("psutil", "bench", "bench/fleet.py"))

CLI = [sys.executable, "-m", "plantwire", "--log-format", "json", "--log-level", "warning"]
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
INFLIGHT = 1000


# --- the publishers (one process each) ------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    port: int
    gateways: list[str]
    devices: int
    tags: int
    rate: float
    publish_ms: int
    duration_s: float


def _device_ids(gateway: str, count: int) -> list[str]:
    return [f"{gateway}-d{i:05d}" for i in range(count)]


def _tags(count: int) -> list[str]:
    return [f"t{i:03d}" for i in range(count)]


def _register(client: Any, plan: Plan) -> None:
    now = wire.now_us()
    infos = []
    tags = [wire.TagInfo(t, f"ns=2;s={t}", "Double", unit="u") for t in _tags(plan.tags)]
    for gw in plan.gateways:
        status = wire.encode_gateway_status(wire.GatewayStatus("online", now, "fleet"))
        infos.append(client.publish(wire.gateway_status_topic(gw), status, qos=1))
        for dev in _device_ids(gw, plan.devices):
            meta = wire.encode_meta(wire.DeviceMeta(f"fleet://{dev}", "fleet", tags))
            infos.append(client.publish(wire.device_topic(gw, dev, "meta"), meta, qos=1))
            st = wire.encode_device_status(wire.DeviceStatus("online", now, f"fleet://{dev}"))
            infos.append(client.publish(wire.device_topic(gw, dev, "status"), st, qos=1))
    for info in infos:
        info.wait_for_publish(120)


def publisher_main(plan: Plan, start: Any, results: mp.Queue) -> None:  # type: ignore[type-arg]
    """Register, wait for T0 (`start`, set once the platform lists every device), publish on the grid
    until the end; report (gateway, device, messages, samples) per device."""
    client = new_client(MqttSettings(port=plan.port), f"fleet-{uuid.uuid4().hex[:8]}", clean_session=True)
    acked = [0]
    client.on_publish = lambda *_: acked.__setitem__(0, acked[0] + 1)
    client.max_inflight_messages_set(INFLIGHT)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", plan.port)
    client.loop_start()
    _register(client, plan)
    registration_acks = acked[0]  # every registration message was acknowledged before this
    period_us = int(1_000_000 / plan.rate)
    tags = _tags(plan.tags)
    devices = [(gw, dev, wire.device_topic(gw, dev, "data")) for gw in plan.gateways
               for dev in _device_ids(gw, plan.devices)]  # fmt: skip
    seq = dict.fromkeys((d for _, d, _ in devices), 0)
    sent = dict.fromkeys((d for _, d, _ in devices), 0)
    per_message = max(1, wire.MAX_VALUES_PER_MESSAGE // plan.tags)
    while start.value == 0:
        time.sleep(0.01)
    t0_us = int(start.value)
    end_us = t0_us + int(plan.duration_s * 1_000_000)
    while time.time_ns() // 1000 < t0_us:
        time.sleep(0.01)
    published = 0
    next_tick = time.monotonic()
    while True:
        now = min(time.time_ns() // 1000, end_us)
        due = (now - t0_us) // period_us + 1  # samples k < due are due
        for _, dev, topic in devices:
            k0 = sent[dev]
            while k0 < due:
                k1 = min(due, k0 + per_message)
                samples = [wire.Sample(t, t0_us + k * period_us, float(k % 1000)) for k in range(k0, k1)
                           for t in tags]  # fmt: skip
                seq[dev] += 1
                body = wire.encode_data(wire.DataBatch(seq[dev], now, samples))
                client.publish(topic, body, qos=1)
                published += 1
                k0 = k1
            sent[dev] = k0
        if now >= end_us:
            break
        next_tick += plan.publish_ms / 1000
        time.sleep(max(0.0, next_tick - time.monotonic()))
    deadline = time.monotonic() + 300
    while acked[0] - registration_acks < published and time.monotonic() < deadline:
        time.sleep(0.05)
    client.disconnect()
    client.loop_stop()
    results.put([(gw, dev, seq[dev], sent[dev]) for gw, dev, _ in devices])


# --- the platform side -----------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    ps: psutil.Process
    popen: subprocess.Popen[bytes] | None = None
    cpu0: float = 0.0
    cpu1: float = 0.0

    def cpu(self) -> float:
        try:
            t = self.ps.cpu_times()
            return float(t.user + t.system)
        except psutil.NoSuchProcess:
            return self.cpu1


@dataclass
class Run:
    backend: str
    work: Path
    broker: MosquittoProcess
    dsn: str | None
    urls: list[str] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)
    """A read token per platform URL (each worker has its own data folder and token catalog)."""
    procs: list[Proc] = field(default_factory=list)


def _fetch(url: str, token: str) -> bytes:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as resp:
        return bytes(resp.read())


def _get(url: str, token: str) -> Any:
    return json.loads(_fetch(url, token))


def _wait_ready(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=5) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"platform at {url} not ready after {timeout} s")


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def preregister(args: argparse.Namespace, backend: str, work: Path, dsn: str | None) -> float:
    """Register `--registered` idle devices (gateway `idle`, `--idle-tags` tags each) before the
    platform starts; they send no data. SQLite: through the store's own registration calls
    (`apply_meta`, `apply_device_status`: what ingest calls for those messages). PostgreSQL: the
    first device so, the rest as the same rows (devices, series) in two multi-row statements (one
    device at a time takes ~3 ms of round trips here: minutes for 100k). Returns the seconds taken."""

    from plantwire_platform.store.model import Store
    from plantwire_platform.store.postgresql.settings import PostgresSettings
    from plantwire_platform.store.postgresql.store import PostgresStore
    from plantwire_platform.store.sqlite import SqliteStore

    started = time.monotonic()
    store: Store
    if backend == "sqlite":
        store = SqliteStore.open(work / "platform.sqlite")
    else:
        store = PostgresStore.open(PostgresSettings(dsn=SecretStr(dsn or ""), pool_max=4))
    now = wire.now_us()
    tags = [wire.TagInfo(t, f"ns=2;s={t}", "Double", unit="u") for t in _tags(args.idle_tags)]

    def register(dev: str) -> None:
        store.apply_meta("idle", dev, wire.DeviceMeta(f"fleet://{dev}", "fleet", tags))
        store.apply_device_status("idle", dev, wire.DeviceStatus("online", now, f"fleet://{dev}"))

    try:
        store.apply_gateway_status("idle", wire.GatewayStatus("online", now, "fleet"))
        devices = _device_ids("idle", args.registered)
        if backend == "sqlite":  # one writer: threads would only take turns
            for dev in devices:
                register(dev)
        else:
            register(devices[0])
            asyncio.run(_pg_bulk_register(dsn or "", devices[1:], _tags(args.idle_tags), now))
    finally:
        store.close()
    return time.monotonic() - started


async def _pg_bulk_register(dsn: str, devices: list[str], tags: list[str], now: int) -> None:
    """The rows `apply_meta` + `apply_device_status` write for these devices, in bulk."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO devices (id, gateway, endpoint, root, state, state_since, first_seen) "
                "SELECT d, 'idle', 'fleet://' || d, 'fleet', 'online', $2, $2 FROM unnest($1::text[]) d "
                "ON CONFLICT (id) DO NOTHING",
                devices,
                now,
            )
            await conn.execute(
                "INSERT INTO series (device, tag, node_id, data_type, unit) "
                "SELECT d, t, 'ns=2;s=' || t, 'Double', 'u' FROM unnest($1::text[]) d, unnest($2::text[]) t "
                "ON CONFLICT (device, tag) DO NOTHING",
                devices,
                tags,
            )
    finally:
        await conn.close()


def start_platform(args: argparse.Namespace, backend: str) -> Run:
    work = Path(tempfile.mkdtemp(prefix=f"plantwire-fleet-{backend}-"))
    broker = MosquittoProcess(port=free_port(), data_dir=work / "mosquitto")
    broker.start()
    dsn = None
    if backend == "postgresql":
        name = "plantwire_fleet_" + uuid.uuid4().hex[:8]
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
        dsn = ADMIN_DSN.rsplit("/", 1)[0] + "/" + name
    run = Run(backend, work, broker, dsn)
    try:
        if args.registered:
            took = preregister(args, backend, work, dsn)
            print(f"pre-registered {args.registered:,} idle devices x {args.idle_tags} tags in {took:.1f} s")
        run.procs.append(Proc("mosquitto", psutil.Process(broker.process.pid)))  # type: ignore[union-attr]
        for i in range(args.workers):
            port = free_port()
            env = {
                **os.environ,
                "PLANTWIRE_STORE__BACKEND": backend,
                "PLANTWIRE_STORE__COMMIT_INTERVAL_MS": str(args.commit_ms),
                "PLANTWIRE_CLIENT_ID": f"fleet-worker-{i}",
                "PLANTWIRE_APPS__BUILTIN": "true" if args.builtin_apps else "false",
                "PLANTWIRE_APPS__PATH": str(work / "no-apps"),
            }
            if dsn is not None:
                env["PLANTWIRE_STORE__POSTGRESQL__DSN"] = dsn
            if args.workers > 1:
                env["PLANTWIRE_INGEST__SHARED_GROUP"] = "fleet"
            log = (work / f"worker{i}.log").open("wb")
            data = work if i == 0 else work / f"worker{i}"  # a data folder each (tokens, ids, lock)
            data.mkdir(exist_ok=True)
            # The catalog the worker uses: its data folder's, or (PostgreSQL) the one all workers share.
            shared = None if dsn is None else AuthDatabase(SecretStr(dsn), "public")
            catalog = open_token_catalog(data, shared)
            try:
                run.tokens[f"http://127.0.0.1:{port}"] = catalog.create(f"fleet-{i}", Scope.READ)
            finally:
                catalog.close()
            argv = [*CLI, "platform", "--http-port", str(port), "--mqtt-port", str(broker.port),
                    "--store", str(data / "platform.sqlite")]  # fmt: skip
            popen = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log, env=env)
            run.procs.append(Proc(f"worker{i}", psutil.Process(popen.pid), popen))
            run.urls.append(f"http://127.0.0.1:{port}")
        for url in run.urls:
            wait_for_port("127.0.0.1", int(url.rsplit(":", 1)[1]), timeout=60)
            _wait_ready(url)
    except BaseException:  # a platform that did not start: stop what did, drop the database
        stop_platform(run)
        if dsn is not None:
            asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{dsn.rsplit("/", 1)[1]}" WITH (FORCE)'))
        raise
    return run


def stop_platform(run: Run) -> None:
    for p in run.procs:
        if p.popen is not None and p.popen.poll() is None:
            p.popen.send_signal(signal.SIGTERM)
            try:
                p.popen.wait(30)
            except subprocess.TimeoutExpired:
                p.popen.kill()
                p.popen.wait()
    run.broker.stop()


# --- counting against the store ------------------------------------------------------------------

_COUNT_SQL = """
SELECT count(*),
       coalesce(sum(CASE WHEN p.ts >= {t0} AND (p.ts - {t0}) % {period} = 0
                          AND (p.ts - {t0}) / {period} < e.n THEN 1 ELSE 0 END), 0)
FROM points p JOIN series s ON s.series_id = p.series_id JOIN expected e ON e.device = s.device
"""
_DUPLICATES_SQL = "SELECT count(*) FROM (SELECT 1 FROM points GROUP BY series_id, ts HAVING count(*) > 1) d"


Sent = list[tuple[str, str, int, int]]
"""Per device: gateway, device, messages (seq 1..n), samples of every tag (k = 0..n-1)."""


def count_store(run: Run, sent: Sent, t0: int, period: int) -> tuple[int, int, int]:
    """(present, total points, points stored twice) of the devices sent to."""
    sql = _COUNT_SQL.format(t0=t0, period=period)
    if run.backend == "sqlite":
        db = sqlite3.connect(run.work / "platform.sqlite")
        db.execute("CREATE TEMP TABLE expected (device TEXT PRIMARY KEY, n INTEGER)")
        db.executemany("INSERT INTO expected VALUES (?, ?)", [(d, n) for _, d, _, n in sent])
        _, present = db.execute(sql).fetchone()
        (all_points,) = db.execute("SELECT count(*) FROM points").fetchone()
        (twice,) = db.execute(_DUPLICATES_SQL).fetchone()
        db.close()
        return int(present), int(all_points), int(twice)
    return asyncio.run(_count_pg(run.dsn or "", sql, sent))


async def _pg_pids(dsn: str) -> list[int]:
    """The PostgreSQL server processes serving the run's database (their CPU is the store's)."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return [int(r["pid"]) for r in rows]
    finally:
        await conn.close()


async def _count_pg(dsn: str, sql: str, sent: Sent) -> tuple[int, int, int]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TEMP TABLE expected (device text PRIMARY KEY, n bigint)")
        await conn.copy_records_to_table("expected", records=[(d, n) for _, d, _, n in sent])
        _, present = await conn.fetchrow(sql)
        all_points = await conn.fetchval("SELECT count(*) FROM points")
        twice = await conn.fetchval(_DUPLICATES_SQL)
        return int(present), int(all_points), int(twice)
    finally:
        await conn.close()


# --- latency over time ----------------------------------------------------------------------------

LATENCIES = {
    "point_source_to_commit_seconds": "source->commit (per value)",
    "receive_to_commit_seconds": "received->commit (per message)",
    "commit_seconds": "store write (per commit)",
}
"""The platform's latency histograms (`/metrics`): the whole way from a sample's due time, and the
platform's own share, from paho handing the message over to its commit."""


def _histograms(run: Run) -> dict[str, dict[float, int]]:
    """Cumulative bucket counts (upper bound -> count) of each latency histogram, summed over workers."""
    sums: dict[str, dict[float, int]] = {name: {} for name in LATENCIES}
    for url in run.urls:
        for line in _fetch(f"{url}/metrics", run.tokens[url]).decode().splitlines():
            head, _, count = line.partition(" ")
            name, _, le = head.removeprefix("plantwire_platform_").partition('_bucket{le="')
            if name in sums and le:
                bound = float(le.rstrip('"}').replace("+Inf", "inf"))
                sums[name][bound] = sums[name].get(bound, 0) + int(count)
    return sums


class LatencySampler:
    """Scrapes the latency histograms every `every_s`, so the run's latency can be read per second
    (which seconds make the tail) and over any window (start-up excluded or not)."""

    def __init__(self, run: Run, every_s: float = 1.0) -> None:
        self._run, self._every = run, every_s
        self.snapshots: list[tuple[float, dict[str, dict[float, int]]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="latency-sampler", daemon=True)

    def __enter__(self) -> LatencySampler:
        self.snapshots.append((time.monotonic(), _histograms(self._run)))
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
        self.snapshots.append((time.monotonic(), _histograms(self._run)))

    def _main(self) -> None:
        while not self._stop.wait(self._every):
            self.snapshots.append((time.monotonic(), _histograms(self._run)))

    def report(self, skip_s: float) -> None:
        """Per histogram: p50/p99 over the run, over the run after its first `skip_s`, and the
        three seconds with the highest p99 (bucket upper bounds, in ms)."""
        if len(self.snapshots) < 2:
            return
        t_start = self.snapshots[0][0]
        for name, label in LATENCIES.items():
            first, last = self.snapshots[0][1][name], self.snapshots[-1][1][name]
            later = next((s for t, s in self.snapshots if t - t_start >= skip_s), self.snapshots[-1][1])[name]
            seconds = []
            for (t_a, a), (_, b) in zip(self.snapshots, self.snapshots[1:], strict=False):
                window = _delta(b[name], a[name])
                if _total(window):
                    seconds.append((_quantile(window, 0.99), t_a - t_start, _total(window)))
            worst = ", ".join(f"{q} ms at +{t:.0f} s ({n:,})" for q, t, n in sorted(seconds)[::-1][:3])
            whole, steady = _delta(last, first), _delta(last, later)
            print(f"latency        {label}: p50 {_quantile(whole, 0.5)} / p99 {_quantile(whole, 0.99)} ms "
                  f"({_total(whole):,}); after the first {skip_s:.0f} s p50 {_quantile(steady, 0.5)} / "
                  f"p99 {_quantile(steady, 0.99)} ms; worst seconds (p99): {worst}")  # fmt: skip


def _delta(b: dict[float, int], a: dict[float, int]) -> dict[float, int]:
    return {bound: n - a.get(bound, 0) for bound, n in b.items()}


def _total(cumulative: dict[float, int]) -> int:
    return max(cumulative.values(), default=0)


def _quantile(cumulative: dict[float, int], q: float) -> float | None:
    total = _total(cumulative)
    if total == 0:
        return None
    bound = next(b for b, n in sorted(cumulative.items()) if n >= q * total)
    return round(bound * 1000, 3)


# --- one run ---------------------------------------------------------------------------------------


def _points(run: Run) -> int:
    return int(_get(f"{run.urls[0]}/api/health", run.tokens[run.urls[0]])["points"])


def bench(args: argparse.Namespace, backend: str) -> None:
    run = start_platform(args, backend)
    try:
        _bench(args, run)
    finally:
        stop_platform(run)
        if run.dsn is not None and not args.keep:
            asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{run.dsn.rsplit("/", 1)[1]}" WITH (FORCE)'))


def _bench(args: argparse.Namespace, run: Run) -> None:
    gateways = [f"gw{i:03d}" for i in range(args.gateways)]
    period = int(1_000_000 / args.rate)
    # Registration takes a while for big fleets: the grid starts once the platform lists every device.
    t_reg = time.monotonic()
    ctx = mp.get_context("fork")
    results: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    start = ctx.Value("q", 0)
    slices = [gateways[i :: args.procs] for i in range(args.procs)]
    pubs: list[Any] = []
    for i, part in enumerate(s for s in slices if s):
        plan = Plan(run.broker.port, part, args.devices, args.tags, args.rate, args.publish_ms, args.duration)
        pub = ctx.Process(target=publisher_main, args=(plan, start, results), name=f"pub{i}")
        pub.start()
        pubs.append(pub)
        run.procs.append(Proc(f"pub{i}", psutil.Process(pub.pid)))
    fleet = args.gateways * args.devices + args.registered
    deadline = time.monotonic() + args.register_timeout
    count_url = f"{run.urls[0]}/api/devices?limit=0"
    while (registered := _get(count_url, run.tokens[run.urls[0]])["total"]) < fleet:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {registered} of {fleet} devices registered in {args.register_timeout} s")
        time.sleep(0.5)
    reg_s = time.monotonic() - t_reg
    start_us = time.time_ns() // 1000 + int(args.start_delay * 1_000_000)
    t0 = start_us - start_us % period
    start.value = t0
    while time.time_ns() // 1000 < t0:
        time.sleep(0.01)
    if run.dsn is not None:
        run.procs += [Proc(f"pg{pid}", psutil.Process(pid)) for pid in asyncio.run(_pg_pids(run.dsn))]
    for p in run.procs:
        p.cpu0 = p.cpu()
    n0, w0, load0 = _points(run), time.monotonic(), os.getloadavg()
    with LatencySampler(run) as latency:
        spy = _start_py_spy(args, run)
        threads0 = _thread_cpu(run)
        time.sleep(args.duration)
        threads1 = _thread_cpu(run)
        n1, w1, load1 = _points(run), time.monotonic(), os.getloadavg()
        for p in run.procs:
            p.cpu1 = p.cpu()
        sent: Sent = []
        for _ in pubs:
            sent += results.get(timeout=600)
        for pub in pubs:
            pub.join(60)
        expected = sum(n for *_, n in sent) * args.tags
        deadline = time.monotonic() + args.drain_timeout
        while (done := _points(run)) < expected and time.monotonic() < deadline:
            time.sleep(0.5)
        drained = time.monotonic()
    health = [_get(f"{u}/api/health", run.tokens[u]) for u in run.urls]
    present, all_points, twice = count_store(run, sent, t0, period)
    offered = args.gateways * args.devices * args.tags * args.rate
    print(f"\n== {run.backend}, {args.workers} worker(s): {args.gateways} gateways x {args.devices} "
          f"devices x {args.tags} tags at {args.rate} Hz = {offered:,.0f} values/s offered, "
          f"{args.duration} s")  # fmt: skip
    print(f"registered     {registered:,} devices (meta + status) in {reg_s:.1f} s, then the data started")
    print(f"sustained      {(n1 - n0) / (w1 - w0):,.0f} values/s into the store while publishing; "
          f"{done:,} of {expected:,} after {drained - w0:.1f} s "
          f"({done / (drained - w0):,.0f} values/s including the drain)")  # fmt: skip
    latency.report(args.latency_skip)
    for i, h in enumerate(health):
        print(f"redelivered    w{i}: {h['ingest'].get('duplicates')} values (ignored by the store)")
    print(f"checked        sent {expected:,} values in {sum(m for _, _, m, _ in sent):,} messages; "
          f"lost {expected - present}; extra {all_points - present}; stored twice {twice}")  # fmt: skip
    elapsed = w1 - w0
    stored = max(n1 - n0, 1)
    for p in run.procs:
        cpu = p.cpu1 - p.cpu0
        print(f"  {p.name:<10} CPU {cpu / elapsed * 100:5.1f}% of a core, "
              f"{cpu / stored * 1e6:5.2f} µs per value stored")  # fmt: skip
    server = sum(p.cpu1 - p.cpu0 for p in run.procs if p.name.startswith("pg"))
    if run.dsn is not None:
        print(f"  PostgreSQL server processes of the run: CPU {server / elapsed * 100:5.1f}% of a core, "
              f"{server / stored * 1e6:5.2f} µs per value stored")  # fmt: skip
    print(f"load average   {load0[0]:.2f} at the start, {load1[0]:.2f} at the end of publishing (1 min)")
    if spy is not None:
        spy.wait(60)
        print_profile(run.work / "worker0.py-spy.txt", args.profile_top, threads0, threads1, stored)
    print(f"work dir: {run.work}")


def _start_py_spy(args: argparse.Namespace, run: Run) -> subprocess.Popen[bytes] | None:
    """`--py-spy PATH`: sample worker0's threads (all of them, GIL holders or not) while publishing."""
    if args.py_spy is None:
        return None
    worker = next(p for p in run.procs if p.name == "worker0")
    out = run.work / "worker0.py-spy.txt"
    argv = [args.py_spy, "record", "--pid", str(worker.ps.pid), "--threads", "--nonblocking", "--format",
            "raw", "--duration", str(int(args.duration)), "--rate", "200", "--output", str(out)]  # fmt: skip
    argv += {"running": [], "gil": ["--gil"], "idle": ["--idle"]}[args.py_spy_mode]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _thread_cpu(run: Run) -> dict[int, float]:
    """CPU seconds of each of worker0's threads (by native id), when profiling."""
    worker = next(p for p in run.procs if p.name == "worker0")
    try:
        return {t.id: t.user_time + t.system_time for t in worker.ps.threads()}
    except psutil.NoSuchProcess:
        return {}


def print_profile(raw: Path, top: int, cpu0: dict[int, float], cpu1: dict[int, float], stored: int) -> None:
    """Each thread's CPU per value stored (from the kernel), then py-spy's raw stacks
    (`thread (tid): name;frame;...;frame count`) as the share of samples per thread and the functions
    most often on top of a stack (self) and anywhere in it (total). In `--py-spy-mode running` a thread
    waiting for the GIL is sampled too (where it waits: a loop's last line, a call); in every mode
    the garbage collector shows as the line that allocated when it ran."""
    threads: dict[str, int] = {}
    own: dict[str, int] = {}
    total: dict[str, int] = {}
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        thread, *frames = stack.split(";")
        samples += n
        threads[thread] = threads.get(thread, 0) + n
        if frames:
            own[frames[-1]] = own.get(frames[-1], 0) + n
        for frame in set(frames):
            total[frame] = total.get(frame, 0) + n
    names = {int(t.split("(")[1].split(")")[0]): t.split(": ", 1)[-1] for t in threads if "(" in t}
    for tid, seconds in sorted(cpu1.items(), key=lambda kv: -(kv[1] - cpu0.get(kv[0], 0.0))):
        cpu = seconds - cpu0.get(tid, 0.0)
        if cpu > 0:
            print(f"  cpu    {cpu / stored * 1e6:6.2f} µs per value  {names.get(tid, tid)}")
    print(f"py-spy: {samples} samples of worker0 (200/s, idle excluded): {raw}")
    for name, rows in (("thread", threads), ("self", own), ("total", total)):
        for key, n in sorted(rows.items(), key=lambda kv: -kv[1])[:top]:
            print(f"  {name:<6} {n / max(samples, 1) * 100:5.1f}%  {key}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gateways", type=int, default=4, help="G gateways")
    ap.add_argument("--devices", type=int, default=25, help="D devices per gateway")
    ap.add_argument("--tags", type=int, default=10, help="T tags per device")
    ap.add_argument("--rate", type=float, default=1.0, help="samples per second of every tag (R Hz)")
    ap.add_argument("--publish-ms", type=int, default=1000, help="one message per device this often")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds of publishing (measured)")
    ap.add_argument("--procs", type=int, default=2, help="publisher processes (gateways spread over them)")
    ap.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="sqlite")
    ap.add_argument(
        "--workers", type=int, default=1, help="platform processes; >1 shares the data (PostgreSQL)"
    )
    ap.add_argument("--commit-ms", type=int, default=100, help="platform commit interval")
    ap.add_argument("--start-delay", type=float, default=0.5, help="seconds from registration to data")
    ap.add_argument("--register-timeout", type=float, default=600.0, help="longest wait for registration")
    ap.add_argument(
        "--drain-timeout", type=float, default=120.0, help="longest wait for the store to catch up"
    )
    ap.add_argument(
        "--registered", type=int, default=0, help="idle devices registered through the store first"
    )
    ap.add_argument("--idle-tags", type=int, default=10, help="tags of each idle device")
    ap.add_argument("--keep", action="store_true", help="keep the PostgreSQL database of the run")
    ap.add_argument("--builtin-apps", action="store_true", help="run the platform's built-in apps too")
    ap.add_argument("--py-spy", help="a py-spy binary: sample worker0 while publishing")
    ap.add_argument(
        "--py-spy-mode",
        choices=["running", "gil", "idle"],
        default="running",
        help="sample running threads (also those waiting for the GIL), the GIL holder, or every thread",
    )
    ap.add_argument(
        "--latency-skip", type=float, default=5.0, help="seconds of start-up left out of the steady latency"
    )
    ap.add_argument("--profile-top", type=int, default=25, help="rows of the py-spy summary")
    args = ap.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    if args.workers > 1 and "sqlite" in backends:
        ap.error("several workers share one store: use --backend postgresql")
    for backend in backends:
        bench(args, backend)


if __name__ == "__main__":
    main()
