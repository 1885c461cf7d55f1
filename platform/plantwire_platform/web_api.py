"""The platform's REST API: devices, tags, latest values and time series, read from the store.

Store calls block (SQLite), so they run on a small thread pool owned by the app; each handler
makes one pool call that does all its store work, so a request costs one thread hop.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, TypeVar

import orjson
from aiohttp import web

import plantwire
from plantwire.wire import now_us, quality
from plantwire_platform.apps.web_apps import add_app_routes
from plantwire_platform.openapi import openapi_document
from plantwire_platform.query_params import SeriesQuery, check_keys, parse_series_query
from plantwire_platform.store import DeviceRecord, LatestValue, Store, TagRecord
from plantwire_platform.timefmt import to_iso, to_iso_opt
from plantwire_platform.web_commands import add_command_routes
from plantwire_platform.web_errors import ApiError, error_middleware
from plantwire_platform.web_health import add_health_routes
from plantwire_platform.web_json import json_response
from plantwire_platform.web_page import add_page_routes
from plantwire_platform.web_stream import add_stream_routes

T = TypeVar("T")
StatusFn = Callable[[], dict[str, Any]]

STORE_KEY: Final = web.AppKey("store", Store)
STATUS_KEY: Final = web.AppKey[StatusFn]("status")
EXECUTOR_KEY: Final = web.AppKey("read_executor", ThreadPoolExecutor)
OPENAPI_KEY: Final = web.AppKey("openapi_body", bytes)

READ_THREADS: Final = 2
"""SQLite serves reads concurrently under WAL; two threads match the machine and bound the load."""


def create_app(store: Store, status: Callable[[], dict[str, Any]]) -> web.Application:
    """The API as an aiohttp application; the caller owns `store` and closes it after the app."""
    app = web.Application(middlewares=[error_middleware])
    app[STORE_KEY] = store
    app[STATUS_KEY] = status
    app[OPENAPI_KEY] = orjson.dumps(openapi_document(plantwire.__version__))
    app.cleanup_ctx.append(_read_executor)
    app.router.add_get("/api/health", health)
    app.router.add_get("/api/devices", list_devices)
    app.router.add_get("/api/devices/{device}", get_device)
    app.router.add_get("/api/devices/{device}/tags", list_tags)
    app.router.add_get("/api/latest", latest)
    app.router.add_get("/api/series", series)
    app.router.add_get("/api/openapi.json", openapi_json)
    add_health_routes(app)
    add_command_routes(app)
    add_stream_routes(app)
    add_page_routes(app)
    add_app_routes(app)
    return app


async def _read_executor(app: web.Application) -> AsyncIterator[None]:
    executor = ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="pw-api-read")
    app[EXECUTOR_KEY] = executor
    yield
    executor.shutdown(wait=True, cancel_futures=True)


async def _in_thread(request: web.Request, fn: Callable[..., T], *args: Any) -> T:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(request.app[EXECUTOR_KEY], functools.partial(fn, *args))


# --- JSON shapes ---------------------------------------------------------------------------------


def device_json(d: DeviceRecord) -> dict[str, Any]:
    return {
        "id": d.id,
        "gateway": d.gateway,
        "endpoint": d.endpoint,
        "state": d.state,
        "state_since": to_iso_opt(d.state_since),
        "error": d.error,
        "gateway_state": d.gateway_state,
        "tag_count": d.tag_count,
        "first_seen": to_iso(d.first_seen),
        "last_data": to_iso_opt(d.last_data),
        "last_seq": d.last_seq,
    }


def tag_json(t: TagRecord) -> dict[str, Any]:
    has_range = t.low is not None or t.high is not None
    return {
        "tag": t.tag,
        "node_id": t.node_id,
        "data_type": t.data_type,
        "unit": t.unit,
        "description": t.description,
        "writable": t.writable,
        "range": [t.low, t.high] if has_range else None,
        "derived_by": t.derived_by,
    }


def latest_json(v: LatestValue) -> dict[str, Any]:
    return {
        "tag": v.tag,
        "ts": to_iso(v.ts),
        "value": v.value,
        "status": v.status,
        "quality": quality(v.status),
        "unit": v.unit,
    }


def _unknown_device(device: str) -> ApiError:
    return ApiError(
        404, "unknown_device", f"device {device!r} is not known; GET /api/devices lists the devices"
    )


def _require_device(store: Store, device: str) -> DeviceRecord:
    record = store.get_device(device)
    if record is None:
        raise _unknown_device(device)
    return record


# --- handlers ------------------------------------------------------------------------------------


async def health(request: web.Request) -> web.Response:
    check_keys(request.query, ())
    points = await _in_thread(request, request.app[STORE_KEY].count_points)
    ingest = request.app[STATUS_KEY]()
    return json_response(
        {
            "status": "ok" if ingest.get("connected") is True else "degraded",
            "version": plantwire.__version__,
            "points": points,
            "ingest": ingest,
        }
    )


async def list_devices(request: web.Request) -> web.Response:
    check_keys(request.query, ())
    devices = await _in_thread(request, request.app[STORE_KEY].list_devices)
    return json_response({"devices": [device_json(d) for d in devices]})


async def get_device(request: web.Request) -> web.Response:
    check_keys(request.query, ())
    record = await _in_thread(request, _require_device, request.app[STORE_KEY], request.match_info["device"])
    return json_response(device_json(record))


def _tags(store: Store, device: str) -> list[TagRecord]:
    _require_device(store, device)
    return store.list_tags(device)


async def list_tags(request: web.Request) -> web.Response:
    check_keys(request.query, ())
    device = request.match_info["device"]
    tags = await _in_thread(request, _tags, request.app[STORE_KEY], device)
    return json_response({"device": device, "tags": [tag_json(t) for t in tags]})


def _latest(store: Store, device: str) -> list[LatestValue]:
    _require_device(store, device)
    return store.latest(device)


async def latest(request: web.Request) -> web.Response:
    check_keys(request.query, ("device",), required=("device",))
    device = request.query["device"]
    values = await _in_thread(request, _latest, request.app[STORE_KEY], device)
    return json_response({"device": device, "values": [latest_json(v) for v in values]})


def _series(store: Store, q: SeriesQuery) -> dict[str, Any]:
    _require_device(store, q.device)
    tag = next((t for t in store.list_tags(q.device) if t.tag == q.tag), None)
    if tag is None:
        raise ApiError(
            404,
            "unknown_tag",
            f"device {q.device!r} has no tag {q.tag!r}; GET /api/devices/{q.device}/tags lists its tags",
        )
    head = {
        "device": q.device,
        "tag": q.tag,
        "unit": tag.unit,
        "start": to_iso(q.start),
        "end": to_iso(q.end),
    }
    if q.every is None:
        points = store.series(q.device, q.tag, q.start, q.end, q.limit + 1)
        truncated = len(points) > q.limit
        return {
            **head,
            "points": [{"ts": to_iso(p.ts), "value": p.value, "status": p.status} for p in points[: q.limit]],
            "truncated": truncated,
        }
    assert q.agg is not None
    buckets = store.buckets(q.device, q.tag, q.start, q.end, q.every, q.agg)
    return {
        **head,
        "every": q.every_text,
        "agg": q.agg,
        "buckets": [{"start": to_iso(b.start), "value": b.value, "count": b.count} for b in buckets],
    }


async def series(request: web.Request) -> web.Response:
    q = parse_series_query(request.query, now_us())
    return json_response(await _in_thread(request, _series, request.app[STORE_KEY], q))


async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI_KEY], content_type="application/json")
