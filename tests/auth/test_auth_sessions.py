"""The dashboard's login: the page, the session cookie, one-time links, logout, revocation."""

from __future__ import annotations

from auth_harness import Platform

from plantwire_platform.auth.scopes import Scope
from plantwire_platform.web.page import PAGE_CSP


def _cookie(resp_cookie_value: str) -> dict[str, str]:
    return {"Cookie": f"plantwire_session={resp_cookie_value}"}


async def test_login_page_is_public_with_a_strict_csp(api: Platform) -> None:
    status, body, resp = await api.request("GET", "/login")
    assert status == 200 and "<form" in body
    assert resp.headers["Content-Security-Policy"] == PAGE_CSP
    assert resp.headers["Cache-Control"] == "no-store"
    for asset in ("login.js", "login.css"):
        assert (await api.request("GET", f"/login/assets/{asset}"))[0] == 200
    assert (await api.request("GET", "/login/assets/..%2Fauth_middleware.py"))[0] == 404


async def test_login_with_a_token_opens_a_session_and_logout_ends_it(api: Platform) -> None:
    status, body, resp = await api.request("POST", "/api/login", json={"token": api.secrets["read"]})
    assert (status, body) == (200, {"name": "read-token", "scope": "read"})
    cookie = _cookie(resp.cookies["plantwire_session"].value)
    status, body, _ = await api.request("GET", "/api/whoami", headers=cookie)
    assert (status, body) == (200, {"name": "read-token", "scope": "read", "via": "session"})
    logout = await api.request("POST", "/api/logout", json={}, headers={**cookie, "Origin": api.origin})
    assert logout[0] == 204
    status, body, resp = await api.request("GET", "/api/things", headers=cookie)
    assert status == 401 and "log in again" in body["error"]["message"]
    assert resp.cookies["plantwire_session"].value == ""  # the dead cookie is cleared


async def test_a_bad_token_does_not_log_in_and_counts(api: Platform) -> None:
    status, _, resp = await api.request("POST", "/api/login", json={"token": "pw_" + "x" * 43})
    assert status == 401 and "plantwire_session" not in resp.cookies
    assert api.auth.stats.auth_failures_total["unknown_token"] == 1


async def test_a_foreign_page_cannot_log_the_browser_in(api: Platform) -> None:
    status, body, _ = await api.request(
        "POST", "/api/login", json={"token": api.secrets["read"]}, headers={"Origin": "http://evil.example"}
    )
    assert status == 403 and body["error"]["code"] == "origin_not_allowed"


async def test_revoking_the_token_ends_its_sessions(api: Platform) -> None:
    secret = await api.tokens.create("kiosk", Scope.READ)
    _, _, resp = await api.request("POST", "/api/login", json={"token": secret})
    cookie = _cookie(resp.cookies["plantwire_session"].value)
    assert (await api.request("GET", "/api/things", headers=cookie))[0] == 200
    await api.tokens.revoke("kiosk")
    assert (await api.request("GET", "/api/things", headers=cookie))[0] == 401


async def test_one_time_login_link_works_once_and_never_carries_the_token(api: Platform) -> None:
    admin = api.bearer(api.secrets["admin"])
    status, body, _ = await api.request("POST", "/api/login-links", json={}, headers=admin)
    assert status == 201
    path = body["path"]
    assert path.startswith("/login?once=") and api.secrets["admin"] not in path
    status, _, resp = await api.request("GET", path)
    assert (status, resp.headers["Location"]) == (303, "/")
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    cookie = _cookie(resp.cookies["plantwire_session"].value)
    status, me, _ = await api.request("GET", "/api/whoami", headers=cookie)
    assert (status, me["name"]) == (200, "admin-token")
    status, _, resp = await api.request("GET", path)  # a second use
    assert (status, resp.headers["Location"]) == (303, "/login?link=invalid")
    assert "plantwire_session" not in resp.cookies
    assert api.auth.stats.auth_failures_total["bad_login_link"] == 1


async def test_login_links_need_admin(api: Platform) -> None:
    status, _, _ = await api.request(
        "POST", "/api/login-links", json={}, headers=api.bearer(api.secrets["operate"])
    )
    assert status == 403
