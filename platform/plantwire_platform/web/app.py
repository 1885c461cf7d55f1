"""The platform's HTTP application: every route of the API, the stream and the page on one runtime.

`create_app(runtime)` is all the web layer needs; the caller owns the runtime's services and
closes them after the app (the app's own cleanup only waits for its store threads).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
from aiohttp import web

import plantwire
from plantwire_platform.web.errors import error_middleware
from plantwire_platform.web.health import add_health_routes
from plantwire_platform.web.identifier_wiring import add_identifier_routes
from plantwire_platform.web.openapi import openapi_document
from plantwire_platform.web.page import add_page_routes
from plantwire_platform.web.routes_apps import add_app_routes
from plantwire_platform.web.routes_commands import add_command_routes
from plantwire_platform.web.routes_data import add_data_routes
from plantwire_platform.web.runtime import RUNTIME_KEY, PlatformRuntime
from plantwire_platform.web.stream import add_stream_routes


def create_app(runtime: PlatformRuntime) -> web.Application:
    app = web.Application(middlewares=[error_middleware])
    app[RUNTIME_KEY] = runtime
    app.cleanup_ctx.append(_read_pool)
    add_data_routes(app)
    add_openapi_route(app, orjson.dumps(openapi_document(plantwire.__version__)))
    add_health_routes(app)
    add_command_routes(app)
    add_stream_routes(app)
    add_page_routes(app)
    add_app_routes(app)
    add_identifier_routes(app, runtime.identifiers)
    return app


async def _read_pool(app: web.Application) -> AsyncIterator[None]:
    yield
    app[RUNTIME_KEY].close_own()


def add_openapi_route(app: web.Application, body: bytes) -> None:
    async def openapi_json(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app.router.add_get("/api/openapi.json", openapi_json)
