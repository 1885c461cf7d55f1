"""The dashboard: one HTML page at ``/`` and its static files under ``/static/``.

The page is plain HTML, CSS and JavaScript shipped inside the package (no build step); it reads the
REST API and the live stream, and routes with the URL's hash (``/#/devices/cnc-1``), so `/` is the
only page route. Files are served with ``Cache-Control: no-cache``: the browser revalidates with
the ETag, so an upgraded platform never runs yesterday's script.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from aiohttp import web

STATIC_DIR: Final = (Path(__file__).parent.parent / "static").resolve()
INDEX: Final = STATIC_DIR / "index.html"

_HEADERS: Final = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
PAGE_CSP: Final = (
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
"""Only our own files: no inline script, nothing fetched from elsewhere."""
PAGE_ROUTES: Final = ("/", "/static/{path}")
"""The page's routes: not API endpoints, so the OpenAPI document leaves them out."""


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(INDEX, headers={**_HEADERS, "Content-Security-Policy": PAGE_CSP})


async def static_file(request: web.Request) -> web.FileResponse:
    name = request.match_info["path"]
    if "\x00" in name:  # no file name holds a NUL (and the OS would refuse it with a ValueError)
        raise web.HTTPNotFound(text=f"no file {request.path}; the dashboard is at /")
    path = (STATIC_DIR / name).resolve()
    if not path.is_relative_to(STATIC_DIR) or not path.is_file():
        raise web.HTTPNotFound(text=f"no file {request.path}; the dashboard is at /")
    return web.FileResponse(path, headers=_HEADERS)


def add_page_routes(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_get("/static/{path:.+}", static_file)
