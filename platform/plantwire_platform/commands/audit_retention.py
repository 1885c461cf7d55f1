"""Audit retention: at start and every `prune_interval_s`, entries older than `max_age_days` and all
but the newest `max_rows` are deleted (the audit table never grows without bound)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Final

from plantwire import wire
from plantwire.logs import get_logger
from plantwire_platform.store.model import Catalog, StoreError

log = get_logger(__name__)

DAY_US: Final = 86_400_000_000


def prune_once(store: Catalog, max_rows: int, max_age_days: float) -> int:
    """Blocking: one retention pass; how many entries were deleted."""
    return store.prune_audit(max_rows, wire.now_us() - int(max_age_days * DAY_US))


@contextlib.asynccontextmanager
async def audit_retention_running(
    store: Catalog, max_rows: int, max_age_days: float, interval_s: float
) -> AsyncIterator[None]:
    async def loop() -> None:
        while True:
            try:
                deleted = await asyncio.to_thread(prune_once, store, max_rows, max_age_days)
            except StoreError as err:
                log.warning("audit_prune_failed", error=str(err))
            else:
                if deleted:
                    log.info("audit_pruned", deleted=deleted, max_rows=max_rows, max_age_days=max_age_days)
            await asyncio.sleep(interval_s)

    task = asyncio.create_task(loop(), name="audit-retention")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
