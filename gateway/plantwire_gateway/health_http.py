"""The gateway's own small HTTP endpoint: `/healthz`, `/readyz` and Prometheus `/metrics`.

An edge box has no platform next to it to ask, so the gateway answers for itself:

- `/healthz`: 200 while the event loop answers (restart only a hung process);
- `/readyz`: 200 when connected to the broker, every device online, and keeping up: the outbox
  below half its budget and not growing steadily for the last minute while connected;
- `/metrics`: the counters of `Gateway.stats()` in the Prometheus text format.

Not ready loses nothing (the outbox holds the values); it tells an operator the gateway is behind.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from itertools import pairwise
from typing import Any, Final

from aiohttp import web

from plantwire.logs import get_logger
from plantwire.metrics_text import CONTENT_TYPE, MetricsText

log = get_logger(__name__)

StatsFn = Callable[[], dict[str, Any]]

OUTBOX_READY_FILL: Final = 0.5
"""Not ready from this fraction of the outbox budget on: half the headroom is gone."""
TREND_EVERY_S: Final = 5.0
TREND_SAMPLES: Final = 12
"""The outbox counts as growing when it grew at each of the last 12 samples (a minute) while connected."""


class OutboxTrend:
    """Samples the outbox row count; `growing` while it rose at every sample with the broker connected."""

    def __init__(self, samples: int = TREND_SAMPLES) -> None:
        self._rows: deque[tuple[int, bool]] = deque(maxlen=samples)

    def add(self, rows: int, connected: bool) -> None:
        self._rows.append((rows, connected))

    @property
    def growing(self) -> bool:
        rows = list(self._rows)
        if len(rows) < (self._rows.maxlen or 0):
            return False
        connected = all(c for _, c in rows)
        return connected and all(b[0] > a[0] for a, b in pairwise(rows))


def readiness(stats: dict[str, Any], trend: OutboxTrend | None = None) -> dict[str, bool]:
    """Each readiness condition by name (all True means ready)."""
    max_bytes = stats.get("outbox_max_bytes") or 0
    devices = stats.get("devices", {})
    return {
        "mqtt_connected": bool(stats.get("mqtt_connected")),
        "devices_online": all(state == "online" for state in devices.values()),
        "outbox_below_half": max_bytes == 0 or stats.get("outbox_bytes", 0) < OUTBOX_READY_FILL * max_bytes,
        "outbox_not_growing": trend is None or not trend.growing,
    }


def _sparkplug_metrics(out: MetricsText, stats: dict[str, Any]) -> None:
    out.gauge(
        "sparkplug_connected",
        "1 while the Sparkplug edge node is connected.",
        int(stats["sparkplug_connected"]),
    )
    out.gauge(
        "sparkplug_born", "1 once NBIRTH went out on this connection.", int(bool(stats.get("sparkplug_born")))
    )
    out.gauge("sparkplug_bd_seq", "The edge node's current bdSeq.", stats.get("sparkplug_bd_seq"))
    out.gauge(
        "sparkplug_outbox_rows",
        "Sparkplug data messages in the outbox, not yet acknowledged.",
        stats.get("sparkplug_outbox_rows", 0),
    )
    out.counter(
        "sparkplug_commands_rejected_total",
        "NCMD/DCMD messages refused (bad payload, unknown metric, not writable).",
        stats.get("sparkplug_rejected", 0),
    )


def render_metrics(stats: dict[str, Any], trend: OutboxTrend | None = None) -> str:
    out = MetricsText("plantwire_gateway_")
    out.gauge("up", "1 while the gateway answers.", 1)
    for name, ok in readiness(stats, trend).items():
        out.gauge("ready", "Readiness conditions (1 = met).", int(ok), {"check": name})
    out.counter("values_in_total", "Values received from OPC UA subscriptions.", stats.get("values_in", 0))
    out.counter(
        "batches_appended_total", "Data messages written to the outbox.", stats.get("batches_appended", 0)
    )
    out.counter(
        "batches_published_total",
        "Data messages handed to MQTT (resends after a reconnect count again).",
        stats.get("batches_out", 0),
    )
    out.counter("batches_acked_total", "Data messages the broker acknowledged.", stats.get("acked", 0))
    out.gauge(
        "outbox_rows", "Data messages in the outbox, not yet acknowledged.", stats.get("outbox_rows", 0)
    )
    out.gauge("outbox_bytes", "Approximate bytes the outbox holds.", stats.get("outbox_bytes", 0))
    out.gauge(
        "outbox_max_bytes",
        "The outbox budget; beyond it the oldest are dropped.",
        stats.get("outbox_max_bytes"),
    )
    out.counter(
        "outbox_dropped_total",
        "Data messages dropped because the outbox was full (oldest first).",
        stats.get("outbox_dropped", 0),
    )
    out.gauge("mqtt_connected", "1 while connected to the broker.", int(bool(stats.get("mqtt_connected"))))
    out.counter("mqtt_reconnects_total", "MQTT connections after the first.", stats.get("mqtt_reconnects", 0))
    out.counter(
        "device_reconnects_total",
        "OPC UA sessions lost after being online (re-browsed and re-subscribed).",
        stats.get("device_reconnects", 0),
    )
    out.counter(
        "outage_markers_total",
        "Null, bad-quality samples written when a device session was lost.",
        stats.get("outage_markers", 0),
    )
    out.counter(
        "device_sessions_resumed_total",
        "OPC UA sessions re-activated with their subscription after a lost link or a restart (nothing lost).",
        stats.get("sessions_resumed", 0),
    )
    out.counter(
        "device_values_resent_total",
        "Current values re-sent at receive time after a re-subscribe (older than the outage marker).",
        stats.get("values_resent", 0),
    )
    out.counter(
        "device_values_backfilled_total",
        "Values read from a server's history (HistoryRead) to fill the gap of a lost session.",
        stats.get("values_backfilled", 0),
    )
    out.counter(
        "device_backfill_unsupported_total",
        "Tags a back-fill found no history for (the server keeps none for them).",
        stats.get("backfill_unsupported", 0),
    )
    if "sparkplug_connected" in stats:
        _sparkplug_metrics(out, stats)
    states = stats.get("devices", {})
    for device, state in states.items():
        for candidate in ("online", "connecting", "offline"):
            out.gauge(
                "device_state",
                "1 for the device's current state.",
                int(state == candidate),
                {"device": device, "state": candidate},
            )
    return out.render()


def make_app(stats: StatsFn, trend: OutboxTrend | None = None) -> web.Application:
    app = web.Application()

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def readyz(request: web.Request) -> web.Response:
        checks = readiness(stats(), trend)
        ready = all(checks.values())
        return web.json_response(
            {"status": "ready" if ready else "not_ready", "checks": checks}, status=200 if ready else 503
        )

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text=render_metrics(stats(), trend), headers={"Content-Type": CONTENT_TYPE})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


async def serve_health(host: str, port: int, stats: StatsFn) -> None:
    """Serve the endpoint until cancelled (a task in the gateway's TaskGroup)."""
    trend = OutboxTrend()
    runner = web.AppRunner(make_app(stats, trend), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        log.info("health_endpoint_started", host=host, port=port)
        next_sample = time.monotonic()
        while True:
            s = stats()
            trend.add(int(s.get("outbox_rows", 0)), bool(s.get("mqtt_connected")))
            next_sample += TREND_EVERY_S
            await asyncio.sleep(max(next_sample - time.monotonic(), 0.0))
    finally:
        await runner.cleanup()
