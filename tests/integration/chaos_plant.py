"""A whole plant as real processes, for chaos tests and bench/outage.py: sims, gateway, platform, Mosquitto.

Every part is started the way it is deployed (`python -m plantwire ...`) so that it can be killed with
SIGKILL and started again. The ground truth is the simulators' own JSONL records; the outcome is read
straight from the platform's SQLite file (read-only), so the checks do not depend on the API.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from plantwire import wire
from plantwire.broker import MosquittoProcess, free_port, wait_for_port
from plantwire_platform.auth.scopes import Scope
from plantwire_platform.auth.token_catalog import TokenCatalog, tokens_path

CLI = [sys.executable, "-m", "plantwire", "--log-format", "json", "--log-level", "info"]
BAD = wire.STATUS_BAD_NO_COMMUNICATION

Key = tuple[str, str, int]
"""(device, tag, source ts in µs)"""


def wait_until(condition: Callable[[], bool], timeout: float, what: str, every: float = 0.05) -> float:
    """Poll `condition` until true; returns the time it took. Raises TimeoutError naming `what`."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"{what} did not happen within {timeout}s")
        time.sleep(every)
    return time.monotonic() - start


@dataclass
class Sim:
    """One `plantwire sim` process with one machine; restartable on the same port with a new record."""

    name: str
    port: int
    logs: Path
    tags: int = 5
    rate: float = 20.0
    seed: int = 1
    extra: tuple[str, ...] = ()
    """More `plantwire sim` arguments, e.g. ("--history", "120")."""
    records: list[Path] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}"

    def start(self) -> None:
        record = self.logs / f"{self.name}-{len(self.records) + 1}.jsonl"
        self.records.append(record)
        argv = [*CLI, "sim", "--profile", "meter", "--name", self.name, "--port", str(self.port),
                "--tags", str(self.tags), "--rate", str(self.rate), "--seed", str(self.seed),
                "--record", str(record), *self.extra]  # fmt: skip
        self.process = _spawn(argv, self.logs / f"{self.name}.log")
        wait_for_port("127.0.0.1", self.port, timeout=30)

    def stop(self) -> None:
        """SIGTERM: the server goes away and the simulator flushes its record."""
        _terminate(self.process)
        self.process = None


def _spawn(argv: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=log.open("ab"), env={**os.environ, **(env or {})}
    )


def _terminate(proc: subprocess.Popen[bytes] | None, timeout: float = 20) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _kill(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait()


@dataclass
class Plant:
    """Sims -> gateway -> broker -> platform, each a process this object started."""

    work: Path
    broker: MosquittoProcess
    sims: list[Sim]
    gateway_id: str
    publishing_ms: int = 100
    queue_size: int = 1000
    device_extra: str = ""
    """More TOML lines for every `[[devices]]` table of the gateway's config."""
    http_port: int = field(default_factory=free_port)
    gateway_health_port: int = field(default_factory=free_port)
    gateway: subprocess.Popen[bytes] | None = None
    platform: subprocess.Popen[bytes] | None = None
    token: str = ""
    """An admin token in the platform's catalog, sent on every request to the platform (not the gateway)."""

    @property
    def store_path(self) -> Path:
        return self.work / "platform.sqlite"

    @property
    def outbox_path(self) -> Path:
        return self.work / "gateway" / "outbox.sqlite3"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    # --- processes -------------------------------------------------------------------------------

    def start_platform(self) -> None:
        env = {
            "PLANTWIRE_CLIENT_ID": f"p-{self.gateway_id}"[:23],
            "PLANTWIRE_STORE__COMMIT_INTERVAL_MS": "50",
        }
        argv = [*CLI, "platform", "--http-port", str(self.http_port), "--mqtt-port", str(self.broker.port),
                "--store", str(self.store_path)]  # fmt: skip
        if not self.token:
            catalog = TokenCatalog(tokens_path(self.store_path.parent))
            try:
                self.token = catalog.create("chaos-admin", Scope.ADMIN)
            finally:
                catalog.close()
        self.platform = _spawn(argv, self.work / "platform.log", env)
        wait_for_port("127.0.0.1", self.http_port, timeout=30)

    def start_gateway(self) -> None:
        config = self.work / "gateway.toml"
        devices = "".join(
            f'[[devices]]\nid = "{s.name}"\nendpoint = "{s.endpoint}"\nroot = "ns=2;s={s.name}"\n'
            f"publishing_interval_ms = {self.publishing_ms}\nqueue_size = {self.queue_size}\n"
            f"{self.device_extra}\n"
            for s in self.sims
        )
        config.write_text(f'id = "{self.gateway_id}"\n\n{devices}')
        argv = [*CLI, "gateway", "--config", str(config), "--mqtt-port", str(self.broker.port),
                "--data-dir", str(self.work / "gateway"),
                "--health-port", str(self.gateway_health_port)]  # fmt: skip
        self.gateway = _spawn(argv, self.work / "gateway.log")
        wait_for_port("127.0.0.1", self.gateway_health_port, timeout=30)

    def start(self) -> None:
        for sim in self.sims:
            sim.start()
        self.start_platform()
        self.start_gateway()

    def last_connected_us(self, device: str) -> int:
        """When the gateway last logged `device_connected` for `device` (its subscription existed), in µs."""
        last = 0
        for line in (self.work / "gateway.log").read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("event") == "device_connected" and entry.get("device_id") == device:
                at = datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00"))
                last = max(last, int(at.timestamp() * 1_000_000))
        return last

    def kill_gateway(self) -> None:
        _kill(self.gateway)
        self.gateway = None

    def stop_gateway(self) -> None:
        """SIGTERM: the gateway drains its outbox (for up to ~2 s), says goodbye and exits."""
        _terminate(self.gateway)
        self.gateway = None

    def kill_platform(self) -> None:
        _kill(self.platform)
        self.platform = None

    def stop(self) -> None:
        """Graceful stop of everything still running (sims first, so their records are complete)."""
        for sim in self.sims:
            sim.stop()
        _terminate(self.gateway)
        _terminate(self.platform)
        self.gateway = self.platform = None

    # --- observation -----------------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.store_path}?mode=ro", uri=True, timeout=10)

    def point_count(self) -> int:
        try:
            with closing(self._db()) as db:
                return int(db.execute("SELECT value FROM counters WHERE name = 'points'").fetchone()[0])
        except sqlite3.OperationalError:  # not created yet
            return 0

    def newest_ts(self) -> int:
        """Newest source timestamp of any good point stored (0 if none)."""
        try:
            with closing(self._db()) as db:
                row = db.execute("SELECT max(ts) FROM points WHERE status = 0").fetchone()
                return int(row[0] or 0)
        except sqlite3.OperationalError:
            return 0

    def stored(self) -> dict[Key, tuple[Any, int]]:
        """Every stored point: (device, tag, ts) -> (value, status)."""
        with closing(self._db()) as db:
            rows = db.execute(
                "SELECT s.device, s.tag, p.ts, p.value, p.status FROM points p "
                "JOIN series s ON s.series_id = p.series_id"
            ).fetchall()
        return {(d, t, ts): (v, q) for d, t, ts, v, q in rows}

    def last_seq(self) -> dict[str, int]:
        with closing(self._db()) as db:
            return dict(db.execute("SELECT id, last_seq FROM devices").fetchall())

    def _request(self, url: str) -> urllib.request.Request:
        """A GET of `url`, with the platform's token when it goes to the platform."""
        headers = {"Authorization": f"Bearer {self.token}"} if url.startswith(self.url + "/") else {}
        return urllib.request.Request(url, headers=headers)

    def http_json(self, url: str) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(self._request(url), timeout=5) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def metrics(self, url: str) -> dict[str, float]:
        """A Prometheus text page as {'name{labels}': value}."""
        with urllib.request.urlopen(self._request(url), timeout=5) as resp:
            text = resp.read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def outbox_samples(self) -> set[Key]:
        """What the (stopped) gateway's outbox holds: values received and not yet acknowledged."""
        out: set[Key] = set()
        with closing(sqlite3.connect(self.outbox_path)) as db:
            for device, payload in db.execute("SELECT device, payload FROM outbox"):
                out.update((device, s.tag, s.ts) for s in wire.decode_data(payload).samples)
        return out


def read_records(paths: Iterable[Path]) -> dict[Key, Any]:
    """The simulators' JSONL records: (device, tag, ts) -> value."""
    out: dict[Key, Any] = {}
    for path in paths:
        if path.exists():
            for line in path.read_text().splitlines():
                r = json.loads(line)
                out[(r["device"], r["tag"], r["ts"])] = r["v"]
    return out


@dataclass
class Verdict:
    expected: int
    lost: list[Key]
    invented: list[Key]
    markers: list[Key]

    def __str__(self) -> str:
        return (
            f"expected {self.expected}, lost {len(self.lost)} (first {sorted(self.lost)[:3]}), "
            f"invented {len(self.invented)} (first {sorted(self.invented)[:3]}), markers {len(self.markers)}"
        )


def compare(
    produced: dict[Key, Any],
    stored: dict[Key, tuple[Any, int]],
    start: dict[tuple[str, str], int] | None = None,
    end_ts: int | None = None,
    unsampled: Callable[[Key], bool] = lambda key: False,
) -> Verdict:
    """Which produced values the store lacks and which stored values nobody produced.

    A value counts as expected from its tag's first stored value on (or `start[tag]`), up to `end_ts`,
    unless `unsampled(key)` says nobody could have sampled it (the gateway was dead or unsubscribed).
    Outage markers (null, BadNoCommunication) are returned apart; every other stored point must have
    been produced.
    """
    markers = [k for k, (v, q) in stored.items() if q == BAD and v is None]
    real = {k for k, (_, q) in stored.items() if not (q == BAD and stored[k][0] is None)}
    first: dict[tuple[str, str], int] = dict(start or {})
    if start is None:
        for d, t, ts in real:
            first[(d, t)] = min(ts, first.get((d, t), ts))
    expected = [
        k
        for k in produced
        if (k[0], k[1]) in first
        and k[2] >= first[(k[0], k[1])]
        and (end_ts is None or k[2] <= end_ts)
        and not unsampled(k)
    ]
    lost = [k for k in expected if k not in real]
    invented = [k for k in real if k not in produced]
    return Verdict(len(expected), lost, invented, markers)
