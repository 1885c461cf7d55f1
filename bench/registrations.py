"""Start-up against a broker full of retained state: how long a fresh platform takes to register it.

    python bench/registrations.py [--devices 10000] [--tags 5] [--backend sqlite|postgresql|both]
                                  [--baseline GIT_REF] [--dir /tmp/pwbench]

A real Mosquitto (free loopback port) is given, retained at QoS 1, every device's meta (`--tags`
tags) and status and every gateway's status (1,000 devices per gateway), as gateways leave them.
Then, per backend, a fresh store and an `MqttIngest` with a new client id (a new persistent
session: the broker hands it all the retained messages) run until every message was taken and
committed (the clean shutdown commits the last group). Timed: start to committed. Printed per
run: seconds, messages per second, data and registration commits, devices shown online.

`--baseline REF` runs the same measurement on the code of a git revision too (exported with
`git archive` into a temporary folder, run in a child process with that tree on PYTHONPATH), and
prints both side by side: the figure before and after a change. The machine's load average is
printed before each run (two cores shared with other work make the figures move).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
REPO = Path(__file__).resolve().parent.parent
PER_GATEWAY = 1000


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# --- the retained state ------------------------------------------------------------------------------


def publish_retained(host: str, port: int, devices: int, tags: int) -> int:
    """Every device's meta and status, every gateway's status, retained at QoS 1; how many."""
    from plantwire import wire
    from plantwire.config import MqttSettings
    from plantwire.mqtt_control import new_client

    client = new_client(
        MqttSettings(host=host, port=port), f"bench-pub-{uuid.uuid4().hex[:8]}", clean_session=True
    )
    client.max_inflight_messages_set(1000)
    client.connect(host, port)
    client.loop_start()
    infos: list[Any] = []
    sent = 0
    try:
        for d in range(devices):
            gw, dev = f"gw{d // PER_GATEWAY}", f"dev{d:06d}"
            endpoint = f"opc.tcp://10.{d // 65536}.{d // 256 % 256}.{d % 256}:4840"
            if d % PER_GATEWAY == 0:
                status = wire.GatewayStatus("online", wire.now_us(), "bench")
                infos.append(
                    client.publish(wire.gateway_status_topic(gw), wire.encode_gateway_status(status), 1, True)
                )
            info = [
                wire.TagInfo(f"t{i}", f"ns=2;s=T{i}", "Double", "bar", None, False, 0.0, 100.0)
                for i in range(tags)
            ]
            meta = wire.encode_meta(wire.DeviceMeta(endpoint, "ns=2;s=M", info))
            status_d = wire.encode_device_status(wire.DeviceStatus("online", wire.now_us(), endpoint))
            infos.append(client.publish(wire.device_topic(gw, dev, "meta"), meta, 1, True))
            infos.append(client.publish(wire.device_topic(gw, dev, "status"), status_d, 1, True))
            if len(infos) >= 2000:  # paho's client queue is bounded: wait for these first
                sent += _acked(infos)
        sent += _acked(infos)
    finally:
        client.disconnect()
        client.loop_stop()
    return sent


def _acked(infos: list[Any]) -> int:
    for i in infos:
        i.wait_for_publish(120)
        assert i.is_published()
    n = len(infos)
    infos.clear()
    return n


# --- one run (a child process, on the code its PYTHONPATH names) ---------------------------------------


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _ingest(store: Any, host: str, port: int, expect: int, folder: Path) -> dict[str, Any]:
    from plantwire.config import MqttSettings
    from plantwire_platform.ingest.mqtt_ingest import MqttIngest
    from plantwire_platform.settings import PlatformSettings, StoreSettings

    settings = PlatformSettings.load(
        mqtt=MqttSettings(host=host, port=port),
        client_id=f"bench-{uuid.uuid4().hex[:8]}",
        store=StoreSettings(path=folder / "unused.sqlite"),
    )
    started = time.perf_counter()
    async with MqttIngest(settings, store) as ingest:
        while not ((s := ingest.stats()).messages >= expect and s.queue_depth == 0):
            await asyncio.sleep(0.05)
    seconds = time.perf_counter() - started  # the clean shutdown committed what was taken
    s = ingest.stats()
    return {
        "seconds": seconds,
        "messages": s.messages,
        "data_commits": s.commits,
        "registration_commits": getattr(s, "registration_commits", None),
        "store_errors": s.store_errors,
        "reconnects": s.reconnects,
    }


def child(backend: str, host: str, port: int, expect: int, folder: Path) -> dict[str, Any]:
    from plantwire_platform.store.device_query import DeviceQuery

    db = f"plantwire_bench_{uuid.uuid4().hex[:8]}"
    if backend == "sqlite":
        from plantwire_platform.store.sqlite import SqliteStore

        store: Any = SqliteStore.open(folder / f"{db}.sqlite")
    else:
        from pydantic import SecretStr

        from plantwire_platform.store.postgresql.store import PostgresSettings, PostgresStore

        asyncio.run(_admin(f'CREATE DATABASE "{db}"'))
        dsn = SecretStr(ADMIN_DSN.rsplit("/", 1)[0] + "/" + db)
        store = PostgresStore.open(PostgresSettings(dsn=dsn, startup_timeout_s=10, request_timeout_s=600))
    try:
        result = asyncio.run(_ingest(store, host, port, expect, folder))
        result["online"] = store.page_devices(DeviceQuery(state="online", limit=0)).total
        result["tags_of_first"] = len(store.list_tags("dev000000"))
    finally:
        store.close()
        if backend != "sqlite":
            asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
    return result


# --- the parent --------------------------------------------------------------------------------------


def export(ref: str, into: Path) -> Path:
    """The tree of a git revision, as files (no worktree, no checkout)."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def run(tree: Path, backend: str, port: int, expect: int, folder: Path) -> dict[str, Any]:
    parts = [tree, tree / "gateway", tree / "platform", tree / "device_sims"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, parts))}
    cmd = [sys.executable, __file__, "--child", backend, "--port", str(port), "--expect", str(expect)]
    out = subprocess.run([*cmd, "--dir", str(folder)], env=env, check=True, capture_output=True, text=True)
    logs = [line for line in (out.stdout + out.stderr).splitlines()[:-1] if line.strip()]
    if logs:
        print("    child's log (last lines):", *logs[-5:], sep="\n      ")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--tags", type=int, default=5)
    ap.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--baseline", help="a git revision to measure too (the code before a change)")
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--child", choices=["sqlite", "postgresql"], help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--expect", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="pwbench-"))
    folder.mkdir(parents=True, exist_ok=True)
    if args.child:
        print(json.dumps(child(args.child, "127.0.0.1", args.port, args.expect, folder)))
        return

    from plantwire.broker import MosquittoProcess, free_port

    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    trees = {"this": REPO}
    if args.baseline:
        base = folder / "baseline"
        base.mkdir(exist_ok=True)
        trees = {args.baseline: export(args.baseline, base), **trees}
    broker = MosquittoProcess(port=free_port(), data_dir=folder / "mosquitto")
    broker.start()
    try:
        t = time.perf_counter()
        n = publish_retained(broker.host, broker.port, args.devices, args.tags)
        print(f"{args.devices} devices x {args.tags} tags: {n} retained messages, published in "
              f"{time.perf_counter() - t:.1f} s")  # fmt: skip
        rows: dict[str, dict[str, dict[str, Any]]] = {}
        for backend in backends:
            for name, tree in trees.items():
                print(f"  {backend} {name}: load {load()} ...", flush=True)
                r = rows.setdefault(backend, {})[name] = run(tree, backend, broker.port, n, folder)
                print(f"    {r}", flush=True)
    finally:
        broker.stop()
    print(f"\nstart-up with {n} retained registrations ({args.devices} devices):")
    print(f"{'backend':<11}" + "".join(f"{name:>26}" for name in trees))
    for backend, by_tree in rows.items():
        cells = []
        for name in trees:
            r = by_tree[name]
            commits = r["registration_commits"] if r["registration_commits"] is not None else "?"
            cells.append(f"{r['seconds']:7.1f} s {n / r['seconds']:6.0f}/s {commits!s:>6}c")
        print(f"{backend:<11}" + "".join(f"{c:>26}" for c in cells))
    print("(c: registration commits; '?' for code that did not count them, one per message)")
    print(f"load after: {load()}")


if __name__ == "__main__":
    main()
