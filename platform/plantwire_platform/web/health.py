"""Probes and metrics of the platform: `/healthz` (alive), `/readyz` (ingesting), `/metrics` (Prometheus).

`/healthz` answers as long as the event loop does, so an orchestrator restarts only a hung process.
`/readyz` says whether the platform is doing its job right now: connected to the broker, subscribed,
the ingest queue not saturated (the writer keeps up), the store accepting writes, and ingest's
long-lived threads (paho's reader, the writer) alive: a crashed one never recovers by itself. A platform that
is not ready loses nothing (the broker holds its messages), it is only behind.

Everything is read from counters the ingest and the rollup merger already keep; a scrape costs no
store query.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from plantwire.metrics_text import CONTENT_TYPE, MetricsText
from plantwire_platform.auth.scopes import Scope
from plantwire_platform.ingest.live_bus import LiveBus
from plantwire_platform.ingest.sparkplug_status import SparkplugHostStatus
from plantwire_platform.ingest.stats import IngestStats
from plantwire_platform.web.auth_middleware import AUTH_KEY, public, requires
from plantwire_platform.web.responses import json_response
from plantwire_platform.web.runtime import runtime_of

QUEUE_SATURATED: Final = 0.9
"""The ingest queue counts as saturated from this fraction of its capacity on."""


def add_health_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)


@public  # probes: an orchestrator has no token
async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "alive"})


def readiness(stats: IngestStats) -> dict[str, bool]:
    """Each readiness condition by name (all True means ready)."""
    return {
        "mqtt_connected": stats.connected,
        "subscribed": stats.subscribed,
        "queue_not_saturated": stats.queue_max == 0 or stats.queue_depth < QUEUE_SATURATED * stats.queue_max,
        "store_writable": not stats.store_failing,
        "ingest_running": stats.writer_alive and stats.reader_alive,
    }


def ingest_ok(stats: IngestStats) -> bool:
    """What /api/health calls "ok": connected to the broker and ingest's threads alive.

    (The transient conditions, subscription and queue depth, are /readyz's alone.)
    """
    return stats.connected and stats.writer_alive and stats.reader_alive


@public
async def readyz(request: web.Request) -> web.Response:
    checks = readiness(runtime_of(request).status())
    ready = all(checks.values())
    return json_response(
        {"status": "ready" if ready else "not_ready", "checks": checks}, 200 if ready else 503
    )


def _ms_to_s(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000


def _ingest_metrics(out: MetricsText, stats: IngestStats) -> None:
    for name, ok in readiness(stats).items():
        out.gauge("ready", "Readiness conditions (1 = met).", int(ok), {"check": name})
    out.counter("mqtt_messages_total", "MQTT messages received (any topic).", stats.messages)
    out.counter("points_stored_total", "Points newly committed to the store.", stats.points_stored)
    out.counter(
        "duplicate_points_total",
        "Points received again (redelivery) and ignored by the store.",
        stats.duplicates,
    )
    out.counter("seq_gaps_total", "Data messages missing between sequence numbers.", stats.seq_gaps)
    out.labelled(
        "counter",
        "decode_errors_total",
        "Messages rejected by the wire contract, by reason.",
        "reason",
        stats.decode_errors,
    )
    out.counter(
        "seq_jumps_total", "Data messages whose seq jumped beyond ingest.max_seq_jump.", stats.seq_jumps
    )
    out.labelled(
        "counter",
        "ownership_rejected_total",
        "Messages of a device from a gateway that does not own it (not stored), by kind.",
        "kind",
        stats.ownership_rejected,
    )
    out.labelled(
        "counter",
        "values_rejected_total",
        "Values stamped outside the time window (not stored), by reason.",
        "reason",
        stats.values_rejected,
    )
    out.counter(
        "late_points_total",
        "Points older than the latency histogram's last bucket (backfill); quantiles cap there.",
        stats.latency.late,
    )
    out.counter("store_errors_total", "Failed store writes (retried).", stats.store_errors)
    out.counter("commits_total", "Store commits of data messages.", stats.commits)
    out.counter("registrations_total", "Meta and status messages applied.", stats.registrations)
    out.counter(
        "registration_commits_total",
        "Store commits of meta and status messages (many share one).",
        stats.registration_commits,
    )
    out.counter("mqtt_reconnects_total", "MQTT connections after the first.", stats.reconnects)
    out.gauge("mqtt_connected", "1 while connected to the broker.", int(stats.connected))
    out.gauge("ingest_queue_depth", "Decoded messages waiting for the writer.", stats.queue_depth)
    out.gauge("ingest_queue_capacity", "Capacity of the ingest queue.", stats.queue_max)
    out.gauge("last_commit_seconds", "Duration of the last store commit.", _ms_to_s(stats.last_commit_ms))
    latency = stats.latency
    for quantile, ms in (("0.5", latency.p50_ms), ("0.95", latency.p95_ms), ("0.99", latency.p99_ms)):
        out.gauge(
            "source_to_commit_seconds",
            "Source timestamp to store commit per point, quantile upper bound since start.",
            _ms_to_s(ms),
            {"quantile": quantile},
        )


def _live_metrics(out: MetricsText, bus: LiveBus) -> None:
    out.gauge("live_subscribers", "Live-bus subscribers (web streams, apps).", bus.subscribers)
    out.counter("live_points_total", "Points handed to the live bus.", bus.published)
    out.gauge(
        "live_dropped",
        "Points dropped by the current live-bus subscribers that fell behind.",
        sum(sub.dropped for sub in bus.subscriptions()),
    )


def _sparkplug_metrics(out: MetricsText, st: SparkplugHostStatus) -> None:
    out.gauge("sparkplug_connected", "1 while the Sparkplug host is connected.", int(st.connected))
    out.gauge(
        "sparkplug_nodes_online", "Sparkplug edge nodes online (NBIRTH seen, no NDEATH).", st.nodes_online
    )
    out.gauge("sparkplug_devices_online", "Sparkplug devices online behind those nodes.", st.devices_online)
    out.counter("sparkplug_messages_total", "Sparkplug messages received (spBv1.0/#).", st.messages)
    out.counter("sparkplug_points_stored_total", "Sparkplug points newly committed.", st.points_stored)
    out.counter(
        "sparkplug_duplicate_points_total", "Sparkplug points received again and ignored.", st.duplicates
    )
    out.counter(
        "sparkplug_rebirths_requested_total", "Rebirth NCMDs sent to edge nodes.", st.rebirths_requested
    )
    out.counter("sparkplug_seq_gaps_total", "Messages whose seq did not follow the last one.", st.seq_gaps)
    out.counter(
        "sparkplug_dropped_messages_total",
        "Data not stored until a rebirth (seq gap, data before a birth, unknown device).",
        st.dropped_messages,
    )
    out.counter(
        "sparkplug_stale_ndeaths_total",
        "NDEATHs of an older session (bdSeq mismatch), ignored.",
        st.stale_ndeaths,
    )
    out.counter(
        "sparkplug_bad_payloads_total", "Payloads that are not Sparkplug B protobuf.", st.bad_payloads
    )
    out.labelled(
        "counter",
        "sparkplug_refused_total",
        "Sparkplug messages refused before the store, by reason.",
        "reason",
        st.refused,
    )
    out.labelled(
        "counter",
        "sparkplug_ownership_rejected_total",
        "Sparkplug births, data and deaths of a device another gateway owns (not stored), by kind.",
        "kind",
        st.ownership_rejected,
    )
    out.counter("sparkplug_store_errors_total", "Failed Sparkplug store writes (retried).", st.store_errors)


@requires(Scope.READ)  # public only with auth.metrics_public
async def metrics(request: web.Request) -> web.Response:
    runtime = runtime_of(request)
    out = MetricsText("plantwire_platform_")
    out.gauge("up", "1 while the platform answers.", 1)
    _ingest_metrics(out, runtime.status())
    if runtime.ingest is not None:
        runtime.ingest.write_histograms(out)
    backlog = runtime.store.rollup_backlog()
    if backlog is not None:
        out.gauge(
            "rollup_pending_rows",
            "Stored points not merged into the rollups yet, at the start of the merger's last sweep.",
            backlog,
        )
    if runtime.live_bus is not None:
        _live_metrics(out, runtime.live_bus)
    if runtime.sparkplug_status is not None:
        _sparkplug_metrics(out, runtime.sparkplug_status())
    auth = request.app.get(AUTH_KEY)
    if auth is not None:
        auth.stats.render(out)
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
