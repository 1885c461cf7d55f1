"""`open_identifiers`: the identifier room's lifecycle, one async context manager.

Opens the catalog (a table in the given SQLite file), makes sure `<prefix>/ADMIN` exists, loads the
most recently changed handles into the hot cache, starts
the resolver's upstream session, and hands back `IdentifierService`; everything closes in reverse
on exit.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from plantwire_platform.identifiers.catalog import IdentifierCatalog
from plantwire_platform.identifiers.registry import LocalRegistry
from plantwire_platform.identifiers.resolver import Resolver
from plantwire_platform.identifiers.settings import IdentifierSettings
from plantwire_platform.identifiers.upstream_sync import SecondLevelNodeSync, SyncReport


@dataclass(frozen=True, slots=True)
class IdentifierService:
    settings: IdentifierSettings
    catalog: IdentifierCatalog
    registry: LocalRegistry
    resolver: Resolver

    async def sync(self) -> SyncReport:
        """Register every identifier not yet at the second-level node (raises SyncError)."""
        return await SecondLevelNodeSync(self.settings.sync, self.catalog).run()


@contextlib.asynccontextmanager
async def open_identifiers(settings: IdentifierSettings, db_path: Path) -> AsyncIterator[IdentifierService]:
    async with contextlib.AsyncExitStack() as stack:
        catalog = await stack.enter_async_context(IdentifierCatalog(db_path, settings.hot_cache_size))
        registry = LocalRegistry(settings, catalog)
        await registry.ensure_admin()
        await catalog.warm()
        resolver = await stack.enter_async_context(Resolver(settings, catalog))
        yield IdentifierService(settings, catalog, registry, resolver)
