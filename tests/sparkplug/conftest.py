"""pysparkplug (an independent Sparkplug B implementation) in a virtualenv of its own.

pysparkplug pins paho-mqtt < 2 while Plantwire uses paho-mqtt 2, so it cannot share our venv.
The venv is made once, outside the repo tree, under the user's cache folder (override with
PLANTWIRE_PYSPARKPLUG_VENV), and reused while its marker file says the same version.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from sparkplug_link import Peer
from spb_gateway import Machine

from plantwire.broker import MosquittoProcess, free_port

PYSPARKPLUG = "pysparkplug==0.6.1"


def _venv_dir() -> Path:
    override = os.environ.get("PLANTWIRE_PYSPARKPLUG_VENV")
    if override:
        return Path(override)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "plantwire" / "venv-pysparkplug-0.6.1"


@pytest.fixture(scope="session")
def pysparkplug_python() -> Path:
    venv = _venv_dir()
    marker = venv / ".plantwire-installed"
    python = venv / "bin" / "python"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs at once build it once
        if not (marker.exists() and marker.read_text() == PYSPARKPLUG and python.exists()):
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
            pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", PYSPARKPLUG]
            done = subprocess.run(pip, capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                pytest.fail(f"installing {PYSPARKPLUG} failed:\n{done.stdout}\n{done.stderr}")
            marker.write_text(PYSPARKPLUG)
    return python


@pytest.fixture
def start_peer(pysparkplug_python: Path) -> Iterator[Callable[..., Peer]]:
    """Starts helper scripts from peers/ with pysparkplug's interpreter; ends them after the test."""
    started: list[Peer] = []

    def start(script: str, *args: str) -> Peer:
        peer = Peer(pysparkplug_python, script, *args)
        started.append(peer)
        return peer

    yield start
    for peer in started:
        peer.close()


@pytest.fixture
async def machine() -> AsyncIterator[Machine]:
    """A small real OPC UA machine (spb_gateway.Machine) on a free port."""
    m = Machine(port=free_port())
    async with asyncio.timeout(60):
        await m.start()
    yield m
    async with asyncio.timeout(20):
        await m.stop()


@pytest.fixture
def broker_port(mosquitto: MosquittoProcess) -> int:
    return mosquitto.port
