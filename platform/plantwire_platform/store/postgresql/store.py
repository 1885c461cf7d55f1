"""`Store` on PostgreSQL through asyncpg: many workers and platform replicas may write at once.

The `Store` protocol is synchronous; asyncpg is async. So the store owns a private event loop in
a thread (`LoopThread`) with a connection pool on it; every method submits a coroutine and waits.

Writes (`write_batches`), in one transaction per call:
1. series ids are resolved first, outside the transaction: `INSERT ... ON CONFLICT DO NOTHING`
   then a `SELECT` of the ids. The ids are the database's, so the in-process cache of them can
   never disagree with another worker's; partitions are created ahead the same way;
2. the devices' rows are locked in id order (`SELECT ... FOR UPDATE`): two workers writing the
   same device take turns, which makes the sequence-gap count exact and rules out deadlocks;
3. the points go by COPY (`copy_records_to_table`) into a per-connection temporary table, then
   `INSERT INTO points SELECT ... ON CONFLICT DO NOTHING`: a redelivered point is a no-op, and
   the INSERT's row count is the number of new points (exactly-once, as SQLite's INSERT OR IGNORE);
4. `last_seq` moves up only (`greatest`), and this instance's shard of the point counter grows.

Errors of asyncpg and of the connection become `StoreError`; the ingest retries a failed write
(it acknowledges MQTT messages only after a successful return). The DSN is never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
from collections.abc import Coroutine, Sequence
from typing import Any, Final, TypeVar

import asyncpg

from plantwire.logs import get_logger
from plantwire.loop_thread import LoopThread
from plantwire.wire import DeviceMeta, DeviceStatus, GatewayStatus, JsonValue, now_us
from plantwire_platform.store import value_shapes
from plantwire_platform.store.bounded_cache import TwoGenerationCache
from plantwire_platform.store.device_changes import GATEWAY_COUNTS, ChangeCursor, DeviceChange
from plantwire_platform.store.device_query import DevicePage, DeviceQuery
from plantwire_platform.store.model import (
    AGGREGATES,
    Agg,
    AlarmRecord,
    AuditEntry,
    Bucket,
    DerivedPoint,
    DeviceRecord,
    IncomingBatch,
    LatestValue,
    Point,
    Registration,
    StoreError,
    TagRecord,
    WriteResult,
)
from plantwire_platform.store.postgresql import (
    catalog,
    device_changes,
    ownership,
    rollups,
    schema,
    schema_value_types,
)
from plantwire_platform.store.postgresql import registrations as registrations_sql
from plantwire_platform.store.postgresql.settings import PostgresSettings
from plantwire_platform.store.postgresql.values import (
    BOOLEAN,
    NUMERIC_SQL,
    VALUE_COLUMNS,
    from_columns,
    to_columns,
)
from plantwire_platform.store.retention import Horizons
from plantwire_platform.store.seq_tracking import DEFAULT_MAX_SEQ_JUMP, advance

__all__ = ["PostgresSettings", "PostgresStore"]

log = get_logger(__name__)
T = TypeVar("T")
Record = tuple[int, int, float | None, int | None, str | None, str | None, int]
_STAGING_COLUMNS: Final = ("series_id", "ts", *VALUE_COLUMNS, "status")
_COUNTER_SHARDS: Final = 1024
SERIES_CACHE_MAX: Final = 200_000
"""Series ids one store instance keeps in memory at most."""
KNOWN_DEVICES_MAX: Final = 200_000
"""Devices one store instance remembers as registered (a miss re-runs the idempotent registration)."""
_RETRY_S: Final = 0.2
MERGE_EVERY_S: Final = 2.0
"""Seconds between two merges of the pending rollup notes (each instance merges; SKIP LOCKED)."""

_LOCK_DEVICES: Final = "SELECT id, last_seq FROM devices WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE"
_POINT_COLUMNS: Final = ", ".join(_STAGING_COLUMNS)
_INSERT_STAGED: Final = (
    f"INSERT INTO points ({_POINT_COLUMNS}) SELECT {_POINT_COLUMNS} FROM {schema.STAGING} "
    "ON CONFLICT (series_id, ts) DO NOTHING"
)
_ROWS_SQL: Final = (
    "SELECT ts, fval, ival, sval, jval FROM points WHERE series_id = $1 AND ts >= $2 AND ts < $3 ORDER BY ts"
)
_SERIES_SQL: Final = (
    "SELECT ts, fval, ival, sval, jval, status FROM points "
    "WHERE series_id = $1 AND ts >= $2 AND ts < $3 ORDER BY ts LIMIT $4"
)
_LATEST_SQL: Final = """
SELECT s.tag, p.ts, p.fval, p.ival, p.sval, p.jval, p.status, s.unit, s.data_type
FROM series s
CROSS JOIN LATERAL (
    SELECT ts, fval, ival, sval, jval, status FROM points
    WHERE series_id = s.series_id ORDER BY ts DESC LIMIT 1
) p
WHERE s.device = $1
ORDER BY s.tag
"""
_BUCKET_START: Final = "(ts - ((ts % $1) + $1) % $1)"
"""The bucket a point falls in: ts rounded down (floor, also before 1970) to a multiple of `every`."""
_AGG_SQL: Final[dict[str, str]] = {
    "avg": f"avg({NUMERIC_SQL}), NULL::bigint, NULL::text, NULL::jsonb",
    "min": "min(fval), min(ival), NULL::text, NULL::jsonb",
    "max": "max(fval), max(ival), NULL::text, NULL::jsonb",
    "last": ", ".join(f"(array_agg({c} ORDER BY ts DESC))[1]" for c in VALUE_COLUMNS),
    "count": "NULL::float8, count(*), NULL::text, NULL::jsonb",
    "first": ", ".join(f"(array_agg({c} ORDER BY ts ASC))[1]" for c in VALUE_COLUMNS),
}


def _describe(err: BaseException) -> str:
    """One line about a database error, without the DSN."""
    if isinstance(err, asyncpg.PostgresError):
        return f"PostgreSQL: {err.sqlstate} {type(err).__name__}: {err}"
    if isinstance(err, TimeoutError):
        return "PostgreSQL did not answer in time"
    return f"PostgreSQL: {type(err).__name__}: {err}"


def _pick(agg: str, fval: float | None, ival: int | None) -> float | int | None:
    """min/max over the two numeric columns: the smaller (larger) one, in the type it was stored in."""
    if fval is None or ival is None:
        return ival if fval is None else fval
    if agg == "min":
        return ival if ival <= fval else fval
    return ival if ival >= fval else fval


class PostgresStore:
    """`Store` on a PostgreSQL database. Open with `PostgresStore.open(settings)`; thread-safe."""

    def __init__(
        self, settings: PostgresSettings, loop: LoopThread, merge_every_s: float | None = MERGE_EVERY_S
    ) -> None:
        self.settings = settings
        self._merge_every_s = merge_every_s
        self._merger: asyncio.Task[None] | None = None
        self._backlog: int | None = None
        self._loop = loop
        self._pool: asyncpg.Pool | None = None
        self._width = schema.WIDTH_US[settings.partition]
        self.points_kind: schema.PointsKind = "partitioned"
        # Bounded (store/bounded_cache.py): a miss asks the database again, which always answers right.
        self._series_ids: TwoGenerationCache[tuple[str, str], int] = TwoGenerationCache(SERIES_CACHE_MAX)
        self._json_series: set[int] = set()
        self._partitions: set[int] = set()
        self._known_devices: TwoGenerationCache[str, bool] = TwoGenerationCache(KNOWN_DEVICES_MAX)
        self._shard = random.randrange(_COUNTER_SHARDS)
        self.rollups = False
        """Whether bucketed queries may read rollups (not on a TimescaleDB hypertable)."""
        self._closed = False
        self._instance_conn: asyncpg.pool.PoolConnectionProxy | None = None
        self.max_seq_jump = DEFAULT_MAX_SEQ_JUMP
        """Steps of `seq` beyond this are counted as jumps, not gaps (store/seq_tracking.py)."""

    # --- lifecycle -------------------------------------------------------------------------------

    @classmethod
    def open(cls, settings: PostgresSettings, merge_every_s: float | None = MERGE_EVERY_S) -> PostgresStore:
        """Connect (waiting up to `startup_timeout_s`), create what is missing; raises `StoreError`.

        `merge_every_s`: seconds between two merges of the pending rollup notes by this instance
        (store.postgresql.rollups.merge); None merges only when asked (`merge_rollups`).
        """
        store = cls(settings, LoopThread("postgres-store"), merge_every_s)
        try:
            store._loop.run(store._start(), settings.startup_timeout_s + settings.request_timeout_s + 5)
        except TimeoutError as err:
            store.close()
            raise StoreError(_describe(err)) from err
        except BaseException:
            store.close()
            raise
        log.info("postgres_store_opened", schema=settings.schema_name, points=store.points_kind)
        return store

    async def _start(self) -> None:
        s = self.settings
        deadline = asyncio.get_running_loop().time() + s.startup_timeout_s
        while True:
            try:
                self._pool = await asyncpg.create_pool(
                    s.dsn.get_secret_value(),
                    min_size=1,
                    max_size=s.pool_max,
                    command_timeout=s.request_timeout_s,
                    server_settings={"search_path": s.schema_name, "application_name": "plantwire"},
                    init=self._init_connection,
                )
                break
            except (OSError, asyncpg.CannotConnectNowError) as err:
                if asyncio.get_running_loop().time() >= deadline:
                    raise StoreError(f"cannot reach PostgreSQL: {_describe(err)}") from err
                await asyncio.sleep(_RETRY_S)
            except (asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as err:
                raise StoreError(f"cannot open the PostgreSQL store: {_describe(err)}") from err
        try:
            async with self._pool.acquire() as conn:
                self.points_kind = await schema.create(conn, s.schema_name, s.timescaledb, self._width)
                await ownership.create(conn)
                await schema_value_types.migrate(conn, s.schema_name)
                await device_changes.migrate(conn, s.schema_name)
                if self.points_kind == "partitioned":
                    await rollups.create(conn, s.schema_name, now_us())
                    self.rollups = True
                    if self._merge_every_s is not None:
                        self._merger = asyncio.create_task(self._merge_loop(self._merge_every_s))
                if self.points_kind == "partitioned":
                    today = now_us() // self._width
                    await schema.create_partitions(
                        conn, list(range(today, today + s.partitions_ahead + 1)), self._width
                    )
                    self._partitions = await schema.existing_partitions(conn, self._width)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as err:
            raise StoreError(f"cannot create the PostgreSQL schema: {_describe(err)}") from err

    async def _merge_loop(self, every_s: float) -> None:
        """Merge the pending rollup notes every `every_s` until cancelled (at close)."""
        while True:
            await asyncio.sleep(every_s)
            try:
                await rollups.merge(self._db, counted=self._counted)
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as err:
                log.warning("rollup_merge_failed", error=_describe(err))

    async def _stop_merger(self) -> None:
        if self._merger is not None:
            self._merger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._merger

    @staticmethod
    async def _init_connection(conn: asyncpg.Connection) -> None:
        await conn.execute(schema.STAGING_DDL)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._pool is not None:
            try:
                self._loop.run(self._stop_merger(), 10)  # what is left stays pending, durable
                if self._instance_conn is not None:  # a released connection drops its advisory locks
                    self._loop.run(self._pool.release(self._instance_conn), 10)
                self._loop.run(self._pool.close(), 10)
            except (TimeoutError, asyncpg.PostgresError, OSError) as err:
                log.warning("postgres_close_failed", error=_describe(err))
        self._loop.stop()

    def hold_instance_lock(self, name: str) -> bool:
        """Hold a session advisory lock named `name` (in this database and schema) until `close`;
        False when another session holds it. The platform names it after its MQTT client id: two
        processes with one client id on one database would take each other's MQTT session."""
        key = int.from_bytes(
            hashlib.blake2b(f"{self.settings.schema_name}\0{name}".encode(), digest_size=8).digest(),
            "big",
            signed=True,
        )
        return self._run(self._hold(key))

    async def _hold(self, key: int) -> bool:
        conn = await self._db.acquire()
        if await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
            self._instance_conn = conn
            return True
        await self._db.release(conn)
        return False

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coro.close()
            raise StoreError("the store is closed")
        try:
            return self._loop.run(coro, self.settings.request_timeout_s + 5)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as err:
            # What we believed to exist may be what failed (a partition dropped by an operator).
            self._partitions.clear()
            self._series_ids.clear()
            self._known_devices.clear()
            raise StoreError(f"store call failed: {_describe(err)}") from err

    @property
    def _db(self) -> asyncpg.Pool:
        assert self._pool is not None, "opened by PostgresStore.open"
        return self._pool

    # --- write side ------------------------------------------------------------------------------

    def write_batches(self, batches: Sequence[IncomingBatch]) -> WriteResult:
        return self._run(self._write_batches(batches))

    async def _write_batches(self, batches: Sequence[IncomingBatch]) -> WriteResult:
        if not batches:
            return WriteResult(0, 0, 0)
        gateways = {b.device: b.gateway for b in batches}
        wanted = {(b.device, s.tag): s.value for b in batches for s in b.batch.samples}
        ids = await self._ensure_series(wanted)
        records: list[Record] = [
            (ids[(b.device, s.tag)], s.ts, *to_columns(s.value), s.status)
            for b in batches
            for s in b.batch.samples
        ]
        await self._ensure_partitions(records)
        await self._mark_json_series({r[0] for r in records if r[5] is not None})
        async with self._db.acquire() as conn, conn.transaction():
            last = await self._lock_devices(conn, gateways)
            gaps = jumps = 0
            for b in batches:
                step = advance(last[b.device], b.batch.seq, self.max_seq_jump)
                gaps += step.gaps
                jumps += step.jumped
                last[b.device] = step.last
            stored = await self._insert_points(conn, records)
            await conn.execute(
                "UPDATE devices d SET last_seq = v.seq FROM unnest($1::text[], $2::bigint[]) AS v(id, seq) "
                "WHERE d.id = v.id AND v.seq > d.last_seq",
                list(last),
                list(last.values()),
            )
        for device in last:
            self._known_devices.put(device, True)
        return WriteResult(stored=stored, duplicates=len(records) - stored, seq_gaps=gaps, seq_jumps=jumps)

    async def _lock_devices(self, conn: asyncpg.Connection, gateways: dict[str, str]) -> dict[str, int]:
        """Lock the devices' rows in id order (registering unknown ones); their last sequence numbers.

        Devices are never deleted, so once one is seen the registering INSERT is skipped; should a
        row be missing anyway, the INSERT runs and the lock is taken again.
        """
        devices = sorted(gateways)
        known = self._known_devices
        if not all(d in known for d in devices):
            await self._register_devices(conn, devices, gateways)
        rows = await conn.fetch(_LOCK_DEVICES, devices)
        if len(rows) < len(devices):
            await self._register_devices(conn, devices, gateways)
            rows = await conn.fetch(_LOCK_DEVICES, devices)
        return {r["id"]: r["last_seq"] for r in rows}

    @staticmethod
    async def _register_devices(
        conn: asyncpg.Connection, devices: list[str], gateways: dict[str, str]
    ) -> None:
        await conn.execute(
            "INSERT INTO devices (id, gateway, first_seen) SELECT id, gw, $3 "
            "FROM unnest($1::text[], $2::text[]) AS v(id, gw) ORDER BY id ON CONFLICT (id) DO NOTHING",
            devices,
            [gateways[d] for d in devices],
            now_us(),
        )

    async def _insert_points(self, conn: asyncpg.Connection, records: list[Record]) -> int:
        """COPY into the staging table (emptied at commit), insert what is new; returns how many were new."""
        if not records:
            return 0
        await conn.copy_records_to_table(schema.STAGING, records=records, columns=_STAGING_COLUMNS)
        status = await conn.execute(_INSERT_STAGED)
        stored = int(status.rsplit(" ", 1)[-1])
        if stored:
            await conn.execute(
                "INSERT INTO counters (shard, points) VALUES ($1, $2) "
                "ON CONFLICT (shard) DO UPDATE SET points = counters.points + excluded.points",
                self._shard,
                stored,
            )
        return stored

    async def _ensure_series(self, wanted: dict[tuple[str, str], JsonValue]) -> dict[tuple[str, str], int]:
        """Ids of these (device, tag) series, creating the missing ones (committed at once)."""
        cache = self._series_ids
        ids: dict[tuple[str, str], int] = {}
        missing = []
        for k in wanted:
            sid = cache.get(k)
            if sid is None:
                missing.append(k)
            else:
                ids[k] = sid
        missing.sort()
        if missing:
            devices = [d for d, _ in missing]
            tags = [t for _, t in missing]
            # Only the type is guessed (so booleans read back as booleans); meta fills in the rest.
            types = [BOOLEAN if isinstance(wanted[k], bool) else None for k in missing]
            async with self._db.acquire() as conn:
                await conn.execute(
                    "INSERT INTO series (device, tag, data_type) "
                    "SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT DO NOTHING",
                    devices,
                    tags,
                    types,
                )
                rows = await conn.fetch(
                    "SELECT s.series_id, s.device, s.tag FROM series s "
                    "JOIN unnest($1::text[], $2::text[]) AS v(device, tag) "
                    "ON s.device = v.device AND s.tag = v.tag",
                    devices,
                    tags,
                )
            for r in rows:
                key = (r["device"], r["tag"])
                ids[key] = r["series_id"]
                cache.put(key, r["series_id"])
        return ids

    async def _mark_json_series(self, sids: set[int]) -> None:
        """Flag series that hold arrays or structures (once per series and process; idempotent)."""
        new = sids - self._json_series
        if new:
            await self._db.execute(
                "UPDATE series SET json_values = true WHERE series_id = ANY($1::int[]) AND NOT json_values",
                sorted(new),
            )
            self._json_series |= new

    async def _ensure_partitions(self, records: list[Record]) -> None:
        if self.points_kind != "partitioned":
            return
        width = self._width
        missing = {r[1] // width for r in records} - self._partitions
        if missing:
            async with self._db.acquire() as conn:
                await schema.create_partitions(conn, sorted(missing), width)
            self._partitions |= missing

    def write_derived(self, app: str, points: Sequence[DerivedPoint]) -> int:
        if not points:
            return 0
        return self._run(self._write_derived(app, points))

    async def _write_derived(self, app: str, points: Sequence[DerivedPoint]) -> int:
        devices = sorted({p.device for p in points})
        async with self._db.acquire() as conn:
            await conn.execute(
                "INSERT INTO devices (id, gateway, first_seen) SELECT id, 'apps', $2 "
                "FROM unnest($1::text[]) AS v(id) ORDER BY id ON CONFLICT (id) DO NOTHING",
                devices,
                now_us(),
            )
        ids = await self._ensure_series({(p.device, p.tag): p.value for p in points})
        records: list[Record] = [
            (ids[(p.device, p.tag)], p.ts, *to_columns(p.value), p.status) for p in points
        ]
        await self._ensure_partitions(records)
        units: dict[int, str | None] = {}
        for p in points:
            units.setdefault(ids[(p.device, p.tag)], p.unit)
        async with self._db.acquire() as conn, conn.transaction():
            marked = sorted(units)
            await conn.execute(
                "UPDATE series s SET derived_by = $1, unit = coalesce(v.unit, s.unit) "
                "FROM unnest($2::int[], $3::text[]) AS v(id, unit) WHERE s.series_id = v.id",
                app,
                marked,
                [units[i] for i in marked],
            )
            return await self._insert_points(conn, records)

    def apply_meta(self, gateway: str, device: str, meta: DeviceMeta) -> None:
        self.apply_registrations([Registration(gateway, device, meta)])

    def apply_device_status(self, gateway: str, device: str, status: DeviceStatus) -> None:
        self.apply_registrations([Registration(gateway, device, status)])

    def apply_gateway_status(self, gateway: str, status: GatewayStatus) -> None:
        self.apply_registrations([Registration(gateway, None, status)])

    def apply_registrations(self, registrations: Sequence[Registration]) -> None:
        self._run(registrations_sql.apply(self._db, registrations))

    # --- read side -------------------------------------------------------------------------------

    def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        return self._run(self._db.fetch(sql, *args))

    def list_devices(self) -> list[DeviceRecord]:
        return [DeviceRecord(*r) for r in self._fetch(catalog.DEVICE_SELECT + " ORDER BY d.id")]

    def page_devices(self, query: DeviceQuery) -> DevicePage:
        where, params = catalog.device_where(query)
        total = int(self._run(self._db.fetchval("SELECT count(*) FROM devices" + where, *params)))
        if query.limit <= 0 or query.offset >= total:
            return DevicePage([], total)
        n = len(params)
        ids = f"SELECT id FROM devices{where} ORDER BY id LIMIT ${n + 1} OFFSET ${n + 2}"
        rows = self._fetch(
            f"{catalog.DEVICE_SELECT} WHERE d.id IN ({ids}) ORDER BY d.id", *params, query.limit, query.offset
        )
        return DevicePage([DeviceRecord(*r) for r in rows], total)

    def gateway_device_counts(self) -> list[tuple[str, int]]:
        return [(r[0], int(r[1])) for r in self._fetch(GATEWAY_COUNTS)]

    def changed_devices(self, after: ChangeCursor, limit: int) -> list[DeviceChange]:
        return self._run(device_changes.changes(self._db, after, limit))

    def get_device(self, device: str) -> DeviceRecord | None:
        rows = self._fetch(catalog.DEVICE_SELECT + " WHERE d.id = $1", device)
        return DeviceRecord(*rows[0]) if rows else None

    def list_tags(self, device: str) -> list[TagRecord]:
        return [catalog.tag_record(r) for r in self._fetch(catalog.TAGS_SELECT, device)]

    def device_owner(self, device: str) -> str | None:
        return self._run(ownership.owner(self._db, device))

    def claim_device(self, gateway: str, device: str) -> str:
        return self._run(ownership.claim(self._db, gateway, device))

    def claim_devices(self, claims: Sequence[tuple[str, str]]) -> dict[str, str]:
        return self._run(ownership.claim_many(self._db, claims))

    def move_device(self, device: str, gateway: str) -> str | None:
        return self._run(ownership.move(self._db, device, gateway))

    def latest(self, device: str) -> list[LatestValue]:
        return [
            LatestValue(tag, ts, from_columns(f, i, s, j, data_type), status, unit)
            for tag, ts, f, i, s, j, status, unit, data_type in self._fetch(_LATEST_SQL, device)
        ]

    def _series_info(self, device: str, tag: str) -> tuple[int, str | None, bool] | None:
        rows = self._fetch(
            "SELECT series_id, data_type, json_values FROM series WHERE device = $1 AND tag = $2", device, tag
        )
        return (rows[0][0], rows[0][1], rows[0][2]) if rows else None

    def series(self, device: str, tag: str, start: int, end: int, limit: int) -> list[Point]:
        info = self._series_info(device, tag)
        if info is None or limit <= 0:
            return []
        sid, data_type, _ = info
        rows = self._fetch(_SERIES_SQL, sid, start, end, limit)
        return [Point(ts, from_columns(f, i, s, j, data_type), q) for ts, f, i, s, j, q in rows]

    def buckets(self, device: str, tag: str, start: int, end: int, every: int, agg: Agg) -> list[Bucket]:
        if agg not in AGGREGATES:
            raise ValueError(f"unknown aggregate {agg!r}; use one of {', '.join(AGGREGATES)}")
        if every <= 0:
            raise ValueError("bucket width `every` must be a positive number of microseconds")
        info = self._series_info(device, tag)
        if info is None:
            return []
        sid, data_type, json_values = info
        if value_shapes.aggregates_in_python(data_type, json_values):
            return self._run(self._python_buckets(sid, start, end, every, agg, data_type))
        typed = data_type if agg in ("min", "max", "first", "last") else None
        rolled = self._run(self._rollup_rows(sid, start, end, every, agg)) if self.rollups else None
        if rolled is not None:
            return [
                Bucket(b, from_columns(None, v, None, None, typed) if type(v) is int else v, n)
                for b, v, n in rolled
            ]
        sql = (
            f"SELECT {_BUCKET_START} AS b, {_AGG_SQL[agg]}, count(*) FROM points "
            "WHERE series_id = $2 AND ts >= $3 AND ts < $4 GROUP BY b ORDER BY b"
        )
        out = []
        for b, f, i, s, j, n in self._fetch(sql, every, sid, start, end):
            value: JsonValue
            if agg in ("min", "max"):
                picked = _pick(agg, f, i)
                value = from_columns(None, picked, None, None, typed) if type(picked) is int else picked
            else:
                value = from_columns(f, i, s, j, typed)
            out.append(Bucket(b, value, n))
        return out

    async def _rollup_rows(
        self, sid: int, start: int, end: int, every: int, agg: Agg
    ) -> list[tuple[int, JsonValue, int]] | None:
        async with self._db.acquire() as conn:
            return await rollups.bucket_rows(conn, sid, start, end, every, agg)

    def merge_rollups(self) -> int:
        """Merge the pending rollup notes now (every `merge_every_s` otherwise); returns how many."""
        return self._run(rollups.merge(self._db, counted=self._counted))

    def _counted(self, pending: int) -> None:
        self._backlog = pending

    def rollup_backlog(self) -> int | None:
        return self._backlog

    def pending_rollups(self) -> int:
        """Stored points not merged into the rollups yet (queries fold them in)."""
        return int(self._run(self._db.fetchval("SELECT count(*) FROM rollup_pending")))

    def enforce_retention(self, horizons: Horizons) -> dict[str, int]:
        """Retention per tier (store.retention), in store.postgresql.rollups; partitions dropped whole."""
        return self._run(self._enforce_retention(horizons))

    async def _enforce_retention(self, horizons: Horizons) -> dict[str, int]:
        width = self._width if self.points_kind == "partitioned" else None
        deleted, dropped = await rollups.enforce_retention(self._db, horizons, self._shard, width)
        self._partitions.difference_update(dropped)  # a late point there creates it again
        return deleted

    async def _python_buckets(
        self, sid: int, start: int, end: int, every: int, agg: Agg, data_type: str | None
    ) -> list[Bucket]:
        """Buckets of an array, structure or UInt64 series, streamed through a cursor bucket by bucket."""
        out: list[Bucket] = []
        index: int | None = None
        values: list[JsonValue] = []

        def close_bucket() -> None:
            if index is not None and values:
                value, skipped = value_shapes.aggregate(values, agg, data_type)
                out.append(Bucket(index * every, value, len(values), skipped))

        async with self._db.acquire() as conn, conn.transaction():
            async for r in conn.cursor(_ROWS_SQL, sid, start, end, prefetch=5000):
                k = r[0] // every
                if k != index:
                    close_bucket()
                    index, values = k, []
                values.append(from_columns(r[1], r[2], r[3], r[4], data_type))
        close_bucket()
        return out

    def count_points(self) -> int:
        return int(self._run(self._db.fetchval("SELECT coalesce(sum(points), 0) FROM counters")))

    # --- apps: alarms ----------------------------------------------------------------------------

    def raise_alarm(
        self, app: str, device: str, tag: str, severity: str, message: str, ts: int
    ) -> AlarmRecord:
        catalog.check_severity(severity)
        return self._run(catalog.raise_alarm(self._db, app, device, tag, severity, message, ts))

    def clear_alarm(self, app: str, device: str, tag: str, ts: int) -> AlarmRecord | None:
        return self._run(catalog.clear_alarm(self._db, app, device, tag, ts))

    def ack_alarm(self, alarm_id: int, by: str, ts: int) -> AlarmRecord | None:
        return self._run(catalog.ack_alarm(self._db, alarm_id, by, ts))

    def list_alarms(
        self, active_only: bool = False, device: str | None = None, app: str | None = None, limit: int = 1000
    ) -> list[AlarmRecord]:
        return self._run(catalog.list_alarms(self._db, active_only, device, app, limit))

    # --- audit of commands -----------------------------------------------------------------------

    def add_audit(self, entry: AuditEntry) -> AuditEntry:
        return self._run(catalog.add_audit(self._db, entry))

    def prune_audit(self, keep_rows: int, before_ts: int) -> int:
        return self._run(catalog.prune_audit(self._db, keep_rows, before_ts))

    def list_audit(
        self, limit: int = 100, device: str | None = None, before_id: int | None = None
    ) -> list[AuditEntry]:
        return self._run(catalog.list_audit(self._db, limit, device, before_id))
