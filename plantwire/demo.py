"""`plantwire demo`: a small plant, the gateway, a broker and the platform, in one command.

Each part runs as its own process, as it would in a plant (so each has its own core and
the demo shows the real thing); the demo process supervises them, prints where everything
runs, and stops them in order: gateway first (it says offline), then platform, simulators,
and the broker last.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import aiohttp

from plantwire.broker import MosquittoProcess, embedded_broker, free_port, mosquitto_path
from plantwire.broker_auth import (
    Identity,
    Role,
    amqtt_plugins,
    client_environment,
    load_or_create_identities,
    write_mosquitto_auth,
    write_private,
)
from plantwire.demo_auth import LoginLinkError, auth_banner, bearer, demo_admin_token, login_link
from plantwire.logs import get_logger
from plantwire.runner import run_until_signalled

log = get_logger(__name__)

HELP = "run a whole demo plant: simulators, gateway, broker and platform"
DESCRIPTION = """\
Start a small simulated plant (2 CNC machines, 2 pumps, 1 energy meter), a broker
(Mosquitto if it is installed, else an embedded Python broker), the platform and the
gateway, each in its own process. Prints what runs where; Ctrl-C stops everything.

examples:
  plantwire demo
  plantwire demo --http-port 8081 --duration 60
  curl -H "Authorization: Bearer $(cat var/demo/admin.token)" localhost:8080/api/devices
"""

PLANT: tuple[tuple[str, int], ...] = (("cnc", 2), ("pump", 2), ("meter", 1))
GATEWAY_ID = "gw1"
IDENTITIES_FILE = "mqtt-identities.json"
VIEWER_FILE = "mqtt-viewer.json"
PASSWORD_OF = """python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["password"])'"""
"""Prints the password of an identity file (python3 is there wherever the demo runs; jq may not be)."""
"""A read-only MQTT account for people: exactly {"username": ..., "password": ...}, mode 0600."""
STOP_TIMEOUT = 10.0
SPARKPLUG_GROUP = "plantwire"
DEMO_HOST_ID = "plantwire"
"""`--sparkplug`: the platform's Sparkplug host id, which is also the gateway's primary host."""
READY_TIMEOUT = 120.0  # a busy 2-core machine needs over a minute to start the plant


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--http-port", type=int, default=8080, help="platform HTTP port (default 8080)")
    parser.add_argument(
        "--mqtt-port", type=int, default=None, help="broker port (default 1883, or a free port if taken)"
    )
    parser.add_argument(
        "--broker",
        choices=["auto", "mosquitto", "embedded"],
        default="auto",
        help="which broker to start (default auto: Mosquitto when installed)",
    )
    parser.add_argument(
        "--sparkplug",
        action="store_true",
        help="the gateway publishes Sparkplug B (group plantwire) and the platform ingests it as host",
    )
    parser.add_argument("--sim-port", type=int, default=4840, help="first simulator port (default 4840)")
    parser.add_argument("--rate", type=float, default=2.0, help="simulator updates per second (default 2)")
    parser.add_argument(
        "--data-dir", type=Path, default=Path("var/demo"), help="logs and data (default ./var/demo)"
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        help="stop after this many seconds (default: run until Ctrl-C)",
    )


def run(args: argparse.Namespace) -> int:
    if not 0 < args.http_port < 65536 or not 0 < args.sim_port < 65536:
        print("plantwire demo: ports must be between 1 and 65535", file=sys.stderr)
        return 2
    if args.rate <= 0:
        print("plantwire demo: --rate must be positive", file=sys.stderr)
        return 2
    if not _port_free(args.http_port):
        print(
            f"plantwire demo: port {args.http_port} is in use; choose another with --http-port",
            file=sys.stderr,
        )
        return 2
    result: list[int] = [0]

    async def main() -> None:
        result[0] = await Demo(args).run()

    run_until_signalled(main)
    return result[0]


def _port_free(port: int, host: str = "127.0.0.1") -> bool:
    import socket

    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _free_port_range(first: int, count: int) -> int:
    """The first port >= `first` such that `count` consecutive ports are free."""
    port = first
    while port + count < 65536:
        if all(_port_free(p) for p in range(port, port + count)):
            return port
        port += count
    raise RuntimeError("no free port range for the simulators")


def _die_with_parent() -> None:
    """In the child: get SIGTERM if the demo process dies, so nothing is left orphaned."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Child:
    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict, repr=False)
    """Extra environment (credentials travel here, never in argv where `ps` shows them)."""
    process: asyncio.subprocess.Process | None = None
    log_file: IO[bytes] | None = field(default=None, repr=False)


class Demo:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.data_dir: Path = args.data_dir.resolve()
        self.children: list[Child] = []
        self.identities: dict[Role, Identity] = {}
        self.token = ""
        self.login_link = ""

    async def run(self) -> int:
        (self.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        self._load_identities()
        mqtt_port = self.args.mqtt_port or (1883 if _port_free(1883) else free_port())
        sim_port = _free_port_range(self.args.sim_port, sum(n for _, n in PLANT))
        async with contextlib.AsyncExitStack() as stack:
            broker_name = await stack.enter_async_context(self._broker(mqtt_port))
            stack.push_async_callback(self._stop_children)
            self._start_plan(mqtt_port, sim_port)
            self.token = await asyncio.to_thread(demo_admin_token, self.data_dir)
            try:
                for child in self.children:
                    await self._spawn(child)
                devices = await self._wait_ready()
            except (DemoError, LoginLinkError) as err:
                print(f"plantwire demo: {err}", file=sys.stderr, flush=True)
                return 1
            self._print_summary(broker_name, mqtt_port, devices)
            return await self._supervise()
        return 0  # pragma: no cover - the stack does not swallow exceptions

    def _load_identities(self) -> None:
        """The broker accounts: made with new passwords on the first start, kept in the data dir."""
        identities = load_or_create_identities(self.data_dir / IDENTITIES_FILE, GATEWAY_ID)
        self.identities = {i.role: i for i in identities}
        viewer = self.identities[Role.VIEWER]
        text = json.dumps({"username": viewer.username, "password": viewer.password}, indent=2) + "\n"
        write_private(self.data_dir / VIEWER_FILE, text)

    @contextlib.asynccontextmanager
    async def _broker(self, port: int) -> AsyncIterator[str]:
        kind = self.args.broker
        if kind == "auto":
            kind = "mosquitto" if mosquitto_path() else "embedded"
        identities = list(self.identities.values())
        broker_dir = self.data_dir / "mosquitto"
        if kind == "mosquitto":
            auth = write_mosquitto_auth(broker_dir / "auth", identities)
            broker = MosquittoProcess(port=port, data_dir=broker_dir, auth=auth)
            await asyncio.to_thread(broker.start)
            try:
                yield "Mosquitto"
            finally:
                await asyncio.to_thread(broker.stop)
        else:
            broker_dir.mkdir(parents=True, exist_ok=True)
            plugins = amqtt_plugins(identities, broker_dir / "amqtt-passwd")
            async with embedded_broker(port, plugins=plugins):
                yield "embedded broker (amqtt)"

    def _start_plan(self, mqtt_port: int, sim_port: int) -> None:
        cli = [sys.executable, "-m", "plantwire", "--log-format", "json"]
        logs = self.data_dir / "logs"
        device_flags: list[str] = []
        port = sim_port
        for profile, count in PLANT:
            self.children.append(
                Child(
                    f"sim-{profile}",
                    [
                        *cli,
                        "sim",
                        "--profile",
                        profile,
                        "--count",
                        str(count),
                        "--port",
                        str(port),
                        "--rate",
                        str(self.args.rate),
                    ],
                    logs / f"sim-{profile}.log",
                )
            )
            for i in range(1, count + 1):
                name = f"{profile}-{i}"
                device_flags += ["--device", f"{name}=opc.tcp://127.0.0.1:{port}#ns=2;s={name}"]
                port += 1
        self.children.append(
            Child(
                "platform",
                [
                    *cli,
                    "platform",
                    "--http-port",
                    str(self.args.http_port),
                    "--mqtt-port",
                    str(mqtt_port),
                    "--store",
                    str(self.data_dir / "platform.sqlite"),
                ],
                logs / "platform.log",
                {**client_environment(self.identities[Role.PLATFORM]), **self._sparkplug_env("platform")},
            )
        )
        self.children.append(
            Child(
                "gateway",
                [
                    *cli,
                    "gateway",
                    "--id",
                    GATEWAY_ID,
                    "--mqtt-port",
                    str(mqtt_port),
                    "--data-dir",
                    str(self.data_dir / "gateway"),
                    *device_flags,
                ],
                logs / "gateway.log",
                {**client_environment(self.identities[Role.GATEWAY]), **self._sparkplug_env("gateway")},
            )
        )

    def _sparkplug_env(self, service: str) -> dict[str, str]:
        """`--sparkplug`: the gateway as edge node of group plantwire whose primary host is the platform
        (so it publishes only while the platform is online), the platform as that host."""
        if not getattr(self.args, "sparkplug", False):
            return {}
        if service == "platform":
            return {
                "PLANTWIRE_SPARKPLUG_HOST__ENABLED": "true",
                "PLANTWIRE_SPARKPLUG_HOST__HOST_ID": DEMO_HOST_ID,
            }
        return {
            "PLANTWIRE_NORTHBOUND": "sparkplug",
            "PLANTWIRE_SPARKPLUG__GROUP_ID": SPARKPLUG_GROUP,
            "PLANTWIRE_SPARKPLUG__PRIMARY_HOST_ID": DEMO_HOST_ID,
        }

    async def _spawn(self, child: Child) -> None:
        child.log_file = child.log_path.open("ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PLANTWIRE_MQTT__")}
        child.process = await asyncio.create_subprocess_exec(
            *child.argv,
            env={**env, **child.env},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=child.log_file,
            stderr=child.log_file,
            start_new_session=True,  # Ctrl-C reaches the demo only; it stops children in order
            preexec_fn=_die_with_parent,
        )
        log.debug("child_started", name=child.name, pid=child.process.pid)

    async def _wait_ready(self) -> list[dict[str, object]]:
        """Wait until the platform lists every device of the plant as online."""
        timeout = READY_TIMEOUT
        expected = sum(n for _, n in PLANT)
        base = f"http://127.0.0.1:{self.args.http_port}"
        url = f"{base}/api/devices"
        deadline = time.monotonic() + timeout
        devices: list[dict[str, object]] = []
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            while time.monotonic() < deadline:
                self._check_children()
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with http.get(url, headers=bearer(self.token)) as resp:
                        if resp.status == 200:
                            devices = (await resp.json())["devices"]
                            online = [d for d in devices if d.get("state") == "online" and d.get("last_data")]
                            if len(online) >= expected:
                                self.login_link = await login_link(http, base, self.token)
                                return devices
                await asyncio.sleep(0.25)
        raise DemoError(
            f"the plant did not come up within {timeout:.0f}s "
            f"({len(devices)} of {expected} devices seen); logs are in {self.data_dir / 'logs'}"
        )

    def _check_children(self) -> None:
        for child in self.children:
            if child.process is not None and child.process.returncode is not None:
                raise DemoError(
                    f"{child.name} exited with code {child.process.returncode}; see {child.log_path}"
                )

    def _print_summary(self, broker: str, mqtt_port: int, devices: Sequence[dict[str, object]]) -> None:
        http = f"http://127.0.0.1:{self.args.http_port}"
        port_flag = "" if mqtt_port == 1883 else f" -p {mqtt_port}"
        lines = [
            "",
            "Plantwire demo is running.",
            "",
            f"  broker     {broker} on 127.0.0.1:{mqtt_port}",
            f"  platform   {http}   (store: {self.data_dir / 'platform.sqlite'})",
            f"  gateway    {GATEWAY_ID}"
            + (
                f"   (Sparkplug B: spBv1.0/{SPARKPLUG_GROUP}/+/{GATEWAY_ID}/#, host {DEMO_HOST_ID})"
                if getattr(self.args, "sparkplug", False)
                else ""
            ),
        ]
        for d in devices:
            lines.append(f"  device     {d['id']:<8} {d.get('endpoint')}   {d.get('tag_count')} tags")
        lines += [
            "",
            *auth_banner(http, self.data_dir, self.token, self.login_link),
            f"  API description: {http}/api/openapi.json",
            "",
            *self._access_lines(port_flag),
            f"Logs: {self.data_dir / 'logs'}.  "
            + (
                f"Stopping in {self.args.duration:.0f}s."
                if self.args.duration
                else "Ctrl-C stops everything."
            ),
            "",
        ]
        print("\n".join(lines), flush=True)

    def _access_lines(self, port_flag: str) -> list[str]:
        """How people get in. Every broker connection needs a password; the read-only one is theirs."""
        viewer = self.identities[Role.VIEWER]
        viewer_file = self.data_dir / VIEWER_FILE
        sparkplug = getattr(self.args, "sparkplug", False)
        topic = "spBv1.0/#" if sparkplug else "plantwire/#"
        return [
            f"Watch MQTT (read-only account, password in {viewer_file}):",
            f'  mosquitto_sub{port_flag} -u {viewer.username} -P "$({PASSWORD_OF} {viewer_file})" '
            f"-t '{topic}' -v" + ("   (Sparkplug B payloads are protobuf)" if sparkplug else ""),
            "",
        ]

    async def _supervise(self) -> int:
        """Run until the duration ends or a signal cancels us; a child that dies stops the demo."""
        deadline = None if self.args.duration is None else time.monotonic() + self.args.duration
        while deadline is None or time.monotonic() < deadline:
            try:
                self._check_children()
            except DemoError as err:
                print(f"plantwire demo: {err}", file=sys.stderr, flush=True)
                return 1
            await asyncio.sleep(0.2)
        return 0

    async def _stop_children(self) -> None:
        """Stop the gateway, then the platform, then all simulators at once; SIGKILL after a timeout."""
        by_name = {c.name: c for c in self.children}
        sims = [c for c in self.children if c.name.startswith("sim-")]
        for step in ([by_name.get("gateway")], [by_name.get("platform")], sims):
            await asyncio.gather(*(self._stop_child(c) for c in step if c is not None))
        print("Plantwire demo stopped.", flush=True)

    async def _stop_child(self, child: Child) -> None:
        proc = child.process
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(proc.wait()), STOP_TIMEOUT)
            except TimeoutError:
                log.warning("child_killed", name=child.name, pid=proc.pid, after_s=STOP_TIMEOUT)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if child.log_file is not None:
            child.log_file.close()


class DemoError(RuntimeError):
    """The demo could not start or a part of it stopped."""


if os.name != "posix":  # pragma: no cover - the demo supervises POSIX processes
    raise ImportError("plantwire demo needs a POSIX system")
