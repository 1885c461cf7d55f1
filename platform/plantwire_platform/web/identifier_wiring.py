"""The identifier routes on the platform's app, their tokens checked by the auth room.

The handle routes are declared public to the auth middleware (web/route_access.py): they check
the scope themselves, because Handle clients authenticate with `Authorization: Basic` (user
`300:<prefix>/ADMIN`, the API token as password), which the middleware does not take. The token
itself is checked by the same token catalog the middleware uses (`AsyncTokenCatalog.verify`), found
on the app when a request comes (the middleware is installed after the routes are added). On an
app without auth every token is unknown: restricted values stay hidden and writes are refused.
A runtime without the identifier room still has the routes (documented in the OpenAPI document);
they answer 503.
"""

from __future__ import annotations

from aiohttp import web

from plantwire_platform.identifiers.running import PlatformIdentifiers
from plantwire_platform.web.auth_middleware import AUTH_KEY
from plantwire_platform.web.handle_routes import ROUTE_SCOPES, TokenVerifier, add_handle_routes, hs_json


def api_token_verifier(app: web.Application) -> TokenVerifier:
    """`verify(token) -> 'read' | 'operate' | 'admin' | None` over the app's API tokens."""

    async def verify(secret: str) -> str | None:
        auth = app.get(AUTH_KEY)
        if auth is None:
            return None
        identity = auth.by_token(secret)
        if identity is None:
            auth.stats.auth_failures_total["unknown_token"] += 1
            return None
        return identity.scope.value

    return verify


def add_identifier_routes(app: web.Application, identifiers: PlatformIdentifiers | None) -> None:
    if identifiers is not None:
        add_handle_routes(app, identifiers.service, api_token_verifier(app))
        return
    for method, path in ROUTE_SCOPES:
        app.router.add_route(method, path, _not_running)


async def _not_running(request: web.Request) -> web.Response:
    return hs_json(2, status=503, message="identifier resolution is not running on this platform")
