"""Interop: pyhandle's RESTHandleClient (written for Handle.Net servers) resolves, creates, modifies
and deletes identifiers on a running aiohttp app with our routes.

pyhandle pins packages of its own, so it runs from its own virtualenv in a subprocess; the venv is
made once per test session under pytest's temporary folder (outside the repo), or taken from
PLANTWIRE_PYHANDLE_PYTHON (an interpreter that has pyhandle) when set.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import RunningPlatform

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def pyhandle_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    given = os.environ.get("PLANTWIRE_PYHANDLE_PYTHON")
    if given:
        return given
    venv = tmp_path_factory.mktemp("pyhandle-venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = str(venv / "bin" / "python")
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "pyhandle>=1.5,<2"],
        check=True,
        timeout=600,
    )
    return python


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
