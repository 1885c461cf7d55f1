"""`identifiers_running`: the identifier room inside the running platform, one context manager.

Opens the room (`open_identifiers`) on its own SQLite file next to the store's file (so it works
with every store backend), and runs the `DeviceNamer` as a task that follows the store's device
changes, so every device and gateway gets its identifier as soon as its meta is stored. On exit the
naming task is cancelled and awaited before the room closes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from plantwire.logs import get_logger
from plantwire_platform.identifiers.device_naming import DeviceNamer
from plantwire_platform.identifiers.service import IdentifierService, open_identifiers
from plantwire_platform.identifiers.settings import IdentifierSettings
from plantwire_platform.store.model import Catalog
from plantwire_platform.store.threads import StoreThreads

log = get_logger("plantwire.identifiers")

FILE_NAME: Final = "identifiers.sqlite"
NAMING_EVERY_S: Final = 2.0
"""How often the store is asked for devices changed since the last look (one indexed range query)."""


@dataclass(frozen=True, slots=True)
class PlatformIdentifiers:
    """What the platform's other parts get: the room's service and the device names."""

    service: IdentifierService
    namer: DeviceNamer

    async def identifier_of(self, device: str) -> str | None:
        return await self.namer.identifier_of(device)

    async def identifiers_of(self, devices: Sequence[str]) -> dict[str, str]:
        return await self.namer.identifiers_of(devices)


def identifiers_path(data_dir: Path) -> Path:
    return data_dir / FILE_NAME


@contextlib.asynccontextmanager
async def identifiers_running(
    settings: IdentifierSettings,
    data_dir: Path,
    catalog: Catalog,
    http_url: str | None = None,
    naming_every_s: float = NAMING_EVERY_S,
) -> AsyncIterator[PlatformIdentifiers]:
    """The identifier room on `<data_dir>/identifiers.sqlite`, devices named from `catalog`.

    `http_url` (the platform's own address) is the base of URL values unless `public_url` is set.
    """
    if http_url is not None and "public_url" not in settings.model_fields_set:
        settings = settings.model_copy(update={"public_url": _reachable(http_url)})
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    async with open_identifiers(settings, identifiers_path(data_dir)) as service:
        threads = StoreThreads("pw-ids-naming", 1)
        namer = DeviceNamer(
            service.registry, lambda after, n: threads.run(catalog.changed_devices, after, n), naming_every_s
        )
        task = asyncio.create_task(_name_devices(namer, naming_every_s), name="pw-device-naming")
        try:
            yield PlatformIdentifiers(service, namer)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await asyncio.to_thread(threads.close)


def _reachable(url: str) -> str:
    """A listening address is not one to give out: 0.0.0.0 / [::] become loopback."""
    for wildcard in ("//0.0.0.0:", "//[::]:", "//:::"):
        url = url.replace(wildcard, "//127.0.0.1:")
    return url


async def _name_devices(namer: DeviceNamer, every_s: float) -> None:
    """`namer.run()` until cancelled; an unexpected error is logged and naming resumes later."""
    while True:
        try:
            await namer.run()
        except Exception as err:  # a bug in naming must not take the platform down
            log.error("device_naming_failed", error=repr(err))
            await asyncio.sleep(every_s)
