"""What the web layer serves: the platform's services in one typed object under one AppKey.

The service builds a `PlatformRuntime` and hands it to `create_app`; every route module reads it
with `runtime_of(request)`. Tests build their own (a store and a status function are enough).
Store calls block (SQLite), so handlers run them on `reads`, the API's own `StoreThreads`: each
handler makes one call that does all its store work, so a request costs one thread hop, and the
app's shutdown waits for those calls before the store closes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from aiohttp import web

from plantwire_platform.apps.host import AppHost
from plantwire_platform.commands.service import CommandService
from plantwire_platform.identifiers.running import PlatformIdentifiers
from plantwire_platform.ingest.live_bus import LiveBus
from plantwire_platform.ingest.mqtt_ingest import MqttIngest
from plantwire_platform.ingest.sparkplug_status import SparkplugHostStatus
from plantwire_platform.ingest.stats import IngestStats
from plantwire_platform.store.model import Store
from plantwire_platform.store.threads import StoreThreads

StatusFn = Callable[[], IngestStats]
SparkplugStatusFn = Callable[[], SparkplugHostStatus]

READ_THREADS: Final = 2
"""SQLite serves reads concurrently under WAL; two threads match the machine and bound the load."""


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
    identifiers: PlatformIdentifiers | None = None
    """The identifier room (handle routes, device identifiers); None: no /api/handles routes."""
    sparkplug_status: SparkplugStatusFn | None = None
    """The Sparkplug host's counters (`SparkplugIngest.status`); None: the host is off."""
    reads: StoreThreads = field(default_factory=lambda: StoreThreads("pw-api-read", READ_THREADS))
    """The API's store threads, closed (waiting) by the app's cleanup."""
    _owns_commands: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.commands is None:  # no command connection: every command answers 503
            self.commands = CommandService(self.store, None)
            self._owns_commands = True

    def close_own(self) -> None:
        """Close what this runtime made itself (the caller closes the services it passed in)."""
        self.reads.close()
        if self._owns_commands:
            self.command_service.close()

    @property
    def command_service(self) -> CommandService:
        assert self.commands is not None  # set in __post_init__
        return self.commands


RUNTIME_KEY: Final = web.AppKey("plantwire_runtime", PlatformRuntime)


def runtime_of(request: web.Request) -> PlatformRuntime:
    return request.app[RUNTIME_KEY]
