"""REST routes that act: write a tag, call a method, browse, attach and detach devices, the audit log.

A thin skin over `CommandService`: each handler parses the request (body, query; who asks is
the name of the token the auth middleware checked), calls the service and shapes its typed result
as JSON. The service's `CommandError`s become error answers in the middleware (`web.errors`), with
the status and code they carry: 404 unknown device/tag/gateway/method, 403 tag not writable, 422
value of the wrong type or out of range (or a call to a Sparkplug device: not_supported), 409
duplicate device id, 502 the device refused or could not be reached, 503 gateway offline or no
broker connection, 504 no reply in time. A write to a Sparkplug device answers 200 (confirmed by
its DDATA) or 202 (DCMD sent, not confirmed in time): `commands.sparkplug_writes`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from plantwire.timeunits import to_iso, to_iso_opt
from plantwire_platform.commands.errors import InvalidCommand
from plantwire_platform.commands.service import CONNECTION_KEYS, AttachRequest, CommandService, Receipt
from plantwire_platform.commands.sparkplug_writes import DcmdDone
from plantwire_platform.store.model import AuditEntry
from plantwire_platform.web.api_models.commands import (
    AttachBody,
    AuditQuery,
    BrowseQuery,
    CallBody,
    DetachQuery,
    GatewayDevicePath,
    GatewayListQuery,
    GatewayPath,
    WriteBody,
    node_in_range,
)
from plantwire_platform.web.api_models.common import DevicePath, NoQuery
from plantwire_platform.web.auth_middleware import IDENTITY_KEY
from plantwire_platform.web.errors import ApiError
from plantwire_platform.web.query_params import validate_params
from plantwire_platform.web.request_body import parse_body
from plantwire_platform.web.responses import json_response
from plantwire_platform.web.runtime import runtime_of


def add_command_routes(app: web.Application) -> None:
    app.router.add_post("/api/devices/{device}/write", write_tag)
    app.router.add_post("/api/devices/{device}/call", call_method)
    app.router.add_get("/api/devices/{device}/browse", browse)
    app.router.add_get("/api/gateways", list_gateways)
    app.router.add_post("/api/gateways/{gateway}/devices", attach_device)
    app.router.add_delete("/api/gateways/{gateway}/devices/{device}", detach_device)
    app.router.add_get("/api/audit", list_audit)


def user_of(request: web.Request) -> str:
    """Who asked, for the audit: the name of the token the auth middleware checked.

    An app built without the middleware (some tests) has no identity: 'anonymous'.
    """
    identity = request.get(IDENTITY_KEY)
    return "anonymous" if identity is None else identity.name


def _service(request: web.Request) -> CommandService:
    return runtime_of(request).command_service


def _receipt_json(r: Receipt) -> dict[str, Any]:
    return {
        "id": r.id,
        "gateway": r.gateway,
        "device": r.device,
        "status": r.status,
        "status_name": r.status_name,
        "rtt_ms": r.rtt_ms,
        "gateway_ms": r.gateway_ms,
    }


def _device_of(request: web.Request) -> str:
    validate_params(request.query, NoQuery)
    return validate_params(request.match_info, DevicePath, "path").device


async def write_tag(request: web.Request) -> web.Response:
    device = _device_of(request)
    data = await parse_body(request, WriteBody)
    done = await _service(request).write(
        user_of(request), device, data.tag, data.value, data.timeout, data.id
    )
    if isinstance(done, DcmdDone):
        return json_response(_dcmd_json(done), status=done.http_status)
    return json_response(
        {
            **_receipt_json(done.receipt),
            "tag": done.tag,
            "requested": done.requested,
            "value": done.value,
            "value_ts": to_iso_opt(done.value_ts),
        }
    )


def _dcmd_json(d: DcmdDone) -> dict[str, Any]:
    return {
        "id": d.id,
        "gateway": d.gateway,
        "device": d.device,
        "protocol": "sparkplug",
        "tag": d.tag,
        "requested": d.requested,
        "confirmed": d.confirmed,
        "value": d.value,
        "value_ts": to_iso_opt(d.value_ts),
        "rtt_ms": d.rtt_ms,
    }


async def call_method(request: web.Request) -> web.Response:
    device = _device_of(request)
    data = await parse_body(request, CallBody)
    done = await _service(request).call(
        user_of(request), device, data.method, data.args, data.timeout, data.id
    )
    return json_response({**_receipt_json(done.receipt), "method": done.method, "outputs": done.outputs})


async def browse(request: web.Request) -> web.Response:
    device = validate_params(request.match_info, DevicePath, "path").device
    q = validate_params(request.query, BrowseQuery)
    unreadable = ApiError(
        422,
        "invalid_node",
        f"node {q.node!r} is not a NodeId the device can read: use a form like ns=2;s=Name or i=85",
    )
    if q.node is not None and not node_in_range(q.node):
        raise unreadable
    try:
        done = await _service(request).browse(user_of(request), device, q.node, q.timeout)
    except InvalidCommand:  # the gateway could not parse the NodeId: its parser's words stay there
        raise unreadable from None
    return json_response({**_receipt_json(done.receipt), **done.result})


async def list_gateways(request: web.Request) -> web.Response:
    q = validate_params(request.query, GatewayListQuery)
    page = await _service(request).gateways(q.offset, q.limit, q.devices)
    gateways = [
        {
            "id": g.id,
            "state": g.state,
            "since": to_iso_opt(g.since),
            "version": g.version,
            "device_count": g.device_count,
            "devices_url": "/api/devices?" + urlencode({"gateway": g.id}),
            "devices": [
                {
                    "id": d.id,
                    "state": d.state,
                    "endpoint": d.endpoint,
                    "error": d.error,
                    "tag_count": d.tag_count,
                    "last_data": to_iso_opt(d.last_data),
                }
                for d in g.devices
            ],
        }
        for g in page.gateways
    ]
    return json_response({"gateways": gateways, "total": page.total, "offset": q.offset, "limit": q.limit})


async def attach_device(request: web.Request) -> web.Response:
    validate_params(request.query, NoQuery)
    gateway = validate_params(request.match_info, GatewayPath, "path").gateway
    data = await parse_body(request, AttachBody)
    connection = {k: v for k in CONNECTION_KEYS if (v := getattr(data, k)) is not None}
    attach = AttachRequest(data.endpoint, data.id, data.root, data.include, data.exclude, connection)
    done = await _service(request).attach(user_of(request), gateway, attach, data.timeout)
    body = {**_receipt_json(done.receipt), "endpoint": done.endpoint, "root": done.root, "tags": done.tags}
    return json_response(body, status=201)


async def detach_device(request: web.Request) -> web.Response:
    path = validate_params(request.match_info, GatewayDevicePath, "path")
    q = validate_params(request.query, DetachQuery)
    receipt = await _service(request).detach(user_of(request), path.gateway, path.device, q.timeout)
    return json_response({**_receipt_json(receipt), "detached": True})


def audit_json(e: AuditEntry) -> dict[str, Any]:
    return {
        "id": e.id,
        "ts": to_iso(e.ts),
        "user": e.user,
        "action": e.action,
        "gateway": e.gateway,
        "device": e.device,
        "command_id": e.command_id,
        "request": e.request,
        "outcome": e.outcome,
        "http_status": e.http_status,
        "status": e.status,
        "message": e.message,
        "rtt_ms": e.rtt_ms,
    }


async def list_audit(request: web.Request) -> web.Response:
    q = validate_params(request.query, AuditQuery)
    entries = await _service(request).audit(q.limit, q.device, q.before)
    return json_response({"entries": [audit_json(e) for e in entries]})
