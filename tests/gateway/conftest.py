"""Fixtures for the gateway tests: a real OPC UA machine and an MQTT collector on the session broker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from gwtest_machine import MachineServer
from gwtest_node_server import NodeServer, node_server
from gwtest_support import Collector, collecting

from plantwire.broker import MosquittoProcess, free_port


@pytest.fixture
async def machine() -> AsyncIterator[MachineServer]:
    server = MachineServer(port=free_port())
    async with asyncio.timeout(60):  # a loaded 2-core machine takes long to build an address space
        await server.start()
    yield server
    async with asyncio.timeout(20):
        await server.stop()


@pytest.fixture
def collector(mosquitto: MosquittoProcess, unique_id: str) -> Iterator[Collector]:
    with collecting(mosquitto, unique_id, f"collector-{unique_id}") as c:
        yield c


@pytest.fixture(scope="module")
def node_data_server() -> Iterator[NodeServer]:
    """tests/opcua_interop/data_server.js (node-opcua) with operation limits of 20."""
    with node_server("data_server.js", "20") as server:
        yield server
