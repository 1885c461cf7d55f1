"""Scale-out ingest: two platform workers share the data through an MQTT shared subscription.

Real parts: a Mosquitto of this test, two `plantwire platform` processes on one real PostgreSQL
(a schema of this test), a publisher speaking wire v1 over MQTT like a fleet of gateways. One worker
is killed with SIGKILL mid-stream and started again with its client id (as a supervisor does):
every value sent is stored exactly once, counted against what was sent.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from plantwire import wire
from plantwire.broker import MosquittoProcess, free_port
from plantwire.config import ConfigError, MqttSettings
from plantwire.mqtt_control import new_client
from plantwire_platform.auth.auth_database import AuthDatabase
from plantwire_platform.auth.postgres_auth import PostgresTokenCatalog
from plantwire_platform.auth.scopes import Scope
from plantwire_platform.ingest.mqtt_ingest import subscription_filters
from plantwire_platform.settings import PlatformSettings

pytestmark = pytest.mark.integration

DEVICES = 4
TAGS = 5
MESSAGES = 150  # per device
T0 = 1_700_000_000_000_000
STEP = 1000  # µs between samples of a tag


def _get(url: str, token: str) -> dict:  # type: ignore[type-arg]
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


def until(what: str, check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


class Worker:
    def __init__(self, env: dict[str, str], mqtt_port: int, log: Path, data_dir: Path, token: str) -> None:
        self.env, self.mqtt_port, self.log, self.token = env, mqtt_port, log, token
        data_dir.mkdir(parents=True, exist_ok=True)
        self.url = ""
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        argv = [sys.executable, "-m", "plantwire", "--log-format", "json", "--log-level", "warning",
                "platform", "--http-port", str(port), "--mqtt-port", str(self.mqtt_port)]  # fmt: skip
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log, env=self.env)
        until(f"worker at {self.url} ready", lambda: _ready(self.url))

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def health(self) -> dict:  # type: ignore[type-arg]
        return _get(f"{self.url}/api/health", self.token)


@pytest.fixture
def workers(
    own_mosquitto: MosquittoProcess, postgres_dsn: str, postgres_schema: str, unique_id: str, tmp_path: Path
) -> Iterator[list[Worker]]:
    out = []
    # The workers' API tokens live in the store's schema, shared by both (docs/scaling.md).
    catalog = PostgresTokenCatalog.open(AuthDatabase(SecretStr(postgres_dsn), postgres_schema))
    try:
        token = catalog.create("test-reader", Scope.READ)
    finally:
        catalog.close()
    for name in ("a", "b"):
        env = {
            **os.environ,
            "PLANTWIRE_STORE__BACKEND": "postgresql",
            "PLANTWIRE_STORE__POSTGRESQL__DSN": postgres_dsn,
            "PLANTWIRE_STORE__POSTGRESQL__SCHEMA_NAME": postgres_schema,
            "PLANTWIRE_STORE__COMMIT_INTERVAL_MS": "50",
            "PLANTWIRE_CLIENT_ID": f"{unique_id}-{name}",
            "PLANTWIRE_INGEST__SHARED_GROUP": unique_id,
            "PLANTWIRE_APPS__BUILTIN": "false",
            "PLANTWIRE_APPS__PATH": str(tmp_path / "no-apps"),
            "PLANTWIRE_STORE__PATH": str(tmp_path / name / "plantwire.sqlite"),  # its identifiers, lock
        }
        out.append(Worker(env, own_mosquitto.port, tmp_path / f"worker-{name}.log", tmp_path / name, token))
    try:
        for w in out:
            w.start()
        yield out
    finally:
        for w in out:
            w.stop()


def publish_fleet(port: int, gateway: str, paused: threading.Event) -> threading.Thread:
    """Publish MESSAGES data messages per device (QoS 1), waiting while `paused` is set."""

    def run() -> None:
        client = new_client(MqttSettings(port=port), f"{gateway}-pub", clean_session=True)
        client.max_inflight_messages_set(100)
        client.connect("127.0.0.1", port)
        client.loop_start()
        infos = []
        for seq in range(1, MESSAGES + 1):
            while paused.is_set():
                time.sleep(0.01)
            for d in range(DEVICES):
                samples = [wire.Sample(f"t{t}", T0 + seq * STEP, float(seq)) for t in range(TAGS)]
                body = wire.encode_data(wire.DataBatch(seq, wire.now_us(), samples))
                infos.append(
                    client.publish(wire.device_topic(gateway, f"{gateway}-d{d}", "data"), body, qos=1)
                )
            time.sleep(0.005)
        for info in infos:
            info.wait_for_publish(60)
        client.disconnect()
        client.loop_stop()

    thread = threading.Thread(target=run, name="fleet-publisher", daemon=True)
    thread.start()
    return thread


async def _stored(dsn: str, schema: str) -> list[tuple[str, str, int, int, int]]:
    import asyncpg

    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        rows = await conn.fetch(
            "SELECT s.device, s.tag, count(*), min(p.ts), max(p.ts) FROM points p "
            "JOIN series s ON s.series_id = p.series_id GROUP BY s.device, s.tag ORDER BY 1, 2"
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]
    finally:
        await conn.close()


def test_two_workers_share_the_data_and_a_killed_one_loses_nothing(
    workers: list[Worker], own_mosquitto: MosquittoProcess, postgres_dsn: str, postgres_schema: str,
    unique_id: str,
) -> None:  # fmt: skip
    a, b = workers
    total = DEVICES * TAGS * MESSAGES
    paused = threading.Event()
    publisher = publish_fleet(own_mosquitto.port, unique_id, paused)
    # Both workers take a share before one dies.
    until(
        "both workers storing",
        lambda: a.health()["ingest"]["messages"] > 20 and b.health()["ingest"]["messages"] > 20,
    )
    a.kill()
    b_before = b.health()["ingest"]["messages"]
    until("the survivor to keep storing", lambda: b.health()["ingest"]["messages"] > b_before + 20)
    a.start()  # same client id: its persistent session (and what it had not acknowledged) comes back
    publisher.join(120)
    assert not publisher.is_alive()
    until(f"all {total} values stored", lambda: b.health()["points"] >= total, timeout=90)
    rows = asyncio.run(_stored(postgres_dsn, postgres_schema))
    expected = [
        (f"{unique_id}-d{d}", f"t{t}", MESSAGES, T0 + STEP, T0 + MESSAGES * STEP)
        for d in range(DEVICES)
        for t in range(TAGS)
    ]
    # count == MESSAGES with min and max at the ends: every ts stored exactly once (the key forbids two).
    assert rows == expected
    assert b.health()["points"] == total
    assert a.health()["ingest"]["messages"] > 0  # the restarted worker took its share again


def test_shared_group_names_a_group_only() -> None:
    assert subscription_filters("ingest") == (
        "plantwire/v1/+/status",
        "plantwire/v1/+/+/status",
        "plantwire/v1/+/+/meta",
        "$share/ingest/plantwire/v1/+/+/data",
    )
    assert subscription_filters(None)[-1] == "plantwire/v1/+/+/data"
    for bad in ("a/b", "a+", "#", ""):
        with pytest.raises(ConfigError, match="shared_group"):
            PlatformSettings.load(ingest={"shared_group": bad})
