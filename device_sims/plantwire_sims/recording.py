"""The record of every value a simulator wrote: the ground truth that zero-loss tests compare against."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import BinaryIO, Self

import orjson

from plantwire.logs import get_logger

log = get_logger(__name__)

FLUSH_INTERVAL_S = 1.0


class JsonlRecorder:
    """Appends `{"device", "tag", "ts", "v"}` lines to a file; one recorder may serve many machines.

    Lines are buffered in memory and written by a thread once a second and at close, so the tick loop
    never blocks on the disk. The buffer holds at most about a second of values.
    """

    def __init__(self, path: Path):
        self.path = path
        self._buffer: list[bytes] = []
        self._file: BinaryIO | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> Self:
        self._file = await asyncio.to_thread(self.path.open, "ab")
        self._flusher = asyncio.create_task(self._flush_every_second(), name="record-flush")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def add(self, device: str, tag: str, ts_us: int, value: object) -> None:
        self._buffer.append(orjson.dumps({"device": device, "tag": tag, "ts": ts_us, "v": value}) + b"\n")

    async def flush(self) -> None:
        async with self._lock:
            if not self._buffer or self._file is None:
                return
            data = b"".join(self._buffer)
            self._buffer.clear()
            await asyncio.to_thread(_write_and_flush, self._file, data)

    async def close(self) -> None:
        flusher, self._flusher = self._flusher, None
        if flusher is not None:
            # Asked to end, not cancelled: a cancel during its write let the file close under the
            # write still running in its thread, and that second of lines was lost.
            self._closing.set()
            await asyncio.wait([flusher])  # re-raises only if close() itself is cancelled
            if not flusher.cancelled() and flusher.exception() is not None:
                log.error("record_flush_failed", path=str(self.path), error=repr(flusher.exception()))
        if self._file is not None:
            await self.flush()
            file, self._file = self._file, None
            await asyncio.to_thread(file.close)

    async def _flush_every_second(self) -> None:
        while not self._closing.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), FLUSH_INTERVAL_S)
            await self.flush()


def _write_and_flush(file: BinaryIO, data: bytes) -> None:
    file.write(data)
    file.flush()
