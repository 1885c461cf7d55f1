"""A flaky link and a stallable device for the stall tests and bench/link_freeze.py.

`FreezingProxy` forwards TCP between the gateway and a device and can freeze: it stops reading
in both directions, so bytes pile up in the kernel's buffers and neither side hears anything, as
with a frozen switch. `SimProcess` is a `plantwire sim` process whose JSONL record is the ground
truth; SIGSTOP/SIGCONT stall it like a CPU-starved or debugger-stopped device.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from plantwire.broker import free_port, wait_for_port

_CHUNK = 65536


class FreezingProxy:
    """127.0.0.1:`port` -> 127.0.0.1:`target`; `freeze(s)` holds all traffic for `s` seconds."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = free_port()
        self._open = asyncio.Event()
        self._open.set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.connections = 0
        self._writers: list[asyncio.StreamWriter] = []

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}"

    async def __aenter__(self) -> FreezingProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def freeze(self, seconds: float) -> None:
        self._open.clear()
        try:
            await asyncio.sleep(seconds)
        finally:
            self._open.set()

    async def drop_connections(self) -> None:
        """Reset every forwarded connection (both sides see the TCP connection close)."""
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return
        self._writers += [writer, up_writer]
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pump(src, dst))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while True:
                await self._open.wait()
                data = await src.read(_CHUNK)
                if not data:
                    break
                await self._open.wait()
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                dst.close()


@dataclass
class SimProcess:
    """One `plantwire sim --profile meter` machine with a record; stall it with `pause()`."""

    name: str
    work: Path
    tags: int = 10
    rate: float = 50.0
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def record(self) -> Path:
        return self.work / f"{self.name}.jsonl"

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}"

    @property
    def root(self) -> str:
        return f"ns=2;s={self.name}"

    def start(self) -> None:
        argv = [sys.executable, "-m", "plantwire", "sim", "--profile", "meter", "--name", self.name,
                "--port", str(self.port), "--tags", str(self.tags), "--rate", str(self.rate),
                "--record", str(self.record)]  # fmt: skip
        log = (self.work / f"{self.name}.log").open("ab")
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log)
        try:
            wait_for_port("127.0.0.1", self.port, timeout=90)
        except TimeoutError:
            self.stop()  # never leave a process behind
            raise

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """SIGSTOP for the duration of the block, then SIGCONT."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def produced(self) -> dict[tuple[str, int], object]:
        """The record: (tag, source ts in µs) -> value."""
        out: dict[tuple[str, int], object] = {}
        if self.record.exists():
            for line in self.record.read_text().splitlines():
                r = json.loads(line)
                out[(r["tag"], r["ts"])] = r["v"]
        return out
