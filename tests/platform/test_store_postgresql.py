"""What the PostgreSQL backend adds to the store contract: many writers, partitions, settings, secrets.

Against the real server (a database per test run, a schema per test: conftest.py).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import asyncpg
import pytest
from pydantic import SecretStr

from plantwire.wire import DataBatch, JsonValue, Sample
from plantwire_platform.settings import PlatformSettings
from plantwire_platform.store.bounded_cache import TwoGenerationCache
from plantwire_platform.store.factory import open_store
from plantwire_platform.store.model import IncomingBatch, StoreError
from plantwire_platform.store.postgresql.schema import DAY_US
from plantwire_platform.store.postgresql.store import PostgresSettings, PostgresStore
from plantwire_platform.store.store_lock import StoreInUse

T0 = 1_700_000_000_000_000


@pytest.fixture
def settings(postgres_dsn: str, postgres_schema: str) -> PostgresSettings:
    return PostgresSettings(dsn=SecretStr(postgres_dsn), schema_name=postgres_schema, startup_timeout_s=5)


@pytest.fixture
def store(settings: PostgresSettings) -> Iterator[PostgresStore]:
    s = PostgresStore.open(settings)
    yield s
    s.close()


def _batch(device: str, seq: int, n: int = 50) -> IncomingBatch:
    samples = [Sample(f"t{i % 5}", T0 + seq * 1000 + i // 5, float(seq)) for i in range(n)]
    return IncomingBatch("gw", device, DataBatch(seq, T0, samples))


def test_two_stores_writing_the_same_devices_at_once_store_every_point_once(
    settings: PostgresSettings, store: PostgresStore
) -> None:
    """Two workers (two store instances, as two processes would have) get overlapping redeliveries."""
    other = PostgresStore.open(settings)
    results = {}

    def write(name: str, s: PostgresStore, seqs: range) -> None:
        stored = 0
        for seq in seqs:
            stored += s.write_batches([_batch(d, seq) for d in ("p1", "p2", "p3")]).stored
        results[name] = stored

    try:
        threads = [
            threading.Thread(target=write, args=("a", store, range(1, 41))),
            threading.Thread(target=write, args=("b", other, range(21, 61))),  # 21..40 written by both
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert results["a"] + results["b"] == 3 * 60 * 50
        assert store.count_points() == other.count_points() == 3 * 60 * 50
        for device in ("p1", "p2", "p3"):
            record = store.get_device(device)
            assert record is not None and record.last_seq == 60
            assert len(store.series(device, "t0", T0, T0 + 10**9, 10_000)) == 60 * 10
    finally:
        other.close()


def test_points_of_a_day_without_partition_get_one(store: PostgresStore) -> None:
    far = T0 + 400 * DAY_US
    batch = IncomingBatch("gw", "p", DataBatch(1, T0, [Sample("a", T0, 1.0), Sample("a", far, 2.0)]))
    assert store.write_batches([batch]).stored == 2
    assert [p.value for p in store.series("p", "a", T0, far + 1, 10)] == [1.0, 2.0]
    # Written again: the partitions are there, the points are not stored twice.
    assert store.write_batches([batch]).duplicates == 2
    assert store.points_kind == "partitioned"  # no TimescaleDB on the development machine


def test_values_keep_their_types(store: PostgresStore) -> None:
    values: list[JsonValue] = [3, 2.5, "text", None, 2**70, "nul\x00byte", [1, 2], {"a": 1}]
    samples = [Sample("v", T0 + i, v) for i, v in enumerate(values)]
    store.write_batches([IncomingBatch("gw", "p", DataBatch(1, T0, samples))])
    got = [p.value for p in store.series("p", "v", T0, T0 + 100, 100)]
    assert got == [3, 2.5, "text", None, float(2**70), "nul\ufffdbyte", [1, 2], {"a": 1}]
    assert type(got[0]) is int


def test_the_factory_opens_it_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, postgres_dsn: str, postgres_schema: str
) -> None:
    monkeypatch.setenv("PLANTWIRE_STORE__BACKEND", "postgresql")
    monkeypatch.setenv("PLANTWIRE_STORE__POSTGRESQL__DSN", postgres_dsn)
    monkeypatch.setenv("PLANTWIRE_STORE__POSTGRESQL__SCHEMA_NAME", postgres_schema)
    settings = PlatformSettings.load()
    assert postgres_dsn not in repr(settings)
    store = open_store(settings)
    try:
        assert isinstance(store, PostgresStore) and store.count_points() == 0
    finally:
        store.close()


def test_an_unreachable_server_is_a_clear_error_without_the_password() -> None:
    settings = PostgresSettings(
        dsn=SecretStr("postgresql://plantwire:s3cret-pw@127.0.0.1:1/x"), startup_timeout_s=0.5
    )
    with pytest.raises(StoreError, match="cannot reach PostgreSQL") as caught:
        PostgresStore.open(settings)
    assert "s3cret-pw" not in str(caught.value)


def test_a_wrong_password_or_database_is_a_clear_error(postgres_dsn: str) -> None:
    missing = postgres_dsn.rsplit("/", 1)[0] + "/plantwire_no_such_db"
    with pytest.raises(StoreError, match="does not exist"):
        PostgresStore.open(PostgresSettings(dsn=SecretStr(missing), startup_timeout_s=1))


async def test_async_callers_use_it_through_threads(store: PostgresStore) -> None:
    async with asyncio.timeout(30):
        result = await asyncio.to_thread(store.write_batches, [_batch("p", 1)])
        assert result.stored == 50
        assert await asyncio.to_thread(store.count_points) == 50


def test_two_platforms_with_one_client_id_cannot_share_a_schema(
    monkeypatch: pytest.MonkeyPatch, postgres_dsn: str, postgres_schema: str
) -> None:
    """Workers of a shared group share the database with their own client ids; two processes with
    the same one would take each other's MQTT session, so the second stops at its store."""
    monkeypatch.setenv("PLANTWIRE_STORE__BACKEND", "postgresql")
    monkeypatch.setenv("PLANTWIRE_STORE__POSTGRESQL__DSN", postgres_dsn)
    monkeypatch.setenv("PLANTWIRE_STORE__POSTGRESQL__SCHEMA_NAME", postgres_schema)
    first = open_store(PlatformSettings.load(client_id="worker-a"))
    try:
        with pytest.raises(StoreInUse, match="client id 'worker-a' is already running"):
            open_store(PlatformSettings.load(client_id="worker-a"))
        other = open_store(PlatformSettings.load(client_id="worker-b"))  # another worker: fine
        other.close()
    finally:
        first.close()
    again = open_store(PlatformSettings.load(client_id="worker-a"))  # released with the store
    again.close()


async def _sql(settings: PostgresSettings, *statements: str) -> list[list[asyncpg.Record]]:
    conn = await asyncpg.connect(
        settings.dsn.get_secret_value(), server_settings={"search_path": settings.schema_name}
    )
    try:
        return [await conn.fetch(s) for s in statements]
    finally:
        await conn.close()


def _partitions(settings: PostgresSettings) -> tuple[set[int], list[str]]:
    attached, retired = asyncio.run(
        _sql(
            settings,
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'points'::regclass",
            "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace "
            "AND relname LIKE 'points_retired_%'",
        )
    )
    return {int(r["relname"].removeprefix("points_")) for r in attached}, [r["relname"] for r in retired]


def test_raw_retention_drops_whole_partitions_and_trims_only_the_boundary_one(
    settings: PostgresSettings, store: PostgresStore
) -> None:
    from plantwire_platform.store.retention import Horizons

    day0 = T0 // DAY_US  # the first day's partition index
    hour = DAY_US // 24
    times = [
        *(d * DAY_US + h * hour for d in (day0, day0 + 1, day0 + 3) for h in (1, 12, 23)),
        *((day0 + 2) * DAY_US + h * hour for h in (1, 11, 12, 23)),
    ]
    samples = [Sample("t", ts, float(i)) for i, ts in enumerate(sorted(times))]
    assert store.write_batches([IncomingBatch("gw", "p", DataBatch(1, T0, samples))]).stored == 13
    # A retire step that stopped half-way (detached and renamed, not yet dropped): finished first.
    asyncio.run(
        _sql(
            settings,
            f'ALTER TABLE points DETACH PARTITION "points_{day0}"',
            f'ALTER TABLE "points_{day0}" RENAME TO "points_retired_{day0}"',
        )
    )
    assert _partitions(settings)[1] == [f"points_retired_{day0}"]
    horizon = (day0 + 2) * DAY_US + 12 * hour
    deleted = store.enforce_retention(Horizons(raw=horizon, rollup_1m=None, rollup_1h=None))
    # Days 0 and 1 dropped whole (3 + 3 points), day 2's points before 12:00 deleted (2).
    assert deleted["raw"] == 8 and store.count_points() == 5
    attached, retired = _partitions(settings)
    assert retired == [] and {day0, day0 + 1}.isdisjoint(attached) and {day0 + 2, day0 + 3} <= attached
    kept = store.series("p", "t", 0, (day0 + 4) * DAY_US, 100)
    assert [p.ts for p in kept] == [t for t in sorted(times) if t >= horizon]
    # The rollups stay (only the raw tier was asked): day 0 still counts its three points.
    (bucket,) = store.buckets("p", "t", day0 * DAY_US, (day0 + 1) * DAY_US, DAY_US, "count")
    assert bucket.count == 3
    # A late point in a dropped day: its partition comes back, and the next run takes it again.
    late = IncomingBatch("gw", "p", DataBatch(2, T0, [Sample("t", day0 * DAY_US + 5, -1.0)]))
    assert store.write_batches([late]).stored == 1 and store.count_points() == 6
    assert store.enforce_retention(Horizons(raw=horizon, rollup_1m=None, rollup_1h=None))["raw"] == 1
    assert store.count_points() == 5 and day0 not in _partitions(settings)[0]


def test_a_database_from_before_device_changes_gains_them_and_lists_its_devices_first(
    settings: PostgresSettings, store: PostgresStore
) -> None:
    from plantwire.wire import DeviceStatus
    from plantwire_platform.store.device_changes import START

    for d in ("b", "a"):
        store.apply_device_status("gw", d, DeviceStatus("online", 1, "opc.tcp://x:1", None))
    store.close()
    asyncio.run(  # as the schema was before `devices.changed`
        _sql(
            settings,
            "DROP TRIGGER devices_changed ON devices",
            "DROP FUNCTION plantwire_device_changed()",
            "ALTER TABLE devices DROP COLUMN changed",
            "DROP INDEX devices_gateway",
        )
    )
    with PostgresStore.open(settings) as again:
        old = again.changed_devices(START, 10)
        assert [(r.id, r.cursor.changed) for r in old] == [("a", 0), ("b", 0)]
        assert again.gateway_device_counts() == [("gw", 2)]
        again.apply_device_status("gw2", "a", DeviceStatus("online", 1, "opc.tcp://x:1", None))
        deadline = time.monotonic() + 10  # rows wait for older transactions of the server to end
        while not (moved := again.changed_devices(old[-1].cursor, 10)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [(r.id, r.gateway) for r in moved] == [("a", "gw2")]


def test_the_series_and_device_caches_are_bounded_and_a_miss_still_answers_right(
    store: PostgresStore,
) -> None:
    store._series_ids = TwoGenerationCache(6)  # as SERIES_CACHE_MAX = 6, for 40 series
    store._known_devices = TwoGenerationCache(4)  # as KNOWN_DEVICES_MAX = 4, for 8 devices
    devices = [f"dev{d}" for d in range(8)]
    gaps = stored = 0
    for seq in (1, 3, 3, 4):  # one gap per device at 3; the second 3 is a redelivery
        for dev in devices:
            result = store.write_batches([_batch(dev, seq, n=5)])
            gaps += result.seq_gaps
            stored += result.stored
        assert len(store._series_ids) <= 6 and len(store._known_devices) <= 4
    assert gaps == 8
    assert stored == 8 * 5 * 3  # the redelivered seq 3 stored nothing
    assert store.count_points() == stored

    async def catalog() -> tuple[int, list[tuple[str, int]]]:
        async with store._db.acquire() as conn:
            series = await conn.fetchval("SELECT count(*) FROM series")
            rows = await conn.fetch("SELECT id, last_seq FROM devices ORDER BY id")
            return int(series), [(r["id"], r["last_seq"]) for r in rows]

    series, last = store._loop.run(catalog(), 10)
    assert series == 8 * 5  # a miss found the existing series, never made a second one
    assert last == [(dev, 4) for dev in devices]
    for dev in devices:
        assert [p.value for p in store.series(dev, "t0", T0, T0 + 10_000, 10)] == [1.0, 3.0, 4.0]
