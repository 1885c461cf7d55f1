"""The embedded time-series store: one SQLite file in WAL mode.

Why it looks like this (measured with bench/store.py):

- `points` is a WITHOUT ROWID table keyed (group of series, ts, series_id) (store/sqlite_points.py):
  the key *is* the table, so an insert is one B-tree write, a series read is a range scan of its
  group, and `INSERT OR IGNORE` on the key makes a redelivered message a no-op (idempotent writes,
  counted through the statement's row count). Grouping neighbouring series keeps a commit's
  points on few pages however long the history (bench/store_history.py).
- A plant's writes interleave across many series, so the cost is dominated by commits: the
  ingest writer groups many messages into one transaction (`write_batches`).
- WAL with synchronous=NORMAL: readers never wait for the writer; a power cut may lose the last
  commits but never corrupts the file (MQTT messages are acknowledged only after commit anyway).
  Checkpoints run in a thread of their own, never inside a commit (store/wal_checkpointer.py).
- One writer connection, used by one thread (the ingest writer), with in-memory caches of series
  ids and per-device sequence numbers. Readers get a connection per thread. The rollup merger
  (store/rollup_merger.py) has its own connection and thread and takes turns with the writer.
- `latest()` reads `latest_points`, one row per series, kept in the transaction that stores points.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import orjson

from plantwire.wire import DeviceMeta, DeviceStatus, GatewayStatus, JsonValue, Value, now_us
from plantwire_platform.store import (
    device_changes,
    registry,
    sqlite_points,
    sqlite_rollups,
    value_shapes,
    value_types_schema,
    wal_checkpointer,
)
from plantwire_platform.store.app_tables import ALARMS_SCHEMA, AlarmTable
from plantwire_platform.store.audit_table import AUDIT_SCHEMA, AuditTable
from plantwire_platform.store.bounded_cache import TwoGenerationCache
from plantwire_platform.store.device_changes import ChangeCursor, DeviceChange
from plantwire_platform.store.device_query import DevicePage, DeviceQuery, sqlite_page
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
from plantwire_platform.store.ownership_table import OWNERS_SCHEMA, OwnerTable
from plantwire_platform.store.retention import Horizons
from plantwire_platform.store.rollup_merger import DEFAULT_EVERY_S, RollupMerger
from plantwire_platform.store.seq_tracking import DEFAULT_MAX_SEQ_JUMP, advance

SCHEMA_VERSION: Final = 1
SERIES_CACHE_MAX: Final = 200_000
"""Series ids the writer keeps in memory at most (~60 MB at 1M series otherwise ~280 MB: bench/devices.py)."""
LAST_SEQ_CACHE_MAX: Final = 200_000
"""Devices whose last committed seq the writer keeps in memory (a miss reads the devices table)."""
BOOLEAN: Final = "Boolean"
_INT64_MAX: Final = 2**63 - 1

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS gateways (
    id      TEXT PRIMARY KEY,
    state   TEXT NOT NULL DEFAULT 'unknown',
    since   INTEGER,
    version TEXT
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS devices (
    id          TEXT PRIMARY KEY,
    gateway     TEXT NOT NULL,
    endpoint    TEXT,
    root        TEXT,
    state       TEXT NOT NULL DEFAULT 'unknown',
    state_since INTEGER,
    error       TEXT,
    first_seen  INTEGER NOT NULL,
    last_seq    INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- One row per (device, tag): the small integer id keeps the points key short.
-- `derived_by` names the app that computes a derived series (NULL for device tags).
CREATE TABLE IF NOT EXISTS series (
    series_id   INTEGER PRIMARY KEY,
    device      TEXT NOT NULL,
    tag         TEXT NOT NULL,
    node_id     TEXT,
    data_type   TEXT,
    unit        TEXT,
    description TEXT,
    writable    INTEGER NOT NULL DEFAULT 0,
    low         REAL,
    high        REAL,
    derived_by  TEXT,
    UNIQUE (device, tag)
);

-- Running totals so that health checks never scan `points`.
CREATE TABLE IF NOT EXISTS counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO counters (name, value) VALUES ('points', 0);
"""

_NUMERIC: Final = "CASE WHEN typeof(value) IN ('integer', 'real') THEN value END"
_AGG_SQL: Final[dict[str, str]] = {
    "avg": f"avg({_NUMERIC})",
    "min": f"min({_NUMERIC})",
    "max": f"max({_NUMERIC})",
    # SQLite documents that a bare column next to max() comes from the row holding the max.
    "last": "value, max(ts)",
    "count": "count(*)",
    "first": "value, min(ts)",
}

_INSERT_POINT: Final = sqlite_points.INSERT

_DEVICE_SELECT: Final = """
SELECT d.id, d.gateway, d.endpoint, d.state, d.state_since, d.error,
       coalesce(g.state, 'unknown'),
       (SELECT count(*) FROM series s WHERE s.device = d.id),
       d.first_seen,
       (SELECT max(l.ts) FROM series s JOIN latest_points l ON l.series_id = s.series_id
          WHERE s.device = d.id),
       d.last_seq, g.since
FROM devices d LEFT JOIN gateways g ON g.id = d.gateway
"""

# One look-up of `latest_points` per tag (store/sqlite_points.py keeps it).
_LATEST_SQL: Final = """
SELECT s.tag, l.ts, l.value, l.status, s.unit, s.data_type
FROM series s
JOIN latest_points l ON l.series_id = s.series_id
WHERE s.device = ?
ORDER BY s.tag
"""

_EDGE_SQL: Final = f"SELECT ts FROM points WHERE {sqlite_points.RANGE} ORDER BY ts {{order}} LIMIT 1"
_MAX_BUCKET_QUERIES: Final = 5000
"""Above this many buckets, one GROUP BY beats a range query per bucket."""

_ROWS_SQL: Final = f"SELECT ts, value FROM points WHERE {sqlite_points.RANGE} ORDER BY ts"

_SERIES_SQL: Final = f"""
SELECT ts, value, status FROM points
WHERE {sqlite_points.RANGE}
ORDER BY ts LIMIT ?4
"""


def _bool_value(value: Value) -> Value:
    return bool(value) if isinstance(value, int | float) else value


def _read(value: Any, data_type: str | None) -> JsonValue:
    """A stored value as the API gives it: BLOBs decoded, Boolean tags as booleans."""
    if type(value) is bytes:
        return orjson.loads(value)  # a list or dict: write_batches keeps only those as BLOBs
    return _bool_value(value) if data_type == BOOLEAN else value


def _clamp_ints(rows: Iterable[tuple[int, int, JsonValue, int]]) -> list[tuple[int, int, JsonValue, int]]:
    """SQLite integers are 64-bit; a larger integer is kept as a float rather than refused."""
    return [
        (sid, ts, float(v) if type(v) is int and not -_INT64_MAX - 1 <= v <= _INT64_MAX else v, q)
        for sid, ts, v, q in rows
    ]


def _insert_points(conn: sqlite3.Connection, rows: list[tuple[int, int, JsonValue, int]]) -> int:
    """Insert the rows, duplicates ignored, and keep the latest point per series; returns how
    many were new.

    The statement's own row count: the rollup trigger's notes are not in it (they are merged
    into the rollups later, off this path: store.sqlite_rollups, store.rollup_merger).
    An integer beyond 64 bits (only a caller bypassing the wire decoder, or an app, can send one)
    undoes the partial insert and is kept as a float.
    """
    conn.execute("SAVEPOINT insert_points")
    try:
        cursor = conn.executemany(_INSERT_POINT, rows)
    except OverflowError:
        conn.execute("ROLLBACK TO insert_points")
        rows = _clamp_ints(rows)
        cursor = conn.executemany(_INSERT_POINT, rows)
    stored = cursor.rowcount
    conn.executemany(sqlite_points.LATEST, sqlite_points.newest_per_series(rows))
    conn.execute("RELEASE insert_points")
    return stored


class SqliteStore:
    """`Store` on one SQLite file. Write methods: one thread only. Read methods: any thread."""

    def __init__(
        self,
        path: Path,
        writer: sqlite3.Connection,
        max_seq_jump: int = DEFAULT_MAX_SEQ_JUMP,
        merge_every_s: float | None = DEFAULT_EVERY_S,
        checkpoint_every_s: float = wal_checkpointer.DEFAULT_EVERY_S,
    ) -> None:
        self.path = path
        self._max_seq_jump = max_seq_jump
        self._writer = writer
        # Bounded caches of the writer (store/bounded_cache.py): a miss is one indexed lookup.
        self._series_ids: TwoGenerationCache[tuple[str, str], int] = TwoGenerationCache(SERIES_CACHE_MAX)
        self._last_seq: TwoGenerationCache[str, int] = TwoGenerationCache(LAST_SEQ_CACHE_MAX)
        self._json_series: set[int] = set()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        # Ingest and apps (derived points, alarms) share the one writer connection, one at a time.
        self._write_lock = threading.Lock()
        self._alarms = AlarmTable(self._transaction, self._query)
        self._audit = AuditTable(self._transaction, self._query)
        self._owners = OwnerTable(self._transaction, self._query)
        merger = self._connect(path)
        merger.execute("PRAGMA synchronous=NORMAL")
        merger.execute("PRAGMA cache_size=-65536")
        merger.execute("PRAGMA temp_store=MEMORY")
        wal_checkpointer.writer_pragmas(merger)
        self._merger = RollupMerger(merger, self._write_lock, merge_every_s)
        self._checkpointer = wal_checkpointer.WalCheckpointer(
            self._connect(path), self._write_lock, checkpoint_every_s
        )
        self._merger.start()
        self._checkpointer.start()

    # --- lifecycle -------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: Path,
        max_seq_jump: int = DEFAULT_MAX_SEQ_JUMP,
        merge_every_s: float | None = DEFAULT_EVERY_S,
        checkpoint_every_s: float = wal_checkpointer.DEFAULT_EVERY_S,
    ) -> SqliteStore:
        """Open (creating the file, its folders and the schema if needed) a store.

        `merge_every_s`: seconds between two sweeps of the rollup merger (store.rollup_merger);
        None starts no merger (notes stay pending until `merge_rollups`; queries are the same).
        `checkpoint_every_s`: seconds between two WAL checkpoints (store.wal_checkpointer).
        """
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = cls._connect(path)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            # A bigger page cache keeps the interleaved B-tree inserts off the disk between commits.
            conn.execute("PRAGMA cache_size=-65536")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(f"{path} has schema version {version}; this version knows {SCHEMA_VERSION}")
            conn.executescript(_SCHEMA)
            sqlite_points.ensure(conn)
            conn.executescript(ALARMS_SCHEMA)
            conn.executescript(AUDIT_SCHEMA)
            conn.executescript(OWNERS_SCHEMA)
            value_types_schema.ensure_columns(conn)
            device_changes.ensure_sqlite(conn)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            sqlite_rollups.migrate(conn, now_us())
            conn.execute("PRAGMA temp_store=MEMORY")
            sqlite_rollups.attach_writer(conn)
            wal_checkpointer.writer_pragmas(conn)
        except (sqlite3.Error, OSError) as err:
            raise StoreError(f"cannot open the store at {path}: {err}") from err
        try:
            return cls(path, conn, max_seq_jump, merge_every_s, checkpoint_every_s)
        except sqlite3.Error as err:
            conn.close()
            raise StoreError(f"cannot open the store at {path}: {err}") from err

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        # Autocommit mode: transactions are explicit (BEGIN ... COMMIT) so their size is ours to choose.
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
        return conn

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._merger.stop()  # what is left stays pending: the next open merges it
        self._checkpointer.stop()
        with self._readers_lock:
            readers, self._readers = self._readers, []
        for conn in readers:
            conn.close()
        self._writer.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- write side ------------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._writer
        self._write_lock.acquire()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                # Ids and sequence numbers learnt inside the transaction are gone with it.
                self._series_ids.clear()
                self._last_seq.clear()
                self._json_series.clear()
                raise
        except sqlite3.Error as err:
            raise StoreError(f"store write failed: {err}") from err
        finally:
            self._write_lock.release()

    def _device_last_seq(self, conn: sqlite3.Connection, gateway: str, device: str) -> int:
        last = self._last_seq.get(device)
        if last is None:
            conn.execute(
                "INSERT OR IGNORE INTO devices (id, gateway, first_seen) VALUES (?, ?, ?)",
                (device, gateway, now_us()),
            )
            last = conn.execute("SELECT last_seq FROM devices WHERE id = ?", (device,)).fetchone()[0]
            self._last_seq.put(device, last)
        return int(last)

    def _series_id(self, conn: sqlite3.Connection, device: str, tag: str, value: JsonValue) -> int:
        """The id of a series, created on the fly for a tag that `meta` has not described yet."""
        key = (device, tag)
        sid = self._series_ids.get(key)
        if sid is None:
            row = conn.execute("SELECT series_id FROM series WHERE device = ? AND tag = ?", key).fetchone()
            if row is None:
                # Only the type is guessed (so booleans read back as booleans); meta fills in the rest.
                data_type = BOOLEAN if isinstance(value, bool) else None
                row = conn.execute(
                    "INSERT INTO series (device, tag, data_type) VALUES (?, ?, ?) RETURNING series_id",
                    (device, tag, data_type),
                ).fetchone()
            sid = int(row[0])
            self._series_ids.put(key, sid)
        return sid

    def write_batches(self, batches: Sequence[IncomingBatch]) -> WriteResult:
        total = 0
        gaps = jumps = 0
        with self._transaction() as conn:
            rows: list[tuple[int, int, JsonValue, int]] = []
            seq_updates: dict[str, int] = {}
            seq_before: dict[str, int] = {}
            compound: set[int] = set()
            for item in batches:
                device = item.device
                last = seq_updates.get(device)
                if last is None:
                    last = seq_before[device] = self._device_last_seq(conn, item.gateway, device)
                step = advance(last, item.batch.seq, self._max_seq_jump)
                gaps += step.gaps
                jumps += step.jumped
                seq_updates[device] = step.last
                series_ids = self._series_ids.current  # the hot path; `_series_id` on a miss
                for s in item.batch.samples:
                    sid = series_ids.get((device, s.tag))
                    if sid is None:
                        sid = self._series_id(conn, device, s.tag, s.value)
                    v = s.value
                    if type(v) is list or type(v) is dict:
                        compound.add(sid)
                        v = orjson.dumps(v)  # type: ignore[assignment]  # BLOB of the JSON
                    rows.append((sid, s.ts, v, s.status))
            total = len(rows)
            self._mark_json_series(conn, compound)
            stored = _insert_points(conn, rows)
            changed = [(seq, dev) for dev, seq in seq_updates.items() if seq != seq_before[dev]]
            conn.executemany("UPDATE devices SET last_seq = ? WHERE id = ?", changed)
            conn.execute("UPDATE counters SET value = value + ? WHERE name = 'points'", (stored,))
        for dev, seq in seq_updates.items():
            self._last_seq.put(dev, seq)
        return WriteResult(stored=stored, duplicates=total - stored, seq_gaps=gaps, seq_jumps=jumps)

    def _mark_json_series(self, conn: sqlite3.Connection, sids: set[int]) -> None:
        new = sids - self._json_series
        if new:
            conn.executemany("UPDATE series SET json_values = 1 WHERE series_id = ?", [(i,) for i in new])
            self._json_series |= new

    def apply_meta(self, gateway: str, device: str, meta: DeviceMeta) -> None:
        self.apply_registrations([Registration(gateway, device, meta)])

    def apply_device_status(self, gateway: str, device: str, status: DeviceStatus) -> None:
        self.apply_registrations([Registration(gateway, device, status)])

    def apply_gateway_status(self, gateway: str, status: GatewayStatus) -> None:
        self.apply_registrations([Registration(gateway, None, status)])

    def apply_registrations(self, registrations: Sequence[Registration]) -> None:
        if not registrations:
            return
        with self._transaction() as conn:
            registry.apply_registrations(conn, registrations)

    def device_owner(self, device: str) -> str | None:
        return self._owners.owner(device)

    def claim_device(self, gateway: str, device: str) -> str:
        return self._owners.claim(gateway, device)

    def claim_devices(self, claims: Sequence[tuple[str, str]]) -> dict[str, str]:
        return self._owners.claim_many(claims)

    def move_device(self, device: str, gateway: str) -> str | None:
        return self._owners.move(device, gateway)

    # --- read side -------------------------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise StoreError("the store is closed")
            conn = self._connect(self.path)
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            return self._reader().execute(sql, params).fetchall()
        except sqlite3.Error as err:
            raise StoreError(f"store read failed: {err}") from err

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite_rollups.Query]:
        """A query function whose statements all read one snapshot (a read transaction)."""
        conn = self._reader()
        try:
            conn.execute("BEGIN")
        except sqlite3.Error as err:
            raise StoreError(f"store read failed: {err}") from err
        try:
            yield self._query
        finally:
            conn.execute("ROLLBACK")

    def _stream(self, sql: str, params: Sequence[Any] = ()) -> Iterator[Any]:
        """Rows one by one (a long range is never held in memory at once)."""
        try:
            yield from self._reader().execute(sql, params)
        except sqlite3.Error as err:
            raise StoreError(f"store read failed: {err}") from err

    def list_devices(self) -> list[DeviceRecord]:
        return [DeviceRecord(*row) for row in self._query(_DEVICE_SELECT + " ORDER BY d.id")]

    def page_devices(self, query: DeviceQuery) -> DevicePage:
        return sqlite_page(self._query, _DEVICE_SELECT, query)

    def gateway_device_counts(self) -> list[tuple[str, int]]:
        return [(str(g), int(n)) for g, n in self._query(device_changes.GATEWAY_COUNTS)]

    def changed_devices(self, after: ChangeCursor, limit: int) -> list[DeviceChange]:
        return device_changes.sqlite_changes(self._query, after, limit)

    def get_device(self, device: str) -> DeviceRecord | None:
        rows = self._query(_DEVICE_SELECT + " WHERE d.id = ?", (device,))
        return DeviceRecord(*rows[0]) if rows else None

    def list_tags(self, device: str) -> list[TagRecord]:
        return registry.tag_records(self._query(registry.TAGS_SELECT, (device,)))

    def latest(self, device: str) -> list[LatestValue]:
        out = []
        for tag, ts, value, status, unit, data_type in self._query(_LATEST_SQL, (device,)):
            out.append(LatestValue(tag, ts, _read(value, data_type), status, unit))
        return out

    def _series_info(self, device: str, tag: str) -> tuple[int, str | None, bool] | None:
        rows = self._query(
            "SELECT series_id, data_type, json_values FROM series WHERE device = ? AND tag = ?", (device, tag)
        )
        return (rows[0][0], rows[0][1], bool(rows[0][2])) if rows else None

    def series(self, device: str, tag: str, start: int, end: int, limit: int) -> list[Point]:
        info = self._series_info(device, tag)
        if info is None or limit <= 0:
            return []
        sid, data_type, _ = info
        rows = self._query(_SERIES_SQL, (sid, start, end, limit))
        return [Point(ts, _read(v, data_type), q) for ts, v, q in rows]

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
            points = ((ts, _read(v, data_type)) for ts, v in self._stream(_ROWS_SQL, (sid, start, end)))
            return value_shapes.buckets(points, every, agg, data_type)
        boolean = data_type == BOOLEAN and agg in ("min", "max", "first", "last")
        with self._snapshot() as query:
            rows: list[Any] | None = sqlite_rollups.bucket_rows(query, sid, start, end, every, agg)
        if rows is None:
            rows = self._bucket_rows(sid, start, end, every, _AGG_SQL[agg])
        return [Bucket(b, _bool_value(v) if boolean else v, n) for b, v, n in rows]

    def _bucket_rows(self, sid: int, start: int, end: int, every: int, agg_sql: str) -> list[Any]:
        """(bucket start, aggregate, count) rows.

        Grouping by an expression makes SQLite sort through a temporary B-tree (~3x the cost of
        the scan itself, bench/store.py). When the data spans few buckets, one primary-key range
        query per bucket avoids that sort; otherwise a single GROUP BY.
        """
        first = self._query(_EDGE_SQL.format(order="ASC"), (sid, start, end))
        if not first:
            return []
        last = self._query(_EDGE_SQL.format(order="DESC"), (sid, start, end))
        lo, hi = first[0][0] // every, last[0][0] // every
        if hi - lo >= _MAX_BUCKET_QUERIES:
            sql = (
                f"SELECT (ts / ?1) * ?1 AS b, {agg_sql}, count(*) FROM points "
                f"WHERE {sqlite_points.of_series('?2')} AND ts >= ?3 AND ts < ?4 GROUP BY b ORDER BY b"
            )
            return [(r[0], r[1], r[-1]) for r in self._query(sql, (every, sid, start, end))]
        sql = f"SELECT {agg_sql}, count(*) FROM points WHERE {sqlite_points.RANGE}"
        out = []
        for k in range(lo, hi + 1):
            b = k * every
            row = self._query(sql, (sid, max(b, start), min(b + every, end)))[0]
            if row[-1]:
                out.append((b, row[0], row[-1]))
        return out

    def count_points(self) -> int:
        return int(self._query("SELECT value FROM counters WHERE name = 'points'")[0][0])

    def enforce_retention(self, horizons: Horizons) -> dict[str, int]:
        """Retention per tier (store.retention); the rollups' tables are store.sqlite_rollups'."""
        return sqlite_rollups.enforce_retention(self._transaction, self._query, horizons, self.merge_rollups)

    def merge_rollups(self) -> int:
        """Merge the pending rollup notes now (the merger does it every `merge_every_s`); returns how many."""
        return self._merger.merge_all()

    def rollup_backlog(self) -> int | None:
        return self._merger.backlog

    def pending_rollups(self) -> int:
        """Stored points not merged into the rollups yet (queries fold them in)."""
        return sqlite_rollups.pending_count(self._query)

    # --- apps: derived series and alarms ---------------------------------------------------------

    def write_derived(self, app: str, points: Sequence[DerivedPoint]) -> int:
        if not points:
            return 0
        with self._transaction() as conn:
            rows: list[tuple[int, int, JsonValue, int]] = []
            marked: set[int] = set()
            for p in points:
                sid = self._series_ids.get((p.device, p.tag))
                if sid is None:
                    conn.execute(
                        "INSERT OR IGNORE INTO devices (id, gateway, first_seen) VALUES (?, 'apps', ?)",
                        (p.device, now_us()),
                    )
                    sid = self._series_id(conn, p.device, p.tag, p.value)
                if sid not in marked:
                    marked.add(sid)
                    conn.execute(
                        "UPDATE series SET derived_by = ?, unit = coalesce(?, unit) WHERE series_id = ?",
                        (app, p.unit, sid),
                    )
                rows.append((sid, p.ts, p.value, p.status))
            stored = _insert_points(conn, rows)
            conn.execute("UPDATE counters SET value = value + ? WHERE name = 'points'", (stored,))
        return stored

    def raise_alarm(
        self, app: str, device: str, tag: str, severity: str, message: str, ts: int
    ) -> AlarmRecord:
        return self._alarms.raise_alarm(app, device, tag, severity, message, ts)

    def clear_alarm(self, app: str, device: str, tag: str, ts: int) -> AlarmRecord | None:
        return self._alarms.clear_alarm(app, device, tag, ts)

    def ack_alarm(self, alarm_id: int, by: str, ts: int) -> AlarmRecord | None:
        return self._alarms.ack_alarm(alarm_id, by, ts)

    def list_alarms(
        self, active_only: bool = False, device: str | None = None, app: str | None = None, limit: int = 1000
    ) -> list[AlarmRecord]:
        return self._alarms.list_alarms(active_only, device, app, limit)

    # --- audit of commands -----------------------------------------------------------------------

    def add_audit(self, entry: AuditEntry) -> AuditEntry:
        return self._audit.add(entry)

    def prune_audit(self, keep_rows: int, before_ts: int) -> int:
        return self._audit.prune(keep_rows, before_ts)

    def list_audit(
        self, limit: int = 100, device: str | None = None, before_id: int | None = None
    ) -> list[AuditEntry]:
        return self._audit.list(limit, device, before_id)
