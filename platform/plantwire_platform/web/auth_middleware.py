"""Identity at the edge: one middleware decides, before any handler runs, who a request is and
whether it may do what it asks.

Each route declares the scope it needs next to its definition, with `requires(scope)` (or
`public` for the few routes anyone may use); a route that declares nothing needs ``admin``: deny
by default. Routes defined elsewhere can be declared in one table with `declare_routes`.

Credentials: ``Authorization: Bearer <token>`` (REST and the WebSocket), else the dashboard's
session cookie. The identity lands on the request under `IDENTITY_KEY`; the audit records its
name. ``X-Plantwire-User`` means nothing any more.

Browser safety, checked before any credential is looked at:
- POST, PUT and PATCH need ``Content-Type: application/json`` (415 otherwise); so does a DELETE
  with a body. A cross-site page can only send such a request after a CORS preflight, which this
  server never grants.
- A state-changing request or WebSocket upgrade carrying an ``Origin`` must come from an allowed
  origin (403); one authenticated by the session cookie must carry an ``Origin`` at all.

Answers: 401 with ``WWW-Authenticate: Bearer`` (no or unknown credential; a browser asking for a
dashboard page is sent to /login instead), 403 (scope, origin), 415, and 429 with Retry-After once
an address has failed too often. Bodies use the API's one error shape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal, TypeVar

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from plantwire.logs import get_logger
from plantwire_platform.auth.api_auth import ApiAuth
from plantwire_platform.auth.auth_stats import FailureReason, RefusalReason
from plantwire_platform.auth.scopes import Scope
from plantwire_platform.auth.tokens import Identity, looks_like_token, token_digest
from plantwire_platform.web.errors import error_response

log = get_logger(__name__)

AUTH_KEY: Final = web.AppKey("api_auth", ApiAuth)


@dataclass(frozen=True, slots=True)
class Credential:
    """How the request proved its identity, and the digest of the token behind it."""

    via: Literal["token", "session"]
    token_digest: bytes


IDENTITY_KEY: Final = web.RequestKey("identity", Identity)
CREDENTIAL_KEY: Final = web.RequestKey("credential", Credential)

SESSION_COOKIE: Final = "plantwire_session"
LOGIN_PATH: Final = "/login"
METRICS_PATH: Final = "/metrics"
CHANGING_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
API_PREFIXES: Final = ("/api/", "/apps/")
WWW_AUTHENTICATE: Final = 'Bearer realm="plantwire"'

ACCESS_ATTR: Final = "__plantwire_access__"


@dataclass(frozen=True, slots=True)
class Access:
    """What a route needs: a scope, or None for public; optionally different per HTTP method."""

    default: Scope | None
    by_method: Mapping[str, Scope | None]

    def needed(self, method: str) -> Scope | None:
        if method == "HEAD":
            method = "GET"
        return self.by_method.get(method, self.default)


H = TypeVar("H")


def _declare(handler: H, access: Access) -> H:
    target = getattr(handler, "__func__", handler)  # a bound method: declare its function
    existing = getattr(target, ACCESS_ATTR, None)
    if existing is not None and existing != access:
        raise TypeError(f"{handler!r} declares its access twice, differently: {existing} and {access}")
    setattr(target, ACCESS_ATTR, access)
    return handler


def requires(scope: Scope, **by_method: Scope) -> Callable[[H], H]:
    """Declare the scope a handler needs: ``@requires(Scope.OPERATE)``; per method for a handler
    serving several: ``@requires(Scope.OPERATE, GET=Scope.READ)``."""
    access = Access(scope, {m.upper(): s for m, s in by_method.items()})
    return lambda handler: _declare(handler, access)


def public(handler: H) -> H:
    """Declare a handler anyone may use, without a token (probes, the login page)."""
    return _declare(handler, Access(None, {}))


RouteTable = Mapping[tuple[str, str], Scope | None]
"""(method, canonical path) -> scope, or None for public; e.g. ("POST", "/api/devices/{device}/write")."""


def declare_routes(app: web.Application, table: RouteTable) -> list[tuple[str, str]]:
    """Declare the access of routes registered elsewhere; returns the routes still undeclared."""
    per_handler: dict[int, tuple[object, dict[str, Scope | None]]] = {}
    undeclared: list[tuple[str, str]] = []
    for route in app.router.routes():
        if route.resource is None:
            continue
        key = (route.method, route.resource.canonical)
        if key in table:
            per_handler.setdefault(id(route.handler), (route.handler, {}))[1][route.method] = table[key]
        elif route.method != "HEAD" and _access(route.handler) is None:
            undeclared.append(key)
    for handler, methods in per_handler.values():
        _declare(handler, Access(Scope.ADMIN, methods))  # any method the table does not name: admin
    return undeclared


def route_scopes(app: web.Application) -> dict[tuple[str, str], Scope | None]:
    """What each (method, canonical path) of `app` needs, as the middleware will decide it
    (undeclared: admin). For the OpenAPI document; call it once the routes are declared."""
    scopes: dict[tuple[str, str], Scope | None] = {}
    for route in app.router.routes():
        if route.resource is None or route.method == "HEAD":
            continue
        access = _access(route.handler)
        scopes[(route.method, route.resource.canonical)] = (
            Scope.ADMIN if access is None else access.needed(route.method)
        )
    return scopes


def _access(handler: object) -> Access | None:
    return getattr(getattr(handler, "__func__", handler), ACCESS_ATTR, None)


# --- the middleware ----------------------------------------------------------------------------


def _needed(request: web.Request, auth: ApiAuth) -> Scope | None:
    if request.path == METRICS_PATH and auth.settings.metrics_public:
        return None
    access = _access(request.match_info.handler)
    if access is not None:
        return access.needed(request.method)
    resource = request.match_info.route.resource
    if resource is not None and resource.canonical not in _warned_undeclared:
        _warned_undeclared.add(resource.canonical)
        log.warning("route_access_undeclared", path=resource.canonical, needs=Scope.ADMIN.value)
    return Scope.ADMIN


_warned_undeclared: set[str] = set()  # bounded by the number of routes


def _is_upgrade(request: web.Request) -> bool:
    return request.headers.get(hdrs.UPGRADE, "").lower() == "websocket"


def _refuse(auth: ApiAuth, status: int, code: RefusalReason, message: str) -> web.Response:
    auth.stats.refused_total[code] += 1
    return error_response(status, code, message)


def _origin_check(request: web.Request, auth: ApiAuth) -> web.Response | None:
    """Refuse what a foreign page could make a browser send: a foreign Origin."""
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is not None and origin not in auth.origins:
        if auth.log_throttle.allow(origin[:200]):
            log.warning("origin_refused", origin=origin[:200], method=request.method, path=request.path)
        return _refuse(auth, 403, "origin_not_allowed", f"requests from {origin[:200]} are not allowed")
    return None


def _json_check(request: web.Request, auth: ApiAuth, via: str | None = None) -> web.Response | None:
    """A state-changing request needs a JSON body (a form or text/plain is what a foreign page can
    send without a CORS preflight); checked after identity, so a request without one is told 401.
    A body-less request with a bearer token needs none: no browser attaches that token by itself."""
    if request.method in CHANGING_METHODS and request.content_type != "application/json":
        if request.body_exists or (request.method != "DELETE" and via != "token"):
            return _refuse(
                auth,
                415,
                "unsupported_media_type",
                f"{request.method} needs a JSON body with Content-Type: application/json",
            )
    return None


async def _credential(
    request: web.Request, auth: ApiAuth
) -> tuple[Identity, Credential] | FailureReason | None:
    header = request.headers.get(hdrs.AUTHORIZATION)
    if header is not None:
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            return "malformed_credentials"
        secret = secret.strip()
        if not looks_like_token(secret):
            return "unknown_token"
        digest = token_digest(secret)
        identity = auth.tokens.identity_for(digest)
        if identity is None:
            return "unknown_token"
        return identity, Credential("token", digest)
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id is not None:
        session = await auth.sessions.get(session_id)
        identity = None if session is None else auth.tokens.identity_for(session.token_digest)
        if session is None or identity is None:
            return "unknown_session"
        return identity, Credential("session", session.token_digest)
    return None


async def _session_identity(request: web.Request, auth: ApiAuth) -> Identity | None:
    """The identity behind a valid session cookie, if the request has one (public routes only)."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id is None or hdrs.AUTHORIZATION in request.headers:
        return None
    return await auth.by_session(session_id)


def optional_identity(request: web.Request) -> Identity | None:
    """On a public route: the logged-in browser's identity, or None (anyone)."""
    return request.get(IDENTITY_KEY)


def unauthenticated(request: web.Request, auth: ApiAuth, reason: FailureReason) -> web.Response:
    """401 (or 429 once the address is limited) for a failed attempt; nothing about the secret."""
    verdict = auth.limiter.failed(request.remote or "unknown", reason, request.path)
    if verdict.limited:
        resp = error_response(
            429,
            "too_many_failures",
            f"too many failed attempts from this address; retry in {verdict.retry_after_s} s",
            {hdrs.RETRY_AFTER: str(verdict.retry_after_s)},
        )
    else:
        message = {
            "malformed_credentials": "send Authorization: Bearer <token>",
            "unknown_token": "the token is not valid (unknown or revoked)",
            "unknown_session": "the session has ended; log in again at /login",
            "bad_login_link": "the login link is not valid (used, expired or unknown)",
        }.get(reason, "a token is needed")
        resp = error_response(401, "unauthorized", message, {hdrs.WWW_AUTHENTICATE: WWW_AUTHENTICATE})
    if reason == "unknown_session":
        resp.del_cookie(SESSION_COOKIE, path="/")
    return resp


def _missing(request: web.Request, auth: ApiAuth) -> web.StreamResponse:
    auth.stats.auth_failures_total["missing_credentials"] += 1
    if (
        request.method in ("GET", "HEAD")
        and not request.path.startswith(API_PREFIXES)
        and "text/html" in request.headers.get(hdrs.ACCEPT, "")
    ):
        raise web.HTTPSeeOther(LOGIN_PATH)  # a browser opening a dashboard page: log in first
    return error_response(
        401,
        "unauthorized",
        "this endpoint needs a token: send Authorization: Bearer <token> (`plantwire token create`)",
        {hdrs.WWW_AUTHENTICATE: WWW_AUTHENTICATE},
    )


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    auth = request.app[AUTH_KEY]
    if isinstance(request.match_info.http_exception, web.HTTPMethodNotAllowed):
        raise request.match_info.http_exception  # a method the path does not have: 405, nothing runs
    browser_sensitive = request.method in CHANGING_METHODS or _is_upgrade(request)
    if browser_sensitive and (refused := _origin_check(request, auth)) is not None:
        return refused
    needed = _needed(request, auth)
    if needed is None:
        identity = await _session_identity(request, auth) if request.method in ("GET", "HEAD") else None
        if identity is not None:
            request[IDENTITY_KEY] = identity  # a public route may show a logged-in browser more
        return _json_check(request, auth) or await handler(request)
    found = await _credential(request, auth)
    if found is None:
        return _missing(request, auth)
    if isinstance(found, str):
        return unauthenticated(request, auth, found)
    identity, credential = found
    if browser_sensitive and credential.via == "session" and hdrs.ORIGIN not in request.headers:
        return _refuse(auth, 403, "origin_not_allowed", "a request with the session cookie needs an Origin")
    if not identity.scope.allows(needed):
        auth.stats.refused_total["insufficient_scope"] += 1
        log.info("scope_refused", name=identity.name, needs=needed.value, path=request.path)
        return error_response(
            403,
            "insufficient_scope",
            f"this endpoint needs the {needed.value!r} scope; token {identity.name!r} has "
            f"{identity.scope.value!r}",
            {hdrs.WWW_AUTHENTICATE: f'{WWW_AUTHENTICATE}, error="insufficient_scope", scope="{needed}"'},
        )
    if (refused := _json_check(request, auth, credential.via)) is not None:
        return refused
    request[IDENTITY_KEY] = identity
    request[CREDENTIAL_KEY] = credential
    return await handler(request)


def identity_of(request: web.Request) -> Identity:
    """The identity the middleware established (a handler of a non-public route always has one)."""
    return request[IDENTITY_KEY]


def install(app: web.Application, auth: ApiAuth, tables: Iterable[RouteTable] = ()) -> None:
    """Put `auth` on the app and its middleware last in line (inside the error middleware); declare
    the routes of `tables`. Call it after every route is added and before the app starts."""
    app[AUTH_KEY] = auth
    app.middlewares.append(auth_middleware)
    for table in tables:
        declare_routes(app, table)
