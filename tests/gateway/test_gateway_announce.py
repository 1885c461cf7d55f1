"""The gateway says `online` only once it can hear commands.

The platform sends a command as soon as it reads a gateway's retained `online`; a broker drops a
message for a topic nobody has subscribed yet. So the link's `online` waits for the command side's
SUBACK (bounded: values never wait for commands).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from plantwire import wire
from plantwire.broker import MosquittoProcess
from plantwire.config import MqttSettings
from plantwire.mqtt_control import ControlClient
from plantwire_gateway import mqtt_link
from plantwire_gateway.mqtt_link import MqttLink
from plantwire_gateway.outbox import Outbox
from plantwire_gateway.stats import GatewayStats


async def _statuses(broker: MosquittoProcess, gateway: str) -> tuple[ControlClient, list[str]]:
    seen: list[str] = []
    client = ControlClient(
        MqttSettings(host=broker.host, port=broker.port),
        f"announce-watch-{gateway}",
        [wire.gateway_status_topic(gateway)],
        lambda topic, payload: seen.append(wire.decode_gateway_status(payload).state),
    )
    await client.__aenter__()
    async with asyncio.timeout(10):
        await client.subscribed.wait()
    return client, seen


async def _wait_for(seen: list[str], state: str, seconds: float) -> None:
    async with asyncio.timeout(seconds):
        while state not in seen:
            await asyncio.sleep(0.02)


async def test_online_waits_for_the_command_subscription(
    mosquitto: MosquittoProcess, tmp_path: Path, unique_id: str
) -> None:
    gateway = f"gw-announce-{unique_id}"
    watcher, seen = await _statuses(mosquitto, gateway)
    outbox = await Outbox.open(tmp_path / "outbox.sqlite3", 1 << 20)
    link = MqttLink(MqttSettings(host=mosquitto.host, port=mosquitto.port), gateway, outbox, GatewayStats())
    commands_ready = asyncio.Event()
    link.announce_when = commands_ready
    task = asyncio.create_task(link.run())
    try:
        await asyncio.sleep(1.5)  # connected long ago on loopback, but the commands are not subscribed
        assert seen == []
        commands_ready.set()
        await _wait_for(seen, "online", 5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await watcher.__aexit__(None, None, None)
        await outbox.close()


async def test_online_goes_out_anyway_when_the_command_side_never_subscribes(
    mosquitto: MosquittoProcess, tmp_path: Path, unique_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mqtt_link, "ANNOUNCE_WAIT", 0.5)
    gateway = f"gw-announce-{unique_id}"
    watcher, seen = await _statuses(mosquitto, gateway)
    outbox = await Outbox.open(tmp_path / "outbox.sqlite3", 1 << 20)
    link = MqttLink(MqttSettings(host=mosquitto.host, port=mosquitto.port), gateway, outbox, GatewayStats())
    link.announce_when = asyncio.Event()  # never set
    task = asyncio.create_task(link.run())
    try:
        await _wait_for(seen, "online", 5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await watcher.__aexit__(None, None, None)
        await outbox.close()
