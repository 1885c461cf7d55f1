"""Open the store the settings ask for: the embedded SQLite file, an InfluxDB 2 bucket or PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from plantwire_platform.settings import PlatformSettings
from plantwire_platform.store.model import Store
from plantwire_platform.store.store_lock import LOCK_SUFFIX, StoreInUse


def store_lock_path(settings: PlatformSettings) -> tuple[Path, str]:
    """The lock file that makes the store this process's alone, and how to name the store."""
    store = settings.store
    if store.backend == "influxdb":
        registry = store.influxdb.registry_path
        return registry.with_name(registry.name + LOCK_SUFFIX), f"the InfluxDB registry {registry}"
    if store.backend == "postgresql":
        folder = store.path.parent
        return folder / "platform.lock", f"the data folder {folder}"
    return store.path.with_name(store.path.name + LOCK_SUFFIX), f"the store {store.path}"


def open_store(settings: PlatformSettings) -> Store:
    """The backend named by `settings.store.backend`.

    Blocking: call it through `asyncio.to_thread`. Raises `ConfigError` for bad InfluxDB
    credentials or bucket, `StoreError` for I/O problems, `StoreInUse` when another platform with
    this client id holds the PostgreSQL schema (an advisory lock, held until the store closes).
    Backends are imported only when chosen, so the InfluxDB and PostgreSQL clients are needed only
    where they are used.
    """
    max_seq_jump = settings.ingest.max_seq_jump
    if settings.store.backend == "influxdb":
        from plantwire_platform.store.influx.store import InfluxStore

        influx = InfluxStore.open(settings.store.influxdb)
        influx.max_seq_jump = max_seq_jump
        return influx
    if settings.store.backend == "postgresql":
        from plantwire_platform.store.postgresql.store import PostgresStore

        postgres = PostgresStore.open(settings.store.postgresql)
        postgres.max_seq_jump = max_seq_jump
        if not postgres.hold_instance_lock(f"client:{settings.client_id}"):
            postgres.close()
            raise StoreInUse(
                f"another platform with client id {settings.client_id!r} is already running on "
                f"PostgreSQL schema {settings.store.postgresql.schema_name!r}; give each worker its own "
                "PLANTWIRE_CLIENT_ID"
            )
        return postgres
    from plantwire_platform.store.sqlite import SqliteStore

    return SqliteStore.open(settings.store.path, max_seq_jump)
