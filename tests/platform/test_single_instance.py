"""One platform per store (issue 11, item 6), with real `plantwire platform` processes, a real
Mosquitto and SQLite file: a second platform started by mistake on the same store, or on the same
HTTP port, exits at once with one line and touches nothing; the first goes on ingesting and keeps
its MQTT session (no reconnect, nothing lost)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from plantwire import wire
from plantwire.broker import MosquittoProcess, free_port
from plantwire.config import MqttSettings
from plantwire.mqtt_control import new_client
from plantwire_platform.auth.scopes import Scope
from plantwire_platform.auth.token_catalog import TokenCatalog, tokens_path

pytestmark = pytest.mark.integration


def until(what: str, check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _argv(store: Path, http_port: int, mqtt_port: int) -> list[str]:
    return [sys.executable, "-m", "plantwire", "--log-level", "warning", "platform",
            "--store", str(store), "--http-port", str(http_port), "--mqtt-port", str(mqtt_port)]  # fmt: skip


@pytest.fixture
def first(
    own_mosquitto: MosquittoProcess, tmp_path: Path, unique_id: str
) -> Iterator[tuple[str, str, dict[str, str]]]:
    store = tmp_path / "one" / "plantwire.sqlite"
    store.parent.mkdir()
    catalog = TokenCatalog(tokens_path(store.parent))
    try:
        token = catalog.create("test-reader", Scope.READ)
    finally:
        catalog.close()
    env = {
        **os.environ,
        "PLANTWIRE_CLIENT_ID": f"p-{unique_id}",
        "PLANTWIRE_APPS__BUILTIN": "false",
        "PLANTWIRE_APPS__PATH": str(tmp_path / "no-apps"),
        "PLANTWIRE_STORE__COMMIT_INTERVAL_MS": "50",
    }
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (tmp_path / "first.log").open("ab") as log:
        proc = subprocess.Popen(_argv(store, port, own_mosquitto.port), stdout=log, stderr=log, env=env)
    try:
        until("the first platform ready", lambda: _ready(url))
        yield url, token, env
    finally:
        proc.terminate()
        proc.wait(30)


def _health(url: str, token: str) -> dict:  # type: ignore[type-arg]
    request = urllib.request.Request(f"{url}/api/health", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


def _publish(port: int, client_id: str, device: str, seq: int) -> None:
    client = new_client(MqttSettings(port=port), client_id, clean_session=True)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        batch = wire.DataBatch(
            seq=seq, sent=wire.now_us(), samples=[wire.Sample("t", wire.now_us(), float(seq))]
        )
        info = client.publish(wire.device_topic("gw1", device, "data"), wire.encode_data(batch), qos=1)
        info.wait_for_publish(5)
        assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


def test_a_second_platform_on_the_same_store_or_port_exits_and_disturbs_nothing(
    first: tuple[str, str, dict[str, str]], own_mosquitto: MosquittoProcess, tmp_path: Path, unique_id: str
) -> None:
    url, token, env = first
    dev = f"dev-{unique_id}"
    _publish(own_mosquitto.port, f"pub-{unique_id}", dev, 1)
    until("the first value stored", lambda: _health(url, token)["points"] == 1)

    store = tmp_path / "one" / "plantwire.sqlite"
    second = subprocess.run(
        _argv(store, free_port(), own_mosquitto.port), env=env, capture_output=True, text=True, timeout=60
    )
    assert second.returncode == 1
    (line,) = second.stderr.strip().splitlines()
    assert line.startswith("plantwire platform: another platform (pid ") and str(store) in line, line

    # Another store but the first one's HTTP port: refused before it connects to MQTT.
    port = int(url.rsplit(":", 1)[1])
    other = tmp_path / "two" / "plantwire.sqlite"
    third = subprocess.run(
        _argv(other, port, own_mosquitto.port), env=env, capture_output=True, text=True, timeout=60
    )
    assert third.returncode == 1
    (line,) = third.stderr.strip().splitlines()
    assert line.startswith(f"plantwire platform: cannot listen on 127.0.0.1:{port}"), line

    # The first goes on ingesting on the same MQTT session: no reconnect, nothing lost.
    _publish(own_mosquitto.port, f"pub-{unique_id}", dev, 2)
    until("the second value stored", lambda: _health(url, token)["points"] == 2)
    ingest = _health(url, token)["ingest"]
    assert ingest["reconnects"] == 0 and ingest["connected"]
