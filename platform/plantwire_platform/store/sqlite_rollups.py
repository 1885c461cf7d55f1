"""Rollups in the SQLite store: tables, how they are kept, their queries and retention.

Off the commit path. A temporary trigger of the writer connection (AFTER INSERT on `points`)
notes each newly stored point in `rollup_pending` (series, time, value; in arrival order, so an
append at the end of a short table), in the transaction that stores the point: a committed
point is either merged or pending, never lost. The merger (store/rollup_merger.py, its own thread
and connection) moves the notes, a bounded chunk at a time, into `rollup_1m` and `rollup_1h`
(grouped: one upsert per series and bucket, hours from minutes). It groups a chunk in its own
temporary tables first, reading main without the write lock (`group_chunk`: most of the work,
while ingest commits), then merges the groups and deletes the notes in one write transaction
(`apply_chunk`): never merged twice, a crash mid-merge leaves them pending.
SQLite fires the trigger only for rows really inserted: a point `INSERT OR IGNORE` skips as a
duplicate never reaches the notes, so the rollups follow the raw dedup exactly (a rolled-back
write leaves no note either). Queries read the rollups and the pending notes of their range in
one read snapshot and fold both (`bucket_rows`): the answer never depends on how far the merger
is. A series that stores a text value (strings, arrays and structures as JSON text) is noted in
`rollup_text_series` (by the merger; a pending text note counts too); its `first` and `last` are
read from raw points.

The schema is one migration step of its own (`STEP`, kept in `store_steps`), independent of the
store's `user_version`: opening an older file creates the tables and trigger and rolls up the
points already stored, once, in one transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Final

from plantwire.logs import get_logger
from plantwire.wire import JsonValue
from plantwire_platform.store import rollup_plan, sqlite_points
from plantwire_platform.store.model import Agg, StoreError
from plantwire_platform.store.retention import Horizons
from plantwire_platform.store.rollup_plan import TIERS, Tier
from plantwire_platform.store.sqlite_transaction import transaction

log = get_logger(__name__)
STEP: Final = "rollups-1"
Query = Callable[[str, Sequence[Any]], list[Any]]
Transaction = Callable[[], AbstractContextManager[sqlite3.Connection]]
_RETENTION_SERIES: Final = 500
"""Series per retention transaction: ingest waits for one at most."""

_NUM: Final = "CASE WHEN typeof({v}) IN ('integer', 'real') THEN {v} END"
_GRP: Final = f"g.series_id >> {sqlite_points.GROUP_SHIFT}"
"""The group of the series of `g`, the grouped rows being written (store.sqlite_points)."""


def _table_sql(tier: Tier) -> str:
    """Keyed like `points` (store.sqlite_points): grouped series, then bucket, then series. Keyed
    (series_id, bucket), every upsert of a merge wrote a page of its own once the series had a
    page of buckets (~50 minutes of 1-minute rows): 15.9 µs and 1 page per upsert after an hour
    of 100,000 series, against 4.2 µs and 0.1 page grouped (bench/store_history.py --rollups 60)."""
    return f"""
CREATE TABLE IF NOT EXISTS {tier.table} (
    grp         INTEGER NOT NULL,
    series_id   INTEGER NOT NULL,
    bucket      INTEGER NOT NULL,
    count       INTEGER NOT NULL,
    n           INTEGER NOT NULL,
    vmin,
    vmax,
    vsum        REAL,
    first_ts    INTEGER NOT NULL,
    first_value,
    last_ts     INTEGER NOT NULL,
    last_value,
    PRIMARY KEY (grp, bucket, series_id)
) WITHOUT ROWID;"""


def _group_sql(tier: Tier, source: str) -> str:
    """`source`'s rows grouped per (series, bucket of the tier) into `temp.new_<tier>`.

    The source is `temp.new_points` (points) for the finest tier, else the next finer tier's
    groups: an hour is rolled up from its minutes, not from its points again. A group of one row
    (the usual case: one sample per series per commit) takes its first and last value from that
    row (SQLite's bare column of an aggregate query is a value of the group); only a group of
    several rows looks them up by key.
    """
    if source == "new_points":
        num = _NUM.format(v="value")
        agg = (
            f"count(*) AS count, count({num}) AS n, min({num}) AS vmin, max({num}) AS vmax, "
            f"sum(CAST({num} AS REAL)) AS vsum, min(ts) AS first_ts, max(ts) AS last_ts, "
            "count(*) AS rows, value AS first_v, value AS last_v"
        )
        key, first, last = "ts", "f.ts = g.first_ts", "l.ts = g.last_ts"
        first_value, last_value = "f.value", "l.value"
    else:
        agg = (
            "sum(count) AS count, sum(n) AS n, min(vmin) AS vmin, max(vmax) AS vmax, sum(vsum) AS vsum, "
            "min(first_ts) AS first_ts, max(last_ts) AS last_ts, "
            "count(*) AS rows, first_value AS first_v, last_value AS last_v"
        )
        key, first_value, last_value = "bucket", "f.first_value", "l.last_value"
        finer = next(t for t in TIERS if f"new_{t.name}" == source)
        first = f"f.grp = {_GRP} AND f.bucket = g.first_ts - g.first_ts % {finer.width}"
        last = f"l.grp = {_GRP} AND l.bucket = g.last_ts - g.last_ts % {finer.width}"
    return f"""
INSERT INTO temp.new_{tier.name}
SELECT {_GRP}, g.series_id, g.b, g.count, g.n, g.vmin, g.vmax, g.vsum, g.first_ts,
       CASE WHEN g.rows = 1 THEN g.first_v
            ELSE (SELECT {first_value} FROM temp.{source} f WHERE f.series_id = g.series_id AND {first}) END,
       g.last_ts,
       CASE WHEN g.rows = 1 THEN g.last_v
            ELSE (SELECT {last_value} FROM temp.{source} l WHERE l.series_id = g.series_id AND {last}) END
FROM (SELECT series_id, {key} - {key} % {tier.width} AS b, {agg}
      FROM temp.{source} GROUP BY series_id, b) g"""


def _merge_sql(tier: Tier) -> str:
    """The tier's new groups merged into its table."""
    return f"""
INSERT INTO main.{tier.table} SELECT * FROM temp.new_{tier.name} WHERE true
ON CONFLICT (grp, bucket, series_id) DO UPDATE SET
    count = count + excluded.count,
    n = n + excluded.n,
    vmin = CASE WHEN excluded.vmin IS NOT NULL AND (vmin IS NULL OR excluded.vmin < vmin)
                THEN excluded.vmin ELSE vmin END,
    vmax = CASE WHEN excluded.vmax IS NOT NULL AND (vmax IS NULL OR excluded.vmax > vmax)
                THEN excluded.vmax ELSE vmax END,
    vsum = CASE WHEN excluded.vsum IS NULL THEN vsum ELSE coalesce(vsum, 0.0) + excluded.vsum END,
    first_value = CASE WHEN excluded.first_ts < first_ts THEN excluded.first_value ELSE first_value END,
    first_ts = min(first_ts, excluded.first_ts),
    last_value = CASE WHEN excluded.last_ts > last_ts THEN excluded.last_value ELSE last_value END,
    last_ts = max(last_ts, excluded.last_ts)"""


def _point_at(ts: str) -> str:
    """The point of g's series at `ts` (a primary-key look-up of `points p`)."""
    return f"p.grp = {_GRP} AND p.ts = {ts} AND p.series_id = g.series_id"


def _backfill_sql(tier: Tier) -> str:
    num = _NUM.format(v="value")
    return f"""
INSERT INTO {tier.table}
SELECT {_GRP}, g.series_id, g.bucket, g.count, g.n, g.mn, g.mx, g.sm,
       g.first_ts, (SELECT value FROM points p WHERE {_point_at("g.first_ts")}),
       g.last_ts, (SELECT value FROM points p WHERE {_point_at("g.last_ts")})
FROM (SELECT series_id, ts - ts % {tier.width} AS bucket, count(*) AS count, count({num}) AS n,
             min({num}) AS mn, max({num}) AS mx, sum(CAST({num} AS REAL)) AS sm,
             min(ts) AS first_ts, max(ts) AS last_ts
      FROM points WHERE ts >= 0 GROUP BY series_id, bucket) g
WHERE true
ON CONFLICT (grp, bucket, series_id) DO NOTHING;"""


PENDING_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS rollup_pending (
    seq       INTEGER PRIMARY KEY,
    series_id INTEGER NOT NULL,
    ts        INTEGER NOT NULL,
    value
)"""
"""Points stored but not merged into the rollups yet (the merger's input; queries fold them in).

A rowid table in arrival order: a note is an append at the end of its B-tree (a few pages per
commit), where a table keyed by series would rewrite most of its pages every commit
(bench/rollups.py: 98k against 139k points/s). Queries scan it whole: it is short (the merger
empties it every `every_s`).
"""

SCHEMA: Final = (
    PENDING_SCHEMA
    + ";\nCREATE TABLE IF NOT EXISTS store_steps (name TEXT PRIMARY KEY, done_at INTEGER NOT NULL) "
    + "WITHOUT ROWID;"
    + "".join(_table_sql(t) for t in TIERS)
    + """
CREATE TABLE IF NOT EXISTS rollup_text_series (series_id INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS rollup_horizon (
    id INTEGER PRIMARY KEY CHECK (id = 1), raw_before INTEGER NOT NULL
);
"""
)

_FINEST_FIRST: Final = tuple(reversed(TIERS))
_TRIGGER: Final = """CREATE TEMP TRIGGER points_rollup AFTER INSERT ON main.points
WHEN NEW.ts >= {horizon} BEGIN
    INSERT INTO rollup_pending (series_id, ts, value) VALUES (NEW.series_id, NEW.ts, NEW.value);
END"""
"""On the writer connection only: newly stored points are noted in `rollup_pending`, in the same
transaction (the trigger fires for rows really inserted, never for a duplicate `INSERT OR IGNORE`
skipped). The raw horizon is a literal of the trigger (`set_horizon` makes it again): a look-up
of `rollup_horizon` per point cost ~10% of the commit."""
MERGER_SCHEMA: Final = (
    "CREATE TEMP TABLE IF NOT EXISTS new_points "
    "(series_id INTEGER NOT NULL, ts INTEGER NOT NULL, value, PRIMARY KEY (series_id, ts)) WITHOUT ROWID",
    *(_table_sql(t).replace(f"IF NOT EXISTS {t.table}", f"IF NOT EXISTS temp.new_{t.name}") for t in TIERS),
)
"""On the merger's connection: the chunk being merged and its groups per tier."""
_CHUNK_END: Final = "SELECT seq FROM main.rollup_pending ORDER BY seq LIMIT 1 OFFSET ?"
_COUNT_TO: Final = "SELECT count(*) FROM main.rollup_pending WHERE seq <= ?"
_TAKE: Final = (
    "INSERT OR IGNORE INTO temp.new_points (series_id, ts, value) "
    "SELECT series_id, ts, value FROM main.rollup_pending WHERE seq <= ?"
)
_GROUP: Final = tuple(
    _group_sql(t, "new_points" if i == 0 else f"new_{_FINEST_FIRST[i - 1].name}")
    for i, t in enumerate(_FINEST_FIRST)
)
"""The chunk's groups per tier, into the merger's temporary tables: main is only read."""
_APPLY: Final = (
    *(_merge_sql(t) for t in _FINEST_FIRST),
    "INSERT OR IGNORE INTO main.rollup_text_series (series_id) "
    "SELECT DISTINCT series_id FROM temp.new_points WHERE typeof(value) IN ('text', 'blob')",
)
"""The groups merged into the rollup tables (a write of main: under the write lock)."""
_CLEAR: Final = ("DELETE FROM temp.new_points", *(f"DELETE FROM temp.new_{t.name}" for t in TIERS))


def attach_writer(conn: sqlite3.Connection) -> None:
    """Make the writer connection note the points it stores (after `migrate`)."""
    set_horizon(conn)


def set_horizon(conn: sqlite3.Connection) -> None:
    """(Re)make the writer's trigger for the raw horizon recorded in `rollup_horizon`."""
    row = conn.execute("SELECT raw_before FROM main.rollup_horizon").fetchone()
    horizon = max(0, int(row[0])) if row else 0  # before 1970: never rolled up
    conn.execute("DROP TRIGGER IF EXISTS temp.points_rollup")
    conn.execute(_TRIGGER.format(horizon=horizon))


def attach_merger(conn: sqlite3.Connection) -> None:
    """Give the merger's connection its temporary tables (after `migrate`)."""
    for statement in MERGER_SCHEMA:
        conn.execute(statement)


def last_note(conn: sqlite3.Connection) -> int | None:
    """The newest pending note's `seq` (None: nothing pending)."""
    row = conn.execute("SELECT max(seq) FROM main.rollup_pending").fetchone()
    return None if row[0] is None else int(row[0])


def group_chunk(conn: sqlite3.Connection, up_to: int, limit: int) -> tuple[int, int]:
    """Take the oldest pending notes (at most `limit`, none after `up_to`) into the merger's
    temporary tables and group them per tier; returns (notes taken, the last one's `seq`).

    Reads main in one read transaction and writes only the connection's own temporary tables, so
    it needs no write lock: the ingest writer commits meanwhile (this is most of a merge's work).
    `apply_chunk` then merges the groups; nothing else deletes notes, so those taken stay pending
    until it does.
    """
    with transaction(conn, "BEGIN"):
        for statement in _CLEAR:
            conn.execute(statement)
        end = conn.execute(_CHUNK_END, (limit - 1,)).fetchone()
        last = up_to if end is None else min(up_to, int(end[0]))
        taken = int(conn.execute(_COUNT_TO, (last,)).fetchone()[0])
        if taken:
            conn.execute(_TAKE, (last,))
            for statement in _GROUP:
                conn.execute(statement)
    return taken, last


def apply_chunk(conn: sqlite3.Connection, last: int, taken: int) -> None:
    """Merge the groups of `group_chunk` into the rollups and delete their notes, in one write
    transaction (the caller holds the store's write lock): merged and deleted together or not at all.

    The notes deleted must be the ones grouped: if another connection merged some meanwhile, the
    transaction is rolled back and StaleChunk raised (they would count twice).
    """
    try:
        with transaction(conn):
            deleted = int(conn.execute("DELETE FROM main.rollup_pending WHERE seq <= ?", (last,)).rowcount)
            if deleted != taken:
                raise StaleChunk(f"{taken} notes grouped, {deleted} still pending")
            for statement in _APPLY:
                conn.execute(statement)
    finally:
        for statement in _CLEAR:
            conn.execute(statement)


class StaleChunk(StoreError):
    """The notes of a grouped chunk changed before it was applied (a second merger on the file)."""


def migrate(conn: sqlite3.Connection, now: int) -> None:
    """Create the rollups and roll up the points stored before them, once (call in autocommit mode)."""
    conn.execute(PENDING_SCHEMA)  # also in files whose rollups predate it
    _group_tiers(conn)
    if conn.execute("SELECT name FROM sqlite_master WHERE name = 'store_steps'").fetchone():
        if conn.execute("SELECT 1 FROM store_steps WHERE name = ?", (STEP,)).fetchone():
            return
    with transaction(conn):
        for statement in _statements(SCHEMA):
            conn.execute(statement)
        conn.execute("DELETE FROM rollup_pending")  # the backfill covers every stored point
        for tier in TIERS:
            conn.execute(_backfill_sql(tier))
        conn.execute(
            "INSERT OR IGNORE INTO rollup_text_series SELECT DISTINCT series_id FROM points "
            "WHERE typeof(value) IN ('text', 'blob')"
        )
        conn.execute("INSERT OR IGNORE INTO store_steps (name, done_at) VALUES (?, ?)", (STEP, now))


def _group_tiers(conn: sqlite3.Connection) -> None:
    """Rebuild rollup tables keyed (series_id, bucket) (files from before the grouped layout)."""
    for tier in TIERS:
        columns = [row[1] for row in conn.execute(f"PRAGMA table_info({tier.table})")]
        if not columns or "grp" in columns:
            continue
        log.info("store_rollups_rebuilding", table=tier.table)
        with transaction(conn):
            conn.execute(f"ALTER TABLE {tier.table} RENAME TO old_{tier.table}")
            conn.execute(_table_sql(tier))
            conn.execute(
                f"INSERT INTO {tier.table} SELECT series_id >> {sqlite_points.GROUP_SHIFT}, * "
                f"FROM old_{tier.table} ORDER BY series_id >> {sqlite_points.GROUP_SHIFT}, bucket, series_id"
            )
            conn.execute(f"DROP TABLE old_{tier.table}")


def _statements(script: str) -> list[str]:
    """The script's statements (the trigger, with the semicolons of its body, is one)."""
    out: list[str] = []
    current = ""
    for part in script.split(";"):
        current += part + ";"
        if sqlite3.complete_statement(current):
            if current.strip(" \n;"):
                out.append(current.strip())
            current = ""
    return out


_PENDING_GROUPS: Final = (
    f"SELECT ts / ?1 * ?1 AS b, count(*), count({_NUM.format(v='value')}), min({_NUM.format(v='value')}), "
    f"max({_NUM.format(v='value')}), sum(CAST({_NUM.format(v='value')} AS REAL)), min(ts), max(ts) "
    "FROM rollup_pending WHERE series_id = ?2 AND ts >= ?3 AND ts < ?4 GROUP BY b"
)
# SQLite documents that a bare column next to min() or max() comes from the row holding it.
_PENDING_EDGE: Final = (
    "SELECT ts / ?1 * ?1 AS b, value, {fn}(ts) FROM rollup_pending "
    "WHERE series_id = ?2 AND ts >= ?3 AND ts < ?4 GROUP BY b"
)


def bucket_rows(
    query: Query, sid: int, start: int, end: int, every: int, agg: Agg
) -> list[tuple[int, JsonValue, int]] | None:
    """(bucket start, aggregate, count) rows from rollups, or None when raw points must answer.

    `query` must read one snapshot (a read transaction): a point is then in the rollups or in
    `rollup_pending`, never in both nor in neither. The pending notes of the range read from tiers
    are grouped per bucket of `every` in SQL and folded in as rollup rows.
    """
    text_seen = bool(
        query("SELECT 1 FROM rollup_text_series WHERE series_id = ?", (sid,))
        or query(
            "SELECT 1 FROM rollup_pending WHERE series_id = ? AND typeof(value) IN ('text', 'blob') LIMIT 1",
            (sid,),
        )
    )
    plan = rollup_plan.segments(start, end, every, agg, text_seen)
    if plan is None:
        return None
    points: list[tuple[int, JsonValue]] = []
    rows: list[rollup_plan.RollupRow] = []
    for tier, lo, hi in plan:
        if tier is None:
            points += query(f"SELECT ts, value FROM points WHERE {sqlite_points.RANGE}", (sid, lo, hi))
        else:
            rows += query(
                "SELECT bucket, count, n, vmin, vmax, vsum, first_ts, first_value, last_ts, last_value "
                f"FROM {tier.table} "
                f"WHERE {sqlite_points.of_series('?1')} AND bucket >= ?2 AND bucket < ?3",
                (sid, lo, hi),
            )
    tiered = [(lo, hi) for tier, lo, hi in plan if tier is not None]  # contiguous: raw only at the ends
    rows += _pending_rows(query, sid, tiered[0][0], tiered[-1][1], every, agg)
    return rollup_plan.fold(every, agg, points, rows)


def _pending_rows(
    query: Query, sid: int, lo: int, hi: int, every: int, agg: Agg
) -> list[rollup_plan.RollupRow]:
    """The pending notes of [lo, hi) as rollup rows, one per bucket of `every` (first/last values
    only when `agg` needs them)."""
    args = (every, sid, lo, hi)
    edges: dict[str, dict[int, JsonValue]] = {"first": {}, "last": {}}
    if agg in rollup_plan.EDGES:
        edges[agg] = {
            b: v for b, v, _ in query(_PENDING_EDGE.format(fn="min" if agg == "first" else "max"), args)
        }
    return [
        (b, count, n, mn, mx, total, first_ts, edges["first"].get(b), last_ts, edges["last"].get(b))
        for b, count, n, mn, mx, total, first_ts, last_ts in query(_PENDING_GROUPS, args)
    ]


def pending_count(query: Query) -> int:
    """Points noted but not merged yet."""
    return int(query("SELECT count(*) FROM rollup_pending", ())[0][0])


def enforce_retention(
    transaction: Transaction, query: Query, horizons: Horizons, merge: Callable[[], object]
) -> dict[str, int]:
    """Delete raw points and rollup buckets older than their horizons, a few series per transaction.

    The raw horizon is recorded first: the trigger then no longer notes points older than it.
    Then `merge` merges the pending notes (those noted before): a note merged after its bucket was
    deleted would bring back a bucket holding only part of its points.
    """
    deleted = {"raw": 0, "1m": 0, "1h": 0}
    tiers = {t.name: t for t in TIERS}
    # (name, statement, horizon, per group of series rather than per series)
    targets: list[tuple[str, str, int, bool]] = []
    if horizons.raw is not None:
        # A series' latest point goes with its points; points and buckets go a group at a time.
        targets.append(("raw", "DELETE FROM points WHERE grp = ? AND ts < ?", horizons.raw, True))
        targets.append(
            ("latest", "DELETE FROM latest_points WHERE series_id = ? AND ts < ?", horizons.raw, False)
        )
        with transaction() as conn:
            conn.execute(
                "INSERT INTO rollup_horizon (id, raw_before) VALUES (1, ?) "
                "ON CONFLICT (id) DO UPDATE SET raw_before = max(raw_before, excluded.raw_before)",
                (horizons.raw,),
            )
            set_horizon(conn)
    merge()
    for name, before in (("1m", horizons.rollup_1m), ("1h", horizons.rollup_1h)):
        if before is not None:  # whole buckets only: one that ends after the horizon stays
            tier = tiers[name]
            targets.append(
                (name, f"DELETE FROM {tier.table} WHERE grp = ? AND bucket <= ?", before - tier.width, True)
            )
    if not targets:
        return deleted
    sids = [row[0] for row in query("SELECT series_id FROM series ORDER BY series_id", ())]
    for i in range(0, len(sids), _RETENTION_SERIES):
        chunk = sids[i : i + _RETENTION_SERIES]
        groups = sorted({sid >> sqlite_points.GROUP_SHIFT for sid in chunk})
        with transaction() as conn:
            for name, sql, before, per_group in targets:
                n = conn.executemany(
                    sql, [(key, before) for key in (groups if per_group else chunk)]
                ).rowcount
                if name in deleted:
                    deleted[name] += n
                if name == "raw" and n:
                    conn.execute("UPDATE counters SET value = value - ? WHERE name = 'points'", (n,))
    return deleted
