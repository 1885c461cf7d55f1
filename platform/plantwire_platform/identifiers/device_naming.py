"""Gateways and devices get their identifiers when they appear.

`DeviceNamer` follows the store's device list (the platform already records every device whose
meta arrived) and ensures an identifier for each new or changed (gateway, device, endpoint), so the
ingest path stays untouched and a restart catches up by itself. `identifier_of(device)` answers the
web layer's `GET /api/devices/{d}` without I/O.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from plantwire.logs import get_logger
from plantwire_platform.identifiers.registry import LocalRegistry
from plantwire_platform.store import DeviceRecord, StoreError

log = get_logger("plantwire.identifiers")
DeviceLister = Callable[[], Awaitable[Sequence[DeviceRecord]]]


class DeviceNamer:
    def __init__(self, registry: LocalRegistry, list_devices: DeviceLister, every_s: float = 5.0) -> None:
        self.registry = registry
        self._list = list_devices
        self._every = every_s
        self._seen: dict[str, tuple[str, str | None]] = {}
        self._names: dict[str, str] = {}
        self._gateways: set[str] = set()

    def identifier_of(self, device: str) -> str | None:
        """The device's identifier once it has one (for GET /api/devices/{d})."""
        return self._names.get(device)

    async def once(self) -> int:
        """Name the devices that are new or changed since the last call; returns how many."""
        named = 0
        for d in await self._list():
            key = (d.gateway, d.endpoint)
            if self._seen.get(d.id) == key:
                continue
            meta = {"endpoint": d.endpoint} if d.endpoint else {}
            handle = await self.registry.ensure_device(d.gateway, d.id, meta)
            if d.gateway not in self._gateways:
                await self.registry.ensure_gateway(d.gateway)
                self._gateways.add(d.gateway)
            self._seen[d.id], self._names[d.id] = key, handle.name
            named += 1
        return named

    async def run(self) -> None:
        """Follow the device list until cancelled (a task of the platform's TaskGroup)."""
        while True:
            try:
                await self.once()
            except StoreError as err:
                log.warning("device_naming_store_failed", error=str(err))
            await asyncio.sleep(self._every)
