"""REST routes that act: write a tag, call a method, browse, attach and detach devices, the audit log.

A thin skin over `CommandService`: each handler parses the request (body, query; who asks is
the name of the token the auth middleware checked), calls the service and shapes its typed result
as JSON. The service's `CommandError`s become error answers in the middleware (`web.errors`), with
the status and code they carry: 404 unknown device/tag/gateway/method, 403 tag not writable, 422
value of the wrong type or out of range, 409 duplicate device id, 502 the device refused or could
not be reached, 503 gateway offline or no broker connection, 504 no reply in time.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from plantwire.timeunits import to_iso, to_iso_opt
from plantwire_platform.commands.service import AttachRequest, CommandService, Receipt
from plantwire_platform.store.model import AuditEntry
from plantwire_platform.web.auth_middleware import IDENTITY_KEY
from plantwire_platform.web.errors import ApiError
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


async def _body(request: web.Request, allowed: tuple[str, ...]) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError as err:
        raise ApiError(400, "bad_request", f"the body is not valid JSON: {err}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "the body must be a JSON object")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise ApiError(
            400, "bad_request", f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}"
        )
    return body


def _number_text(raw: Any) -> Any:
    """A timeout sent as text (query string, JSON string) as a number; anything else unchanged (the
    service checks it)."""
    if isinstance(raw, str):
        try:
            return float(raw)
        except ValueError:
            return raw
    return raw


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


async def write_tag(request: web.Request) -> web.Response:
    data = await _body(request, ("tag", "value", "id", "timeout"))
    if "value" not in data:
        raise ApiError(400, "bad_request", "'value' is required")
    tag: Any = data.get("tag")  # any JSON value: the service checks it
    done = await _service(request).write(
        user_of(request), request.match_info["device"], tag, data["value"],
        _number_text(data.get("timeout")), data.get("id"),
    )  # fmt: skip
    return json_response(
        {
            **_receipt_json(done.receipt),
            "tag": done.tag,
            "requested": done.requested,
            "value": done.value,
            "value_ts": to_iso_opt(done.value_ts),
        }
    )


async def call_method(request: web.Request) -> web.Response:
    data = await _body(request, ("method", "args", "id", "timeout"))
    method: Any = data.get("method")  # any JSON value: the service checks it
    done = await _service(request).call(
        user_of(request), request.match_info["device"], method, data.get("args", []),
        _number_text(data.get("timeout")), data.get("id"),
    )  # fmt: skip
    return json_response({**_receipt_json(done.receipt), "method": done.method, "outputs": done.outputs})


async def browse(request: web.Request) -> web.Response:
    unknown = sorted(set(request.query) - {"node", "timeout"})
    if unknown:
        raise ApiError(
            400, "invalid_parameter", f"unknown parameter(s) {', '.join(unknown)}; allowed: node, timeout"
        )
    done = await _service(request).browse(
        user_of(request),
        request.match_info["device"],
        request.query.get("node") or None,
        _number_text(request.query.get("timeout")),
    )
    return json_response({**_receipt_json(done.receipt), **done.result})


async def list_gateways(request: web.Request) -> web.Response:
    unknown = sorted(set(request.query))
    if unknown:
        raise ApiError(400, "invalid_parameter", f"unknown parameter(s) {', '.join(unknown)}")
    views = await _service(request).gateways()
    gateways = [
        {
            "id": g.id,
            "state": g.state,
            "since": to_iso_opt(g.since),
            "version": g.version,
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
        for g in views
    ]
    return json_response({"gateways": gateways})


async def attach_device(request: web.Request) -> web.Response:
    data = await _body(request, ("endpoint", "id", "root", "include", "exclude", "timeout"))
    endpoint: Any = data.get("endpoint")  # any JSON value: the service checks it
    attach = AttachRequest(
        endpoint, data.get("id"), data.get("root"), data.get("include"), data.get("exclude")
    )
    done = await _service(request).attach(
        user_of(request), request.match_info["gateway"], attach, _number_text(data.get("timeout"))
    )
    body = {**_receipt_json(done.receipt), "endpoint": done.endpoint, "root": done.root, "tags": done.tags}
    return json_response(body, status=201)


async def detach_device(request: web.Request) -> web.Response:
    receipt = await _service(request).detach(
        user_of(request),
        request.match_info["gateway"],
        request.match_info["device"],
        _number_text(request.query.get("timeout")),
    )
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
    q = request.query
    unknown = sorted(set(q) - {"limit", "device", "before"})
    if unknown:
        raise ApiError(
            400,
            "invalid_parameter",
            f"unknown parameter(s) {', '.join(unknown)}; allowed: limit, device, before",
        )
    try:
        limit = int(q.get("limit", "100"))
        before = int(q["before"]) if "before" in q else None
    except ValueError:
        raise ApiError(400, "invalid_parameter", "'limit' and 'before' must be whole numbers") from None
    entries = await _service(request).audit(limit, q.get("device"), before)
    return json_response({"entries": [audit_json(e) for e in entries]})
