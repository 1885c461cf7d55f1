"""The dashboard's way in: the login page, its one-time links, the session cookie, logout.

- ``GET /login``: the page (public); it posts a pasted token to ``POST /api/login``.
- ``GET /login?once=<nonce>``: a one-time link (the demo prints one); it becomes a session and
  redirects to ``/``. A used, expired or unknown nonce counts as a failed attempt.
- ``POST /api/login`` ``{"token": ...}``: sets the session cookie (public; JSON and Origin rules apply).
- ``POST /api/logout``: ends the session.  ``GET /api/whoami``: the caller's name and scope.
- ``POST /api/login-links`` (admin): a one-time link standing for the caller's own token.

The cookie is HttpOnly, SameSite=Strict, Path=/, and Secure when the request came over https.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from aiohttp import hdrs, web

from plantwire.logs import get_logger
from plantwire_platform.auth.scopes import Scope
from plantwire_platform.web.auth_middleware import (
    AUTH_KEY,
    CREDENTIAL_KEY,
    LOGIN_PATH,
    SESSION_COOKIE,
    identity_of,
    public,
    requires,
    unauthenticated,
)
from plantwire_platform.web.errors import ApiError
from plantwire_platform.web.page import PAGE_CSP
from plantwire_platform.web.request_body import json_object
from plantwire_platform.web.responses import json_response

log = get_logger(__name__)

ASSETS_DIR: Final = (Path(__file__).parent / "login_assets").resolve()
ASSETS: Final = frozenset({"login.js", "login.css"})
NO_STORE: Final = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def add_login_routes(app: web.Application) -> None:
    app.router.add_get(LOGIN_PATH, login_page)
    app.router.add_get(LOGIN_PATH + "/assets/{name}", login_asset)
    app.router.add_post("/api/login", log_in)
    app.router.add_post("/api/logout", log_out)
    app.router.add_get("/api/whoami", whoami)
    app.router.add_post("/api/login-links", create_login_link)


def _with_session(request: web.Request, resp: web.StreamResponse, session_id: str) -> web.StreamResponse:
    resp.set_cookie(
        SESSION_COOKIE,
        session_id,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.secure,
        max_age=int(request.app[AUTH_KEY].settings.session_ttl_s),
    )
    return resp


@public
async def login_page(request: web.Request) -> web.StreamResponse:
    nonce = request.query.get("once")
    if nonce is None:
        return web.FileResponse(
            ASSETS_DIR / "login.html", headers={**NO_STORE, "Content-Security-Policy": PAGE_CSP}
        )
    auth = request.app[AUTH_KEY]
    opened = await auth.redeem_link(nonce)
    if opened is None:
        failed = unauthenticated(request, auth, "bad_login_link")
        if failed.status == 429:
            return failed
        return web.Response(status=303, headers={**NO_STORE, hdrs.LOCATION: LOGIN_PATH + "?link=invalid"})
    session_id, identity = opened
    log.info("session_opened", name=identity.name, via="login_link")
    resp = web.Response(status=303, headers={**NO_STORE, hdrs.LOCATION: "/"})
    return _with_session(request, resp, session_id)


@public
async def login_asset(request: web.Request) -> web.FileResponse:
    name = request.match_info["name"]
    if name not in ASSETS:
        raise web.HTTPNotFound(text=f"no file {request.path}")
    return web.FileResponse(ASSETS_DIR / name, headers={"Cache-Control": "no-cache", **NO_STORE})


@public
async def log_in(request: web.Request) -> web.StreamResponse:
    body = await json_object(request, ("token",), ("token",))
    auth = request.app[AUTH_KEY]
    secret = body["token"]
    opened = await auth.log_in(secret) if isinstance(secret, str) else None
    if opened is None:
        return unauthenticated(request, auth, "unknown_token")
    session_id, identity = opened
    log.info("session_opened", name=identity.name, via="token")
    resp = json_response({"name": identity.name, "scope": identity.scope.value}, headers=NO_STORE)
    return _with_session(request, resp, session_id)


@requires(Scope.READ)
async def log_out(request: web.Request) -> web.StreamResponse:
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id is not None:
        await request.app[AUTH_KEY].sessions.close(session_id)
    resp = web.Response(status=204, headers=NO_STORE)
    resp.del_cookie(SESSION_COOKIE, path="/")
    return resp


@requires(Scope.READ)
async def whoami(request: web.Request) -> web.Response:
    identity = identity_of(request)
    via = request[CREDENTIAL_KEY].via
    return json_response({"name": identity.name, "scope": identity.scope.value, "via": via})


@requires(Scope.ADMIN)
async def create_login_link(request: web.Request) -> web.Response:
    auth = request.app[AUTH_KEY]
    credential = request[CREDENTIAL_KEY]
    if credential.via != "token":
        raise ApiError(403, "token_required", "login links are made with a token, not from a session")
    nonce = await auth.link_for_digest(credential.token_digest)
    return json_response(
        {"path": f"{LOGIN_PATH}?once={nonce}", "expires_in_s": auth.settings.login_link_ttl_s},
        status=201,
        headers=NO_STORE,
    )
