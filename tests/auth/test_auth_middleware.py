"""The auth middleware against a real app and a real SQLite catalog: who gets in, who does not."""

from __future__ import annotations

import asyncio
import sqlite3

import aiohttp
import pytest
from auth_harness import Platform, auth_settings

from plantwire_platform.auth.auth_settings import AuthSettings
from plantwire_platform.auth.scopes import Scope
from plantwire_platform.auth.token_catalog import TokenCatalog, tokens_path
from plantwire_platform.auth.tokens import new_token

SETPOINT = {"tag": "Spindle/SpeedSetpoint", "value": 1200}
EVIL = "http://evil.example"


async def test_no_token_is_401_with_bearer_challenge(api: Platform) -> None:
    status, body, resp = await api.request("GET", "/api/things")
    assert status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert body["error"]["status"] == 401 and body["error"]["code"] == "unauthorized"
    assert api.auth.stats.auth_failures_total["missing_credentials"] == 1


@pytest.mark.parametrize(
    "header",
    [f"Bearer {new_token()}", "Bearer not-a-token", "Basic dXNlcjpwdw=="],
    ids=["unknown-token", "malformed-token", "basic-scheme"],  # the same ids in every collection
)
async def test_unknown_or_malformed_credential_is_401(api: Platform, header: str) -> None:
    status, body, resp = await api.request("GET", "/api/things", headers={"Authorization": header})
    assert status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert body["error"]["code"] == "unauthorized"


async def test_read_token_on_operate_route_is_403_and_nothing_is_done(api: Platform) -> None:
    status, body, resp = await api.request(
        "POST", "/api/devices/cnc-1/write", json=SETPOINT, headers=api.bearer(api.secrets["read"])
    )
    assert status == 403
    assert body["error"]["code"] == "insufficient_scope"
    assert "'operate'" in body["error"]["message"] and "read-token" in body["error"]["message"]
    assert 'scope="operate"' in resp.headers["WWW-Authenticate"]
    assert api.done == []


@pytest.mark.parametrize("scope", ["operate", "admin"])
async def test_operate_or_higher_writes_and_the_identity_is_the_tokens_name(
    api: Platform, scope: str
) -> None:
    headers = {**api.bearer(api.secrets[scope]), "X-Plantwire-User": "mallory"}
    status, body, _ = await api.request("POST", "/api/devices/cnc-1/write", json=SETPOINT, headers=headers)
    assert status == 200
    assert body["by"] == f"{scope}-token"  # X-Plantwire-User is ignored: the audit gets the token's name
    assert api.done == [("write", f"{scope}-token", SETPOINT)]


async def test_read_scope_reads(api: Platform) -> None:
    status, body, _ = await api.request("GET", "/api/things", headers=api.bearer(api.secrets["read"]))
    assert (status, body["by"]) == (200, "read-token")


async def test_admin_routes_and_undeclared_routes_need_admin(api: Platform) -> None:
    for path, method in (("/api/gateways/gw-1/devices/cnc-1", "DELETE"), ("/api/undeclared", "GET")):
        for scope, expected in (("read", 403), ("operate", 403), ("admin", 200)):
            status, _, _ = await api.request(method, path, headers=api.bearer(api.secrets[scope]))
            assert status == expected, (method, path, scope)
    assert api.done == [("detach", "admin-token", None)]


async def test_revoked_through_the_api_stops_at_once(api: Platform) -> None:
    secret = await api.tokens.create("short-lived", Scope.READ)
    assert (await api.request("GET", "/api/things", headers=api.bearer(secret)))[0] == 200
    status, _, _ = await api.request(
        "DELETE", "/api/tokens/short-lived", headers=api.bearer(api.secrets["admin"])
    )
    assert status == 200
    assert (await api.request("GET", "/api/things", headers=api.bearer(secret)))[0] == 401


async def test_revoked_by_another_process_stops_within_the_refresh(api: Platform) -> None:
    secret = await api.tokens.create("cli-revoked", Scope.READ)
    assert (await api.request("GET", "/api/things", headers=api.bearer(secret)))[0] == 200
    other = TokenCatalog(tokens_path(api.data_dir))  # its own connection, as the CLI has
    await asyncio.to_thread(other.revoke, "cli-revoked")
    other.close()
    async with asyncio.timeout(5):
        while (await api.request("GET", "/api/things", headers=api.bearer(secret)))[0] != 401:
            await asyncio.sleep(0.02)


async def test_rate_limit_after_n_failures_is_429_counted_and_a_valid_token_still_works(
    api: Platform,
) -> None:
    burst = api.auth.settings.failure_burst
    for _ in range(burst):
        assert (await api.request("GET", "/api/things", headers=api.bearer(new_token())))[0] == 401
    status, body, resp = await api.request("GET", "/api/things", headers=api.bearer(new_token()))
    assert status == 429
    assert body["error"]["code"] == "too_many_failures"
    assert int(resp.headers["Retry-After"]) >= 1
    stats = api.auth.stats
    assert stats.auth_failures_total["unknown_token"] == burst + 1
    assert stats.refused_total["rate_limited"] == 1
    assert stats.limited_addresses == 1
    # The operator on the same address is not locked out.
    assert (await api.request("GET", "/api/things", headers=api.bearer(api.secrets["read"])))[0] == 200


async def test_the_attack_cross_site_text_plain_post_writes_nothing(api: Platform) -> None:
    """The demo's finding: a foreign page POSTing text/plain wrote a setpoint."""
    attack = {"Origin": EVIL, "Content-Type": "text/plain"}
    status, body, _ = await api.request(
        "POST", "/api/devices/cnc-1/write", data='{"value": 1}', headers=attack
    )
    assert status == 403 and body["error"]["code"] == "origin_not_allowed"
    # Even with a valid token and no Origin, a non-JSON body is refused before anything runs.
    status, body, _ = await api.request(
        "POST",
        "/api/devices/cnc-1/write",
        data='{"value": 1}',
        headers={"Content-Type": "text/plain", **api.bearer(api.secrets["operate"])},
    )
    assert status == 415 and body["error"]["code"] == "unsupported_media_type"
    assert api.done == []
    assert api.auth.stats.refused_total["origin_not_allowed"] == 1
    assert api.auth.stats.refused_total["unsupported_media_type"] == 1


async def _session_cookie(api: Platform, scope: str = "operate") -> dict[str, str]:
    status, body, resp = await api.request(
        "POST", "/api/login", json={"token": api.secrets[scope]}, headers={"Origin": api.origin}
    )
    assert status == 200, body
    morsel = resp.cookies["plantwire_session"]
    assert morsel["httponly"] and morsel["samesite"] == "Strict" and morsel["path"] == "/"
    assert not morsel["secure"]  # plain http here; set when the request came over https
    return {"Cookie": f"plantwire_session={morsel.value}"}


async def test_cookie_session_with_a_foreign_or_missing_origin_is_403(api: Platform) -> None:
    cookie = await _session_cookie(api)
    for extra in ({"Origin": EVIL}, {}):
        status, body, _ = await api.request(
            "POST", "/api/devices/cnc-1/write", json=SETPOINT, headers={**cookie, **extra}
        )
        assert status == 403 and body["error"]["code"] == "origin_not_allowed", extra
    assert api.done == []
    status, body, _ = await api.request(
        "POST", "/api/devices/cnc-1/write", json=SETPOINT, headers={**cookie, "Origin": api.origin}
    )
    assert (status, body["by"]) == (200, "operate-token")


async def test_bodyless_delete_needs_no_content_type_but_a_delete_with_a_body_does(api: Platform) -> None:
    admin = api.bearer(api.secrets["admin"])
    path = "/api/gateways/gw-1/devices/cnc-1"
    assert (await api.request("DELETE", path, headers=admin))[0] == 200
    status, _, _ = await api.request(
        "DELETE", path, data="x", headers={**admin, "Content-Type": "text/plain"}
    )
    assert status == 415


async def test_websocket_foreign_origin_refused_token_and_session_allowed(api: Platform) -> None:
    url = api.base + "/api/stream"
    async with asyncio.timeout(10):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await api.http.ws_connect(url, origin=EVIL, headers=api.bearer(api.secrets["read"]))
        assert refused.value.status == 403
        with pytest.raises(aiohttp.WSServerHandshakeError) as anonymous:
            await api.http.ws_connect(url)
        assert anonymous.value.status == 401
        async with api.http.ws_connect(url, headers=api.bearer(api.secrets["read"])) as ws:
            assert await ws.receive_json() == {"hello": "read-token"}
        cookie = await _session_cookie(api, "read")
        with pytest.raises(aiohttp.WSServerHandshakeError) as cookie_no_origin:
            await api.http.ws_connect(url, headers=cookie)
        assert cookie_no_origin.value.status == 403
        async with api.http.ws_connect(url, headers=cookie, origin=api.origin) as ws:
            assert await ws.receive_json() == {"hello": "read-token"}


async def test_probes_are_public_metrics_and_pages_are_not(api: Platform) -> None:
    assert (await api.request("GET", "/healthz"))[0] == 200
    assert (await api.request("GET", "/metrics"))[0] == 401
    assert (await api.request("GET", "/metrics", headers=api.bearer(api.secrets["read"])))[0] == 200
    status, _, resp = await api.request("GET", "/", headers={"Accept": "text/html,*/*"})
    assert (status, resp.headers["Location"]) == (303, "/login")  # a browser: to the login page
    assert (await api.request("GET", "/"))[0] == 401


@pytest.mark.parametrize("settings", [auth_settings(metrics_public=True)])
async def test_metrics_can_be_made_public(api: Platform, settings: AuthSettings) -> None:
    assert (await api.request("GET", "/metrics"))[0] == 200
    assert (await api.request("GET", "/api/things"))[0] == 401


@pytest.mark.parametrize("settings", [auth_settings(allowed_origins=["https://plant.example"])])
async def test_configured_origins_replace_the_default(api: Platform, settings: AuthSettings) -> None:
    headers = {**api.bearer(api.secrets["operate"])}
    ok = await api.request(
        "POST", "/api/devices/c/write", json=SETPOINT, headers={**headers, "Origin": "https://plant.example"}
    )
    own = await api.request(
        "POST", "/api/devices/c/write", json=SETPOINT, headers={**headers, "Origin": api.origin}
    )
    assert (ok[0], own[0]) == (200, 403)


async def test_token_hashes_at_rest_never_the_secret(api: Platform) -> None:
    secret = api.secrets["admin"]
    raw = b"".join(p.read_bytes() for p in api.data_dir.glob("auth.sqlite*"))
    assert secret.encode() not in raw
    assert secret[3:].encode() not in raw  # nor without its prefix
    with sqlite3.connect(tokens_path(api.data_dir)) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(api_tokens)")]
        rows = conn.execute("SELECT name, digest FROM api_tokens").fetchall()
    assert columns == ["name", "scope", "digest", "created", "last_used"]
    assert all(len(digest) == 32 for _, digest in rows)
