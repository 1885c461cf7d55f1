"""Helpers for the gateway tests: an MQTT collector, a running gateway, polling with a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from plantwire import wire
from plantwire.broker import MosquittoProcess
from plantwire.config import MqttSettings
from plantwire_gateway.service import Gateway
from plantwire_gateway.settings import DeviceConfig, GatewaySettings


@dataclass
class Collector:
    """Everything published under one gateway's topics, as seen by a real MQTT subscriber."""

    gateway: str
    messages: list[tuple[str, bytes, bool]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    subscribed: threading.Condition = field(default_factory=threading.Condition)
    subscriptions: int = 0

    def _on_subscribe(self, *args: Any) -> None:
        with self.subscribed:
            self.subscriptions += 1
            self.subscribed.notify_all()

    def wait_subscribed(self, count: int, timeout: float = 10.0) -> None:
        """Block (the calling thread) until the subscriber has subscribed `count` times in all."""
        with self.subscribed:
            if not self.subscribed.wait_for(lambda: self.subscriptions >= count, timeout):
                raise TimeoutError(f"subscriber did not (re)subscribe within {timeout}s")

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((msg.topic, msg.payload, bool(msg.retain)))

    def of(self, device: str | None, kind: str) -> list[bytes]:
        topic = (
            wire.gateway_status_topic(self.gateway)
            if device is None
            else wire.device_topic(
                self.gateway,
                device,
                kind,  # type: ignore[arg-type]
            )
        )
        with self.lock:
            return [p for t, p, _ in self.messages if t == topic]

    def batches(self, device: str) -> list[wire.DataBatch]:
        return [wire.decode_data(p) for p in self.of(device, "data")]

    def samples(self, device: str) -> list[wire.Sample]:
        return [s for b in self.batches(device) for s in b.samples]

    def device_states(self, device: str) -> list[str]:
        return [wire.decode_device_status(p).state for p in self.of(device, "status")]

    def metas(self, device: str) -> list[wire.DeviceMeta]:
        return [wire.decode_meta(p) for p in self.of(device, "meta")]

    def gateway_states(self) -> list[str]:
        return [wire.decode_gateway_status(p).state for p in self.of(None, "status")]


@contextlib.contextmanager
def collecting(broker: MosquittoProcess, gateway: str, client_id: str) -> Iterator[Collector]:
    """A paho subscriber (persistent session, QoS 1) on the gateway's topics, reconnecting by itself."""
    collector = Collector(gateway)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    client.reconnect_delay_set(0.05, 0.5)

    def on_connect(c: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        c.subscribe(f"{wire.ROOT}/{gateway}/#", qos=1)

    client.on_connect = on_connect
    client.on_subscribe = collector._on_subscribe
    client.on_message = collector._on_message
    client.connect(broker.host, broker.port, keepalive=10)
    client.loop_start()
    try:
        collector.wait_subscribed(1)
        yield collector
    finally:
        client.disconnect()
        client.loop_stop()


def gateway_settings(
    gateway_id: str, broker: MosquittoProcess, data_dir: Path, devices: list[DeviceConfig], **kw: Any
) -> GatewaySettings:
    return GatewaySettings(
        id=gateway_id,
        mqtt=MqttSettings(host=broker.host, port=broker.port, keepalive=5, reconnect_max_delay=0.5),
        data_dir=data_dir,
        devices=devices,
        **kw,
    )


@contextlib.asynccontextmanager
async def gateway_running(settings: GatewaySettings) -> AsyncIterator[Gateway]:
    gateway = Gateway(settings)
    task = asyncio.create_task(gateway.run())
    try:
        yield gateway
    finally:
        task.cancel()
        async with asyncio.timeout(15):
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def wait_for(condition: Callable[[], Any], within: float = 10.0, what: str = "condition") -> Any:
    """Poll `condition` until it returns something truthy; fail with `what` after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.02)
