"""Rollups in the PostgreSQL store: tables, the trigger that notes new points, the merge, queries, retention.

The same rollups as the SQLite store (see `store.rollup_plan`), in PostgreSQL's dialect, and off
the commit path the same way: a statement-level AFTER INSERT trigger on `points` reads the
statement's transition table, which holds only the rows really inserted (`ON CONFLICT DO
NOTHING` leaves redelivered points out), and appends them to `rollup_pending`, in the inserting
transaction. `merge` (run every few seconds by each store instance, store.postgresql.store)
takes up to 20,000 notes, `FOR UPDATE SKIP LOCKED` (several workers merge at once without taking
the same notes), and in one statement deletes them and upserts one row per (series, bucket) into
`rollup_1m` and `rollup_1h`, in key order: merged once, or still pending. Queries read rollups and
pending notes in one REPEATABLE READ snapshot and fold the notes in (`bucket_rows`).

Values keep their column like `points` (fval / ival / sval): min and max per column, chosen at
read time as the raw query does. A series with a text value is noted in `rollup_text_series`.

The schema is a migration step of its own (`STEP` in `store_steps`), independent of `TABLES`:
the first start after it rolls up the points already stored, under the schema lock, once.
A TimescaleDB hypertable has no transition tables: there the rollups are not created and every
bucketed query reads `points` (documented; not exercised here, there is no TimescaleDB).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import asyncpg

from plantwire.wire import JsonValue
from plantwire_platform.store import rollup_plan
from plantwire_platform.store.model import Agg
from plantwire_platform.store.postgresql.partition_retention import drop_old_partitions
from plantwire_platform.store.postgresql.values import NUMERIC_SQL, from_columns
from plantwire_platform.store.retention import Horizons
from plantwire_platform.store.rollup_plan import TIERS, Tier

STEP: Final = "rollups-1"
_LOCK: Final = 0x706C726F

_COLUMNS: Final = """
    series_id integer NOT NULL,
    bucket    bigint NOT NULL,
    count     bigint NOT NULL,
    n         bigint NOT NULL,
    min_f     double precision,
    min_i     bigint,
    max_f     double precision,
    max_i     bigint,
    vsum      double precision,
    first_ts  bigint NOT NULL,
    first_f   double precision,
    first_i   bigint,
    first_s   text,
    last_ts   bigint NOT NULL,
    last_f    double precision,
    last_i    bigint,
    last_s    text,
    PRIMARY KEY (series_id, bucket)
"""


_HORIZON: Final = "coalesce((SELECT raw_before FROM rollup_horizon), 0)"


def _aggregate_sql(tier: Tier, source: str) -> str:
    """One row per (series, bucket) of `source`'s points (ts >= 0 and not older than the raw
    retention horizon: see store.retention), in key order."""
    first = ", ".join(f"(array_agg({c} ORDER BY ts))[1]" for c in ("fval", "ival", "sval"))
    last = ", ".join(f"(array_agg({c} ORDER BY ts DESC))[1]" for c in ("fval", "ival", "sval"))
    return f"""
SELECT series_id, ts - ts % {tier.width}, count(*), count({NUMERIC_SQL}),
       min(fval), min(ival), max(fval), max(ival), sum({NUMERIC_SQL}),
       min(ts), {first}, max(ts), {last}
FROM {source} WHERE ts >= {_HORIZON} GROUP BY 1, 2 ORDER BY 1, 2"""


def _grouped_sql(tier: Tier, source: str, horizon: bool = True) -> str:
    """As `_aggregate_sql`, for a source without duplicate (series_id, ts) (the trigger's
    transition table): one hash aggregate, then the first and last point's columns joined back by
    (series_id, ts), instead of six sorted `array_agg` per group (~4x cheaper per point here)."""
    return f"""
WITH g AS (
    SELECT series_id, ts - ts % {tier.width} AS bucket, count(*) AS count, count({NUMERIC_SQL}) AS n,
           min(fval) AS min_f, min(ival) AS min_i, max(fval) AS max_f, max(ival) AS max_i,
           sum({NUMERIC_SQL}) AS vsum, min(ts) AS first_ts, max(ts) AS last_ts
    FROM {source} {f"WHERE ts >= {_HORIZON}" if horizon else ""} GROUP BY 1, 2)
SELECT g.series_id, g.bucket, g.count, g.n, g.min_f, g.min_i, g.max_f, g.max_i, g.vsum,
       g.first_ts, f.fval, f.ival, f.sval, g.last_ts, l.fval, l.ival, l.sval
FROM g JOIN {source} f ON f.series_id = g.series_id AND f.ts = g.first_ts
       JOIN {source} l ON l.series_id = g.series_id AND l.ts = g.last_ts
ORDER BY 1, 2"""


def _upsert_sql(tier: Tier, source: str, horizon: bool = True) -> str:
    first = "CASE WHEN excluded.first_ts < r.first_ts THEN excluded.{c} ELSE r.{c} END"
    last = "CASE WHEN excluded.last_ts > r.last_ts THEN excluded.{c} ELSE r.{c} END"
    return f"""
INSERT INTO {tier.table} AS r {_grouped_sql(tier, source, horizon)}
ON CONFLICT (series_id, bucket) DO UPDATE SET
    count = r.count + excluded.count,
    n = r.n + excluded.n,
    min_f = least(r.min_f, excluded.min_f), min_i = least(r.min_i, excluded.min_i),
    max_f = greatest(r.max_f, excluded.max_f), max_i = greatest(r.max_i, excluded.max_i),
    vsum = CASE WHEN excluded.vsum IS NULL THEN r.vsum ELSE coalesce(r.vsum, 0) + excluded.vsum END,
    {", ".join(f"first_{c} = " + first.format(c=f"first_{c}") for c in "fis")},
    first_ts = least(r.first_ts, excluded.first_ts),
    {", ".join(f"last_{c} = " + last.format(c=f"last_{c}") for c in "fis")},
    last_ts = greatest(r.last_ts, excluded.last_ts);"""


_PENDING_DDL: Final = """
CREATE TABLE IF NOT EXISTS rollup_pending (
    series_id integer NOT NULL,
    ts        bigint NOT NULL,
    fval      double precision,
    ival      bigint,
    sval      text
)"""
"""Points stored but not merged yet (queries scan it: it stays short). A heap without index or
sequence: a note is one heap append; merges take notes by `ctid` (bench/rollups.py: a `bigserial`
primary key made the commit path slower than merging in the trigger)."""


def _function_ddl() -> str:
    """The trigger's function (replaced at every start: a newer version's body reaches old schemas)."""
    return f"""
CREATE OR REPLACE FUNCTION plantwire_rollup() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO rollup_pending (series_id, ts, fval, ival, sval)
        SELECT series_id, ts, fval, ival, sval FROM new_points WHERE ts >= {_HORIZON};
    RETURN NULL;
END
$fn$;"""


def _merge_sql() -> str:
    """Take up to $1 notes no other merge holds, merge them and delete them: one statement."""
    upserts = ",\n".join(
        f"up_{t.name} AS ({_upsert_sql(t, 'taken', horizon=False).rstrip().rstrip(';')} RETURNING 1)"
        for t in TIERS
    )
    return f"""
WITH taken AS (
    DELETE FROM rollup_pending WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM rollup_pending LIMIT $1 FOR UPDATE SKIP LOCKED))
    RETURNING series_id, ts, fval, ival, sval),
{upserts},
text_series AS (
    INSERT INTO rollup_text_series SELECT DISTINCT series_id FROM taken WHERE sval IS NOT NULL
    ORDER BY series_id ON CONFLICT DO NOTHING)
SELECT count(*) FROM taken"""


MERGE_SQL: Final = _merge_sql()
CHUNK: Final = 20_000
"""Notes per merge transaction."""


async def merge(pool: asyncpg.Pool, chunk: int = CHUNK, counted: Callable[[int], None] | None = None) -> int:
    """Merge the notes pending now, a chunk per transaction (autocommit statements); returns how many.

    Notes other workers hold are skipped (they merge them); notes taken meanwhile wait for the
    next call.
    """
    pending = int(await pool.fetchval("SELECT count(*) FROM rollup_pending"))
    if counted is not None:
        counted(pending)  # the backlog /metrics shows (`Store.rollup_backlog`)
    chunks = -(-pending // chunk)
    total = 0
    for _ in range(chunks):
        n = int(await pool.fetchval(MERGE_SQL, chunk))
        total += n
        if n < chunk:
            break
    return total


def _ddl() -> str:
    tables = "".join(f"CREATE TABLE IF NOT EXISTS {t.table} ({_COLUMNS});\n" for t in TIERS)
    return f"""
CREATE TABLE IF NOT EXISTS store_steps (name text PRIMARY KEY, done_at bigint NOT NULL);
{tables}
CREATE TABLE IF NOT EXISTS rollup_text_series (series_id integer PRIMARY KEY);
CREATE TABLE IF NOT EXISTS rollup_horizon (id integer PRIMARY KEY CHECK (id = 1), raw_before bigint NOT NULL);
{_function_ddl()}
DROP TRIGGER IF EXISTS points_rollup ON points;
CREATE TRIGGER points_rollup AFTER INSERT ON points REFERENCING NEW TABLE AS new_points
    FOR EACH STATEMENT EXECUTE FUNCTION plantwire_rollup();
"""


async def create(conn: asyncpg.Connection, schema: str, now: int) -> None:
    """Create the rollups and roll up the points stored before them, once (many starters: one does it)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK)
        await conn.execute(f'SET LOCAL search_path TO "{schema}"')
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS store_steps (name text PRIMARY KEY, done_at bigint NOT NULL)"
        )
        await conn.execute(_PENDING_DDL)  # also in schemas whose rollups predate it
        if await conn.fetchval("SELECT 1 FROM store_steps WHERE name = $1", STEP):
            if await conn.fetchval("SELECT to_regproc('plantwire_rollup') IS NOT NULL"):
                await conn.execute(_function_ddl())
            return
        await conn.execute(_ddl())
        await conn.execute("DELETE FROM rollup_pending")  # the backfill covers every stored point
        for tier in TIERS:
            await conn.execute(
                f"INSERT INTO {tier.table} {_aggregate_sql(tier, 'points')} ON CONFLICT DO NOTHING"
            )
        await conn.execute(
            "INSERT INTO rollup_text_series SELECT DISTINCT series_id FROM points WHERE sval IS NOT NULL "
            "ON CONFLICT DO NOTHING"
        )
        await conn.execute("INSERT INTO store_steps (name, done_at) VALUES ($1, $2)", STEP, now)


def _pick(smaller: bool, f: float | None, i: int | None) -> float | int | None:
    if f is None or i is None:
        return i if f is None else f
    if smaller:
        return i if i <= f else f
    return i if i >= f else f


async def bucket_rows(
    conn: asyncpg.Connection, sid: int, start: int, end: int, every: int, agg: Agg
) -> list[tuple[int, JsonValue, int]] | None:
    """(bucket start, aggregate, count) rows from rollups, or None when raw points must answer.

    Reads in one REPEATABLE READ snapshot: a point is then in the rollups or in `rollup_pending`,
    never both nor neither; the pending notes of the tiers' ranges are folded in as points.
    Values as stored: integers stay integers (the caller reads a Boolean tag's back as booleans).
    """
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        text_seen = bool(
            await conn.fetchval("SELECT 1 FROM rollup_text_series WHERE series_id = $1", sid)
            or await conn.fetchval(
                "SELECT 1 FROM rollup_pending WHERE series_id = $1 AND sval IS NOT NULL LIMIT 1", sid
            )
        )
        plan = rollup_plan.segments(start, end, every, agg, text_seen)
        if plan is None:
            return None
        points: list[tuple[int, JsonValue]] = []
        rows: list[rollup_plan.RollupRow] = []
        for tier, lo, hi in plan:
            if tier is None:
                points += [
                    (ts, from_columns(f, i, s, None, None))
                    for ts, f, i, s in await conn.fetch(
                        "SELECT ts, fval, ival, sval FROM points "
                        "WHERE series_id = $1 AND ts >= $2 AND ts < $3",
                        sid,
                        lo,
                        hi,
                    )
                ]
                continue
            for r in await conn.fetch(
                "SELECT bucket, count, n, min_f, min_i, max_f, max_i, vsum, "
                "first_ts, first_f, first_i, first_s, last_ts, last_f, last_i, last_s "
                f"FROM {tier.table} WHERE series_id = $1 AND bucket >= $2 AND bucket < $3",
                sid,
                lo,
                hi,
            ):
                b, count, n, min_f, min_i, max_f, max_i, total = r[:8]
                first_ts, first_f, first_i, first_s, last_ts, last_f, last_i, last_s = r[8:]
                mn, mx = _pick(True, min_f, min_i), _pick(False, max_f, max_i)
                first = from_columns(first_f, first_i, first_s, None, None)
                last = from_columns(last_f, last_i, last_s, None, None)
                rows.append((b, count, n, mn, mx, total, first_ts, first, last_ts, last))
        tiered = [(lo, hi) for tier, lo, hi in plan if tier is not None]  # contiguous: raw only at the ends
        rows += await _pending_rows(conn, sid, tiered[0][0], tiered[-1][1], every, agg)
    return rollup_plan.fold(every, agg, points, rows)


_PENDING_GROUPS: Final = f"""
SELECT ts / $1 * $1 AS b, count(*), count({NUMERIC_SQL}), min(fval), min(ival), max(fval), max(ival),
       sum({NUMERIC_SQL}), min(ts), max(ts)
FROM rollup_pending WHERE series_id = $2 AND ts >= $3 AND ts < $4 GROUP BY b"""
_PENDING_EDGE: Final = """
SELECT DISTINCT ON (b) ts / $1 * $1 AS b, fval, ival, sval
FROM rollup_pending WHERE series_id = $2 AND ts >= $3 AND ts < $4 ORDER BY b, ts {order}"""


async def _pending_rows(
    conn: asyncpg.Connection, sid: int, lo: int, hi: int, every: int, agg: Agg
) -> list[rollup_plan.RollupRow]:
    """The pending notes of [lo, hi) as rollup rows, one per bucket of `every` (first/last values
    only when `agg` needs them)."""
    args = (every, sid, lo, hi)
    edges: dict[str, dict[int, JsonValue]] = {"first": {}, "last": {}}
    if agg in rollup_plan.EDGES:
        sql = _PENDING_EDGE.format(order="ASC" if agg == "first" else "DESC")
        edges[agg] = {b: from_columns(f, i, s, None, None) for b, f, i, s in await conn.fetch(sql, *args)}
    out: list[rollup_plan.RollupRow] = []
    for b, count, n, min_f, min_i, max_f, max_i, total, first_ts, last_ts in await conn.fetch(
        _PENDING_GROUPS, *args
    ):
        mn, mx = _pick(True, min_f, min_i), _pick(False, max_f, max_i)
        out.append(
            (b, count, n, mn, mx, total, first_ts, edges["first"].get(b), last_ts, edges["last"].get(b))
        )
    return out


async def enforce_retention(
    pool: asyncpg.Pool, horizons: Horizons, shard: int, width_us: int | None
) -> tuple[dict[str, int], list[int]]:
    """Delete raw points and whole rollup buckets older than their horizons (the raw horizon first).

    With `width_us` (a partitioned `points`), whole partitions older than the raw horizon are
    dropped (store.postgresql.partition_retention); without (a hypertable), one DELETE.
    Returns what was deleted per tier, and the indexes of the partitions dropped.
    """
    deleted = {"raw": 0, "1m": 0, "1h": 0}
    dropped: list[int] = []
    async with pool.acquire() as conn:
        if horizons.raw is not None:
            async with conn.transaction():
                await conn.execute(
                    "INSERT INTO rollup_horizon (id, raw_before) VALUES (1, $1) ON CONFLICT (id) "
                    "DO UPDATE SET raw_before = greatest(rollup_horizon.raw_before, excluded.raw_before)",
                    horizons.raw,
                )
            if width_us is not None:
                deleted["raw"], dropped = await drop_old_partitions(conn, horizons.raw, width_us, shard)
            else:
                async with conn.transaction():
                    status = await conn.execute("DELETE FROM points WHERE ts < $1", horizons.raw)
                    deleted["raw"] = int(status.rsplit(" ", 1)[-1])
                    await conn.execute(
                        "INSERT INTO counters (shard, points) VALUES ($1, $2) "
                        "ON CONFLICT (shard) DO UPDATE SET points = counters.points + excluded.points",
                        shard,
                        -deleted["raw"],
                    )
    # Notes merged after their bucket was deleted would bring it back holding part of its points.
    await merge(pool)
    async with pool.acquire() as conn:
        tiers = {t.name: t for t in TIERS}
        for name, before in (("1m", horizons.rollup_1m), ("1h", horizons.rollup_1h)):
            if before is not None:
                tier = tiers[name]
                status = await conn.execute(
                    f"DELETE FROM {tier.table} WHERE bucket <= $1", before - tier.width
                )
                deleted[name] = int(status.rsplit(" ", 1)[-1])
    return deleted, dropped
