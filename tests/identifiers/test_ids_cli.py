"""`plantwire ids resolve | list | sync` against a running app with the Handle routes.

The command runs as its own process (`python -m plantwire ids ...`), as a user runs it."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass

from conftest import RunningPlatform
from upstream_node import UpstreamNode


@dataclass
class Ran:
    code: int
    out: str
    err: str


async def _run(argv: list[str], **env: str) -> Ran:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PLANTWIRE_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "plantwire", *argv,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**clean, **env},
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return Ran(proc.returncode, out.decode(), err.decode())


async def test_resolve_prints_values_and_json(platform: RunningPlatform) -> None:
    async with asyncio.timeout(60):
        await platform.service.registry.ensure_device("line-1", "cnc-1", {"endpoint": "opc.tcp://h:4840"})
        ran = await _run(["ids", "resolve", "hdl:0.TEST/device.cnc-1", "--platform", platform.url])
        assert ran.code == 0, ran.err
        out = ran.out.splitlines()
        assert out[0] == "0.TEST/device.cnc-1"
        assert ["1", "URL", "http://127.0.0.1:8080/api/devices/cnc-1"] in [line.split()[:3] for line in out]
        assert "opc.tcp" not in ran.out
        ran = await _run(["ids", "resolve", "0.TEST/device.cnc-1", "--json", "--token", "read-token-1",
                          "--platform", platform.url])  # fmt: skip
        assert "opc.tcp://h:4840" in [v["data"]["value"] for v in json.loads(ran.out)["values"]]
        ran = await _run(["ids", "resolve", "0.TEST/device.nope", "--platform", platform.url])
        assert ran.code == 1 and "not found (HTTP 404, responseCode 100)" in ran.err


async def test_list_pages_with_the_platform_and_token_from_the_environment(platform: RunningPlatform) -> None:
    async with asyncio.timeout(60):
        for i in range(3):
            await platform.service.registry.mint(
                "part", f"cnc-1.{i}", {"machine": "cnc-1", "start": "s", "end": "e"}
            )
        ran = await _run(["ids", "list"], PLANTWIRE_PLATFORM_URL=platform.url)
        assert ran.code == 1 and "a token is needed" in ran.err
        ran = await _run(
            ["ids", "list", "--prefix", "0.TEST", "--page-size", "2"],
            PLANTWIRE_PLATFORM_URL=platform.url,
            PLANTWIRE_TOKEN="read-token-1",
        )
    assert ran.code == 0, ran.err
    assert ran.out.split() == ["0.TEST/ADMIN"] + [f"0.TEST/part.cnc-1.{i}" for i in range(3)]


async def test_sync_reports_counts(platform: RunningPlatform, upstream: UpstreamNode) -> None:
    async with asyncio.timeout(60):
        await platform.service.registry.mint(
            "part", "cnc-1.1", {"machine": "cnc-1", "start": "s", "end": "e"}
        )
        ran = await _run(["ids", "sync", "--platform", platform.url, "--token", "admin-token-1"])
    assert ran.code == 0, ran.err
    assert ran.out.strip() == "registered 2, already there 0, failed 0"
    assert set(upstream.records) == {"0.TEST/ADMIN", "0.TEST/part.cnc-1.1"}
