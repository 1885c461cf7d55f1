"""The scope of every route the platform had before auth, in one table for `declare_routes`.

Routes written from now on declare their scope with `@requires(...)` / `@public` next to their
definition; this table covers the ones defined before, until their modules carry the decorators
themselves (then their rows go). A route in neither place needs admin (deny by default), and a
test checks that the platform's app leaves no route undeclared.
"""

from __future__ import annotations

from typing import Final

from plantwire_platform.auth.scopes import Scope
from plantwire_platform.web.auth_middleware import RouteTable

READ, OPERATE, ADMIN = Scope.READ, Scope.OPERATE, Scope.ADMIN
PUBLIC: Final = None

PLATFORM_ROUTE_ACCESS: Final[RouteTable] = {
    # reading
    ("GET", "/"): READ,
    ("GET", "/static/{path}"): READ,
    ("GET", "/api/health"): READ,
    ("GET", "/api/openapi.json"): READ,
    ("GET", "/api/devices"): READ,
    ("GET", "/api/devices/{device}"): READ,
    ("GET", "/api/devices/{device}/tags"): READ,
    ("GET", "/api/devices/{device}/browse"): READ,
    ("GET", "/api/latest"): READ,
    ("GET", "/api/series"): READ,
    ("GET", "/api/stream"): READ,
    ("GET", "/api/gateways"): READ,
    ("GET", "/api/audit"): READ,
    ("GET", "/api/apps"): READ,
    ("GET", "/api/alarms"): READ,
    ("GET", "/apps/{app_id}/{path}"): READ,
    # operating the machines
    ("POST", "/api/devices/{device}/write"): OPERATE,
    ("POST", "/api/devices/{device}/call"): OPERATE,
    ("POST", "/api/alarms/{alarm_id}/ack"): OPERATE,
    ("POST", "/apps/{app_id}/{path}"): OPERATE,
    ("PUT", "/apps/{app_id}/{path}"): OPERATE,
    ("DELETE", "/apps/{app_id}/{path}"): OPERATE,
    # changing the platform
    ("POST", "/api/gateways/{gateway}/devices"): ADMIN,
    ("DELETE", "/api/gateways/{gateway}/devices/{device}"): ADMIN,
    ("POST", "/api/devices/{device}/move"): ADMIN,
    ("POST", "/api/apps/{app_id}/enable"): ADMIN,
    ("POST", "/api/apps/{app_id}/disable"): ADMIN,
    ("POST", "/api/apps/{app_id}/restart"): ADMIN,
    # identifiers: the handle routes check their scope themselves, so that Handle clients may use
    # Basic auth (web/handle_routes.py ROUTE_SCOPES: listing needs read, changes admin)
    ("GET", "/api/handles"): PUBLIC,
    ("GET", "/api/handles/{prefix}/{suffix}"): PUBLIC,
    ("GET", "/api/handles/{prefix}/{suffix}/qr.svg"): PUBLIC,
    ("PUT", "/api/handles/{prefix}/{suffix}"): PUBLIC,
    ("DELETE", "/api/handles/{prefix}/{suffix}"): PUBLIC,
    ("POST", "/api/identifiers/sync"): PUBLIC,
}
