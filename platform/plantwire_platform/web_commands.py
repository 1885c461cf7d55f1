"""REST endpoints that act: write a tag, call a method, browse, attach and detach devices, the audit log.

Write and call are validated against the store's copy of the device's meta before anything is
sent, then travel over MQTT to the device's gateway (`CommandBus`) and answer with the gateway's
reply: OPC UA status (number and name), the value read back after a write, and the round trip.
Every write, call, attach and detach, refused or not, is kept in the audit log.

HTTP statuses: 404 unknown device/tag/gateway/method, 403 tag not writable, 422 value of the wrong
type or out of range, 409 duplicate device id, 502 the device refused or could not be reached,
503 gateway offline or no broker connection, 504 no reply in time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, Final, TypeVar

import orjson
from aiohttp import web

from plantwire import wire
from plantwire_platform.command_checks import check_call_args, check_write, device_id_for, user_of
from plantwire_platform.commands import (
    DEFAULT_TIMEOUT_S,
    MAX_TIMEOUT_S,
    CommandBus,
    CommandNotSent,
    CommandTimeout,
    Outcome,
    make_command,
)
from plantwire_platform.store import AuditEntry, DeviceRecord, Store
from plantwire_platform.timefmt import to_iso, to_iso_opt
from plantwire_platform.web_errors import ApiError
from plantwire_platform.web_json import json_response

COMMAND_BUS_KEY: Final = web.AppKey("command_bus", CommandBus)
ATTACH_TIMEOUT_S: Final = 15.0
"""The gateway probes a new endpoint for up to 5 s; this leaves room for the round trip."""
DETACHED: Final = "detached"

# Gateway reply code -> (HTTP status, API error code)
_REPLY_HTTP: Final[dict[str, tuple[int, str]]] = {
    "opcua_status": (502, "device_refused"),
    "unknown_device": (404, "unknown_device"),
    "unknown_tag": (404, "unknown_tag"),
    "not_writable": (403, "tag_not_writable"),
    "unknown_method": (404, "unknown_method"),
    "unknown_node": (404, "unknown_node"),
    "invalid": (422, "invalid_value"),
    "duplicate": (409, "duplicate_device"),
    "unreachable": (502, "device_unreachable"),
    "not_connected": (502, "device_unreachable"),
    "configured": (409, "device_configured"),
    "expired": (504, "command_expired"),
    "interrupted": (502, "command_interrupted"),
}


def add_command_routes(app: web.Application) -> None:
    """Register the routes; the running service puts a `CommandBus` under COMMAND_BUS_KEY."""
    app.router.add_post("/api/devices/{device}/write", write_tag)
    app.router.add_post("/api/devices/{device}/call", call_method)
    app.router.add_get("/api/devices/{device}/browse", browse)
    app.router.add_get("/api/gateways", list_gateways)
    app.router.add_post("/api/gateways/{gateway}/devices", attach_device)
    app.router.add_delete("/api/gateways/{gateway}/devices/{device}", detach_device)
    app.router.add_get("/api/audit", list_audit)


def _store(app: web.Application) -> Store:
    from plantwire_platform.web_api import STORE_KEY  # web_api imports this module

    return app[STORE_KEY]


def _bus(app: web.Application) -> CommandBus:
    bus = app.get(COMMAND_BUS_KEY)
    if bus is None:
        raise ApiError(503, "commands_unavailable", "this platform runs without a command connection")
    return bus


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


def _timeout(raw: Any, default: float) -> float:
    if raw is None:
        return default
    if isinstance(raw, str):
        try:
            raw = float(raw)
        except ValueError:
            raw = None
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 < raw <= MAX_TIMEOUT_S:
        raise ApiError(400, "bad_request", f"'timeout' must be a number of seconds in (0, {MAX_TIMEOUT_S:g}]")
    return float(raw)


def _command_id(raw: Any) -> str | None:
    if raw is None:
        return None
    try:
        return wire.check_command_id(raw)
    except wire.WireError as err:
        raise ApiError(400, "bad_request", str(err)) from None


async def _device(app: web.Application, device: str) -> DeviceRecord:
    record = await asyncio.to_thread(_store(app).get_device, device)
    if record is None:
        raise ApiError(404, "unknown_device", f"device {device!r} is not known; GET /api/devices lists them")
    if record.state == "offline" and record.error == DETACHED:
        raise ApiError(404, "unknown_device", f"device {device!r} is detached")
    return record


T = TypeVar("T")


class _Audit:
    """Collects what one command did, and writes one audit entry however it ends."""

    def __init__(
        self, app: web.Application, user: str, action: str, gateway: str | None, device: str | None
    ) -> None:
        self.app = app
        self.entry: dict[str, Any] = {
            "ts": wire.now_us(),
            "user": user,
            "action": action,
            "gateway": gateway,
            "device": device,
            "command_id": None,
            "request": {},
            "status": None,
            "rtt_ms": None,
        }

    async def done(self, outcome: str, http_status: int, message: str | None) -> None:
        entry = AuditEntry(id=0, outcome=outcome, http_status=http_status, message=message, **self.entry)
        await asyncio.to_thread(_store(self.app).add_audit, entry)

    async def run(self, body: Awaitable[T]) -> T:
        """Await `body`; audit its result or its ApiError."""
        try:
            result = await body
        except ApiError as err:
            sent = self.entry["command_id"] is not None
            outcome = "timeout" if err.status == 504 else ("failed" if sent else "rejected")
            await self.done(outcome, err.status, err.message)
            raise
        await self.done("ok", getattr(result, "status", 200), None)
        return result


async def _send(
    app: web.Application, audit: _Audit | None, gateway: str, command: wire.Command, timeout_s: float
) -> Outcome:
    bus = _bus(app)
    if audit is not None:
        audit.entry["command_id"] = command.id
    try:
        outcome = await bus.execute(gateway, command, timeout_s)
    except CommandTimeout as err:
        raise ApiError(504, "command_timeout", str(err)) from None
    except CommandNotSent as err:
        raise ApiError(503, "broker_unavailable", str(err)) from None
    reply = outcome.reply
    if audit is not None:
        audit.entry["status"] = reply.status
        audit.entry["rtt_ms"] = outcome.rtt_ms
    if not reply.ok:
        status, code = _REPLY_HTTP.get(reply.code, (502, "gateway_error"))
        message = reply.error or reply.code
        if reply.status:
            message = f"{message} (OPC UA status {reply.status_name} 0x{reply.status:08X})"
        raise ApiError(status, code, message)
    return outcome


def _result(outcome: Outcome, gateway: str) -> dict[str, Any]:
    r = outcome.reply
    return {
        "id": r.id,
        "gateway": gateway,
        "device": r.device,
        "status": r.status,
        "status_name": r.status_name or "Good",
        "rtt_ms": outcome.rtt_ms,
        "gateway_ms": round((r.done - r.received) / 1000, 3),
    }


# --- handlers ----------------------------------------------------------------------------------


async def perform_write(
    app: web.Application,
    user: str,
    device: str,
    tag_name: Any,
    value: Any,
    reply_timeout: Any = None,
    command_id: Any = None,
) -> dict[str, Any]:
    """Validate, send and audit a write; the same path for REST clients and apps. Raises ApiError."""
    audit = _Audit(app, user, "write", None, device)
    audit.entry["request"] = {"tag": tag_name, "value": value}

    async def body() -> dict[str, Any]:
        if not isinstance(tag_name, str) or not tag_name:
            raise ApiError(400, "bad_request", "'tag' must be a tag name, e.g. \"Spindle/SpeedSetpoint\"")
        timeout_s = _timeout(reply_timeout, DEFAULT_TIMEOUT_S)
        record = await _device(app, device)
        audit.entry["gateway"] = record.gateway
        tags = await asyncio.to_thread(_store(app).list_tags, device)
        tag = next((t for t in tags if t.tag == tag_name), None)
        if tag is None:
            raise ApiError(
                404,
                "unknown_tag",
                f"device {device!r} has no tag {tag_name!r}; GET /api/devices/{device}/tags",
            )
        checked = check_write(tag, value)
        args = {"tag": tag_name, "value": checked}
        command = make_command("write", device, args, timeout_s, user, _command_id(command_id))
        outcome = await _send(app, audit, record.gateway, command, timeout_s)
        result = outcome.reply.result
        return {
            **_result(outcome, record.gateway),
            "tag": tag_name,
            "requested": checked,
            "value": result.get("value"),
            "value_ts": to_iso_opt(result.get("ts")),
        }

    return await audit.run(body())


async def perform_call(
    app: web.Application,
    user: str,
    device: str,
    method: Any,
    args: Any,
    reply_timeout: Any = None,
    command_id: Any = None,
) -> dict[str, Any]:
    """Validate, send and audit a method call; the same path for REST clients and apps. Raises ApiError."""
    audit = _Audit(app, user, "call", None, device)
    audit.entry["request"] = {"method": method, "args": args}

    async def body() -> dict[str, Any]:
        if not isinstance(method, str) or not method:
            raise ApiError(400, "bad_request", "'method' must be a method's browse name, e.g. \"Start\"")
        checked = check_call_args(args)
        timeout_s = _timeout(reply_timeout, DEFAULT_TIMEOUT_S)
        record = await _device(app, device)
        audit.entry["gateway"] = record.gateway
        command = make_command(
            "call", device, {"method": method, "args": checked}, timeout_s, user, _command_id(command_id)
        )
        outcome = await _send(app, audit, record.gateway, command, timeout_s)
        return {
            **_result(outcome, record.gateway),
            "method": method,
            "outputs": outcome.reply.result.get("outputs", []),
        }

    return await audit.run(body())


async def write_tag(request: web.Request) -> web.Response:
    data = await _body(request, ("tag", "value", "id", "timeout"))
    if "value" not in data:
        raise ApiError(400, "bad_request", "'value' is required")
    result = await perform_write(
        request.app, user_of(request.headers), request.match_info["device"],
        data.get("tag"), data["value"], data.get("timeout"), data.get("id"),
    )  # fmt: skip
    return json_response(result)


async def call_method(request: web.Request) -> web.Response:
    data = await _body(request, ("method", "args", "id", "timeout"))
    result = await perform_call(
        request.app, user_of(request.headers), request.match_info["device"],
        data.get("method"), data.get("args", []), data.get("timeout"), data.get("id"),
    )  # fmt: skip
    return json_response(result)


async def browse(request: web.Request) -> web.Response:
    device = request.match_info["device"]
    unknown = sorted(set(request.query) - {"node", "timeout"})
    if unknown:
        raise ApiError(
            400, "invalid_parameter", f"unknown parameter(s) {', '.join(unknown)}; allowed: node, timeout"
        )
    timeout_s = _timeout(request.query.get("timeout"), DEFAULT_TIMEOUT_S)
    record = await _device(request.app, device)
    args = {"node": request.query["node"]} if request.query.get("node") else {}
    command = make_command("browse", device, args, timeout_s, user_of(request.headers))
    outcome = await _send(request.app, None, record.gateway, command, timeout_s)
    return json_response({**_result(outcome, record.gateway), **outcome.reply.result})


async def list_gateways(request: web.Request) -> web.Response:
    unknown = sorted(set(request.query))
    if unknown:
        raise ApiError(400, "invalid_parameter", f"unknown parameter(s) {', '.join(unknown)}")
    devices = await asyncio.to_thread(_store(request.app).list_devices)
    bus = request.app.get(COMMAND_BUS_KEY)
    known = dict(bus.gateways) if bus is not None else {}
    out: dict[str, dict[str, Any]] = {}
    for gw, status in known.items():
        out[gw] = {
            "id": gw,
            "state": status.state,
            "since": to_iso(status.since),
            "version": status.version,
            "devices": [],
        }
    for d in devices:
        entry = out.setdefault(
            d.gateway,
            {"id": d.gateway, "state": d.gateway_state, "since": None, "version": None, "devices": []},
        )
        detached = d.state == "offline" and d.error == DETACHED
        entry["devices"].append(
            {
                "id": d.id,
                "state": DETACHED if detached else d.state,
                "endpoint": d.endpoint,
                "error": None if detached else d.error,
                "tag_count": d.tag_count,
                "last_data": to_iso_opt(d.last_data),
            }
        )
    return json_response({"gateways": [out[k] for k in sorted(out)]})


def _gateway_known(request: web.Request, gateway: str, devices: list[DeviceRecord]) -> None:
    bus = _bus(request.app)
    status = bus.gateways.get(gateway)
    if status is None and not any(d.gateway == gateway for d in devices):
        raise ApiError(
            404, "unknown_gateway", f"gateway {gateway!r} is not known; GET /api/gateways lists them"
        )
    if status is not None and status.state != "online":
        raise ApiError(
            503, "gateway_offline", f"gateway {gateway!r} is offline; it cannot attach devices now"
        )


async def attach_device(request: web.Request) -> web.Response:
    gateway = request.match_info["gateway"]
    audit = _Audit(request.app, user_of(request.headers), "attach", gateway, None)

    async def body() -> web.Response:
        data = await _body(request, ("endpoint", "id", "root", "include", "exclude", "timeout"))
        audit.entry["request"] = {k: v for k, v in data.items() if k != "timeout"}
        endpoint = data.get("endpoint")
        if not isinstance(endpoint, str) or not endpoint.startswith("opc.tcp://") or len(endpoint) <= 10:
            raise ApiError(400, "bad_endpoint", f"endpoint {endpoint!r} must be an opc.tcp://host:port URL")
        device = data.get("id") or device_id_for(endpoint)
        audit.entry["device"] = device
        try:
            wire.check_id("device", device)
        except wire.WireError as err:
            raise ApiError(400, "bad_request", str(err)) from None
        for key in ("include", "exclude"):
            value = data.get(key)
            if value is not None and not (isinstance(value, list) and all(isinstance(x, str) for x in value)):
                raise ApiError(400, "bad_request", f"'{key}' must be a list of glob patterns")
        root = data.get("root")
        if root is not None and not isinstance(root, str):
            raise ApiError(400, "bad_request", "'root' must be a NodeId or a browse path")
        timeout_s = _timeout(data.get("timeout"), ATTACH_TIMEOUT_S)
        devices = await asyncio.to_thread(_store(request.app).list_devices)
        _gateway_known(request, gateway, devices)
        existing = next((d for d in devices if d.id == device), None)
        if existing is not None and not (existing.state == "offline" and existing.error == DETACHED):
            raise ApiError(
                409,
                "duplicate_device",
                f"device id {device!r} is taken (gateway {existing.gateway!r}); choose --id",
            )
        args = {k: data[k] for k in ("root", "include", "exclude") if data.get(k) is not None}
        args["endpoint"] = endpoint
        command = make_command("attach", device, args, timeout_s, audit.entry["user"], _command_id(None))
        outcome = await _send(request.app, audit, gateway, command, timeout_s)
        result = outcome.reply.result
        return json_response(
            {
                **_result(outcome, gateway),
                "endpoint": result.get("endpoint", endpoint),
                "root": result.get("root", ""),
                "tags": result.get("tags", 0),
            },
            status=201,
        )

    return await audit.run(body())


async def detach_device(request: web.Request) -> web.Response:
    gateway, device = request.match_info["gateway"], request.match_info["device"]
    audit = _Audit(request.app, user_of(request.headers), "detach", gateway, device)

    async def body() -> web.Response:
        timeout_s = _timeout(request.query.get("timeout"), DEFAULT_TIMEOUT_S)
        devices = await asyncio.to_thread(_store(request.app).list_devices)
        _gateway_known(request, gateway, devices)
        command = make_command("detach", device, {}, timeout_s, audit.entry["user"])
        outcome = await _send(request.app, audit, gateway, command, timeout_s)
        return json_response({**_result(outcome, gateway), "detached": True})

    return await audit.run(body())


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
    if not 1 <= limit <= 1000:
        raise ApiError(400, "invalid_parameter", "'limit' must be 1 to 1000")
    entries = await asyncio.to_thread(_store(request.app).list_audit, limit, q.get("device"), before)
    return json_response({"entries": [audit_json(e) for e in entries]})
