"""The simulator's record keeps every line, even when it is closed in the middle of a periodic write."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import BinaryIO

import orjson
import pytest

from plantwire_sims import recording
from plantwire_sims.recording import JsonlRecorder


async def test_closing_during_a_periodic_write_loses_no_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writing = threading.Event()
    real_write = recording._write_and_flush

    def slow_write(file: BinaryIO, data: bytes) -> None:
        writing.set()
        time.sleep(0.3)  # a slow disk: close() arrives while this write is under way
        real_write(file, data)

    monkeypatch.setattr(recording, "_write_and_flush", slow_write)
    monkeypatch.setattr(recording, "FLUSH_INTERVAL_S", 0.05)
    path = tmp_path / "record.jsonl"
    async with asyncio.timeout(10):
        recorder = JsonlRecorder(path)
        await recorder.__aenter__()
        for i in range(100):
            recorder.add("m1", "T", i, float(i))
        await asyncio.to_thread(writing.wait)  # the periodic flush has taken all 100 lines
        await recorder.close()  # nothing left to write: it closes the file at once
    stored = [orjson.loads(line)["ts"] for line in path.read_bytes().splitlines()]
    assert stored == list(range(100))
