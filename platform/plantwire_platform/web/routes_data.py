"""REST routes that read: health, devices, tags, latest values and time series from the store."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from aiohttp import web

import plantwire
from plantwire.timeunits import to_iso, to_iso_opt
from plantwire.wire import now_us, quality
from plantwire_platform.store import device_state
from plantwire_platform.store.device_query import DeviceQuery
from plantwire_platform.store.model import DeviceRecord, LatestValue, Store, TagRecord
from plantwire_platform.web.api_models.common import DevicePath, NoQuery
from plantwire_platform.web.api_models.data import DeviceListQuery, LatestQuery
from plantwire_platform.web.errors import ApiError
from plantwire_platform.web.health import ingest_ok
from plantwire_platform.web.query_params import SeriesQuery, parse_series_query, validate_params
from plantwire_platform.web.responses import json_response
from plantwire_platform.web.runtime import runtime_of

T = TypeVar("T")


def add_data_routes(app: web.Application) -> None:
    app.router.add_get("/api/health", health)
    app.router.add_get("/api/devices", list_devices)
    app.router.add_get("/api/devices/{device}", get_device)
    app.router.add_get("/api/devices/{device}/tags", list_tags)
    app.router.add_get("/api/latest", latest)
    app.router.add_get("/api/series", series)


# --- JSON shapes ---------------------------------------------------------------------------------


def device_json(record: DeviceRecord, identifier: str | None = None) -> dict[str, Any]:
    d = device_state.shown(record)
    return {
        "id": d.id,
        "gateway": d.gateway,
        "endpoint": d.endpoint,
        "state": d.state,
        "reported_state": record.state,
        "state_since": to_iso_opt(d.state_since),
        "error": d.error,
        "gateway_state": d.gateway_state,
        "tag_count": d.tag_count,
        "first_seen": to_iso(d.first_seen),
        "last_data": to_iso_opt(d.last_data),
        "last_seq": d.last_seq,
        "identifier": identifier,
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
        "value_rank": len(t.dims) if t.dims is not None else -1,
        "dims": list(t.dims) if t.dims is not None else None,
        "enum": {str(k): v for k, v in t.enum.items()} if t.enum is not None else None,
        "locale": t.locale,
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


def _device_of(request: web.Request) -> str:
    """The path's device, checked; the query must be empty."""
    validate_params(request.query, NoQuery)
    return validate_params(request.match_info, DevicePath, "path").device


async def _identifiers(request: web.Request, devices: Sequence[str]) -> dict[str, str]:
    ids = runtime_of(request).identifiers
    return {} if ids is None or not devices else await ids.identifiers_of(devices)


async def _read(request: web.Request, fn: Callable[..., T], *args: Any) -> T:
    """Run `fn(store, *args)` on the API's store threads."""
    runtime = runtime_of(request)
    return await runtime.reads.run(fn, runtime.store, *args)


# --- handlers ------------------------------------------------------------------------------------


async def health(request: web.Request) -> web.Response:
    validate_params(request.query, NoQuery)
    runtime = runtime_of(request)
    points = await runtime.reads.run(runtime.store.count_points)
    ingest = runtime.status()
    body: dict[str, Any] = {
        "status": "ok" if ingest_ok(ingest) else "degraded",
        "version": plantwire.__version__,
        "points": points,
        "ingest": ingest.as_json(),
    }
    if runtime.sparkplug_status is not None:
        body["sparkplug"] = runtime.sparkplug_status().as_json()
    return json_response(body)


async def list_devices(request: web.Request) -> web.Response:
    p = validate_params(request.query, DeviceListQuery)
    runtime = runtime_of(request)
    query = DeviceQuery(gateway=p.gateway, state=p.state, name=p.q, offset=p.offset, limit=p.limit)
    page = await runtime.reads.run(runtime.store.page_devices, query)
    names = await _identifiers(request, [d.id for d in page.devices])
    return json_response(
        {
            "devices": [device_json(d, names.get(d.id)) for d in page.devices],
            "total": page.total,
            "offset": p.offset,
            "limit": p.limit,
        }
    )


async def get_device(request: web.Request) -> web.Response:
    record = await _read(request, _require_device, _device_of(request))
    names = await _identifiers(request, [record.id])
    return json_response(device_json(record, names.get(record.id)))


def _tags(store: Store, device: str) -> list[TagRecord]:
    _require_device(store, device)
    return store.list_tags(device)


async def list_tags(request: web.Request) -> web.Response:
    device = _device_of(request)
    tags = await _read(request, _tags, device)
    return json_response({"device": device, "tags": [tag_json(t) for t in tags]})


def _latest(store: Store, device: str) -> list[LatestValue]:
    _require_device(store, device)
    return store.latest(device)


async def latest(request: web.Request) -> web.Response:
    device = validate_params(request.query, LatestQuery).device
    values = await _read(request, _latest, device)
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
        "buckets": [
            {"start": to_iso(b.start), "value": b.value, "count": b.count, "skipped": b.skipped}
            for b in buckets
        ],
    }


async def series(request: web.Request) -> web.Response:
    q = parse_series_query(request.query, now_us())
    return json_response(await _read(request, _series, q))
