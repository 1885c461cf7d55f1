"""The auth room's parts on their own: scopes, limiter, sessions, settings, admin token file, route
declarations."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from aiohttp import web
from pydantic import ValidationError

from plantwire_platform.auth.admin_token import ADMIN_TOKEN_FILE, ensure_admin_token
from plantwire_platform.auth.auth_settings import AuthSettings
from plantwire_platform.auth.auth_stats import AuthStats
from plantwire_platform.auth.failure_limiter import FailureLimiter
from plantwire_platform.auth.log_throttle import LogThrottle
from plantwire_platform.auth.scopes import Scope, UnknownScope, parse_scope
from plantwire_platform.auth.sessions import SessionStore
from plantwire_platform.auth.token_catalog import DuplicateToken, TokenCatalog, UnknownToken, tokens_path
from plantwire_platform.auth.tokens import InvalidTokenName
from plantwire_platform.web.auth_middleware import Access, declare_routes, requires


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_scopes_are_ordered_admin_over_operate_over_read() -> None:
    assert Scope.ADMIN.allows(Scope.OPERATE) and Scope.ADMIN.allows(Scope.READ)
    assert Scope.OPERATE.allows(Scope.READ) and not Scope.OPERATE.allows(Scope.ADMIN)
    assert not Scope.READ.allows(Scope.OPERATE)
    assert parse_scope("operate") is Scope.OPERATE
    with pytest.raises(UnknownScope, match="read, operate, admin"):
        parse_scope("root")


def test_limiter_refills_and_forgets_the_least_recent_address() -> None:
    clock, stats = Clock(), AuthStats()
    limiter = FailureLimiter(burst=2, refill_s=10.0, max_addresses=3, stats=stats, clock=clock)
    assert [limiter.failed("10.0.0.1", "unknown_token", "/").limited for _ in range(3)] == [
        False,
        False,
        True,
    ]
    verdict = limiter.failed("10.0.0.1", "unknown_token", "/")
    assert verdict.limited and verdict.retry_after_s == 10
    clock.now += 10  # one attempt back
    assert not limiter.failed("10.0.0.1", "unknown_token", "/").limited
    assert limiter.failed("10.0.0.1", "unknown_token", "/").limited
    for i in range(10):
        limiter.failed(f"10.0.1.{i}", "unknown_token", "/")
    assert len(limiter) == 3  # bounded memory
    assert stats.auth_failures_total["unknown_token"] == 16
    assert stats.limited_addresses == 0  # the limited address was forgotten


def test_sessions_expire_and_stay_bounded() -> None:
    clock = Clock()
    sessions = SessionStore(ttl_s=60, max_entries=2, clock=clock)
    a = sessions.open(b"a" * 32)
    assert sessions.get(a) is not None
    clock.now += 61
    assert sessions.get(a) is None
    ids = [sessions.open(bytes([i]) * 32) for i in range(3)]
    assert len(sessions) == 2 and sessions.get(ids[0]) is None and sessions.get(ids[2]) is not None
    sessions.close(ids[2])
    assert sessions.get(ids[2]) is None


def test_settings_forbid_unknown_keys_and_check_origins() -> None:
    with pytest.raises(ValidationError):
        AuthSettings(allow_everything=True)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="not an origin"):
        AuthSettings(allowed_origins=["https://plant.example/path"])
    assert AuthSettings(allowed_origins=["HTTPS://Plant.Example"]).allowed_origins == [
        "https://plant.example"
    ]
    own = AuthSettings().origins("127.0.0.1", 8080)
    assert {"http://127.0.0.1:8080", "http://localhost:8080"} <= own
    assert "http://evil.example" not in own
    assert AuthSettings().origins("10.1.2.3", 80) >= {"http://10.1.2.3:80", "http://10.1.2.3"}


def test_catalog_refuses_duplicates_bad_names_and_unknown_revokes(tmp_path: Path) -> None:
    catalog = TokenCatalog(tokens_path(tmp_path))
    secret = catalog.create("ci", Scope.OPERATE)
    assert catalog.verify(secret) is not None and catalog.verify(secret + "x") is None
    with pytest.raises(DuplicateToken):
        catalog.create("ci", Scope.READ)
    with pytest.raises(InvalidTokenName):
        catalog.create("../etc", Scope.READ)
    with pytest.raises(UnknownToken):
        catalog.revoke("nobody")
    assert stat.S_IMODE(tokens_path(tmp_path).stat().st_mode) == 0o600
    catalog.close()


def test_ensure_admin_token_writes_0600_keeps_and_replaces(tmp_path: Path) -> None:
    catalog = TokenCatalog(tokens_path(tmp_path))
    path = tmp_path / ADMIN_TOKEN_FILE
    secret = ensure_admin_token(catalog, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == secret
    identity = catalog.verify(secret)
    assert identity is not None and (identity.name, identity.scope) == ("demo-admin", Scope.ADMIN)
    assert ensure_admin_token(catalog, path) == secret  # kept while valid
    path.unlink()
    replaced = ensure_admin_token(catalog, path)  # the only copy was lost: a new secret, same name
    assert replaced != secret and catalog.verify(secret) is None and catalog.verify(replaced) is not None
    assert [t.name for t in catalog.list()] == ["demo-admin"]
    catalog.close()


async def _h(request: web.Request) -> web.Response:
    return web.Response()


async def _dispatch(request: web.Request) -> web.Response:
    return web.Response()


@requires(Scope.READ)
async def _declared(request: web.Request) -> web.Response:
    return web.Response()


async def _forgotten(request: web.Request) -> web.Response:
    return web.Response()


def test_declare_routes_by_table_and_reports_the_undeclared() -> None:
    app = web.Application()
    app.router.add_get("/api/latest", _h)
    for method in ("GET", "POST"):
        app.router.add_route(method, "/apps/{app_id}/{path:.*}", _dispatch)
    app.router.add_get("/api/declared", _declared)
    app.router.add_get("/api/forgotten", _forgotten)
    undeclared = declare_routes(
        app,
        {
            ("GET", "/api/latest"): Scope.READ,
            ("GET", "/apps/{app_id}/{path}"): Scope.READ,
            ("POST", "/apps/{app_id}/{path}"): Scope.OPERATE,
        },
    )
    assert undeclared == [("GET", "/api/forgotten")]
    access: Access = _dispatch.__plantwire_access__  # type: ignore[attr-defined]
    assert (access.needed("GET"), access.needed("HEAD"), access.needed("POST")) == (
        Scope.READ,
        Scope.READ,
        Scope.OPERATE,
    )
    assert access.needed("DELETE") is Scope.ADMIN  # a method the table does not name: deny by default
    with pytest.raises(TypeError, match="twice"):
        requires(Scope.ADMIN)(_h)


def test_log_throttle_lets_one_line_per_key_and_interval_through() -> None:
    clock = Clock()
    throttle = LogThrottle(interval_s=60, max_keys=2, clock=clock)
    assert [throttle.allow("http://evil.example") for _ in range(3)] == [True, False, False]
    assert throttle.suppressed == 2
    clock.now += 60
    assert throttle.allow("http://evil.example")
