"""The embedded demo broker (amqtt) with Plantwire's identities: passwords are enforced; topic lists are
off (see plantwire.broker_auth.amqtt_plugins) and client ids are not bound."""

from __future__ import annotations

import asyncio
import queue
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from brokertest_support import Plant, connect
from pydantic import SecretStr

from plantwire import wire
from plantwire.broker import embedded_broker, free_port
from plantwire.broker_auth import Identity, amqtt_plugins, client_usernames
from plantwire.config import MqttSettings

T = TypeVar("T")


@dataclass
class Embedded:
    port: int

    def settings(self, identity: Identity | None, password: str | None = None) -> MqttSettings:
        if identity is None:
            return MqttSettings(port=self.port)
        return MqttSettings(
            port=self.port,
            username=identity.username,
            password=SecretStr(password or identity.password),
            client_usernames=client_usernames(identity),
        )


@pytest.fixture
async def embedded(tmp_path: Path, plant: Plant) -> AsyncIterator[Embedded]:
    port = free_port()
    async with asyncio.timeout(20):
        async with embedded_broker(port, plugins=amqtt_plugins(plant.all, tmp_path / "passwd")):
            yield Embedded(port)


async def _blocking(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """paho waits block: run them off the loop, where the broker runs."""
    async with asyncio.timeout(30):
        return await asyncio.to_thread(fn, *args, **kwargs)


async def _refused(settings: MqttSettings) -> bool:
    try:
        conn, reason = await _blocking(connect, settings, "intruder", expect_ok=False)
    except queue.Empty:  # closed without a CONNACK
        return True
    await _blocking(conn.close)
    return bool(reason.is_failure)


async def test_passwords_are_required(embedded: Embedded, plant: Plant) -> None:
    assert await _refused(embedded.settings(None))
    assert await _refused(embedded.settings(plant.viewer, password="guess"))
    assert not await _refused(embedded.settings(plant.viewer))


async def test_client_ids_are_not_bound_in_the_embedded_broker(embedded: Embedded, plant: Plant) -> None:
    """A known limit (docs/deploy.md): with the viewer's password and the platform's client id, a clean
    session deletes the platform's session (its subscriptions and queue) while its connection stays up."""
    data = wire.device_topic("gw1", "pump-1", "data")
    platform, _ = await _blocking(connect, embedded.settings(plant.platform), "plantwire-platform")
    gw1, _ = await _blocking(connect, embedded.settings(plant.gw1), "plantwire-gw-gw1")
    try:
        await _blocking(platform.subscribe, "plantwire/v1/+/+/data")
        await _blocking(gw1.publish, data, b"before")
        assert await _blocking(platform.received, until=b"before") == [(data, b"before")]
        attacker, _ = await _blocking(connect, embedded.settings(plant.viewer), "plantwire-platform")
        await _blocking(attacker.close)
        await _blocking(gw1.publish, data, b"after")
        with pytest.raises(queue.Empty):
            await _blocking(platform.messages.get, timeout=3)
    finally:
        await _blocking(platform.close)
        await _blocking(gw1.close)
