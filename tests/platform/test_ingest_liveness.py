"""A crashed long-lived ingest thread makes the platform unready: /readyz 503, /api/health degraded.

Real Mosquitto, real SQLite: the store's write raises an error that is not a `StoreError` (a bug,
not an outage), which kills the writer thread; the API must say so instead of reporting ok while
nothing is stored any more.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from test_ingest import Publisher, publisher, running_ingest, samples, settings_for

from plantwire.broker import MosquittoProcess
from plantwire_platform.store.model import IncomingBatch, WriteResult
from plantwire_platform.store.sqlite import SqliteStore
from plantwire_platform.web.app import create_app
from plantwire_platform.web.runtime import PlatformRuntime

__all__ = ["publisher"]  # the fixture, shared


class BuggyStore(SqliteStore):
    """A real SQLite store whose batch write has a bug once `broken` is set."""

    broken = False

    def write_batches(self, batches: Sequence[IncomingBatch]) -> WriteResult:
        if self.broken:
            raise ZeroDivisionError("a bug in the store backend")
        return super().write_batches(batches)


async def _get(client: TestClient[Any, Any], path: str) -> tuple[int, dict[str, Any]]:
    resp = await client.get(path)
    return resp.status, await resp.json()


async def test_a_dead_writer_makes_the_platform_unready(
    mosquitto: MosquittoProcess, publisher: Publisher, tmp_path: Path, unique_id: str
) -> None:
    store = BuggyStore.open(tmp_path / "p.sqlite")
    assert isinstance(store, BuggyStore)
    settings = settings_for(mosquitto, f"p-{unique_id}", tmp_path / "p.sqlite")
    try:
        async with asyncio.timeout(30), running_ingest(settings, store) as ingest:
            runtime = PlatformRuntime(store, ingest.stats, ingest=ingest)
            async with TestClient(TestServer(create_app(runtime))) as client:
                await publisher.data(unique_id, "dev", 1, samples("T", 1_000_000, 3))
                while store.count_points() < 3:
                    await asyncio.sleep(0.02)
                assert (await _get(client, "/readyz"))[0] == 200
                assert (await _get(client, "/api/health"))[1]["status"] == "ok"

                store.broken = True
                await publisher.data(unique_id, "dev", 2, samples("T", 2_000_000, 3))
                while ingest.stats().writer_alive:
                    await asyncio.sleep(0.02)
                status, body = await _get(client, "/readyz")
                assert (status, body["status"]) == (503, "not_ready")
                assert body["checks"]["ingest_running"] is False
                assert body["checks"]["mqtt_connected"] is True  # only the writer died
                health = (await _get(client, "/api/health"))[1]
                assert health["status"] == "degraded" and health["ingest"]["writer_alive"] is False
                metrics = await (await client.get("/metrics")).text()
                assert 'plantwire_platform_ready{check="ingest_running"} 0' in metrics
    finally:
        store.close()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # paho's thread dies
async def test_a_dead_reader_makes_the_platform_unready(
    mosquitto: MosquittoProcess,
    publisher: Publisher,
    tmp_path: Path,
    unique_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = SqliteStore.open(tmp_path / "p.sqlite")
    settings = settings_for(mosquitto, f"p-{unique_id}", tmp_path / "p.sqlite")
    try:
        async with asyncio.timeout(30), running_ingest(settings, store) as ingest:
            runtime = PlatformRuntime(store, ingest.stats, ingest=ingest)
            async with TestClient(TestServer(create_app(runtime))) as client:
                assert (await _get(client, "/readyz"))[0] == 200

                def bug(msg: object) -> None:
                    raise ZeroDivisionError("a bug while taking a message")

                monkeypatch.setattr(ingest, "_take", bug)  # the reader's own step, made to fail
                await publisher.data(unique_id, "dev", 1, samples("T", 1_000_000, 1))
                while ingest.stats().reader_alive:
                    await asyncio.sleep(0.02)
                status, body = await _get(client, "/readyz")
                assert status == 503 and body["checks"]["ingest_running"] is False
                assert (await _get(client, "/api/health"))[1]["status"] == "degraded"
    finally:
        store.close()
