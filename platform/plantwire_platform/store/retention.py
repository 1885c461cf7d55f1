"""Retention per tier: raw points, 1-minute and 1-hour rollups each kept for their own number of days.

Settings `PLANTWIRE_STORE__RETENTION__*` (docs/configuration.md). 0 days keeps a tier forever
(the default: nothing is deleted unless asked). A task of the platform deletes what is older than
each tier's horizon every `every_s` (and once at start), on the store's own threads, in small
transactions so that ingest never waits long.

Raw points go first (a plant keeps months of raw data and years of rollups): the rollups keep
what was rolled up before the raw points were deleted. A point arriving later than the raw
horizon (a gateway's buffer replayed after months) is still stored raw until the next run, but
is not rolled up again: once the raw horizon moved past a bucket, a redelivered point there
cannot be told from a new one, and counting it twice would be wrong. Backends that keep their
own retention (InfluxDB's bucket retention) do not implement `RetentionStore`; the task is then
not started.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from plantwire.logs import get_logger
from plantwire.wire import now_us
from plantwire_platform.store.model import StoreError

log = get_logger(__name__)
DAY_US: Final = 86_400_000_000


class RetentionSettings(BaseModel):
    """How long each tier of stored data is kept."""

    model_config = ConfigDict(extra="forbid")

    raw_days: float = Field(default=0, ge=0, description="Days raw points are kept (0: forever)")
    rollup_1m_days: float = Field(default=0, ge=0, description="Days 1-minute rollups are kept (0: forever)")
    rollup_1h_days: float = Field(default=0, ge=0, description="Days 1-hour rollups are kept (0: forever)")
    every_s: float = Field(default=3600, ge=1, description="Seconds between two retention runs")

    @property
    def enabled(self) -> bool:
        return any((self.raw_days, self.rollup_1m_days, self.rollup_1h_days))


@dataclass(frozen=True, slots=True)
class Horizons:
    """Delete what is older than these times (µs); None keeps the tier."""

    raw: int | None
    rollup_1m: int | None
    rollup_1h: int | None

    @classmethod
    def of(cls, settings: RetentionSettings, now: int) -> Horizons:
        def at(days: float) -> int | None:
            return now - int(days * DAY_US) if days else None

        return cls(at(settings.raw_days), at(settings.rollup_1m_days), at(settings.rollup_1h_days))


@runtime_checkable
class RetentionStore(Protocol):
    def enforce_retention(self, horizons: Horizons) -> dict[str, int]:
        """Delete what is older than the horizons; returns rows deleted per tier ('raw', '1m', '1h')."""
        ...


async def run_retention(store: RetentionStore, settings: RetentionSettings) -> None:
    """Apply retention now and every `every_s` until cancelled."""
    while True:
        try:
            deleted = await asyncio.to_thread(store.enforce_retention, Horizons.of(settings, now_us()))
            log.info("retention_applied", **{f"deleted_{k}": v for k, v in deleted.items()})
        except StoreError as err:
            log.warning("retention_failed", error=str(err))
        await asyncio.sleep(settings.every_s)


@contextlib.asynccontextmanager
async def retention_running(settings: RetentionSettings, store: object) -> AsyncIterator[None]:
    """Retention as a background task while the context is open (nothing when disabled or unsupported)."""
    if not settings.enabled or not isinstance(store, RetentionStore):
        if settings.enabled:
            log.info("retention_not_supported", store=type(store).__name__)
        yield
        return
    task = asyncio.create_task(run_retention(store, settings), name="retention")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
