"""What the web layer serves: the platform's services in one typed object under one AppKey.

The service builds a `PlatformRuntime` and hands it to `create_app`; every route module reads it
with `runtime_of(request)`. Tests build their own (a store and a status function are enough).
Store calls block (SQLite), so handlers run them on `reads`, a small pool owned by the app: each
handler makes one pool call that does all its store work, so a request costs one thread hop, and
the app's shutdown waits for those calls before the store closes.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from aiohttp import web

from plantwire_platform.apps.host import AppHost
from plantwire_platform.commands.service import CommandService
from plantwire_platform.ingest.live_bus import LiveBus
from plantwire_platform.ingest.mqtt_ingest import MqttIngest
from plantwire_platform.ingest.stats import IngestStats
from plantwire_platform.store.model import Store

T = TypeVar("T")
StatusFn = Callable[[], IngestStats]

READ_THREADS: Final = 2
"""SQLite serves reads concurrently under WAL; two threads match the machine and bound the load."""


class ReadPool:
    """The API's store threads, started with the app and shut down (waiting) with it."""

    def __init__(self, threads: int = READ_THREADS) -> None:
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="pw-api-read")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


@dataclass(eq=False)
class PlatformRuntime:
    """The services behind the API; those left None answer 503 where they are needed."""

    store: Store
    status: StatusFn
    """The ingest's counters (`MqttIngest.stats`), read by /api/health, /readyz and /metrics."""
    commands: CommandService | None = None
    live_bus: LiveBus | None = None
    ingest: MqttIngest | None = None
    apps: AppHost | None = None
    reads: ReadPool = field(default_factory=ReadPool)

    def __post_init__(self) -> None:
        if self.commands is None:  # no command connection: every command answers 503
            self.commands = CommandService(self.store, None)

    @property
    def command_service(self) -> CommandService:
        assert self.commands is not None  # set in __post_init__
        return self.commands


RUNTIME_KEY: Final = web.AppKey("plantwire_runtime", PlatformRuntime)


def runtime_of(request: web.Request) -> PlatformRuntime:
    return request.app[RUNTIME_KEY]
