"""Helpers for the broker tests: Plantwire's identities, a real Mosquitto with their passwords and ACL,
and a small blocking test client."""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from pydantic import SecretStr

from plantwire.broker import BrokerTls, MosquittoProcess, free_port, mosquitto_path
from plantwire.broker_auth import Identity, client_usernames, write_mosquitto_auth
from plantwire.config import MqttSettings
from plantwire.mqtt_control import new_client

WAIT_S = 10.0


@dataclass
class Plant:
    platform: Identity
    gw1: Identity
    gw2: Identity
    viewer: Identity

    @property
    def all(self) -> list[Identity]:
        return [self.platform, self.gw1, self.gw2, self.viewer]


def start_broker(tmp: Path, plant: Plant, tls: BrokerTls | None = None) -> MosquittoProcess:
    if mosquitto_path() is None:
        pytest.fail("mosquitto is not installed")
    auth = write_mosquitto_auth(tmp / "auth", plant.all)
    broker = MosquittoProcess(port=free_port(), data_dir=tmp / "mosquitto", auth=auth, tls=tls)
    broker.start()
    return broker


def settings_for(
    broker: MosquittoProcess,
    identity: Identity | None,
    *,
    password: str | None = None,
    ca: Path | None = None,
    cert: tuple[Path, Path] | None = None,
) -> MqttSettings:
    """An identity's client settings (None: anonymous); `cert` is (certificate, key) for mutual TLS."""
    tls = MqttSettings(
        port=broker.port,
        tls_ca_file=ca,
        tls_cert_file=cert[0] if cert else None,
        tls_key_file=cert[1] if cert else None,
    )
    if identity is None:
        return tls
    return tls.model_copy(
        update={
            "username": identity.username,
            "password": SecretStr(password if password is not None else identity.password),
            "client_usernames": client_usernames(identity),
        }
    )


@dataclass
class Conn:
    """A paho client on its own network thread; records what it receives and how its connection went."""

    client: mqtt.Client
    connack: queue.Queue[Any] = field(default_factory=queue.Queue)
    messages: queue.Queue[tuple[str, bytes]] = field(default_factory=queue.Queue)
    disconnected: threading.Event = field(default_factory=threading.Event)
    subscribed: threading.Event = field(default_factory=threading.Event)
    session_present: bool = False

    def subscribe(self, topic: str) -> None:
        self.subscribed.clear()
        self.client.subscribe(topic, qos=1)
        assert self.subscribed.wait(WAIT_S), f"no SUBACK for {topic}"

    def publish(self, topic: str, payload: bytes) -> None:
        """QoS 1 and wait for the PUBACK (Mosquitto acknowledges a publish its ACL dropped, too)."""
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(WAIT_S)
        assert info.is_published(), topic

    def publish_refused(self, topic: str, payload: bytes) -> bool:
        """Publish where the ACL may forbid it: Mosquitto 2.0 drops such a message and closes the
        publisher's connection (measured). True when that happened, False when it was acknowledged."""
        info = self.client.publish(topic, payload, qos=1)
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            if self.disconnected.wait(0.05):
                return True
            if info.is_published():
                return False
        raise AssertionError(f"neither PUBACK nor disconnect for {topic}")

    def received(self, until: bytes) -> list[tuple[str, bytes]]:
        """Every message up to and including the one with payload `until`."""
        out: list[tuple[str, bytes]] = []
        while True:
            item = self.messages.get(timeout=WAIT_S)
            out.append(item)
            if item[1] == until:
                return out

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


REFUSED_WAIT_S = 3.0
"""How long a connection expected to get no CONNACK is given (on loopback one comes in ms)."""


def connect(
    settings: MqttSettings,
    client_id: str,
    *,
    clean_session: bool = True,
    expect_ok: bool = True,
    wait_s: float = WAIT_S,
) -> tuple[Conn, Any]:
    """Connect and wait for the CONNACK; returns the connection and the broker's reason code."""
    client = new_client(settings, client_id, clean_session=clean_session)
    conn = Conn(client)

    def on_connect(c: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        conn.session_present = bool(flags.session_present)
        conn.connack.put(reason)

    client.on_connect = on_connect
    client.on_disconnect = lambda c, u, f, reason, p: conn.disconnected.set()
    client.on_subscribe = lambda c, u, mid, reasons, p: conn.subscribed.set()
    client.on_message = lambda c, u, msg: conn.messages.put((msg.topic, bytes(msg.payload)))
    client.reconnect_delay_set(1, 1)
    client.connect(settings.host, settings.port, keepalive=30)
    client.loop_start()
    try:
        reason = conn.connack.get(timeout=wait_s)
    except queue.Empty:
        conn.close()
        raise
    if expect_ok:
        assert not reason.is_failure, f"{client_id}: {reason}"
    return conn, reason
