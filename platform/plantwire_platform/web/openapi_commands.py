"""The command, gateway and audit endpoints for the OpenAPI document (merged in openapi.py)."""

from __future__ import annotations

from typing import Any, Final

from plantwire_platform.commands.bus import MAX_TIMEOUT_S

JSON: Final = "application/json"
_ERROR: Final = {"$ref": "#/components/schemas/Error"}
_NUM: Final = {"type": "number"}
_STR: Final = {"type": "string"}
_STR_OR_NULL: Final = {"type": ["string", "null"]}
_VALUE: Final = {"type": ["number", "boolean", "string", "null"]}
_STRINGS: Final = {"type": "array", "items": {"type": "string"}}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": props,
        "required": list(props) if required is None else required,
        "additionalProperties": False,
    }


_RESULT: Final = {
    "id": {"type": "string", "description": "Command id (give your own `id` to retry safely)."},
    "gateway": _STR,
    "device": _STR,
    "status": {"type": "integer", "description": "OPC UA status code (0 = Good)."},
    "status_name": {"type": "string", "examples": ["Good"]},
    "rtt_ms": {**_NUM, "description": "Platform -> gateway -> device -> platform, measured here."},
    "gateway_ms": {**_NUM, "description": "Time the gateway spent executing."},
}
_DEVICE: Final = {"name": "device", "in": "path", "required": True, "schema": _STR, "example": "cnc-1"}
_GATEWAY: Final = {"name": "gateway", "in": "path", "required": True, "schema": _STR, "example": "line-1"}
_TIMEOUT: Final = {
    "type": "number",
    "exclusiveMinimum": 0,
    "maximum": MAX_TIMEOUT_S,
    "description": "Seconds to wait for the gateway's reply (504 after).",
}


def _errors(codes: dict[str, str]) -> dict[str, Any]:
    out = {s: {"description": d, "content": {JSON: {"schema": _ERROR}}} for s, d in codes.items()}
    out["500"] = {"description": "Internal error.", "content": {JSON: {"schema": _ERROR}}}
    return out


def _op(
    op_id: str,
    summary: str,
    ok_status: str,
    ok: dict[str, Any],
    errors: dict[str, str],
    params: list[dict[str, Any]],
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": op_id,
        "summary": summary,
        "parameters": params,
        "responses": {ok_status: {"description": "OK", "content": {JSON: {"schema": ok}}}, **_errors(errors)},
    }
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {JSON: {"schema": body}}}
    return operation


_SEND_ERRORS: Final = {
    "400": "Bad body.",
    "404": "Unknown device, tag or method.",
    "502": "The device refused (bad OPC UA status) or could not be reached.",
    "503": "No broker connection, or gateway offline.",
    "504": "No reply in time (code command_timeout); retry with the same id.",
}

_AUDIT_ENTRY: Final = _obj(
    {
        "id": {"type": "integer"},
        "ts": {"type": "string", "format": "date-time"},
        "user": _STR,
        "action": {"type": "string", "enum": ["write", "call", "attach", "detach"]},
        "gateway": _STR_OR_NULL,
        "device": _STR_OR_NULL,
        "command_id": _STR_OR_NULL,
        "request": {"type": "object"},
        "outcome": {"type": "string", "enum": ["ok", "rejected", "failed", "timeout"]},
        "http_status": {"type": "integer"},
        "status": {"type": ["integer", "null"]},
        "message": _STR_OR_NULL,
        "rtt_ms": {"type": ["number", "null"]},
    }
)

_BROWSE_NODE: Final = _obj(
    {
        "node_id": _STR,
        "browse_name": _STR,
        "node_class": {"type": "string", "enum": ["Object", "Variable", "Method"]},
        "data_type": _STR_OR_NULL,
        "writable": {"type": "boolean"},
        "has_children": {"type": "boolean"},
    }
)


def openapi_paths() -> dict[str, Any]:
    return {
        "/api/devices/{device}/write": {
            "post": _op(
                "writeTag",
                "Write a writable tag; answers with the OPC UA status and the value read back.",
                "200",
                _obj(
                    {**_RESULT, "tag": _STR, "requested": _VALUE, "value": _VALUE, "value_ts": _STR_OR_NULL}
                ),
                {
                    **_SEND_ERRORS,
                    "403": "The tag is read-only (code tag_not_writable).",
                    "422": "Wrong type for the tag (invalid_value) or outside its range (out_of_range).",
                },
                [_DEVICE],
                _obj(
                    {"tag": _STR, "value": _VALUE, "id": _STR, "timeout": _TIMEOUT},
                    required=["tag", "value"],
                ),
            )
        },
        "/api/devices/{device}/call": {
            "post": _op(
                "callMethod",
                "Call a method found by browse name below the device's root (Start, Stop, Reset, ...).",
                "200",
                _obj({**_RESULT, "method": _STR, "outputs": {"type": "array", "items": _VALUE}}),
                {**_SEND_ERRORS, "422": "Arguments do not fit the method."},
                [_DEVICE],
                _obj(
                    {
                        "method": _STR,
                        "args": {"type": "array", "items": _VALUE},
                        "id": _STR,
                        "timeout": _TIMEOUT,
                    },
                    required=["method"],
                ),
            )
        },
        "/api/devices/{device}/browse": {
            "get": _op(
                "browseDevice",
                "A node of the device's address space (default its root) and its children.",
                "200",
                _obj(
                    {
                        **_RESULT,
                        "node": _obj({"node_id": _STR, "browse_name": _STR_OR_NULL, "node_class": _STR}),
                        "root": _STR,
                        "children": {"type": "array", "items": _BROWSE_NODE},
                    }
                ),
                _SEND_ERRORS,
                [
                    _DEVICE,
                    {
                        "name": "node",
                        "in": "query",
                        "required": False,
                        "schema": _STR,
                        "example": "ns=2;s=cnc-1",
                    },
                    {"name": "timeout", "in": "query", "required": False, "schema": _TIMEOUT},
                ],
            )
        },
        "/api/gateways": {
            "get": _op(
                "listGateways",
                "Gateways and their devices with their states (detached devices say so).",
                "200",
                _obj({"gateways": {"type": "array", "items": {"type": "object"}}}),
                {"400": "Unknown parameter."},
                [],
            )
        },
        "/api/gateways/{gateway}/devices": {
            "post": _op(
                "attachDevice",
                "Attach an OPC UA endpoint to a running gateway: probed, stored, streaming within seconds.",
                "201",
                _obj({**_RESULT, "endpoint": _STR, "root": _STR, "tags": {"type": "integer"}}),
                {
                    "400": "Not an opc.tcp URL (bad_endpoint) or bad body.",
                    "404": "Unknown gateway, or the root node does not exist (unknown_node).",
                    "409": "Device id taken (duplicate_device).",
                    "502": "Endpoint unreachable (device_unreachable).",
                    "503": "Gateway offline.",
                    "504": "No reply in time.",
                },
                [_GATEWAY],
                _obj(
                    {
                        "endpoint": {**_STR, "examples": ["opc.tcp://127.0.0.1:4850"]},
                        "id": _STR,
                        "root": _STR,
                        "include": _STRINGS,
                        "exclude": _STRINGS,
                        "timeout": _TIMEOUT,
                    },
                    required=["endpoint"],
                ),
            )
        },
        "/api/gateways/{gateway}/devices/{device}": {
            "delete": _op(
                "detachDevice",
                "Detach a device attached at runtime: its session stops, its status becomes detached.",
                "200",
                _obj({**_RESULT, "detached": {"type": "boolean"}}),
                {
                    "404": "Unknown gateway or device.",
                    "409": "The device comes from the gateway's config file (device_configured).",
                    "503": "Gateway offline.",
                    "504": "No reply in time.",
                },
                [_GATEWAY, _DEVICE],
            )
        },
        "/api/audit": {
            "get": _op(
                "listAudit",
                "Every write, call, attach and detach (refused ones too), newest first.",
                "200",
                _obj({"entries": {"type": "array", "items": _AUDIT_ENTRY}}),
                {"400": "Bad parameter."},
                [
                    {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer"}},
                    {"name": "device", "in": "query", "required": False, "schema": _STR},
                    {"name": "before", "in": "query", "required": False, "schema": {"type": "integer"}},
                ],
            )
        },
    }
