"""`plantwire demo` as a user runs it: it comes up, serves live data, and stops cleanly."""

from __future__ import annotations

import asyncio
import json
import queue
import re
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

import aiohttp
import paho.mqtt.client as mqtt
import psutil
import pytest
from pydantic import SecretStr

from plantwire.broker import free_port, mosquitto_path
from plantwire.config import MqttSettings
from plantwire.mqtt_control import new_client

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]  # slow to start on a loaded machine


class Output:
    """Collects a pipe's text in a thread, so a test can wait for a line without blocking its loop."""

    def __init__(self, stream: IO[str]) -> None:
        self._parts: list[str] = []
        self._thread = threading.Thread(target=self._collect, args=(stream,), daemon=True)
        self._thread.start()

    def _collect(self, stream: IO[str]) -> None:
        for line in stream:
            self._parts.append(line)

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def join(self) -> str:
        self._thread.join(timeout=10)
        return self.text


async def _wait_for(proc: subprocess.Popen[str], out: Output, err: Output, marker: str) -> str:
    while marker not in out.text:
        assert proc.poll() is None, f"demo exited early with {proc.returncode}:\n{out.text}\n{err.text}"
        await asyncio.sleep(0.1)
    return out.text


@pytest.mark.parametrize("broker", ["embedded", "mosquitto"])
async def test_demo_streams_five_machines_and_stops_cleanly(tmp_path: Path, broker: str) -> None:
    if broker == "mosquitto" and mosquitto_path() is None:
        pytest.fail("mosquitto is not installed")
    http_port, mqtt_port = free_port(), free_port()
    data_dir = tmp_path / "demo"
    proc = subprocess.Popen(  # noqa: ASYNC220 - its pipes are read by threads, see Output
        [sys.executable, "-m", "plantwire", "demo", "--http-port", str(http_port),
         "--mqtt-port", str(mqtt_port), "--sim-port", str(free_port()), "--broker", broker,
         "--rate", "5", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    out, err = Output(proc.stdout), Output(proc.stderr)
    try:
        async with asyncio.timeout(150):  # the demo gives the plant 120 s to come up
            banner = await _wait_for(proc, out, err, "Ctrl-C stops everything")
        assert f"Open the dashboard: http://127.0.0.1:{http_port}/" in banner
        token_file = data_dir / "admin.token"
        assert token_file.stat().st_mode & 0o777 == 0o600
        token = token_file.read_text().strip()
        assert f"admin token (also in {token_file}, mode 0600): {token}" in banner
        curl = f'curl -H "Authorization: Bearer $(cat {token_file})" http://127.0.0.1:{http_port}/api/devices'
        assert curl in banner
        link = re.search(rf"one-time login link: (http://127\.0\.0\.1:{http_port}/login\?once=\S+)", banner)
        assert link is not None, banner
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 5  # three simulator processes, platform, gateway (+ mosquitto)
        viewer = await _check_mqtt_access(data_dir, mqtt_port, banner)
        for child in children:  # credentials never on a command line that `ps` shows
            assert not any(viewer["password"] in part for part in child.cmdline()), child

        async with asyncio.timeout(30), aiohttp.ClientSession() as anonymous:
            async with anonymous.get(f"http://127.0.0.1:{http_port}/api/devices") as resp:
                assert resp.status == 401  # nobody uses the API without a token
            async with anonymous.get(link[1], allow_redirects=False) as resp:
                assert resp.status == 303 and resp.headers["Location"] == "/"
                assert "plantwire_session" in resp.cookies  # the link logs the browser in, once
            async with anonymous.get(link[1], allow_redirects=False) as resp:
                assert resp.headers["Location"] == "/login?link=invalid"
        headers = {"Authorization": f"Bearer {token}"}
        async with asyncio.timeout(30), aiohttp.ClientSession(headers=headers) as http:
            async with http.get(f"http://127.0.0.1:{http_port}/api/devices") as resp:
                devices = (await resp.json())["devices"]
            ids = sorted(d["id"] for d in devices)
            assert ids == ["cnc-1", "cnc-2", "meter-1", "pump-1", "pump-2"]
            assert all(d["state"] == "online" and d["tag_count"] > 0 for d in devices)
            # Data keeps arriving: the number of stored points grows.
            async with http.get(f"http://127.0.0.1:{http_port}/api/health") as resp:
                first = (await resp.json())["points"]
            while True:
                async with http.get(f"http://127.0.0.1:{http_port}/api/health") as resp:
                    if (await resp.json())["points"] > first:
                        break
                await asyncio.sleep(0.2)
            while True:  # Spindle/Speed changes every tick: wait for a real value after any reconnect
                async with http.get(
                    f"http://127.0.0.1:{http_port}/api/latest", params={"device": "cnc-1"}
                ) as resp:
                    latest = {v["tag"]: v for v in (await resp.json())["values"]}
                if latest.get("Spindle/Speed", {}).get("value") is not None:
                    break
                await asyncio.sleep(0.2)
            state = latest["Status/State"]
            # A state, or the outage marker a device reconnect leaves until the state next changes.
            assert state["value"] in {"RUNNING", "IDLE", "SETUP", "ALARM"} or (
                state["value"] is None and state["quality"] == "bad"
            ), state
            assert latest["Spindle/Speed"]["unit"] == "rpm"
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.to_thread(proc.wait, 40)
    assert proc.returncode == 0, err.join()
    assert "Plantwire demo stopped." in out.join()
    assert "Traceback" not in err.join()
    for child in children:
        assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE, f"orphan {child}"
    logs = "".join(p.read_text() for p in (data_dir / "logs").glob("*.log"))
    assert "Traceback" not in logs


def _subscribe_once(settings: MqttSettings, client_id: str) -> tuple[object, str | None]:
    """Connect, subscribe to plantwire/#, wait for one message: (CONNACK reason, topic or None)."""
    got: queue.Queue[object] = queue.Queue()
    client = new_client(settings, client_id, clean_session=True)

    def on_connect(c: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        got.put(reason)
        c.subscribe("plantwire/#", qos=1)

    client.on_connect = on_connect
    client.on_message = lambda c, u, msg: got.put(msg.topic)
    client.connect(settings.host, settings.port)
    client.loop_start()
    try:
        reason = got.get(timeout=10)
        if getattr(reason, "is_failure", True):
            return reason, None
        topic = got.get(timeout=10)
        return reason, str(topic)
    finally:
        client.disconnect()
        client.loop_stop()


async def _check_mqtt_access(data_dir: Path, mqtt_port: int, banner: str) -> dict[str, str]:
    """mqtt-viewer.json (exactly username and password, 0600) lets a person read; anonymous may not."""
    path = data_dir / "mqtt-viewer.json"
    viewer: dict[str, str] = json.loads(path.read_text())
    assert set(viewer) == {"username", "password"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert f"mosquitto_sub -p {mqtt_port} -u {viewer['username']} -P " in banner
    assert viewer["password"] not in banner
    settings = MqttSettings(
        port=mqtt_port, username=viewer["username"], password=SecretStr(viewer["password"])
    )
    async with asyncio.timeout(30):
        reason, topic = await asyncio.to_thread(_subscribe_once, settings, "a-person")
    assert topic is not None and topic.startswith("plantwire/v1/gw1/"), (reason, topic)
    async with asyncio.timeout(30):
        reason, topic = await asyncio.to_thread(_subscribe_once, MqttSettings(port=mqtt_port), "anonymous")
    assert topic is None and getattr(reason, "is_failure", False), (reason, topic)
    return viewer
