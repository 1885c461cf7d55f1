"""End-to-end benchmark: K machines x N tags at R Hz through simulators -> gateway -> Mosquitto -> platform.

Every part runs as its own process, as deployed. Prints delivered values/s, device->store latency
percentiles (from the platform's ingest histogram), lost and duplicated values (from the simulators'
own records against the store), and CPU and RSS of each process.

    python bench/e2e.py --machines 4 --tags 50 --rate 5 --duration 20
    python bench/e2e.py --machines 4 --tags 50 --rate 50 --auth --tls    # passwords, ACL, TLS on
    python bench/e2e.py --machines 4 --tags 50 --rate 50 --northbound plantwire,sparkplug

`--northbound` runs the whole set-up once per mode (a fresh broker, store and gateway each time) and
prints the runs side by side: `plantwire` is the JSON wire, `sparkplug` the gateway as a Sparkplug B
edge node and the platform as its host application. Per run: delivered values/s, the gateway's
CPU (% of a core, µs of CPU per value delivered to the store and per value it published), bytes
per value on the wire (the data messages' MQTT payloads over the values they carry, seen by a
subscriber of the bench; not with --auth/--tls),
device->store latency (store insert time minus source timestamp, from a trigger the bench adds to
the store, the same for both modes; ms resolution), lost and duplicated values. Sparkplug carries
milliseconds, so its loss/dup check compares timestamps in ms.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from plantwire.broker import BrokerTls, MosquittoProcess, free_port, wait_for_port
from plantwire.broker_auth import Identity, Role, client_environment, new_password, write_mosquitto_auth
from plantwire.demo_auth import bearer, demo_admin_token
from plantwire.extras import missing_extra_message
from plantwire.pki import init_pki
from plantwire.sparkplug import sparkplug_b_pb2 as spb
from plantwire.wire import ROOT, STATUS_BAD_NO_COMMUNICATION

try:
    import psutil
except ModuleNotFoundError:
    sys.exit(missing_extra_message("psutil", "bench", "bench/e2e.py"))

CLI = [sys.executable, "-m", "plantwire", "--log-format", "json", "--log-level", "warning"]


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    ps: psutil.Process = field(init=False)
    cpu0: float = 0.0
    cpu1: float = 0.0
    rss_max: int = 0

    def __post_init__(self) -> None:
        self.ps = psutil.Process(self.popen.pid)

    def cpu(self) -> float:
        t = self.ps.cpu_times()
        return float(t.user + t.system)

    def sample(self) -> None:
        try:
            self.rss_max = max(self.rss_max, self.ps.memory_info().rss)
        except psutil.NoSuchProcess:
            pass


def _health(url: str, token: str) -> dict:
    request = urllib.request.Request(f"{url}/api/health", headers=bearer(token))
    with urllib.request.urlopen(request, timeout=5) as resp:
        return json.loads(resp.read())


def _stop(proc: Proc, timeout: float = 20) -> None:
    if proc.popen.poll() is None:
        proc.popen.send_signal(signal.SIGTERM)
        try:
            proc.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.popen.kill()
            proc.popen.wait()


def _secured_broker(
    work: Path, auth: bool, tls: bool
) -> tuple[dict[str, str], dict[str, str], MosquittoProcess]:
    """The broker and the platform's and gateway's MQTT environment, with passwords/ACL and/or TLS."""
    platform_env: dict[str, str] = {}
    gateway_env: dict[str, str] = {}
    files = None
    if auth:
        platform = Identity("platform", new_password(), Role.PLATFORM)
        gateway = Identity("bench", new_password(), Role.GATEWAY, "bench")
        files = write_mosquitto_auth(work / "auth", [platform, gateway])
        platform_env, gateway_env = client_environment(platform), client_environment(gateway)
    broker_tls = None
    if tls:
        pki = init_pki(work / "pki", ["localhost"])
        broker_tls = BrokerTls(pki.ca_file, pki.server_cert, pki.server_key)
        for env in (platform_env, gateway_env):
            env["PLANTWIRE_MQTT__TLS_CA_FILE"] = str(pki.ca_file)
    broker = MosquittoProcess(port=free_port(), data_dir=work / "mosquitto", auth=files, tls=broker_tls)
    return platform_env, gateway_env, broker


NORTHBOUNDS = ("plantwire", "sparkplug")
_ARRIVALS = """
CREATE TABLE IF NOT EXISTS bench_arrivals (ts INTEGER NOT NULL, at INTEGER NOT NULL);
CREATE TRIGGER IF NOT EXISTS bench_arrival AFTER INSERT ON points WHEN NEW.value IS NOT NULL
BEGIN
    INSERT INTO bench_arrivals VALUES (NEW.ts, CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER));
END;
"""


class WireCounter:
    """A subscriber of the data messages: MQTT payload bytes and the values in them, while `counting`."""

    def __init__(self, port: int, northbound: str) -> None:
        self.sparkplug = northbound == "sparkplug"
        self.topic = "spBv1.0/+/DDATA/#" if self.sparkplug else f"{ROOT}/+/+/data"
        self.counting = False
        self.bytes = self.values = self.messages = 0
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-wire-{os.getpid()}")
        self.client.on_connect = lambda c, u, f, r, p: c.subscribe(self.topic, qos=0)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        if not self.counting:
            return
        payload = msg.payload
        n = (
            len(spb.Payload.FromString(payload).metrics)
            if self.sparkplug
            else len(orjson.loads(payload)["values"])
        )
        self.messages += 1
        self.bytes += len(payload)
        self.values += n

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _add_arrivals_trigger(path: Path, timeout: float = 60) -> None:
    """Once the platform made its schema: note each stored point's insert time (bench_arrivals)."""
    deadline = time.monotonic() + timeout
    while True:
        db = sqlite3.connect(path, timeout=30)
        try:
            db.executescript(_ARRIVALS)
            return
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
        finally:
            db.close()
        time.sleep(0.2)


def _percentile(sorted_values: list[int], q: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))] / 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--machines", type=int, default=4, help="K machines (meters with extra tags)")
    ap.add_argument("--tags", type=int, default=50, help="N extra tags per machine")
    ap.add_argument("--rate", type=float, default=5.0, help="updates per second of every tag")
    ap.add_argument("--sim-procs", type=int, default=2, help="simulator processes to spread machines over")
    ap.add_argument("--duration", type=float, default=20.0, help="measured seconds")
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds before measuring")
    ap.add_argument("--publishing-ms", type=int, default=100, help="gateway publishing interval")
    ap.add_argument("--commit-ms", type=int, default=100, help="platform commit interval")
    ap.add_argument("--auth", action="store_true", help="broker with passwords, ACL and bound client ids")
    ap.add_argument("--tls", action="store_true", help="MQTT over TLS (a CA made by plantwire.pki)")
    ap.add_argument(
        "--northbound",
        default="plantwire",
        help="comma-separated modes to run one after the other: plantwire (JSON wire), sparkplug",
    )
    args = ap.parse_args()
    modes = [m.strip() for m in args.northbound.split(",") if m.strip()]
    if not modes or any(m not in NORTHBOUNDS for m in modes):
        ap.error(f"--northbound takes a comma-separated list of {', '.join(NORTHBOUNDS)}")
    results = [run(args, mode) for mode in modes]
    if len(results) > 1:
        print(f"\nside by side (load average now {' '.join(f'{x:.2f}' for x in os.getloadavg())})")
        for key in results[0]:
            print(f"  {key:<28}" + "".join(f"{r[key]!s:>22}" for r in results))


def run(args: argparse.Namespace, northbound: str) -> dict[str, object]:
    """One whole run with the gateway's `northbound` mode; prints its figures and returns them."""
    sparkplug = northbound == "sparkplug"
    work = Path(tempfile.mkdtemp(prefix=f"plantwire-e2e-{northbound}-"))
    platform_env, gateway_env, broker = _secured_broker(work, args.auth, args.tls)
    broker.start()
    http_port = free_port()
    url = f"http://127.0.0.1:{http_port}"
    procs: list[Proc] = []
    sims: list[Proc] = []
    records: list[Path] = []
    logs = work / "logs"
    logs.mkdir()

    def spawn(name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        log_file = (logs / f"{name}.log").open("wb")
        environ = {**os.environ, **(env or {})}
        p = Proc(name, subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log_file, env=environ))
        procs.append(p)
        return p

    try:
        base_port = free_port()
        per_proc = [
            args.machines // args.sim_procs + (i < args.machines % args.sim_procs)
            for i in range(args.sim_procs)
        ]
        devices_toml: list[str] = []
        port = base_port
        machine_no = 0
        for i, count in enumerate(per_proc):
            if count == 0:
                continue
            names = [f"m{machine_no + j + 1}" for j in range(count)]
            record = work / f"sim{i}.jsonl"
            records.append(record)
            name_flags = [x for n in names for x in ("--name", n)]
            sims.append(
                spawn(
                    f"sim{i}",
                    [*CLI, "sim", "--profile", "meter", "--count", str(count), "--port", str(port),
                     "--tags", str(args.tags), "--rate", str(args.rate), "--seed", str(i + 1),
                     "--record", str(record), *name_flags],
                )
            )  # fmt: skip
            for j, n in enumerate(names):
                devices_toml.append(
                    f'[[devices]]\nid = "{n}"\nendpoint = "opc.tcp://127.0.0.1:{port + j}"\n'
                    f'root = "ns=2;s={n}"\npublishing_interval_ms = {args.publishing_ms}\n'
                    f"queue_size = {max(1000, int(args.rate * args.publishing_ms / 1000) * 4)}\n"
                )
            port += count
            machine_no += count
        for j in range(machine_no):
            wait_for_port("127.0.0.1", base_port + j, timeout=180)  # slow to start on a loaded machine
        token = demo_admin_token(work)  # by the store: the platform's token catalog
        host_env = {"PLANTWIRE_SPARKPLUG_HOST__ENABLED": "true"} if sparkplug else {}
        platform = spawn(
            "platform",
            [*CLI, "platform", "--http-port", str(http_port), "--mqtt-port", str(broker.port),
             "--store", str(work / "platform.sqlite")],
            env={"PLANTWIRE_STORE__COMMIT_INTERVAL_MS": str(args.commit_ms), **platform_env, **host_env},
        )  # fmt: skip
        wait_for_port("127.0.0.1", http_port, timeout=30)
        _add_arrivals_trigger(work / "platform.sqlite")
        wire_count = WireCounter(broker.port, northbound) if not (args.auth or args.tls) else None
        config = work / "gateway.toml"
        config.write_text(f'id = "bench"\nnorthbound = "{northbound}"\n\n' + "\n".join(devices_toml))
        gateway = spawn(
            "gateway",
            [*CLI, "gateway", "--config", str(config), "--mqtt-port", str(broker.port),
             "--data-dir", str(work / "gateway")],
            env=gateway_env,
        )  # fmt: skip
        mosq = Proc("mosquitto", broker.process)  # type: ignore[arg-type]
        measured = [*procs, mosq]

        time.sleep(args.warmup)
        for p in measured:
            p.cpu0 = p.cpu()
        if wire_count is not None:
            wire_count.counting = True
        n0 = _health(url, token)["points"]
        t0 = time.monotonic()
        while time.monotonic() - t0 < args.duration:
            time.sleep(0.5)
            for p in measured:
                p.sample()
        elapsed = time.monotonic() - t0
        n1 = _health(url, token)["points"]
        for p in measured:
            p.cpu1 = p.cpu()
        if wire_count is not None:
            wire_count.counting = False
            wire_count.stop()
        ingest = _health(url, token)["ingest"]

        # Stop the machines (they flush their records), then let the pipeline drain.
        stopping_us = time.time_ns() // 1000
        for s in sims:
            _stop(s)
        produced: Counter[tuple[str, str, int]] = Counter()
        for record in records:
            for line in record.read_text().splitlines():
                r = json.loads(line)
                produced[(r["device"], r["tag"], r["ts"] // 1000 if sparkplug else r["ts"])] += 1
        total = sum(produced.values())
        deadline = time.monotonic() + 60
        while _health(url, token)["points"] < total and time.monotonic() < deadline:
            time.sleep(0.5)
        _stop(gateway)
        _stop(platform)

        db = sqlite3.connect(work / "platform.sqlite")
        stored: Counter[tuple[str, str, int]] = Counter()
        first: dict[tuple[str, str], int] = {}
        for device, tag, ts, null in db.execute(
            "SELECT s.device, s.tag, p.ts, p.value IS NULL FROM points p "
            "JOIN series s ON s.series_id = p.series_id WHERE NOT (p.value IS NULL AND p.status = ?)",
            (STATUS_BAD_NO_COMMUNICATION,),
        ):
            key = ts // 1000 if sparkplug else ts
            stored[(device, tag, key)] += 1
            # A subscription delivers from the moment it starts: values a machine produced before the
            # gateway subscribed to a tag were never sampled. Every value from a tag's first stored one
            # on is. (A DBIRTH's metric without a value yet is stored as a null at the birth's time:
            # not a sampled value.)
            if not null:
                first[(device, tag)] = min(key, first.get((device, tag), key))
        (markers,) = db.execute(
            "SELECT count(*) FROM points WHERE value IS NULL AND status = ?", (STATUS_BAD_NO_COMMUNICATION,)
        ).fetchone()
        # A machine told to stop may exit before its server publishes its last tick: values from the
        # last second before the stop are left out of the count (the chaos tests use the same cut-off).
        cutoff = (stopping_us - 1_000_000) // (1000 if sparkplug else 1)
        delays = sorted(at - ts for at, ts in db.execute("SELECT at, ts FROM bench_arrivals"))
        sampled = [k for k in produced if first.get((k[0], k[1]), 2**62) <= k[2] < cutoff]
        lost = sum(1 for k in sampled if k not in stored)
        duplicated = sum(c - 1 for c in stored.values() if c > 1)

        rate = (n1 - n0) / elapsed
        gw_cpu = gateway.cpu1 - gateway.cpu0
        print(f"\n== northbound={northbound} machines={args.machines} tags/machine={args.tags}+built-in "
              f"rate={args.rate}Hz duration={elapsed:.1f}s auth={args.auth} tls={args.tls} "
              f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")  # fmt: skip
        print(f"delivered      {rate:,.0f} values/s into the store")
        lat = ingest.get("latency", {})
        p50, p99 = _percentile(delays, 0.5), _percentile(delays, 0.99)
        p50, p99 = (None if p is None else round(p, 1) for p in (p50, p99))
        print(f"latency        device->store (store insert - source ts) p50 {p50} ms, p99 {p99} ms "
              f"({len(delays):,} values, whole run)")  # fmt: skip
        if lat.get("count"):
            print(f"               JSON ingest's histogram: p50 {lat.get('p50_ms')} ms, "
                  f"p95 {lat.get('p95_ms')} ms, "
                  f"p99 {lat.get('p99_ms')} ms (bucket upper bounds; {lat.get('count')} values)")  # fmt: skip
        print(f"produced       {total:,} values, {len(sampled):,} checked (after subscription, before "
              f"the stop's last second); stored {len(stored):,} + {markers} outage markers; lost {lost}; "
              f"duplicated {duplicated}; redelivered (ignored) {ingest.get('duplicates')}")  # fmt: skip
        per_value = gw_cpu / (n1 - n0) * 1e6 if n1 > n0 else float("nan")
        print(f"gateway        {per_value:.1f} µs CPU per delivered value")
        bpv = per_published = None
        if wire_count is not None and wire_count.values:
            bpv = round(wire_count.bytes / wire_count.values, 1)
            per_published = round(gw_cpu / wire_count.values * 1e6, 1)
            print(f"               {per_published} µs CPU per value it published "
                  f"({wire_count.values / elapsed:,.0f} values/s)")  # fmt: skip
            print(f"wire           {bpv} bytes per value ({wire_count.messages:,} data messages, "
                  f"{wire_count.values / max(wire_count.messages, 1):.0f} values each)")  # fmt: skip
        for p in measured:
            cpu = (p.cpu1 - p.cpu0) / elapsed * 100
            print(f"  {p.name:<10} CPU {cpu:5.1f}% of a core   RSS max {p.rss_max / 2**20:6.1f} MiB")
        print(f"work dir: {work}")
        return {
            "northbound": northbound,
            "delivered values/s": round(rate),
            "gateway CPU % of a core": round(gw_cpu / elapsed * 100, 1),
            "gateway µs CPU / value": round(per_value, 1),
            "  ... / published value": per_published,
            "published values/s": None if wire_count is None else round(wire_count.values / elapsed),
            "platform CPU % of a core": round((platform.cpu1 - platform.cpu0) / elapsed * 100, 1),
            "mosquitto CPU % of a core": round((mosq.cpu1 - mosq.cpu0) / elapsed * 100, 1),
            "bytes / value on the wire": bpv,
            "latency p50 ms": p50,
            "latency p99 ms": p99,
            "lost": lost,
            "duplicated": duplicated,
            "load average (1 min)": round(os.getloadavg()[0], 2),
        }
    finally:
        for p in reversed(procs):
            _stop(p)
        broker.stop()


if __name__ == "__main__":
    main()
