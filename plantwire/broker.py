"""Run an MQTT broker for the demo and the tests: Mosquitto when installed, else an embedded one.

Mosquitto's defaults lose data on a zero-loss path: a subscriber that falls behind has at most
1,000 queued messages (`max_queued_messages`) and 20 in flight. Our config removes the queue
cap for persistent sessions and widens the in-flight window, because the platform acknowledges
a message only after it is committed, and the broker must hold everything until then.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from plantwire.broker_auth import BrokerAuthFiles
from plantwire.extras import import_extra
from plantwire.logs import get_logger

log = get_logger(__name__)

MOSQUITTO_INFLIGHT = 1000


@dataclass(frozen=True, slots=True)
class BrokerTls:
    """The broker's TLS files (PEM); `require_certificate`: clients must present one the CA signed."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    require_certificate: bool = False


def mosquitto_security(auth: BrokerAuthFiles | None, tls: BrokerTls | None) -> list[str]:
    """Listener and security lines: anonymous without `auth`; with it, passwords, the ACL, and client
    ids bound to usernames (no connection can take over another's id and session)."""
    lines = ["allow_anonymous true"]
    if auth is not None:
        lines = [
            "allow_anonymous false",
            f"password_file {auth.password_file}",
            f"acl_file {auth.acl_file}",
            "use_username_as_clientid true",
        ]
    if tls is not None:
        lines += [
            f"cafile {tls.ca_file}",
            f"certfile {tls.cert_file}",
            f"keyfile {tls.key_file}",
            f"require_certificate {'true' if tls.require_certificate else 'false'}",
        ]
    return lines


def mosquitto_config(
    port: int,
    data_dir: Path,
    host: str = "127.0.0.1",
    auth: BrokerAuthFiles | None = None,
    tls: BrokerTls | None = None,
    log_types: tuple[str, ...] = (),
) -> str:
    """`log_types`: more Mosquitto `log_type`s (e.g. "debug": every packet, to check a client's order)."""
    # Started as root, Mosquitto switches to the `mosquitto` user, which cannot write a data
    # directory of ours (pytest's are 0700): keep our own user so persistence works.
    user = ["user root"] if os.geteuid() == 0 else []
    return "\n".join(
        [
            *user,
            f"listener {port} {host}",
            *mosquitto_security(auth, tls),
            "persistence true",
            f"persistence_location {data_dir}/",
            "autosave_interval 5",
            # Zero-loss settings: no cap on a persistent session's queue, a wide in-flight window.
            "max_queued_messages 0",
            "max_queued_bytes 0",
            f"max_inflight_messages {MOSQUITTO_INFLIGHT}",
            # Above the wire limit, so oversized messages reach the platform and are counted there.
            "message_size_limit 4194304",
            "set_tcp_nodelay true",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            *(f"log_type {t}" for t in log_types),
            "",
        ]
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    """Block until something accepts TCP connections on host:port."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"nothing accepted connections on {host}:{port} within {timeout}s"
                ) from None
            time.sleep(0.05)


def mosquitto_path() -> str | None:
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), None
    )


@dataclass
class MosquittoProcess:
    """A Mosquitto we started; it can be stopped and started again on the same port and data."""

    port: int
    data_dir: Path
    host: str = "127.0.0.1"
    auth: BrokerAuthFiles | None = None
    tls: BrokerTls | None = None
    process: subprocess.Popen[bytes] | None = None
    log_types: tuple[str, ...] = ()
    """More `log_type`s for `<data_dir>/mosquitto.log` (tests read the packets a client sent)."""

    def start(self) -> None:
        binary = mosquitto_path()
        if binary is None:
            raise FileNotFoundError("mosquitto is not installed")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        conf = self.data_dir / "mosquitto.conf"
        conf.write_text(
            mosquitto_config(self.port, self.data_dir, self.host, self.auth, self.tls, self.log_types)
        )
        self.process = subprocess.Popen(
            [binary, "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=self.log_path.open("ab"),
        )
        try:
            wait_for_port(self.host, self.port)
        except TimeoutError:
            self.stop()
            raise

    def stop(self, kill: bool = False) -> None:
        """Stop the broker we started (SIGTERM, or SIGKILL with `kill=True`)."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        if kill:
            proc.kill()
        else:
            proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    @property
    def log_path(self) -> Path:
        return self.data_dir / "mosquitto.log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@contextlib.asynccontextmanager
async def embedded_broker(
    port: int, host: str = "127.0.0.1", plugins: dict[str, object] | None = None
) -> AsyncIterator[None]:
    """An in-process MQTT 3.1.1 broker (amqtt), so the demo needs nothing beyond pip.

    It is fine for the demo's few hundred messages a second; anything measured uses Mosquitto.
    `plugins` (plantwire.broker_auth.amqtt_plugins) turns on passwords and topic lists; without, anonymous.
    """
    Broker = import_extra("amqtt.broker", "demo", "the demo's embedded MQTT broker").Broker

    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": 200}},
        "plugins": plugins
        or {
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
        },
    }
    broker = Broker(config)
    await broker.start()  # listening once this returns
    try:
        yield
    finally:
        await broker.shutdown()
