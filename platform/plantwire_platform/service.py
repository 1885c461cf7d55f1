"""The platform process: store, MQTT ingest and HTTP API, started and stopped in order.

Start-up opens the store, then ingest, then HTTP; shutdown runs the other way, so the
last messages taken from the broker are committed and acknowledged before the store closes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from plantwire.logs import get_logger
from plantwire.wire import Value
from plantwire_platform.apps.api import CommandSender
from plantwire_platform.apps.host import AppHost
from plantwire_platform.auth.api_auth import api_auth_running
from plantwire_platform.commands.bus import CommandBus
from plantwire_platform.commands.service import CommandService
from plantwire_platform.identifiers.running import identifiers_running
from plantwire_platform.ingest.live_bus import LiveBus
from plantwire_platform.ingest.mqtt_ingest import MqttIngest
from plantwire_platform.ingest.sparkplug_ingest import SparkplugIngest
from plantwire_platform.settings import PlatformSettings
from plantwire_platform.store.factory import open_store
from plantwire_platform.store.model import Store
from plantwire_platform.web.app import create_app, secure_app
from plantwire_platform.web.runtime import PlatformRuntime

log = get_logger(__name__)


@dataclass(frozen=True)
class RunningPlatform:
    settings: PlatformSettings
    store: Store
    ingest: MqttIngest
    bus: LiveBus
    url: str
    apps: AppHost | None = None


@contextlib.asynccontextmanager
async def platform_running(settings: PlatformSettings) -> AsyncIterator[RunningPlatform]:
    """The whole platform, running until the context exits."""
    async with contextlib.AsyncExitStack() as stack:
        store = await asyncio.to_thread(open_store, settings)
        stack.callback(store.close)
        bus = LiveBus(asyncio.get_running_loop())
        ingest = await stack.enter_async_context(MqttIngest(settings, store, bus.publish_committed))
        if settings.sparkplug_host.enabled:  # Sparkplug B edge nodes into the same store and live bus
            await stack.enter_async_context(SparkplugIngest(settings, store, bus.publish_committed))
        bus_to_gateways = await stack.enter_async_context(CommandBus(settings.mqtt))
        commands = CommandService(store, bus_to_gateways)
        stack.push_async_callback(asyncio.to_thread, commands.close)  # after HTTP and apps (below)
        # Apps start after ingest and before HTTP, and stop before ingest does.
        # Identifiers: their own file in the store's folder; devices named as their meta arrives.
        ids = await stack.enter_async_context(
            identifiers_running(settings.identifiers, settings.store.path.parent, store, http_url(settings))
        )
        apps = await stack.enter_async_context(
            AppHost(store, bus, settings.apps, app_command_sender(commands), identifiers=ids.service.registry)
        )
        http_port = settings.http.port
        # Identity at the edge: tokens in the store's folder, checked before any handler runs.
        auth = await stack.enter_async_context(
            api_auth_running(settings.auth, settings.store.path.parent, settings.http.host, http_port)
        )
        app = create_app(PlatformRuntime(store, ingest.stats, commands, bus, ingest, apps, identifiers=ids))
        secure_app(app, auth)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, settings.http.host, settings.http.port)
        await site.start()
        url = http_url(settings)
        log.info("platform_started", url=url, store=settings.store.backend, mqtt_port=settings.mqtt.port)
        yield RunningPlatform(settings, store, ingest, bus, url, apps)
        log.info("platform_stopping")


def http_url(settings: PlatformSettings) -> str:
    return f"http://{settings.http.host}:{settings.http.port}"


def app_command_sender(commands: CommandService) -> CommandSender:
    """Apps' writes and calls take the REST path's checks, round trip and audit (as "app:<id>").

    Failures reach the app as the service's typed `CommandError`s; results as `WriteDone` /
    `CallDone`.
    """

    async def send(app_id: str, kind: str, device: str, target: str, args: tuple[Value, ...]) -> Any:
        user = f"app:{app_id}"
        if kind == "write":
            (value,) = args
            return await commands.write(user, device, target, value)
        return await commands.call(user, device, target, list(args))

    return send


async def run_platform(settings: PlatformSettings) -> None:
    async with platform_running(settings):
        await asyncio.Event().wait()
