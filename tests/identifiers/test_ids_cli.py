"""`plantwire ids resolve | list | sync` against a running app with the Handle routes."""

from __future__ import annotations

import asyncio
import json

import pytest
from conftest import RunningPlatform
from upstream_node import UpstreamNode

from plantwire.cli import main


async def _run(argv: list[str]) -> int:
    return await asyncio.to_thread(main, argv)


async def test_resolve_prints_values_and_json(platform: RunningPlatform, capsys: pytest.CaptureFixture[str]) -> None:
    await platform.service.registry.ensure_device("line-1", "cnc-1", {"endpoint": "opc.tcp://h:4840"})
    async with asyncio.timeout(30):
        assert await _run(["ids", "resolve", "hdl:0.TEST/device.cnc-1", "--platform", platform.url]) == 0
        out = capsys.readouterr().out.splitlines()
        assert out[0] == "0.TEST/device.cnc-1"
        assert any(line.split()[:3] == ["1", "URL", "http://127.0.0.1:8080/api/devices/cnc-1"] for line in out)
        assert not any("opc.tcp" in line for line in out)
        assert await _run(["ids", "resolve", "0.TEST/device.cnc-1", "--json", "--token", "read-token-1",
                           "--platform", platform.url]) == 0  # fmt: skip
        body = json.loads(capsys.readouterr().out)
        assert "opc.tcp://h:4840" in [v["data"]["value"] for v in body["values"]]
        assert await _run(["ids", "resolve", "0.TEST/device.nope", "--platform", platform.url]) == 1
        assert "not found (HTTP 404, responseCode 100)" in capsys.readouterr().err


async def test_list_pages_with_the_token_from_the_environment(
    platform: RunningPlatform, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [{"machine": "cnc-1", "start": "s", "end": "e"}] * 3
    for i, values in enumerate(rows):
        await platform.service.registry.mint("part", f"cnc-1.{i}", values)
    monkeypatch.setattr("plantwire.ids_cli.PAGE_SIZE", 2)
    monkeypatch.setenv("PLANTWIRE_PLATFORM_URL", platform.url)
    async with asyncio.timeout(30):
        assert await _run(["ids", "list"]) == 1
        assert "a token is needed" in capsys.readouterr().err
        monkeypatch.setenv("PLANTWIRE_TOKEN", "read-token-1")
        assert await _run(["ids", "list", "--prefix", "0.TEST"]) == 0
    assert capsys.readouterr().out.split() == ["0.TEST/ADMIN"] + [f"0.TEST/part.cnc-1.{i}" for i in range(3)]


async def test_sync_reports_counts(
    platform: RunningPlatform, upstream: UpstreamNode, capsys: pytest.CaptureFixture[str]
) -> None:
    await platform.service.registry.mint("part", "cnc-1.1", {"machine": "cnc-1", "start": "s", "end": "e"})
    async with asyncio.timeout(30):
        assert await _run(["ids", "sync", "--platform", platform.url, "--token", "admin-token-1"]) == 0
    assert capsys.readouterr().out.strip() == "registered 2, already there 0, failed 0"
    assert set(upstream.records) == {"0.TEST/ADMIN", "0.TEST/part.cnc-1.1"}
