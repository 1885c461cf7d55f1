"""REST endpoints for API tokens (admin scope): list, create (the secret is answered once), revoke.

- ``GET /api/tokens``: ``{"tokens": [{"name", "scope", "created", "last_used"}]}``, never secrets.
- ``POST /api/tokens`` ``{"name": ..., "scope": "read"|"operate"|"admin"}``: 201 with ``"token"``.
- ``DELETE /api/tokens/{name}``: 200; the token stops working at once.

The catalog is the one the middleware uses: ``request.app[AUTH_KEY].tokens``.
"""

from __future__ import annotations

from aiohttp import web

from plantwire.logs import get_logger
from plantwire_platform.auth.scopes import Scope, UnknownScope, parse_scope
from plantwire_platform.auth.token_catalog import DuplicateToken, UnknownToken
from plantwire_platform.auth.tokens import InvalidTokenName
from plantwire_platform.web.auth_middleware import AUTH_KEY, identity_of, requires
from plantwire_platform.web.errors import ApiError
from plantwire_platform.web.login_routes import NO_STORE
from plantwire_platform.web.request_body import json_object
from plantwire_platform.web.responses import json_response

log = get_logger(__name__)


def add_token_routes(app: web.Application) -> None:
    app.router.add_get("/api/tokens", list_tokens)
    app.router.add_post("/api/tokens", create_token)
    app.router.add_delete("/api/tokens/{name}", revoke_token)


@requires(Scope.ADMIN)
async def list_tokens(request: web.Request) -> web.Response:
    tokens = await request.app[AUTH_KEY].tokens.list()
    return json_response({"tokens": [t.as_json() for t in tokens]})


@requires(Scope.ADMIN)
async def create_token(request: web.Request) -> web.Response:
    body = await json_object(request, ("name", "scope"), ("name", "scope"))
    name, scope_text = body["name"], body["scope"]
    if not isinstance(name, str) or not isinstance(scope_text, str):
        raise ApiError(400, "bad_request", "'name' and 'scope' must be strings")
    try:
        scope = parse_scope(scope_text)
        secret = await request.app[AUTH_KEY].tokens.create(name, scope)
    except (UnknownScope, InvalidTokenName) as err:
        raise ApiError(400, "bad_request", str(err)) from None
    except DuplicateToken as err:
        raise ApiError(409, "duplicate_token", str(err)) from None
    log.info("token_created_via_api", name=name, scope=scope.value, by=identity_of(request).name)
    return json_response({"name": name, "scope": scope.value, "token": secret}, status=201, headers=NO_STORE)


@requires(Scope.ADMIN)
async def revoke_token(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    try:
        await request.app[AUTH_KEY].tokens.revoke(name)
    except UnknownToken as err:
        raise ApiError(404, "unknown_token", str(err)) from None
    log.info("token_revoked_via_api", name=name, by=identity_of(request).name)
    return json_response({"revoked": name})
