"""Probes and metrics of the platform: `/healthz` (alive), `/readyz` (ingesting), `/metrics` (Prometheus).

`/healthz` answers as long as the event loop does, so an orchestrator restarts only a hung process.
`/readyz` says whether the platform is doing its job right now: connected to the broker, subscribed,
the ingest queue not saturated (the writer keeps up), the store accepting writes, and ingest's
long-lived threads (paho's reader, the writer) alive: a crashed one never recovers by itself. A platform that
is not ready loses nothing (the broker holds its messages), it is only behind.

Everything is read from counters the ingest already keeps; a scrape costs no store query.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from plantwire.metrics_text import CONTENT_TYPE, MetricsText
from plantwire_platform.web.responses import json_response
from plantwire_platform.web.runtime import runtime_of

QUEUE_SATURATED: Final = 0.9
"""The ingest queue counts as saturated from this fraction of its capacity on."""


def add_health_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "alive"})


def readiness(stats: dict[str, Any]) -> dict[str, bool]:
    """Each readiness condition by name (all True means ready)."""
    depth, capacity = stats.get("queue_depth", 0), stats.get("queue_max") or 0
    return {
        "mqtt_connected": bool(stats.get("connected", False)),
        "subscribed": bool(stats.get("subscribed", False)),
        "queue_not_saturated": capacity == 0 or depth < QUEUE_SATURATED * capacity,
        "store_writable": not stats.get("store_failing", False),
        "ingest_running": stats.get("writer_alive", True) is True and stats.get("reader_alive", True) is True,
    }


def ingest_ok(stats: dict[str, Any]) -> bool:
    """What /api/health calls "ok": connected to the broker and ingest's threads alive.

    (The transient conditions, subscription and queue depth, are /readyz's alone.)
    """
    return stats.get("connected") is True and readiness(stats)["ingest_running"]


async def readyz(request: web.Request) -> web.Response:
    checks = readiness(runtime_of(request).status())
    ready = all(checks.values())
    return json_response(
        {"status": "ready" if ready else "not_ready", "checks": checks}, 200 if ready else 503
    )


async def metrics(request: web.Request) -> web.Response:
    runtime = runtime_of(request)
    stats = runtime.status()
    out = MetricsText("plantwire_platform_")
    out.gauge("up", "1 while the platform answers.", 1)
    for name, ok in readiness(stats).items():
        out.gauge("ready", "Readiness conditions (1 = met).", int(ok), {"check": name})
    out.counter("mqtt_messages_total", "MQTT messages received (any topic).", stats.get("messages", 0))
    out.counter("points_stored_total", "Points newly committed to the store.", stats.get("points_stored", 0))
    out.counter(
        "duplicate_points_total",
        "Points received again (redelivery) and ignored by the store.",
        stats.get("duplicates", 0),
    )
    out.counter("seq_gaps_total", "Data messages missing between sequence numbers.", stats.get("seq_gaps", 0))
    out.labelled(
        "counter",
        "decode_errors_total",
        "Messages rejected by the wire contract, by reason.",
        "reason",
        stats.get("decode_errors", {}),
    )
    out.counter("store_errors_total", "Failed store writes (retried).", stats.get("store_errors", 0))
    out.counter("commits_total", "Store commits.", stats.get("commits", 0))
    out.counter("mqtt_reconnects_total", "MQTT connections after the first.", stats.get("reconnects", 0))
    out.gauge("mqtt_connected", "1 while connected to the broker.", int(bool(stats.get("connected"))))
    out.gauge("ingest_queue_depth", "Decoded messages waiting for the writer.", stats.get("queue_depth", 0))
    out.gauge("ingest_queue_capacity", "Capacity of the ingest queue.", stats.get("queue_max"))
    out.gauge(
        "last_commit_seconds",
        "Duration of the last store commit.",
        None if stats.get("last_commit_ms") is None else stats["last_commit_ms"] / 1000,
    )
    ingest = runtime.ingest
    if ingest is not None:
        ingest.commit_seconds.write(out, "commit_seconds", "Store write time per commit.")
    latency = stats.get("latency") or {}
    for quantile, key in (("0.5", "p50_ms"), ("0.95", "p95_ms"), ("0.99", "p99_ms")):
        ms = latency.get(key)
        out.gauge(
            "source_to_commit_seconds",
            "Source timestamp to store commit per point, quantile upper bound since start.",
            None if ms is None else ms / 1000,
            {"quantile": quantile},
        )
    bus = runtime.live_bus
    if bus is not None:
        out.gauge("live_subscribers", "Live-bus subscribers (web streams, apps).", bus.subscribers)
        out.counter("live_points_total", "Points handed to the live bus.", bus.published)
        out.gauge(
            "live_dropped",
            "Points dropped by the current live-bus subscribers that fell behind.",
            sum(sub.dropped for sub in bus.subscriptions()),
        )
    return web.Response(text=out.render(), headers={"Content-Type": CONTENT_TYPE})


def openapi_paths() -> dict[str, Any]:
    """The probes and /metrics for the OpenAPI document (merged in openapi.py)."""
    probe = {
        "type": "object",
        "properties": {
            "status": {"type": "string", "enum": ["alive", "ready", "not_ready"]},
            "checks": {"type": "object", "additionalProperties": {"type": "boolean"}},
        },
        "required": ["status"],
        "additionalProperties": False,
    }

    def op(operation_id: str, summary: str, responses: dict[str, Any]) -> dict[str, Any]:
        return {
            "get": {"operationId": operation_id, "summary": summary, "parameters": [], "responses": responses}
        }

    json_probe = {"content": {"application/json": {"schema": probe}}}
    return {
        "/healthz": op(
            "getHealthz",
            "Liveness: 200 while the process answers.",
            {"200": {"description": "Alive.", **json_probe}},
        ),
        "/readyz": op(
            "getReadyz",
            "Readiness: MQTT connected and subscribed, ingest queue not saturated, store writable, "
            "ingest threads running.",
            {
                "200": {"description": "Ready.", **json_probe},
                "503": {"description": "Not ready; `checks` says which condition fails.", **json_probe},
            },
        ),
        "/metrics": op(
            "getMetrics",
            "Prometheus metrics (text format 0.0.4): ingest counters, queue depth, commit latency, "
            "reconnects, decode errors by reason, duplicates, sequence gaps, live-bus figures.",
            {
                "200": {
                    "description": "Prometheus text.",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        ),
    }
