"""Interop: pyhandle's RESTHandleClient (written for Handle.Net servers) resolves, creates, modifies
and deletes identifiers on a running aiohttp app with our routes.

pyhandle pins packages of its own, so it runs from its own virtualenv in a subprocess; the venv is
made once under the user's cache folder (tests/peer_venv.py), or taken from
PLANTWIRE_PYHANDLE_PYTHON (an interpreter that has pyhandle) when set.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from conftest import RunningPlatform
from peer_venv import cache_dir, peer_python

HERE = Path(__file__).parent
PYHANDLE = "pyhandle>=1.5,<2"


@pytest.fixture(scope="session")
def pyhandle_python() -> str:
    given = os.environ.get("PLANTWIRE_PYHANDLE_PYTHON")
    if given:
        return given
    return str(peer_python(cache_dir() / "venv-pyhandle-1", PYHANDLE))


async def test_pyhandle_resolves_and_manages_identifiers(
    platform: RunningPlatform, pyhandle_python: str
) -> None:
    async with asyncio.timeout(120):
        registry = platform.service.registry
        device = (await registry.ensure_device("line-1", "cnc-1", {"endpoint": "opc.tcp://h:4840"})).name
        proc = await asyncio.create_subprocess_exec(
            pyhandle_python,
            str(HERE / "pyhandle_session.py"),
            platform.url,
            "300:0.TEST/ADMIN",
            "admin-token-1",
            device,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await proc.communicate()
        intruder_wrote = await platform.service.catalog.get("0.TEST/part.pyhandle.2")
    assert proc.returncode == 0, stderr.decode()[-3000:]
    seen = json.loads(stdout)
    assert seen["device"]["URL"] == "http://127.0.0.1:8080/api/devices/cnc-1"
    assert seen["device"]["gateway"] == "line-1" and "endpoint" not in seen["device"]
    assert seen["device_url"] == "http://127.0.0.1:8080/api/devices/cnc-1"
    assert seen["missing"] is None
    assert seen["registered"] == "0.TEST/part.pyhandle.1"
    assert seen["second_register"] == "already exists"
    after = seen["after_modify"]
    assert (after["URL"], after["CHECKSUM"], after["machine"]) == (
        "http://127.0.0.1:8080/parts/1",
        "abc123",
        "cnc-2",
    )
    (admin,) = seen["admin"]
    assert admin["data"]["format"] == "admin" and admin["data"]["value"]["handle"] == "0.NA/0.TEST"
    assert seen["deleted"] == "0.TEST/part.pyhandle.1"
    assert seen["after_delete"] is None
    assert seen["intruder"] == "refused"
    assert intruder_wrote is None
