"""Rollups in the SQLite store: tables, the trigger that maintains them, their queries and retention.

A trigger on `points` (AFTER INSERT) upserts the point into `rollup_1m` and `rollup_1h`. SQLite
fires it only for rows really inserted: a point `INSERT OR IGNORE` skips as a duplicate never
reaches the rollups, so they follow the raw dedup exactly, in the same transaction (a rolled-back
write leaves no trace in them either). A series that stores a text value (strings, arrays and
structures as JSON text) is noted in `rollup_text_series`; its `last` is read from raw points.

The schema is one migration step of its own (`STEP`, kept in `store_steps`), independent of the
store's `user_version`: opening an older file creates the tables and trigger and rolls up the
points already stored, once, in one transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Final

from plantwire.wire import JsonValue
from plantwire_platform.store import rollup_plan
from plantwire_platform.store.model import Agg
from plantwire_platform.store.retention import Horizons
from plantwire_platform.store.rollup_plan import TIERS, Tier

STEP: Final = "rollups-1"
Query = Callable[[str, Sequence[Any]], list[Any]]
Transaction = Callable[[], AbstractContextManager[sqlite3.Connection]]
_RETENTION_SERIES: Final = 500
"""Series per retention transaction: ingest waits for one at most."""

_NUM: Final = "CASE WHEN typeof({v}) IN ('integer', 'real') THEN {v} END"


def _table_sql(tier: Tier) -> str:
    return f"""
CREATE TABLE IF NOT EXISTS {tier.table} (
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
    PRIMARY KEY (series_id, bucket)
) WITHOUT ROWID;"""


def _upsert_sql(tier: Tier, v: str, ts: str, sid: str) -> str:
    """One point (column expressions v, ts, sid) into the tier."""
    num = _NUM.format(v=v)
    return f"""
    INSERT INTO {tier.table} VALUES (
        {sid}, {ts} - {ts} % {tier.width}, 1, {num} IS NOT NULL, {num}, {num}, CAST({num} AS REAL),
        {ts}, {v}, {ts}, {v})
    ON CONFLICT (series_id, bucket) DO UPDATE SET
        count = count + 1,
        n = n + excluded.n,
        vmin = CASE WHEN excluded.vmin IS NOT NULL AND (vmin IS NULL OR excluded.vmin < vmin)
                    THEN excluded.vmin ELSE vmin END,
        vmax = CASE WHEN excluded.vmax IS NOT NULL AND (vmax IS NULL OR excluded.vmax > vmax)
                    THEN excluded.vmax ELSE vmax END,
        vsum = CASE WHEN excluded.vsum IS NULL THEN vsum ELSE coalesce(vsum, 0.0) + excluded.vsum END,
        first_value = CASE WHEN excluded.first_ts < first_ts THEN excluded.first_value ELSE first_value END,
        first_ts = min(first_ts, excluded.first_ts),
        last_value = CASE WHEN excluded.last_ts > last_ts THEN excluded.last_value ELSE last_value END,
        last_ts = max(last_ts, excluded.last_ts);"""


def _backfill_sql(tier: Tier) -> str:
    num = _NUM.format(v="value")
    return f"""
INSERT INTO {tier.table}
SELECT g.series_id, g.bucket, g.count, g.n, g.mn, g.mx, g.sm,
       g.first_ts, (SELECT value FROM points p WHERE p.series_id = g.series_id AND p.ts = g.first_ts),
       g.last_ts, (SELECT value FROM points p WHERE p.series_id = g.series_id AND p.ts = g.last_ts)
FROM (SELECT series_id, ts - ts % {tier.width} AS bucket, count(*) AS count, count({num}) AS n,
             min({num}) AS mn, max({num}) AS mx, sum(CAST({num} AS REAL)) AS sm,
             min(ts) AS first_ts, max(ts) AS last_ts
      FROM points WHERE ts >= 0 GROUP BY series_id, bucket) g
WHERE true
ON CONFLICT (series_id, bucket) DO NOTHING;"""


SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS store_steps (name TEXT PRIMARY KEY, done_at INTEGER NOT NULL) WITHOUT ROWID;"
    + "".join(_table_sql(t) for t in TIERS)
    + """
CREATE TABLE IF NOT EXISTS rollup_text_series (series_id INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS rollup_horizon (
    id INTEGER PRIMARY KEY CHECK (id = 1), raw_before INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS points_rollup AFTER INSERT ON points
WHEN NEW.ts >= coalesce((SELECT raw_before FROM rollup_horizon), 0) BEGIN"""
    + "".join(_upsert_sql(t, "NEW.value", "NEW.ts", "NEW.series_id") for t in TIERS)
    + """
    INSERT OR IGNORE INTO rollup_text_series (series_id)
        SELECT NEW.series_id WHERE typeof(NEW.value) IN ('text', 'blob');
END;
"""
)


def migrate(conn: sqlite3.Connection, now: int) -> None:
    """Create the rollups and roll up the points stored before them, once (call in autocommit mode)."""
    if conn.execute("SELECT name FROM sqlite_master WHERE name = 'store_steps'").fetchone():
        if conn.execute("SELECT 1 FROM store_steps WHERE name = ?", (STEP,)).fetchone():
            return
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in _statements(SCHEMA):
            conn.execute(statement)
        for tier in TIERS:
            conn.execute(_backfill_sql(tier))
        conn.execute(
            "INSERT OR IGNORE INTO rollup_text_series SELECT DISTINCT series_id FROM points "
            "WHERE typeof(value) IN ('text', 'blob')"
        )
        conn.execute("INSERT OR IGNORE INTO store_steps (name, done_at) VALUES (?, ?)", (STEP, now))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


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


def bucket_rows(
    query: Query, sid: int, start: int, end: int, every: int, agg: Agg
) -> list[tuple[int, JsonValue, int]] | None:
    """(bucket start, aggregate, count) rows from rollups, or None when raw points must answer."""
    text_seen = bool(query("SELECT 1 FROM rollup_text_series WHERE series_id = ?", (sid,)))
    plan = rollup_plan.segments(start, end, every, agg, text_seen)
    if plan is None:
        return None
    points: list[tuple[int, JsonValue]] = []
    rows: list[rollup_plan.RollupRow] = []
    for tier, lo, hi in plan:
        if tier is None:
            points += query(
                "SELECT ts, value FROM points WHERE series_id = ? AND ts >= ? AND ts < ?", (sid, lo, hi)
            )
        else:
            rows += query(
                f"SELECT bucket, count, n, vmin, vmax, vsum, last_ts, last_value FROM {tier.table} "
                "WHERE series_id = ? AND bucket >= ? AND bucket < ?",
                (sid, lo, hi),
            )
    return rollup_plan.fold(every, agg, points, rows)


def enforce_retention(transaction: Transaction, query: Query, horizons: Horizons) -> dict[str, int]:
    """Delete raw points and rollup buckets older than their horizons, a few series per transaction.

    The raw horizon is recorded first: the trigger then no longer rolls up points older than it.
    """
    deleted = {"raw": 0, "1m": 0, "1h": 0}
    tiers = {t.name: t for t in TIERS}
    targets: list[tuple[str, str, int]] = []
    if horizons.raw is not None:
        targets.append(("raw", "DELETE FROM points WHERE series_id = ? AND ts < ?", horizons.raw))
        with transaction() as conn:
            conn.execute(
                "INSERT INTO rollup_horizon (id, raw_before) VALUES (1, ?) "
                "ON CONFLICT (id) DO UPDATE SET raw_before = max(raw_before, excluded.raw_before)",
                (horizons.raw,),
            )
    for name, before in (("1m", horizons.rollup_1m), ("1h", horizons.rollup_1h)):
        if before is not None:  # whole buckets only: one that ends after the horizon stays
            tier = tiers[name]
            targets.append(
                (name, f"DELETE FROM {tier.table} WHERE series_id = ? AND bucket <= ?", before - tier.width)
            )
    if not targets:
        return deleted
    sids = [row[0] for row in query("SELECT series_id FROM series ORDER BY series_id", ())]
    for i in range(0, len(sids), _RETENTION_SERIES):
        chunk = sids[i : i + _RETENTION_SERIES]
        with transaction() as conn:
            for name, sql, before in targets:
                n = conn.executemany(sql, [(sid, before) for sid in chunk]).rowcount
                deleted[name] += n
                if name == "raw" and n:
                    conn.execute("UPDATE counters SET value = value - ? WHERE name = 'points'", (n,))
    return deleted
