"""The platform process: store, MQTT ingest and HTTP API, started and stopped in order.

Start-up opens the store, then ingest, then HTTP; shutdown runs the other way, so the
last messages taken from the broker are committed and acknowledged before the store closes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from plantwire.logs import get_logger
from plantwire_platform.ingest import MqttIngest
from plantwire_platform.live_bus import LIVE_BUS_KEY, LiveBus
from plantwire_platform.settings import PlatformSettings
from plantwire_platform.store import Store
from plantwire_platform.store_factory import open_store
from plantwire_platform.web_api import create_app

log = get_logger(__name__)


@dataclass(frozen=True)
class RunningPlatform:
    settings: PlatformSettings
    store: Store
    ingest: MqttIngest
    bus: LiveBus
    url: str


@contextlib.asynccontextmanager
async def platform_running(settings: PlatformSettings) -> AsyncIterator[RunningPlatform]:
    """The whole platform, running until the context exits."""
    async with contextlib.AsyncExitStack() as stack:
        store = await asyncio.to_thread(open_store, settings)
        stack.callback(store.close)
        bus = LiveBus(asyncio.get_running_loop())
        ingest = await stack.enter_async_context(MqttIngest(settings, store, bus.publish_committed))
        app = create_app(store, ingest.stats)
        app[LIVE_BUS_KEY] = bus
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, settings.http.host, settings.http.port)
        await site.start()
        url = f"http://{settings.http.host}:{settings.http.port}"
        log.info("platform_started", url=url, store=settings.store.backend, mqtt_port=settings.mqtt.port)
        yield RunningPlatform(settings, store, ingest, bus, url)
        log.info("platform_stopping")


async def run_platform(settings: PlatformSettings) -> None:
    async with platform_running(settings):
        await asyncio.Event().wait()
