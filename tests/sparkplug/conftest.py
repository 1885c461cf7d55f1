"""pysparkplug (an independent Sparkplug B implementation) in a virtualenv of its own.

pysparkplug pins paho-mqtt < 2 while Plantwire uses paho-mqtt 2, so it cannot share our venv.
The venv is made once under the user's cache folder (tests/peer_venv.py; override with
PLANTWIRE_PYSPARKPLUG_VENV) and reused while its marker file says the same version.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from peer_venv import cache_dir, peer_python
from sparkplug_link import Peer
from spb_gateway import Machine

from plantwire.broker import MosquittoProcess, free_port

PYSPARKPLUG = "pysparkplug==0.6.1"


@pytest.fixture(scope="session")
def pysparkplug_python() -> Path:
    override = os.environ.get("PLANTWIRE_PYSPARKPLUG_VENV")
    venv = Path(override) if override else cache_dir() / "venv-pysparkplug-0.6.1"
    return peer_python(venv, PYSPARKPLUG)


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
