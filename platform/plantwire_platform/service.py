"""The platform process: store, MQTT ingest and HTTP API, started and stopped in order.

Start-up first makes sure it is alone: it locks the store (`store/store_lock.py`) and binds its
HTTP port, so that a second platform started by mistake stops there with one line, before it
touches the store or connects to MQTT (where it would take over the first one's session). Then it
opens the store, ingest, and serves HTTP on the socket it bound; shutdown runs the other way, so the
last messages taken from the broker are committed and acknowledged before the store closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from plantwire.logs import get_logger
from plantwire.wire import Value
from plantwire_platform import gc_policy
from plantwire_platform.apps.api import CommandSender
from plantwire_platform.apps.host import AppHost
from plantwire_platform.auth.api_auth import api_auth_running
from plantwire_platform.commands.audit_retention import audit_retention_running
from plantwire_platform.commands.bus import CommandBus
from plantwire_platform.commands.endpoint_policy import EndpointPolicy
from plantwire_platform.commands.service import CommandService
from plantwire_platform.commands.sparkplug_writes import SparkplugWrites
from plantwire_platform.identifiers.running import identifiers_running
from plantwire_platform.ingest.live_bus import LiveBus
from plantwire_platform.ingest.mqtt_ingest import MqttIngest
from plantwire_platform.ingest.sparkplug_ingest import SparkplugIngest
from plantwire_platform.settings import PlatformSettings, shared_auth_database
from plantwire_platform.store.factory import open_store, store_lock_path
from plantwire_platform.store.model import Store
from plantwire_platform.store.retention import retention_running
from plantwire_platform.store.store_lock import StoreLock
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
    sparkplug: SparkplugIngest | None = None


@contextlib.asynccontextmanager
async def platform_running(settings: PlatformSettings) -> AsyncIterator[RunningPlatform]:
    """The whole platform, running until the context exits."""
    async with contextlib.AsyncExitStack() as stack:
        lock_path, what = store_lock_path(settings)
        stack.callback(StoreLock.acquire(lock_path, what).release)
        http_socket = bind_http(settings)
        stack.callback(http_socket.close)
        store = await asyncio.to_thread(open_store, settings)
        stack.callback(store.close)
        await stack.enter_async_context(retention_running(settings.store.retention, store))
        bus = LiveBus(asyncio.get_running_loop())
        ingest = await stack.enter_async_context(MqttIngest(settings, store, bus.publish_committed))
        spb: SparkplugIngest | None = None
        if settings.sparkplug_host.enabled:  # Sparkplug B edge nodes into the same store and live bus
            spb = await stack.enter_async_context(SparkplugIngest(settings, store, bus.publish_committed))
        bus_to_gateways = await stack.enter_async_context(CommandBus(settings.mqtt))
        owner_caches = [ingest.owners] + ([spb.owners] if spb is not None else [])

        def moved(device: str, gateway: str) -> None:
            for owners in owner_caches:
                owners.moved(device, gateway)

        commands = CommandService(
            store,
            bus_to_gateways,
            on_moved=moved,
            audit_max_field_bytes=settings.audit.max_field_bytes,
            attach_policy=EndpointPolicy(settings.commands.attach_allowed_networks),
            sparkplug=SparkplugWrites(spb, bus) if spb is not None else None,  # REST writes as DCMD
        )
        stack.push_async_callback(asyncio.to_thread, commands.close)  # after HTTP and apps (below)
        audit = settings.audit
        await stack.enter_async_context(
            audit_retention_running(store, audit.max_rows, audit.max_age_days, audit.prune_interval_s)
        )
        # Apps start after ingest and before HTTP, and stop before ingest does.
        # Identifiers: their own file in the store's folder; devices named as their meta arrives.
        ids = await stack.enter_async_context(
            identifiers_running(settings.identifiers, settings.store.path.parent, store, http_url(settings))
        )
        apps = await stack.enter_async_context(
            AppHost(store, bus, settings.apps, app_command_sender(commands), identifiers=ids.service.registry)
        )
        http_port = settings.http.port
        # Identity at the edge, checked before any handler runs: tokens in the store's folder, or with
        # PostgreSQL tokens, sessions and login links in the store's schema (shared by replicas).
        auth = await stack.enter_async_context(
            api_auth_running(
                settings.auth,
                settings.store.path.parent,
                settings.http.host,
                http_port,
                shared_auth_database(settings),
            )
        )
        app = create_app(
            PlatformRuntime(
                store,
                ingest.stats,
                commands,
                bus,
                ingest,
                apps,
                identifiers=ids,
                sparkplug_status=spb.status if spb is not None else None,
            )
        )
        secure_app(app, auth)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        site = web.SockSite(runner, http_socket)
        await site.start()
        url = http_url(settings)
        log.info("platform_started", url=url, store=settings.store.backend, mqtt_port=settings.mqtt.port)
        yield RunningPlatform(settings, store, ingest, bus, url, apps, spb)
        log.info("platform_stopping")


class HttpPortInUse(Exception):
    """The API's address cannot be bound; the message is one line for the operator."""


def bind_http(settings: PlatformSettings) -> socket.socket:
    """The API's listening socket, bound now (before MQTT) so a taken port stops start-up at once."""
    host, port = settings.http.host, settings.http.port
    try:
        return socket.create_server((host, port), backlog=128)
    except OSError as err:
        raise HttpPortInUse(f"cannot listen on {host}:{port} ({err.strerror or err})") from None


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
    """The platform as a process (`plantwire platform`): started, its garbage collector settled."""
    async with platform_running(settings):
        gc_policy.settle()
        await asyncio.Event().wait()
