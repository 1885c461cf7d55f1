"""OpenAPI paths and schemas of the app layer's routes (routes_apps.py), merged by openapi.py."""

from __future__ import annotations

from typing import Any, Final

JSON: Final = "application/json"
_TIME: Final = {"type": "string", "format": "date-time"}
_TIME_OR_NULL: Final = {"type": ["string", "null"], "format": "date-time"}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def _responses(ok: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"200": {"description": "OK", "content": {JSON: {"schema": ok}}}}
    for status, text in {**errors, "500": "Internal error (details only in the server log)."}.items():
        out[status] = {"description": text, "content": {JSON: {"schema": _ref("Error")}}}
    return out


def _op(
    operation_id: str, summary: str, ok: dict[str, Any], params: list[Any], errors: dict[str, str]
) -> dict[str, Any]:
    return {
        "operationId": operation_id,
        "summary": summary,
        "parameters": params,
        "responses": _responses(ok, errors),
    }


_APP_ID: Final = {
    "name": "app_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "example": "oee",
}
_COUNTERS: Final = _obj(
    {k: {"type": "integer", "minimum": 0} for k in ("points_in", "emitted", "alarms", "errors", "drops")}
)

APP_SCHEMAS: Final[dict[str, Any]] = {
    "App": _obj(
        {
            "id": {"type": "string", "examples": ["oee"]},
            "name": {"type": "string"},
            "version": {"type": "string", "examples": ["1.0.0"]},
            "api_version": {"type": "integer"},
            "status": {"type": "string", "enum": ["starting", "running", "disabled", "failed", "stopped"]},
            "enabled": {"type": "boolean"},
            "error": {"type": ["string", "null"], "description": "Why the app failed or is disabled."},
            "counters": _COUNTERS,
            "routes": {"type": "string", "examples": ["/apps/oee/"]},
        }
    ),
    "AppList": _obj({"apps": {"type": "array", "items": _ref("App")}}),
    "Alarm": _obj(
        {
            "id": {"type": "integer"},
            "app": {"type": "string"},
            "device": {"type": "string"},
            "tag": {"type": "string"},
            "severity": {"type": "string", "enum": ["info", "warning", "critical"]},
            "message": {"type": "string"},
            "state": {"type": "string", "enum": ["active", "cleared"]},
            "raised_at": _TIME,
            "cleared_at": _TIME_OR_NULL,
            "acked": {"type": "boolean"},
            "acked_at": _TIME_OR_NULL,
            "acked_by": {"type": ["string", "null"]},
        }
    ),
    "AlarmList": _obj({"alarms": {"type": "array", "items": _ref("Alarm")}}),
}

_UNKNOWN_APP: Final = {"404": "Unknown app.", "503": "The app host is not running."}


def _lifecycle(action: str, summary: str) -> dict[str, Any]:
    return {"post": _op(f"{action}App", summary, _ref("App"), [_APP_ID], _UNKNOWN_APP)}


def _app_route(method: str) -> dict[str, Any]:
    return _op(
        f"appRoute{method.capitalize()}",
        "A route the app serves (GET metrics is built in: its counters and own metrics).",
        {"type": "object", "description": "Whatever the app answers."},
        [_APP_ID, {"name": "path", "in": "path", "required": True, "schema": {"type": "string"}}],
        {"404": "Unknown app or route.", "503": "The app is not running."},
    )


APP_PATHS: Final[dict[str, Any]] = {
    "/api/apps": {
        "get": _op(
            "listApps",
            "Every app found, with status, version and counters.",
            _ref("AppList"),
            [],
            {"503": "The app host is not running."},
        )
    },
    "/api/apps/{app_id}/enable": _lifecycle("enable", "Start an app (kept until the platform restarts)."),
    "/api/apps/{app_id}/disable": _lifecycle("disable", "Stop an app (kept until the platform restarts)."),
    "/api/apps/{app_id}/restart": _lifecycle("restart", "Stop and start an app; clears its error."),
    "/api/alarms": {
        "get": _op(
            "listAlarms",
            "Alarms raised by apps, newest first (at most 1000).",
            _ref("AlarmList"),
            [
                {
                    "name": "state",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string", "enum": ["active", "all"], "default": "active"},
                },
                {"name": "device", "in": "query", "required": False, "schema": {"type": "string"}},
                {"name": "app", "in": "query", "required": False, "schema": {"type": "string"}},
            ],
            {"400": "Unknown or bad parameter."},
        )
    },
    "/api/alarms/{alarm_id}/ack": {
        "post": _op(
            "ackAlarm",
            "Acknowledge an alarm; recorded under the name of the caller's token.",
            _ref("Alarm"),
            [
                {"name": "alarm_id", "in": "path", "required": True, "schema": {"type": "integer"}},
            ],
            {"404": "Unknown alarm."},
        )
    },
    "/apps/{app_id}/{path}": {m.lower(): _app_route(m) for m in ("GET", "POST", "PUT", "DELETE")},
}
