"""The compose topology, run without Docker: our services' commands and environments, as local processes.

The test reads deploy/docker-compose.yml and starts every Plantwire service (simulators, gateway,
platform) with exactly its `command` (as `python -m plantwire ...`) and its `environment`, with the
variables filled from example.env. Only what Docker would provide is mapped: service host names
become 127.0.0.1, container ports become free local ports, /data, /auth and /pki become temporary
folders, and the store is switched to SQLite by environment. The broker is a real Mosquitto run with
deploy/mosquitto/mosquitto.conf (TLS, passwords, ACL, bound client ids), its password file and ACL
written by the compose file's `mqtt-auth` service and its certificates by `plantwire pki init`, as
docs/deploy.md says. If a command, flag, variable or port in the compose file drifts from the code,
this test fails.
"""

from __future__ import annotations

import asyncio
import os
import queue
import re
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import paho.mqtt.client as mqtt
import pytest
import yaml
from pydantic import SecretStr

from plantwire.broker import free_port, mosquitto_path, wait_for_port
from plantwire.config import MqttSettings
from plantwire.mqtt_control import new_client

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SIMS = ("sim-cnc", "sim-pump", "sim-meter")
_VAR = re.compile(r"\$\{([A-Z][A-Z0-9_]*)(?:[:?\-][^}]*)?\}")
_ENDPOINT = re.compile(r"opc\.tcp://([A-Za-z0-9_.\-]+):(\d+)")

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]  # slow to start on a loaded machine


def _example_env() -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in (DEPLOY / "example.env").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    return {k: v for k, v in pairs}


def _fill(text: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?message}, filled from example.env."""
    return _VAR.sub(lambda m: env[m.group(1)], text)


def _free_ports(count: int) -> int:
    """The first of `count` consecutive free loopback ports."""
    while True:
        base = free_port()
        if base + count > 65535:
            continue
        try:
            for port in range(base + 1, base + count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue


class Topology:
    """Maps the compose file's names and ports onto this machine and runs our services."""

    def __init__(self, compose: dict[str, Any], tmp: Path, broker_port: int) -> None:
        self.compose = compose
        self.tmp = tmp
        self.env_values = _example_env()
        self.broker_port = broker_port
        self.ports: dict[tuple[str, int], int] = {("mosquitto", 8883): broker_port}
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.http_port = 0
        self.gateway_health_port = 0

    def command(self, name: str) -> list[str]:
        return [_fill(str(part), self.env_values) for part in self.compose["services"][name]["command"]]

    def environment(self, name: str) -> dict[str, str]:
        raw = self.compose["services"][name].get("environment", {})
        env = {k: _fill(str(v), self.env_values) for k, v in raw.items()}
        if "PLANTWIRE_MQTT__HOST" in env:
            host, port = env["PLANTWIRE_MQTT__HOST"], int(env["PLANTWIRE_MQTT__PORT"])
            env["PLANTWIRE_MQTT__HOST"] = "127.0.0.1"
            env["PLANTWIRE_MQTT__PORT"] = str(self.ports[(host, port)])
        if "PLANTWIRE_STORE__BACKEND" in env:
            env["PLANTWIRE_STORE__BACKEND"] = "sqlite"
        return {k: self._local_path(name, v) for k, v in env.items()}

    def _local_path(self, service: str, value: str) -> str:
        if value == "/data" or value.startswith("/data/"):
            return str(self.tmp / service / value.removeprefix("/data").lstrip("/"))
        for shared in ("/pki", "/auth"):  # ./pki (made by `plantwire pki init`), the mosquitto-auth volume
            if value == shared or value.startswith(f"{shared}/"):
                return str(self.tmp / shared.lstrip("/") / value.removeprefix(shared).lstrip("/"))
        return value

    def run_once(self, name: str) -> None:
        """A one-shot service (mqtt-auth): run its command with its environment to completion."""
        argv = [self._local_path(name, part) for part in self.command(name)]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PLANTWIRE_", "MQTT_"))}
        env.update(self.environment(name))
        done = subprocess.run(
            [sys.executable, "-m", "plantwire", *argv], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr

    def start_mosquitto(self) -> None:
        """deploy/mosquitto/mosquitto.conf with the container's paths mapped to this test's folders."""
        binary = mosquitto_path()
        if binary is None:
            pytest.fail("mosquitto is not installed")
        files = {"passwd": "auth", "acl": "auth", "ca.crt": "pki", "server.crt": "pki", "server.key": "pki"}
        text = (DEPLOY / "mosquitto" / "mosquitto.conf").read_text()
        for name, folder in files.items():
            text = text.replace(f"/mosquitto/data/secrets/{name}", str(self.tmp / folder / name))
        data = self.tmp / "mosquitto"
        data.mkdir()
        text = text.replace("persistence_location /mosquitto/data/", f"persistence_location {data}/")
        text = text.replace("listener 8883\n", f"listener {self.broker_port} 127.0.0.1\n")
        settings = [line for line in text.splitlines() if not line.startswith("#")]
        assert not any(" /mosquitto/" in line for line in settings), settings
        assert f"listener {self.broker_port} 127.0.0.1" in settings
        conf = data / "mosquitto.conf"
        conf.write_text(("user root\n" if os.geteuid() == 0 else "") + text)
        log = (self.tmp / "mosquitto.log").open("wb")
        proc = subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(("mosquitto", proc))
        wait_for_port("127.0.0.1", self.broker_port)

    def map_sim(self, name: str, argv: list[str]) -> list[str]:
        count = int(argv[argv.index("--count") + 1])
        port_at = argv.index("--port") + 1
        container_port = int(argv[port_at])
        base = _free_ports(count)
        for i in range(count):
            self.ports[(name, container_port + i)] = base + i
        argv[port_at] = str(base)
        argv[argv.index("--host") + 1] = "127.0.0.1"
        return argv

    def map_platform(self, argv: list[str]) -> list[str]:
        self.http_port = free_port()
        self.ports[("platform", int(argv[argv.index("--http-port") + 1]))] = self.http_port
        argv[argv.index("--http-port") + 1] = str(self.http_port)
        argv[argv.index("--http-host") + 1] = "127.0.0.1"
        return argv

    def map_gateway(self, argv: list[str]) -> list[str]:
        self.gateway_health_port = free_port()
        argv = list(argv)
        argv[argv.index("--health-port") + 1] = str(self.gateway_health_port)
        argv[argv.index("--health-host") + 1] = "127.0.0.1"
        out = []
        for part in argv:
            part = _ENDPOINT.sub(lambda m: f"opc.tcp://127.0.0.1:{self.ports[(m[1], int(m[2]))]}", part)
            out.append(self._local_path("gateway", part))
        return out

    def start(self, name: str, argv: list[str]) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PLANTWIRE_", "MQTT_"))}
        env.update(self.environment(name))
        (self.tmp / name).mkdir(parents=True, exist_ok=True)
        log = (self.tmp / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "plantwire", *argv],
            env=env,
            cwd=self.tmp / name,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append((name, proc))

    def create_token(self, name: str, scope: str) -> str:
        """`plantwire token create` in the platform's environment, as `docker compose exec platform`
        runs it; the token is the last line of its output."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PLANTWIRE_", "MQTT_"))}
        env.update(self.environment("platform"))
        argv = [sys.executable, "-m", "plantwire", "token", "create", "--name", name, "--scope", scope]
        done = subprocess.run(argv, env=env, cwd=self.tmp, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1]

    def check_running(self) -> None:
        for name, proc in self.processes:
            if proc.poll() is not None:
                tail = (self.tmp / f"{name}.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"service {name} exited with {proc.returncode}:\n{tail}")

    def stop(self) -> None:
        for _, proc in reversed(self.processes):
            if proc.poll() is None:
                proc.terminate()
        for _, proc in self.processes:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[Topology]:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    # docs/deploy.md: `plantwire pki init deploy/pki --hostname mosquitto` before the first start.
    subprocess.run(
        [sys.executable, "-m", "plantwire", "pki", "init", str(tmp_path / "pki"), "--hostname", "mosquitto"],
        check=True,
        capture_output=True,
    )
    topo = Topology(compose, tmp_path, free_port())
    try:
        topo.run_once("mqtt-auth")
        topo.start_mosquitto()
        yield topo
    finally:
        topo.stop()


async def _get(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as resp:
        resp.raise_for_status()
        return await resp.json()


async def test_compose_services_run_locally_and_data_flows_end_to_end(topology: Topology) -> None:
    services = topology.compose["services"]
    assert set(SIMS) <= set(services)
    for name in SIMS:
        topology.start(name, topology.map_sim(name, topology.command(name)))
    headers = {"Authorization": f"Bearer {topology.create_token('topology', 'read')}"}  # made before start
    topology.start("platform", topology.map_platform(topology.command("platform")))
    topology.start("gateway", topology.map_gateway(topology.command("gateway")))
    expected = {
        device
        for part in services["gateway"]["command"]
        if (device := str(part).partition("=")[0]) and "opc.tcp://" in str(part)
    }
    assert len(expected) == 5
    base = f"http://127.0.0.1:{topology.http_port}"
    timeout = aiohttp.ClientTimeout(total=5)
    async with asyncio.timeout(150), aiohttp.ClientSession(timeout=timeout, headers=headers) as session:
        online: set[str] = set()
        while online != expected:
            topology.check_running()
            try:
                devices = (await _get(session, f"{base}/api/devices"))["devices"]
                online = {d["id"] for d in devices if d["state"] == "online" and d["last_data"]}
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
        first = (await _get(session, f"{base}/api/health"))["points"]
        points = first
        while points <= first:
            topology.check_running()
            await asyncio.sleep(0.2)
            points = (await _get(session, f"{base}/api/health"))["points"]
        # What the compose health checks ask: the platform's and the gateway's readiness.
        gateway = f"http://127.0.0.1:{topology.gateway_health_port}"
        assert (await _get(session, f"{gateway}/healthz"))["status"] == "alive"
        for url in (f"{base}/readyz", f"{gateway}/readyz"):
            while True:
                async with session.get(url) as resp:
                    if resp.status == 200 and (await resp.json())["status"] == "ready":
                        break
                await asyncio.sleep(0.2)
    assert points > first > 0
    topology.check_running()
    await _check_broker_access(topology)


def _first_message(settings: MqttSettings) -> tuple[bool, str | None]:
    """(connected, first topic received on plantwire/#) within a few seconds."""
    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    client = new_client(settings, "compose-test", clean_session=True)

    def on_connect(c: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        events.put(("connack", reason))
        c.subscribe("plantwire/#", 1)

    client.on_connect = on_connect
    client.on_message = lambda c, u, msg: events.put(("message", msg.topic))
    try:
        client.connect(settings.host, settings.port)
    except (OSError, ssl.SSLError):
        return False, None
    client.loop_start()
    try:
        kind, value = events.get(timeout=10)
        if kind != "connack" or value.is_failure:
            return False, None
        return True, events.get(timeout=10)[1]
    except queue.Empty:
        return False, None
    finally:
        client.disconnect()
        client.loop_stop()


async def _check_broker_access(topology: Topology) -> None:
    """The viewer account from example.env reads over TLS; without TLS or a password nothing connects."""
    env = topology.env_values
    ca = topology.tmp / "pki" / "ca.crt"
    port = topology.broker_port
    viewer = MqttSettings(
        port=port,
        username=env["MQTT_VIEWER_USERNAME"],
        password=SecretStr(env["MQTT_VIEWER_PASSWORD"]),
        tls_ca_file=ca,
    )
    async with asyncio.timeout(60):
        ok, topic = await asyncio.to_thread(_first_message, viewer)
        assert ok and topic is not None and topic.startswith(f"plantwire/v1/{env['GATEWAY_ID']}/"), topic
        for refused in (
            MqttSettings(port=port, tls_ca_file=ca),
            viewer.model_copy(update={"tls_ca_file": None}),
        ):
            assert await asyncio.to_thread(_first_message, refused) == (False, None)
