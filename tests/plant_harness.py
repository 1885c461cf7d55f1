"""Pieces every whole-system test assembles a plant from: real machines, gateway and platform."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from plantwire.broker import MosquittoProcess, free_port
from plantwire_gateway.service import Gateway
from plantwire_gateway.settings import load_settings
from plantwire_platform.auth.api_auth import open_token_catalog
from plantwire_platform.auth.scopes import Scope
from plantwire_platform.settings import PlatformSettings, shared_auth_database
from plantwire_sims.machine import SimMachine


def gateway_for(
    gw_id: str,
    broker: MosquittoProcess,
    data_dir: Path,
    machines: Iterable[SimMachine],
    publishing_ms: int = 100,
) -> Gateway:
    """A gateway reading every machine from its root, publishing to `broker`."""
    devices = [
        {
            "id": m.name,
            "endpoint": m.endpoint,
            "root": m.root_node_id,
            "publishing_interval_ms": str(publishing_ms),
        }
        for m in machines
    ]
    overrides = {"id": gw_id, "mqtt": {"port": broker.port}, "data_dir": str(data_dir)}
    return Gateway(load_settings(overrides=overrides, extra_devices=devices))


@contextlib.asynccontextmanager
async def gateway_running(gateway: Gateway) -> AsyncIterator[Gateway]:
    """Run the gateway until the block ends, then stop it as a signal would (cancellation)."""
    task = asyncio.create_task(gateway.run())
    try:
        yield gateway
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def platform_settings_for(
    broker: MosquittoProcess, store_dir: Path, client_id: str, apps: dict[str, Any] | None = None
) -> PlatformSettings:
    """A platform on a free HTTP port with its own store, committing often so tests see data soon.

    It never loads the user's own apps/ folder (only the apps a test names), so apps made with
    `plantwire app new` in a clone cannot change what the suite sees.
    """
    return PlatformSettings.load(
        mqtt={"port": broker.port},
        http={"port": free_port()},
        store={"path": store_dir / "platform.sqlite", "commit_interval_ms": 50},
        client_id=client_id,
        apps={"path": None, **(apps or {})},
    )


def token_for(settings: PlatformSettings, name: str = "test-admin", scope: Scope = Scope.ADMIN) -> str:
    """A new token in the platform's catalog (the store's folder, or its PostgreSQL schema), as
    `plantwire token create` makes one; the running platform sees it within its catalog refresh."""
    catalog = open_token_catalog(settings.store.path.parent, shared_auth_database(settings))
    try:
        return catalog.create(name, scope)
    finally:
        catalog.close()


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def until(condition: Callable[[], Awaitable[bool]], interval: float = 0.05) -> None:
    """Poll until true; the test's asyncio.timeout bounds it."""
    while not await condition():
        await asyncio.sleep(interval)
