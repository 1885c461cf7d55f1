"""REST routes of the app layer: /api/apps (lifecycle), /api/alarms, and each app's /apps/{id}/...

Registered by `create_app` with one call, `add_app_routes(app)`; the running `AppHost` is the
runtime's `apps` (without one, /api/apps answers 503). Their models are in `web.api_models.apps`,
their rows in `web.api_operations`.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from plantwire.timeunits import to_iso, to_iso_opt
from plantwire.wire import now_us
from plantwire_platform.apps.host import AppHost, AppSlot
from plantwire_platform.store.model import AlarmRecord
from plantwire_platform.web.api_models.apps import AlarmPath, AlarmsQuery, AppPath
from plantwire_platform.web.api_models.common import NoQuery
from plantwire_platform.web.errors import ApiError
from plantwire_platform.web.query_params import validate_params
from plantwire_platform.web.responses import json_response
from plantwire_platform.web.routes_commands import user_of
from plantwire_platform.web.runtime import runtime_of

APP_ROUTE_METHODS: Final = ("GET", "POST", "PUT", "DELETE")
MAX_ALARMS: Final = 1000


def add_app_routes(app: web.Application) -> None:
    app.router.add_get("/api/apps", list_apps)
    app.router.add_post("/api/apps/{app_id}/enable", enable_app)
    app.router.add_post("/api/apps/{app_id}/disable", disable_app)
    app.router.add_post("/api/apps/{app_id}/restart", restart_app)
    app.router.add_get("/api/alarms", list_alarms)
    app.router.add_post("/api/alarms/{alarm_id}/ack", ack_alarm)
    for method in APP_ROUTE_METHODS:
        app.router.add_route(method, "/apps/{app_id}/{path:.*}", app_route)


def alarm_json(a: AlarmRecord) -> dict[str, Any]:
    return {
        "id": a.id,
        "app": a.app,
        "device": a.device,
        "tag": a.tag,
        "severity": a.severity,
        "message": a.message,
        "state": a.state,
        "raised_at": to_iso(a.raised_at),
        "cleared_at": to_iso_opt(a.cleared_at),
        "acked": a.acked,
        "acked_at": to_iso_opt(a.acked_at),
        "acked_by": a.acked_by,
    }


def _host(request: web.Request) -> AppHost:
    host = runtime_of(request).apps
    if host is None:
        raise ApiError(503, "apps_unavailable", "the app host is not running")
    return host


def _slot(request: web.Request) -> tuple[AppHost, str]:
    host = _host(request)
    app_id = validate_params({"app_id": request.match_info["app_id"]}, AppPath, "path").app_id
    if host.get(app_id) is None:
        raise ApiError(404, "unknown_app", f"app {app_id!r} is not known; GET /api/apps lists the apps")
    return host, app_id


async def list_apps(request: web.Request) -> web.Response:
    validate_params(request.query, NoQuery)
    return json_response({"apps": _host(request).apps()})


async def _lifecycle(request: web.Request, action: str) -> web.Response:
    host, app_id = _slot(request)
    slot: AppSlot = await getattr(host, action)(app_id)
    return json_response(slot.as_json())


async def enable_app(request: web.Request) -> web.Response:
    return await _lifecycle(request, "enable")


async def disable_app(request: web.Request) -> web.Response:
    return await _lifecycle(request, "disable")


async def restart_app(request: web.Request) -> web.Response:
    return await _lifecycle(request, "restart")


async def _store_call(request: web.Request, method: str, *args: Any) -> Any:
    """A store call on the API's own threads (its shutdown waits for them, before the store closes)."""
    runtime = runtime_of(request)
    return await runtime.reads.run(getattr(runtime.store, method), *args)


async def list_alarms(request: web.Request) -> web.Response:
    q = validate_params(request.query, AlarmsQuery)
    alarms = await _store_call(request, "list_alarms", q.state == "active", q.device, q.app, MAX_ALARMS)
    return json_response({"alarms": [alarm_json(a) for a in alarms]})


async def ack_alarm(request: web.Request) -> web.Response:
    alarm_id = validate_params(request.match_info, AlarmPath, "path").alarm_id
    validate_params(request.query, NoQuery)
    record = await _store_call(request, "ack_alarm", alarm_id, user_of(request), now_us())
    if record is None:
        raise ApiError(
            404, "unknown_alarm", f"alarm {alarm_id} is not known; GET /api/alarms?state=all lists them"
        )
    return json_response(alarm_json(record))


async def app_route(request: web.Request) -> web.StreamResponse:
    """Dispatch /apps/{id}/{path} to the handler the app registered with ctx.add_route."""
    host, app_id = _slot(request)
    slot = host.get(app_id)
    assert slot is not None
    path = request.match_info["path"].strip("/")
    ctx = slot.ctx
    if ctx is None or slot.status != "running":
        raise ApiError(503, "app_not_running", f"app {app_id!r} is {slot.status}")
    handler = ctx.routes.get((request.method, path))
    if handler is not None:
        return await handler(request)
    if (request.method, path) == ("GET", "metrics"):
        return json_response({"app": app_id, "counters": slot.counters.as_dict(), "metrics": ctx.metrics})
    raise ApiError(404, "not_found", f"app {app_id!r} has no route {request.method} /apps/{app_id}/{path}")
