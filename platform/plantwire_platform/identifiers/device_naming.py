"""Gateways and devices get their identifiers when they appear.

`DeviceNamer` follows the store's device changes (`Catalog.changed_devices`: rows created, or
whose gateway or endpoint changed, after a cursor; store/device_changes.py) and ensures an
identifier for each (gateway, device, endpoint), so the ingest path stays untouched. It reads
pages of at most `page` rows and keeps no per-device state: the identifiers themselves and the
cursor live in the identifier catalog, written in one transaction per page, so a restart resumes
after the last page named and nothing is read twice. `identifier_of` answers the web layer from
the catalog (its hot cache, else one indexed read).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

from plantwire.logs import get_logger
from plantwire_platform.identifiers.registry import LocalRegistry
from plantwire_platform.store.device_changes import START, ChangeCursor, DeviceChange
from plantwire_platform.store.model import StoreError

log = get_logger("plantwire.identifiers")
ChangeReader = Callable[[ChangeCursor, int], Awaitable[Sequence[DeviceChange]]]
CURSOR_NAME: Final = "device_naming"
PAGE: Final = 1000
_AFTER_ANY_ID: Final = "\U0010ffff"  # sorts after every device id


class DeviceNamer:
    def __init__(
        self, registry: LocalRegistry, changes: ChangeReader, every_s: float = 5.0, page: int = PAGE
    ) -> None:
        self.registry = registry
        self._changes = changes
        self._every = every_s
        self._page = page
        self._cursor: ChangeCursor | None = None
        self.rows_read = 0
        """Device rows read from the store so far (each new or changed once)."""

    async def identifier_of(self, device: str) -> str | None:
        """The device's identifier once it has one (for GET /api/devices/{d})."""
        return (await self.registry.device_identifiers([device])).get(device)

    async def identifiers_of(self, devices: Sequence[str]) -> dict[str, str]:
        """The identifiers of those of these devices that have one (a page of GET /api/devices)."""
        return await self.registry.device_identifiers(devices)

    async def _start(self) -> ChangeCursor:
        if self._cursor is None:
            saved = await self.registry.catalog.cursor(CURSOR_NAME)
            cursor = START if saved is None else ChangeCursor(*saved)
            if cursor != START and not await self._still_there(cursor):
                # The store is not the one the cursor was saved against (a reset store beside a
                # kept identifiers file), or the last device named changed while we were down:
                # name from the start again (ensuring an identifier twice is a no-op).
                log.warning("device_naming_cursor_reset", changed=cursor.changed, device=cursor.device)
                cursor = START
            self._cursor = cursor
        return self._cursor

    async def _still_there(self, cursor: ChangeCursor) -> bool:
        """Whether the store still holds the row the cursor points at, with the same change number."""
        rows = await self._changes(ChangeCursor(cursor.changed - 1, _AFTER_ANY_ID), self._page)
        return any(r.cursor == cursor for r in rows)

    async def once(self) -> int:
        """Name the devices that are new or changed since the last call; returns how many."""
        cursor = await self._start()
        named = 0
        while True:
            rows = await self._changes(cursor, self._page)
            self.rows_read += len(rows)
            if not rows:
                break
            last = rows[-1].cursor
            devices: list[tuple[str, str, dict[str, Any]]] = [
                (d.gateway, d.id, {"endpoint": d.endpoint} if d.endpoint else {}) for d in rows
            ]
            await self.registry.ensure_devices(devices, (CURSOR_NAME, last.changed, last.device))
            self._cursor = cursor = last
            named += len(rows)
            if len(rows) < self._page:
                break
        return named

    async def run(self) -> None:
        """Follow the device changes until cancelled (a task of the platform's TaskGroup)."""
        while True:
            try:
                await self.once()
            except StoreError as err:
                log.warning("device_naming_store_failed", error=str(err))
            await asyncio.sleep(self._every)
