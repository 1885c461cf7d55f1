"""The Handle.Net REST API shape over Plantwire's identifiers (a thin web skin on `identifiers/`).

    GET    /api/handles?prefix=P[&page=N&pageSize=M]       list (token: read)
    GET    /api/handles/{prefix}/{suffix}[?type=T&index=I]  resolve (public values without a token)
    GET    /api/handles/{prefix}/{suffix}/qr.svg            QR code of the resolution URL (public)
    PUT    /api/handles/{prefix}/{suffix}[?overwrite=false] create/replace (token: admin);
                                     with ?index=...: add/replace only the values sent
    DELETE /api/handles/{prefix}/{suffix}                   delete (token: admin)
    POST   /api/identifiers/sync                            register at the second-level node (admin)

Bodies are `{"responseCode": n, "handle": ..., ...}` with the Handle server's HTTP status per code.
Credentials: `Authorization: Bearer <API token>`, or `Authorization: Basic` with user
`<admin_index>:<prefix>/ADMIN` (e.g. `300:0.TEST/ADMIN`) and the API token as password, which is what
Handle clients such as pyhandle send. `ROUTE_SCOPES` declares each route's scope for the auth room.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote

import orjson
from aiohttp import web

from plantwire.logs import get_logger
from plantwire_platform.identifiers.catalog import HandleExists, HandleMissing, ValueExists
from plantwire_platform.identifiers.handle import (
    Handle,
    HandleSyntaxError,
    scope_allows,
    split_handle,
    values_from_json,
)
from plantwire_platform.identifiers.qr import qr_svg
from plantwire_platform.identifiers.resolver import RELAY_HEADER, NotResponsible, UpstreamError
from plantwire_platform.identifiers.service import IdentifierService
from plantwire_platform.identifiers.upstream_sync import SyncError
from plantwire_platform.web.auth_middleware import optional_identity

log = get_logger("plantwire.web.handles")

TokenVerifier = Callable[[str], Awaitable[str | None]]
"""API token -> its scope ('read', 'operate', 'admin'), or None for an unknown token."""


@dataclass(slots=True)
class HandleRouteCounters:
    refused_tokens: int = 0
    """Credentials that named no known token (a wrong or guessed token)."""
    denied: int = 0
    """Known tokens whose scope was too low for the request."""


IDENTIFIERS: Final = web.AppKey("identifiers", IdentifierService)
COUNTERS: Final = web.AppKey("identifier_route_counters", HandleRouteCounters)
VERIFIER: Final[web.AppKey[TokenVerifier]] = web.AppKey("identifier_token_verifier")

HANDLE_PATH: Final = "/api/handles/{prefix}/{suffix:.+}"
QR_PATH: Final = "/api/handles/{prefix}/{suffix:[^/]+}/qr.svg"
ROUTE_SCOPES: Final[dict[tuple[str, str], str]] = {
    ("GET", "/api/handles"): "read",
    ("GET", HANDLE_PATH): "public",
    ("GET", QR_PATH): "public",
    ("PUT", HANDLE_PATH): "admin",
    ("DELETE", HANDLE_PATH): "admin",
    ("POST", "/api/identifiers/sync"): "admin",
}
"""Scope per route. 'public' routes check a token themselves only to show restricted values."""

HTTP_STATUS: Final[dict[int, int]] = {1: 200, 2: 500, 4: 400, 100: 404, 101: 409, 102: 400, 200: 200}
HTTP_STATUS.update({201: 409, 202: 400, 301: 400, 402: 401, 400: 403, 401: 403, 403: 403})
MAX_PAGE_SIZE: Final = 10_000
MAX_PAGE: Final = 1_000_000_000


def hs_json(code: int, status: int | None = None, **fields: Any) -> web.Response:
    """A Handle.Net REST answer: `responseCode` first, HTTP status mapped from it unless given."""
    body = orjson.dumps({"responseCode": code, **fields})
    return web.Response(
        body=body, status=status or HTTP_STATUS.get(code, 500), content_type="application/json"
    )


def credential_from_header(header: str, admin_user: str) -> str | None:
    """The API token in an Authorization header: `Bearer <token>`, or `Basic` as the prefix admin
    `admin_user` (e.g. '300:0.TEST/ADMIN') with the token as password; None otherwise."""
    kind, _, rest = header.partition(" ")
    if kind.lower() == "bearer" and rest.strip():
        return rest.strip()
    if kind.lower() == "basic":
        try:
            pair = base64.b64decode(rest.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        # The user is `index:handle`, percent-encoded by Handle clients (300%3A0.TEST%2FADMIN);
        # accept it unencoded too, where its own ':' would otherwise end the user part.
        if pair.startswith(admin_user + ":"):
            return pair[len(admin_user) + 1 :] or None
        user, sep, password = pair.partition(":")
        if sep and unquote(user) == admin_user and password:
            return password
    return None


async def granted_scope(request: web.Request) -> str | None:
    """The scope of the request's token (None: no token, or one the verifier does not know)."""
    s = request.app[IDENTIFIERS].settings
    token = credential_from_header(
        request.headers.get("Authorization", ""), f"{s.admin_index}:{s.admin_handle}"
    )
    if token is None:
        return None
    scope = await request.app[VERIFIER](token)
    if scope is None:
        request.app[COUNTERS].refused_tokens += 1
        log.warning("identifier_token_refused", method=request.method, path=request.path, peer=request.remote)
    return scope


async def _require(request: web.Request, needed: str, handle: str) -> web.Response | None:
    scope = await granted_scope(request)
    if scope is None:
        return hs_json(402, handle=handle, message="Authentication needed")
    if not scope_allows(scope, needed):
        request.app[COUNTERS].denied += 1
        log.warning("identifier_request_denied", method=request.method, path=request.path, scope=scope)
        return hs_json(400, handle=handle, message=f"Insufficient permissions: needs scope {needed}")
    return None


def _name(request: web.Request) -> str:
    return f"{request.match_info['prefix']}/{request.match_info['suffix']}"


async def resolve_handle(request: web.Request) -> web.Response:
    name = _name(request)
    try:
        types = frozenset(request.query.getall("type", []))
        indices = frozenset(int(i) for i in request.query.getall("index", []))
        resolution = await request.app[IDENTIFIERS].resolver.resolve(
            name, RELAY_HEADER not in request.headers
        )
    except (ValueError, HandleSyntaxError):
        return hs_json(102, handle=name, message="Invalid handle or filter")
    except NotResponsible:
        return hs_json(301, handle=name, message="That prefix doesn't live here")
    except UpstreamError as err:
        return hs_json(2, status=502, handle=name, message=str(err))
    if resolution is None:
        return hs_json(100, handle=name)
    if "Authorization" in request.headers:
        granted = await granted_scope(request)
    else:  # the dashboard's own session (cookie), if any
        identity = optional_identity(request)
        granted = None if identity is None else identity.scope.value
    values = resolution.values_json(granted, types, indices)
    if not values and (types or indices):
        return hs_json(200, handle=name, values=[])
    return hs_json(1, handle=name, values=values)


async def handle_qr(request: web.Request) -> web.Response:
    service = request.app[IDENTIFIERS]
    name = _name(request)
    try:
        found = await service.resolver.resolve(name)
    except (HandleSyntaxError, UpstreamError, NotResponsible):
        found = None
    if found is None:
        return hs_json(100, handle=name)
    url = f"{service.settings.public_url.rstrip('/')}/api/handles/{name}"
    return web.Response(body=qr_svg(url), content_type="image/svg+xml")


async def list_handles(request: web.Request) -> web.Response:
    service = request.app[IDENTIFIERS]
    prefix = request.query.get("prefix", service.settings.prefix)
    denied = await _require(request, "read", prefix)
    if denied is not None:
        return denied
    try:
        page = int(request.query.get("page", "0"))
        size = int(request.query.get("pageSize", "1000"))
    except ValueError:
        return hs_json(4, prefix=prefix, message="page and pageSize must be integers")
    if not 0 <= page <= MAX_PAGE or not 0 < size <= MAX_PAGE_SIZE:
        return hs_json(
            4, prefix=prefix, message=f"0 <= page <= {MAX_PAGE} and 0 < pageSize <= {MAX_PAGE_SIZE}"
        )
    if prefix != service.settings.prefix:
        return hs_json(301, prefix=prefix, message="That prefix doesn't live here")
    total, names = await service.catalog.list_page(prefix, page, size)
    return hs_json(1, prefix=prefix, totalCount=str(total), page=page, pageSize=size, handles=names)


async def put_handle(request: web.Request) -> web.Response:
    service = request.app[IDENTIFIERS]
    name = _name(request)
    denied = await _require(request, "admin", name)
    if denied is not None:
        return denied
    prefix, suffix = request.match_info["prefix"], request.match_info["suffix"]
    if prefix != service.settings.prefix:
        return hs_json(301, handle=name, message="That prefix doesn't live here")
    try:
        split_handle(name)
        body = orjson.loads(await request.read())
        values = values_from_json(body.get("values") if isinstance(body, dict) else None, time.time())
    except (orjson.JSONDecodeError, HandleSyntaxError) as err:
        return hs_json(202 if isinstance(err, HandleSyntaxError) else 4, handle=name, message=str(err))
    overwrite = request.query.get("overwrite", "true").lower() != "false"
    if "index" in request.query:  # change only the values sent, as Handle servers do
        try:
            await service.catalog.merge(name, values, time.time(), overwrite)
        except HandleMissing:
            return hs_json(100, handle=name)
        except ValueExists as err:
            return hs_json(201, handle=name, message=str(err))
        log.info("identifier_values_put", handle=name, indices=[v.index for v in values])
        return hs_json(1, handle=name)
    try:
        created = await service.catalog.put(Handle(prefix, suffix, values), time.time(), overwrite)
    except HandleExists:
        return hs_json(101, handle=name)
    log.info("identifier_put", handle=name, created=created)
    return hs_json(1, status=201 if created else 200, handle=name)


async def delete_handle(request: web.Request) -> web.Response:
    service = request.app[IDENTIFIERS]
    name = _name(request)
    denied = await _require(request, "admin", name)
    if denied is not None:
        return denied
    if request.match_info["prefix"] != service.settings.prefix:
        return hs_json(301, handle=name, message="That prefix doesn't live here")
    if not await service.catalog.delete(name):
        return hs_json(100, handle=name)
    log.info("identifier_deleted", handle=name)
    return hs_json(1, handle=name)


async def sync_upstream(request: web.Request) -> web.Response:
    service = request.app[IDENTIFIERS]
    denied = await _require(request, "admin", service.settings.prefix)
    if denied is not None:
        return denied
    try:
        report = await service.sync()
    except SyncError as err:
        return hs_json(2, status=502, message=str(err))
    return hs_json(1, prefix=service.settings.prefix, **report.as_dict())


def add_handle_routes(app: web.Application, service: IdentifierService, verify: TokenVerifier) -> None:
    """Mount the routes; `service` from `identifiers.service.open_identifiers`."""
    app[IDENTIFIERS] = service
    app[VERIFIER] = verify
    app[COUNTERS] = HandleRouteCounters()
    r = app.router
    r.add_get("/api/handles", list_handles)
    r.add_get(QR_PATH, handle_qr)
    r.add_get(HANDLE_PATH, resolve_handle)
    r.add_put(HANDLE_PATH, put_handle)
    r.add_delete(HANDLE_PATH, delete_handle)
    r.add_post("/api/identifiers/sync", sync_upstream)
