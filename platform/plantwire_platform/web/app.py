"""The platform's HTTP application: every route of the API, the stream and the page on one runtime.

`create_app(runtime)` is all the web layer needs (`secure_app(app, auth)` then puts the auth
middleware at its edge); the caller owns the runtime's services and
closes them after the app (the app's own cleanup only waits for its store threads).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from aiohttp import web

import plantwire
from plantwire_platform.auth.api_auth import ApiAuth
from plantwire_platform.web.auth_middleware import AUTH_KEY, install, route_scopes
from plantwire_platform.web.errors import error_middleware
from plantwire_platform.web.health import add_health_routes
from plantwire_platform.web.identifier_wiring import add_identifier_routes
from plantwire_platform.web.login_routes import add_login_routes
from plantwire_platform.web.openapi import openapi_document
from plantwire_platform.web.openapi_security import add_security
from plantwire_platform.web.page import add_page_routes
from plantwire_platform.web.route_access import PLATFORM_ROUTE_ACCESS
from plantwire_platform.web.routes_apps import add_app_routes
from plantwire_platform.web.routes_commands import add_command_routes
from plantwire_platform.web.routes_data import add_data_routes
from plantwire_platform.web.routes_ownership import add_ownership_routes
from plantwire_platform.web.runtime import RUNTIME_KEY, PlatformRuntime
from plantwire_platform.web.stream import add_stream_routes
from plantwire_platform.web.token_routes import add_token_routes


def create_app(runtime: PlatformRuntime) -> web.Application:
    app = web.Application(middlewares=[error_middleware])
    app[RUNTIME_KEY] = runtime
    app.cleanup_ctx.append(_read_pool)
    add_data_routes(app)
    add_openapi_route(app, openapi_document(plantwire.__version__))
    add_health_routes(app)
    add_command_routes(app)
    add_ownership_routes(app)
    add_stream_routes(app)
    add_page_routes(app)
    add_app_routes(app)
    add_identifier_routes(app, runtime.identifiers)
    return app


def secure_app(app: web.Application, auth: ApiAuth) -> None:
    """Put identity at the app's edge: the login and token routes, then the auth middleware with
    every route's scope declared (the decorators, else `PLATFORM_ROUTE_ACCESS`; else admin)."""
    add_login_routes(app)
    add_token_routes(app)
    install(app, auth, [PLATFORM_ROUTE_ACCESS])


async def _read_pool(app: web.Application) -> AsyncIterator[None]:
    yield
    app[RUNTIME_KEY].close_own()


def add_openapi_route(app: web.Application, doc: dict[str, Any]) -> None:
    """Serve `doc`; on an app with auth installed, with each operation's scope (rendered once, at
    the first request, when every route's access is declared)."""
    rendered: list[bytes] = []

    async def openapi_json(request: web.Request) -> web.Response:
        if not rendered:
            auth_installed = AUTH_KEY in request.app
            rendered.append(
                orjson.dumps(add_security(doc, route_scopes(request.app)) if auth_installed else doc)
            )
        return web.Response(body=rendered[0], content_type="application/json")

    app.router.add_get("/api/openapi.json", openapi_json)
