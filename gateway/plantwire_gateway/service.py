"""The gateway as one object: outbox, MQTT link and one session per device, under one TaskGroup.

Shutdown (cancellation) unwinds in reverse: the tasks stop (the MQTT link publishes the gateway's
retained `offline` status and disconnects cleanly, sessions close), then values still pending in
memory are flushed into the outbox, then the outbox closes. Nothing received is lost on a clean
stop; it is published after the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any, Final

from plantwire import wire
from plantwire.logs import get_logger

from .commands import CommandService
from .device_registry import DeviceRegistry
from .device_session import BATCH_MAX, DeviceSession
from .mqtt_link import MqttLink
from .northbound import Northbound
from .outbox import Outbox
from .settings import GatewaySettings
from .stats import GatewayStats

if TYPE_CHECKING:
    from .sparkplug_link import SparkplugLink

log = get_logger(__name__)

OUTBOX_FILE: Final = "outbox.sqlite3"
SPARKPLUG_OUTBOX_FILE: Final = "outbox-sparkplug.sqlite3"
_MESSAGE_BUDGET: Final = wire.MAX_PAYLOAD_BYTES // 2
"""Bytes per data message we aim below (estimated before encoding), well under the wire limit."""
_SAMPLE_OVERHEAD: Final = 64


def split_batches(samples: list[wire.Sample], max_values: int = BATCH_MAX) -> list[list[wire.Sample]]:
    """Cut samples into messages of at most `max_values` values and about `_MESSAGE_BUDGET` bytes."""
    batches: list[list[wire.Sample]] = []
    current: list[wire.Sample] = []
    size = 0
    for s in samples:
        cost = _SAMPLE_OVERHEAD + len(s.tag) + (len(s.value) * 2 if isinstance(s.value, str) else 0)
        if current and (len(current) >= max_values or size + cost > _MESSAGE_BUDGET):
            batches.append(current)
            current, size = [], 0
        current.append(s)
        size += cost
    if current:
        batches.append(current)
    return batches


class Gateway:
    """Run with `await gateway.run()` (cancel to stop); read counters any time with `stats()`."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self._stats = GatewayStats()
        self._outbox: Outbox | None = None
        self._link: MqttLink | None = None
        self._links: list[MqttLink] = []
        self._spb_stats = GatewayStats()
        self.sparkplug: SparkplugLink | None = None
        """The Sparkplug B edge node's link when `northbound` is sparkplug or both."""
        self._sessions: list[DeviceSession] = []
        self.registry: DeviceRegistry | None = None
        self.commands: CommandService | None = None

    def stats(self) -> dict[str, Any]:
        s, outbox = self._stats, self._outbox
        return {
            "values_in": s.values_in,
            "batches_appended": s.batches_appended,
            "batches_out": s.batches_out,
            "acked": s.acked,
            "outbox_rows": outbox.rows if outbox else 0,
            "outbox_bytes": outbox.bytes if outbox else 0,
            "outbox_dropped": outbox.dropped if outbox else 0,
            "outbox_max_bytes": self.settings.outbox.max_bytes,
            "device_reconnects": s.device_reconnects,
            "outage_markers": s.outage_markers,
            "sessions_resumed": s.sessions_resumed,
            "values_resent": s.values_resent,
            "values_backfilled": s.values_backfilled,
            "backfill_unsupported": s.backfill_unsupported,
            "mqtt_connected": s.mqtt_connected,
            "mqtt_reconnects": s.mqtt_reconnects,
            "devices": dict(s.device_states),
            **self._sparkplug_stats(),
        }

    def _sparkplug_stats(self) -> dict[str, Any]:
        if self.settings.northbound == "plantwire":
            return {}
        spb = self.sparkplug
        return {
            "sparkplug_connected": self._spb_stats.mqtt_connected,
            "sparkplug_born": spb.node.born if spb else False,
            "sparkplug_bd_seq": spb.node.bd_seq if spb else -1,
            "sparkplug_outbox_rows": spb.outbox.rows if spb else 0,
            "sparkplug_rejected": spb.rejected if spb else 0,
        }

    async def run(self) -> None:
        settings = self.settings
        log.info(
            "gateway_starting",
            gateway_id=settings.id,
            devices=len(settings.devices),
            northbound=settings.northbound,
        )
        async with contextlib.AsyncExitStack() as stack:
            links: list[MqttLink] = []
            if settings.northbound in ("plantwire", "both"):
                outbox = await Outbox.open(settings.data_dir / OUTBOX_FILE, settings.outbox.max_bytes)
                stack.push_async_callback(outbox.close)
                links.append(
                    MqttLink(settings.mqtt, settings.id, outbox, self._stats, window=settings.outbox.inflight)
                )
                self._link = links[0]
            if settings.northbound in ("sparkplug", "both"):
                from .sparkplug_link import SparkplugLink  # its codec only where it runs (memory)

                path = settings.data_dir / SPARKPLUG_OUTBOX_FILE
                spb_outbox = await Outbox.open(path, settings.outbox.max_bytes)
                stack.push_async_callback(spb_outbox.close)
                if settings.northbound == "sparkplug":
                    self._spb_stats = self._stats  # its link is the gateway's MQTT link then
                self.sparkplug = SparkplugLink(settings, spb_outbox, self._spb_stats)
                links.append(self.sparkplug)
            self._links = links
            self._outbox = links[0].outbox
            for link in links:
                link.before_goodbye = self._flush_sessions
            northbound = Northbound(links)
            # Configured and runtime-attached devices; `sessions` is a live list (attach/detach).
            self.registry = DeviceRegistry(settings, northbound, self._store, self._stats)
            self._sessions = self.registry.sessions
            self.commands = CommandService(settings, self.registry)
            if self._link is not None:
                self._link.announce_when = self.commands.subscribed
            if self.sparkplug is not None:
                self.sparkplug.writer = self.commands.execute
            stack.push_async_callback(self._flush_all)
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.registry.run(), name="devices")
                tg.create_task(self.commands.run(), name="commands")
                for link in links:
                    tg.create_task(link.run(), name="sparkplug" if link is self.sparkplug else "mqtt")
                if self.sparkplug is not None:
                    tg.create_task(self.sparkplug.run_writes(), name="sparkplug-writes")
                if settings.health.port is not None:
                    from .health_http import serve_health  # aiohttp only where it serves (memory)

                    tg.create_task(serve_health(settings.health.host, settings.health.port, self.stats))

    async def _store(self, device: str, samples: list[wire.Sample]) -> None:
        batches = split_batches(samples)
        for link in self._links:
            await link.store(device, batches)
        self._stats.batches_appended += len(batches)

    async def _flush_sessions(self) -> None:
        for session in self._sessions:
            batch = session.take_pending()
            if batch:
                await self._store(session.device.id, batch)

    async def _flush_all(self) -> None:
        """On the way out: whatever the sessions still hold goes into the outbox."""
        await self._flush_sessions()
        log.info("gateway_stopped", **{k: v for k, v in self.stats().items() if k != "devices"})


async def run_gateway(settings: GatewaySettings) -> None:
    """Run a gateway until cancelled."""
    await Gateway(settings).run()
