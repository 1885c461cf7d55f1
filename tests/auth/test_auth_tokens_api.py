"""The token REST endpoints (admin scope), and what never leaks: secrets in logs, listings, bodies."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest
import structlog
from auth_harness import Platform

from plantwire_platform.auth import failure_limiter, token_catalog, token_service
from plantwire_platform.auth.tokens import TOKEN_PATTERN, token_digest
from plantwire_platform.web import auth_middleware, token_routes


async def test_create_list_revoke_over_the_api(api: Platform) -> None:
    admin = api.bearer(api.secrets["admin"])
    status, made, resp = await api.request(
        "POST", "/api/tokens", json={"name": "grafana", "scope": "read"}, headers=admin
    )
    assert status == 201 and (made["name"], made["scope"]) == ("grafana", "read")
    assert TOKEN_PATTERN.fullmatch(made["token"])
    assert resp.headers["Cache-Control"] == "no-store"
    assert (await api.request("GET", "/api/things", headers=api.bearer(made["token"])))[0] == 200

    status, listing, resp = await api.request("GET", "/api/tokens", headers=admin)
    text = await resp.text()
    assert status == 200
    assert {t["name"]: t["scope"] for t in listing["tokens"]} == {
        "read-token": "read",
        "operate-token": "operate",
        "admin-token": "admin",
        "grafana": "read",
    }
    assert set(listing["tokens"][0]) == {"name", "scope", "created", "last_used"}
    assert not any(s in text for s in [made["token"], *api.secrets.values()])

    duplicate = await api.request(
        "POST", "/api/tokens", json={"name": "grafana", "scope": "read"}, headers=admin
    )
    assert duplicate[0] == 409 and duplicate[1]["error"]["code"] == "duplicate_token"
    bad_scope = await api.request("POST", "/api/tokens", json={"name": "x", "scope": "root"}, headers=admin)
    assert bad_scope[0] == 400 and "read, operate, admin" in bad_scope[1]["error"]["message"]
    bad_name = await api.request("POST", "/api/tokens", json={"name": "a b", "scope": "read"}, headers=admin)
    assert bad_name[0] == 400

    assert (await api.request("DELETE", "/api/tokens/grafana", headers=admin))[0] == 200
    assert (await api.request("DELETE", "/api/tokens/grafana", headers=admin))[0] == 404
    assert (await api.request("GET", "/api/things", headers=api.bearer(made["token"])))[0] == 401


async def test_token_routes_need_admin(api: Platform) -> None:
    for scope in ("read", "operate"):
        headers = api.bearer(api.secrets[scope])
        assert (await api.request("GET", "/api/tokens", headers=headers))[0] == 403
        made = await api.request(
            "POST", "/api/tokens", json={"name": "sneaky", "scope": "admin"}, headers=headers
        )
        assert made[0] == 403
    assert "sneaky" not in [t.name for t in await api.tokens.list()]


async def test_last_used_is_recorded_in_batches(api: Platform) -> None:
    await api.request("GET", "/api/things", headers=api.bearer(api.secrets["read"]))
    stored = {t.name: t.last_used for t in api.tokens.catalog.list()}
    assert stored["read-token"] is None  # not written per request
    listed = {t.name: t.last_used for t in await api.tokens.list()}  # a listing flushes the batch
    assert listed["read-token"] is not None and listed["operate-token"] is None


@pytest.fixture
def captured_logs(caplog: pytest.LogCaptureFixture) -> Iterator[io.StringIO]:
    """Every structlog event of the auth modules rendered as JSON, plus the standard library's logs."""
    out = io.StringIO()
    logger = structlog.wrap_logger(
        structlog.PrintLogger(out),
        processors=[structlog.processors.add_log_level, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
    )
    modules = (auth_middleware, token_routes, failure_limiter, token_catalog, token_service)
    saved = [m.log for m in modules]
    for m in modules:
        m.log = logger  # type: ignore[attr-defined]
    caplog.set_level(logging.DEBUG)
    yield out
    for m, old in zip(modules, saved, strict=True):
        m.log = old  # type: ignore[attr-defined]


async def test_secrets_never_reach_the_logs(
    api: Platform, captured_logs: io.StringIO, caplog: pytest.LogCaptureFixture
) -> None:
    admin = api.bearer(api.secrets["admin"])
    _, made, _ = await api.request(
        "POST", "/api/tokens", json={"name": "logged", "scope": "read"}, headers=admin
    )
    wrong = "pw_" + "A" * 43
    for _ in range(api.auth.settings.failure_burst + 2):  # failures, then the rate limit
        await api.request("GET", "/api/things?token=x", headers=api.bearer(wrong))
    await api.request("GET", "/api/tokens", headers=api.bearer(api.secrets["read"]))  # scope refusal
    await api.request(
        "POST", "/api/devices/c/write", json={}, headers={"Origin": "http://evil.example", **admin}
    )
    await api.request("DELETE", "/api/tokens/logged", headers=admin)

    text = captured_logs.getvalue() + "\n".join(r.getMessage() for r in caplog.records)
    events = [json.loads(line)["event"] for line in captured_logs.getvalue().splitlines()]
    for expected in ("token_created", "auth_failed", "auth_rate_limited", "scope_refused", "origin_refused"):
        assert expected in events  # the capture works: these events were logged ...
    for secret in [made["token"], wrong, *api.secrets.values()]:  # ... and no secret is in them
        assert secret not in text
        assert secret[3:] not in text
        assert token_digest(secret).hex() not in text
    assert not re.search(r"pw_[A-Za-z0-9_-]{20,}", text)
