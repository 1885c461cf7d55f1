"""The OpenAPI 3.1 document of the REST API: the one description of every endpoint.

A test checks that the routes `web.app.create_app` registers and the paths here are the same
set, and that real responses match the schemas, so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Any, Final

from plantwire_platform.store.model import AGGREGATES
from plantwire_platform.web.health import openapi_paths as health_openapi_paths
from plantwire_platform.web.openapi_apps import APP_PATHS, APP_SCHEMAS
from plantwire_platform.web.openapi_commands import openapi_paths as command_openapi_paths
from plantwire_platform.web.openapi_handles import HANDLE_PATHS
from plantwire_platform.web.query_params import DEFAULT_LIMIT, MAX_BUCKETS, MAX_LIMIT
from plantwire_platform.web.stream import openapi_paths as stream_openapi_paths

JSON: Final = "application/json"
TIME_EXAMPLE: Final = "2026-11-24T11:20:00.123456Z"


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(properties: dict[str, Any], description: str = "") -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
    if description:
        schema["description"] = description
    return schema


_TIME: Final = {"type": "string", "format": "date-time", "examples": [TIME_EXAMPLE]}
_TIME_OR_NULL: Final = {"type": ["string", "null"], "format": "date-time", "examples": [TIME_EXAMPLE]}
_STR_OR_NULL: Final = {"type": ["string", "null"]}
_VALUE: Final = {
    "type": ["number", "boolean", "string", "null"],
    "description": "The tag's value: a number, boolean, string, or null when the source had none.",
}

SCHEMAS: Final[dict[str, Any]] = {
    "Error": _obj(
        {
            "error": _obj(
                {
                    "status": {"type": "integer", "examples": [400]},
                    "code": {
                        "type": "string",
                        "pattern": "^[a-z][a-z0-9_]*$",
                        "examples": ["invalid_parameter", "unknown_device", "not_found"],
                    },
                    "message": {
                        "type": "string",
                        "examples": ["every='5x' is not a duration: use a whole number followed by ..."],
                    },
                }
            )
        },
        "Every error, whatever the endpoint and status.",
    ),
    "Health": _obj(
        {
            "status": {"type": "string", "enum": ["ok", "degraded"], "description": "degraded: no MQTT."},
            "version": {"type": "string", "examples": ["0.1.0"]},
            "points": {"type": "integer", "minimum": 0, "description": "Points stored."},
            "ingest": {
                "type": "object",
                "description": "Ingest and runtime figures (connected, counters, whether ingest's "
                "reader and writer threads are alive).",
                "properties": {
                    "connected": {"type": "boolean"},
                    "writer_alive": {"type": "boolean"},
                    "reader_alive": {"type": "boolean"},
                },
                "additionalProperties": True,
            },
        }
    ),
    "Device": _obj(
        {
            "id": {"type": "string", "examples": ["press-1"]},
            "gateway": {"type": "string", "examples": ["line-a"]},
            "endpoint": {**_STR_OR_NULL, "examples": ["opc.tcp://10.0.0.5:4840"]},
            "state": {"type": "string", "enum": ["online", "connecting", "offline", "unknown"]},
            "state_since": _TIME_OR_NULL,
            "error": {**_STR_OR_NULL, "description": "Why the gateway cannot reach the device."},
            "gateway_state": {"type": "string", "enum": ["online", "offline", "unknown"]},
            "tag_count": {"type": "integer", "minimum": 0},
            "first_seen": _TIME,
            "last_data": {**_TIME_OR_NULL, "description": "Source time of the newest stored point."},
            "last_seq": {"type": "integer", "minimum": 0, "description": "Highest data sequence number."},
            "identifier": {**_STR_OR_NULL, "description": "Its Handle identifier (docs/identifiers.md)."},
        }
    ),
    "DeviceList": _obj({"devices": {"type": "array", "items": _ref("Device")}}),
    "Tag": _obj(
        {
            "tag": {"type": "string", "examples": ["temperature"]},
            "node_id": {**_STR_OR_NULL, "examples": ["ns=2;s=Press.Temperature"]},
            "data_type": {**_STR_OR_NULL, "examples": ["Double"]},
            "unit": {**_STR_OR_NULL, "examples": ["degC"]},
            "description": _STR_OR_NULL,
            "writable": {"type": "boolean"},
            "range": {
                "type": ["array", "null"],
                "items": {"type": ["number", "null"]},
                "minItems": 2,
                "maxItems": 2,
                "description": "[low, high] engineering range, or null when unknown.",
                "examples": [[0, 250]],
            },
            "derived_by": {
                **_STR_OR_NULL,
                "description": "App computing this derived series; null for a device's own tag.",
                "examples": [None, "oee"],
            },
        }
    ),
    "TagList": _obj({"device": {"type": "string"}, "tags": {"type": "array", "items": _ref("Tag")}}),
    "LatestValue": _obj(
        {
            "tag": {"type": "string"},
            "ts": _TIME,
            "value": _VALUE,
            "status": {"type": "integer", "minimum": 0, "description": "OPC UA status code (uint32)."},
            "quality": {
                "type": "string",
                "enum": ["good", "uncertain", "bad"],
                "description": "From the top two bits of the status code: 00 good, 01 uncertain, 1x bad.",
            },
            "unit": _STR_OR_NULL,
        }
    ),
    "Latest": _obj({"device": {"type": "string"}, "values": {"type": "array", "items": _ref("LatestValue")}}),
    "Point": _obj({"ts": _TIME, "value": _VALUE, "status": {"type": "integer", "minimum": 0}}),
    "RawSeries": _obj(
        {
            "device": {"type": "string"},
            "tag": {"type": "string"},
            "unit": _STR_OR_NULL,
            "start": _TIME,
            "end": _TIME,
            "points": {"type": "array", "items": _ref("Point")},
            "truncated": {"type": "boolean", "description": "More points exist in the window than limit."},
        },
        "Raw points with start <= ts < end, oldest first.",
    ),
    "Bucket": _obj(
        {
            "start": _TIME,
            "value": {**_VALUE, "description": "The aggregate; null when no numeric value fell in."},
            "count": {"type": "integer", "minimum": 1},
        }
    ),
    "BucketSeries": _obj(
        {
            "device": {"type": "string"},
            "tag": {"type": "string"},
            "unit": _STR_OR_NULL,
            "start": _TIME,
            "end": _TIME,
            "every": {"type": "string", "examples": ["1m"]},
            "agg": {"type": "string", "enum": list(AGGREGATES)},
            "buckets": {"type": "array", "items": _ref("Bucket")},
        },
        "One aggregate per bucket of `every`, aligned to multiples of `every` since the epoch, oldest "
        "first; empty buckets are left out.",
    ),
}

_TIME_PARAM_DESC: Final = (
    "ISO 8601 (e.g. 2026-11-24T11:20:00Z or with an offset; no offset means UTC), 'now', or relative "
    "to now: -15m, -2h, -1d (units ms, s, m, h, d; 'now-15m' also works)."
)

_DEVICE_PATH: Final = {
    "name": "device",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "example": "press-1",
}
_DEVICE_QUERY: Final = {**_DEVICE_PATH, "in": "query", "description": "Device id (see /api/devices)."}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": _ref("Error")}}}


def _ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _get(
    operation_id: str,
    summary: str,
    ok: dict[str, Any],
    parameters: list[dict[str, Any]] | None = None,
    errors: dict[str, str] | None = None,
) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": ok}
    for status, description in (errors or {}).items():
        responses[status] = _error(description)
    responses["500"] = _error("Internal error (details only in the server log).")
    responses["503"] = _error("The store could not answer (code store_unavailable).")
    return {
        "get": {
            "operationId": operation_id,
            "summary": summary,
            "parameters": parameters or [],
            "responses": responses,
        }
    }


PATHS: Final[dict[str, Any]] = {
    "/api/health": _get(
        "getHealth", "Service health, stored point count and ingest figures.", _ok(_ref("Health"))
    ),
    "/api/devices": _get("listDevices", "Every device any gateway reported.", _ok(_ref("DeviceList"))),
    "/api/devices/{device}": _get(
        "getDevice",
        "One device.",
        _ok(_ref("Device")),
        [_DEVICE_PATH],
        {"400": "Unknown query parameter.", "404": "Unknown device."},
    ),
    "/api/devices/{device}/tags": _get(
        "listTags",
        "The tags of a device, from its meta message.",
        _ok(_ref("TagList")),
        [_DEVICE_PATH],
        {"400": "Unknown query parameter.", "404": "Unknown device."},
    ),
    "/api/latest": _get(
        "getLatest",
        "The newest value of every tag of a device (tags without a value are left out).",
        _ok(_ref("Latest")),
        [_DEVICE_QUERY],
        {"400": "Missing or bad parameter.", "404": "Unknown device."},
    ),
    "/api/series": _get(
        "getSeries",
        "Raw points of one tag in a time window, or aggregates per bucket when `every` is given.",
        _ok(
            {"oneOf": [_ref("RawSeries"), _ref("BucketSeries")]},
            "RawSeries without every, else BucketSeries.",
        ),
        [
            _DEVICE_QUERY,
            {
                "name": "tag",
                "in": "query",
                "required": True,
                "schema": {"type": "string"},
                "example": "temperature",
            },
            {
                "name": "start",
                "in": "query",
                "required": False,
                "description": f"Window start (inclusive); default end - 1h. {_TIME_PARAM_DESC}",
                "schema": {"type": "string"},
                "examples": {
                    "relative": {"value": "-15m"},
                    "absolute": {"value": "2026-11-24T11:00:00Z"},
                },
            },
            {
                "name": "end",
                "in": "query",
                "required": False,
                "description": f"Window end (exclusive); default now. Must be after start, and the window "
                f"at most 366d. {_TIME_PARAM_DESC}",
                "schema": {"type": "string"},
                "examples": {"now": {"value": "now"}, "absolute": {"value": "2026-11-24T12:00:00Z"}},
            },
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "description": "Most raw points to return (truncated=true when more exist). Not allowed "
                "with every.",
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
                "example": 1000,
            },
            {
                "name": "every",
                "in": "query",
                "required": False,
                "description": f"Bucket width: a whole number and a unit ms, s, m, h or d; at least 1ms, at "
                f"most 366d, and at most {MAX_BUCKETS} buckets in the window.",
                "schema": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h|d)$"},
                "example": "1m",
            },
            {
                "name": "agg",
                "in": "query",
                "required": False,
                "description": "Aggregate per bucket (only with every). avg/min/max use numeric values "
                "(booleans as 0/1); last and count use all.",
                "schema": {"type": "string", "enum": list(AGGREGATES), "default": "avg"},
                "example": "max",
            },
        ],
        {"400": "Missing, unknown or bad parameter.", "404": "Unknown device, or unknown tag of the device."},
    ),
    "/api/openapi.json": _get(
        "getOpenApi", "This document.", _ok({"type": "object", "description": "OpenAPI 3.1 document."})
    ),
}


def openapi_document(version: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Plantwire platform API",
            "version": version,
            "description": "Devices, tags and stored values of the plant. Times are ISO 8601 UTC with "
            "microseconds and a Z. Every error has the Error shape. Unknown query parameters are "
            "rejected with 400 so that typos do not pass unnoticed.",
        },
        "paths": {
            **PATHS,
            **health_openapi_paths(),
            **stream_openapi_paths(),
            **command_openapi_paths(),
            **APP_PATHS,
            **HANDLE_PATHS,
        },
        "components": {"schemas": {**SCHEMAS, **APP_SCHEMAS}},
    }
