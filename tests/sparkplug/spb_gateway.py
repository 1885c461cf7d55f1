"""A real gateway publishing Sparkplug B from a small real OPC UA machine, and a recorder of what
reaches the broker, decoded by our own codec (pysparkplug decodes it in the interop tests)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asyncua import Node, Server, ua
from sparkplug_link import Link

from plantwire.config import MqttSettings
from plantwire.sparkplug.payload import DataType, Payload, decode_payload
from plantwire.sparkplug.topics import Outgoing, SparkplugTopic, parse_topic
from plantwire_gateway.service import Gateway
from plantwire_gateway.settings import DeviceConfig, GatewaySettings
from plantwire_sims.asyncua_internals import init_server

NAMESPACE = "urn:plantwire:test:spb-machine"
TAGS: dict[str, tuple[ua.VariantType, Any, str | None]] = {
    "Speed": (ua.VariantType.Double, 0.0, "rpm"),
    "Count": (ua.VariantType.UInt32, 0, None),
    "Running": (ua.VariantType.Boolean, False, None),
    "Setpoint": (ua.VariantType.Double, 0.0, "rpm"),
}


@dataclass
class Machine:
    port: int
    server: Server | None = None
    nodes: dict[str, Node] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}"

    async def start(self) -> None:
        server = Server()
        await init_server(server)  # asyncua's init, its standard nodes copied (fast)
        server.set_endpoint(f"{self.endpoint}/")
        idx = await server.register_namespace(NAMESPACE)
        press = await server.nodes.objects.add_object(ua.NodeId("press", idx), ua.QualifiedName("press", idx))
        for tag, (vtype, initial, unit) in TAGS.items():
            var = await press.add_variable(
                ua.NodeId(f"press.{tag}", idx), ua.QualifiedName(tag, idx), ua.Variant(initial, vtype)
            )
            if unit is not None:
                eu = ua.EUInformation(DisplayName=ua.LocalizedText(unit), Description=ua.LocalizedText(unit))
                await var.add_property(
                    ua.NodeId(f"press.{tag}.EngineeringUnits", idx),
                    ua.QualifiedName("EngineeringUnits", 0),
                    eu,
                )
            self.nodes[tag] = var
        await self.nodes["Speed"].add_property(
            ua.NodeId("press.Speed.EURange", idx),
            ua.QualifiedName("EURange", 0),
            ua.Range(Low=0.0, High=3000.0),
        )
        await self.nodes["Setpoint"].set_writable()
        await server.start()
        self.server = server

    async def stop(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            await server.stop()

    async def write(self, tag: str, value: Any) -> None:
        dv = ua.DataValue(ua.Variant(value, TAGS[tag][0]), SourceTimestamp=datetime.now(UTC))
        await self.nodes[tag].write_value(dv)

    async def read(self, tag: str) -> Any:
        return await self.nodes[tag].read_value()


def settings(
    gateway_id: str, port: int, data_dir: Path, machine: Machine, device: str = "press", **kw: Any
) -> GatewaySettings:
    return GatewaySettings(
        id=gateway_id,
        mqtt=MqttSettings(host="127.0.0.1", port=port, keepalive=5, reconnect_max_delay=0.5),
        data_dir=data_dir,
        devices=[
            DeviceConfig(
                id="press", endpoint=machine.endpoint, root="ns=2;s=press", publishing_interval_ms=50
            )
        ],
        **kw,
    )


@contextlib.asynccontextmanager
async def running(s: GatewaySettings) -> AsyncIterator[Gateway]:
    gateway = Gateway(s)
    task = asyncio.create_task(gateway.run())
    try:
        yield gateway
    finally:
        task.cancel()
        async with asyncio.timeout(15):
            with contextlib.suppress(asyncio.CancelledError):
                await task


@dataclass(frozen=True)
class Seen:
    topic: SparkplugTopic
    payload: Payload
    at: float


class Recorder:
    """Subscribes to one group (and STATE), decodes every message with our codec and the births' types."""

    def __init__(self, port: int, group: str) -> None:
        self.messages: list[Seen] = []
        self._types: dict[tuple[str, str | None], dict[int, DataType]] = {}
        self._lock = threading.Lock()
        self.link = Link(port, f"rec-{group}", self._on)
        self.link.start([f"spBv1.0/{group}/#"])

    def _on(self, topic: str, payload: bytes) -> list[Outgoing]:
        parsed = parse_topic(topic)
        assert isinstance(parsed, SparkplugTopic)
        key = (parsed.edge_node_id, parsed.device_id)
        types = self._types.setdefault(key, {})
        decoded = decode_payload(payload, lambda alias, name: types.get(alias) if alias is not None else None)
        if parsed.message_type.endswith("BIRTH"):
            types.clear()
            types.update({m.alias: m.datatype for m in decoded.metrics if m.alias is not None and m.datatype})
        with self._lock:
            self.messages.append(Seen(parsed, decoded, time.monotonic()))
        return []

    def of(self, kind: str) -> list[Seen]:
        with self._lock:
            return [m for m in self.messages if m.topic.message_type == kind]

    def kinds(self) -> list[str]:
        with self._lock:
            return [m.topic.message_type for m in self.messages]

    def values(self, name: str, aliases: dict[int, str]) -> list[tuple[Any, bool]]:
        """(value, is_historical) of one metric over every DDATA, in order."""
        out = []
        for m in self.of("DDATA"):
            for metric in m.payload.metrics:
                if aliases.get(metric.alias or -1) == name:
                    out.append((metric.value, metric.is_historical))
        return out

    def stop(self) -> None:
        self.link.stop()


def aliases(birth: Seen) -> dict[int, str]:
    return {m.alias: m.name for m in birth.payload.metrics if m.alias is not None and m.name is not None}


async def wait_for(condition: Callable[[], Any], within: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + within
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.02)
