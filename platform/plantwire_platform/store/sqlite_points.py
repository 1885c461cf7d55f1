"""The SQLite store's `points` table: grouped by series, then time; the latest point per series.

`points` is a WITHOUT ROWID table keyed (grp, ts, series_id), where `grp` is the series id
divided by GROUP_SIZE: the points of GROUP_SIZE neighbouring series (a device's tags get
neighbouring ids) interleave in time order. A commit holds about one point per series (a plant
samples each tag once a second or so); keyed (series_id, ts), each of those points lands on a
page of its own once every series has a page or more of history, and SQLite writes every page a
commit touches whole into the WAL and again into the file. With 100,000 series that came to
6.3 KB written and 17 µs of CPU per point after 120 s, rising (bench/store_history.py); grouped,
a commit touches about one page per group, and the cost per point stays flat (0.8 KB, 4.8 µs).

The price is on reads: a range of one series scans its group's rows of that range (GROUP_SIZE
series at most) and keeps its own, so a raw range of one series costs up to GROUP_SIZE times the
rows; rollups answer long ranges (store.sqlite_rollups). The latest point of each series, which
the key no longer finds in one descent, is kept in `latest_points`: whoever stores points runs
LATEST on the same rows in the same transaction (store.sqlite's `_insert_points`).

A file of the older layout (keyed (series_id, ts)) is rebuilt once when opened (`ensure`), in one
transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any, Final

from plantwire.logs import get_logger
from plantwire_platform.store.sqlite_transaction import transaction

log = get_logger(__name__)
Row = tuple[int, int, Any, int]
"""(series_id, ts, value, status): what INSERT and LATEST take."""

GROUP_SHIFT: Final = 5
GROUP_SIZE: Final = 1 << GROUP_SHIFT
"""Series per group: 32 (bench/store_history.py: 16 and 64 side by side)."""

_COLUMNS: Final = """
    grp       INTEGER NOT NULL,
    ts        INTEGER NOT NULL,
    series_id INTEGER NOT NULL,
    value,
    status    INTEGER NOT NULL,
    PRIMARY KEY (grp, ts, series_id)"""
# `value` has no declared type: SQLite keeps ints, floats, text and NULL as they came; arrays and
# structures are BLOBs of their JSON (store/value_shapes.py).

_LATEST_TABLE: Final = """CREATE TABLE IF NOT EXISTS latest_points (
    series_id INTEGER PRIMARY KEY,
    ts        INTEGER NOT NULL,
    value,
    status    INTEGER NOT NULL
)"""
LATEST: Final = (
    "INSERT INTO latest_points (series_id, ts, value, status) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT (series_id) DO UPDATE SET "
    "ts = excluded.ts, value = excluded.value, status = excluded.status "
    "WHERE excluded.ts > latest_points.ts"
)
"""After INSERT, for `newest_per_series` of its rows: a point newer than its series' latest
replaces it (a duplicate or an older point changes nothing). Not a trigger on `points`: an
upsert in a trigger, inside the writer's savepoint, cost more with every commit (100,000
series, a point each per second: 4 µs per point in the first second, 97 µs in the eighth)."""

INSERT: Final = (
    "INSERT OR IGNORE INTO points (grp, ts, series_id, value, status) "
    f"VALUES (?1 >> {GROUP_SHIFT}, ?2, ?1, ?3, ?4)"
)
"""Rows (series_id, ts, value, status)."""


def newest_per_series(rows: Iterable[Row]) -> Iterable[Row]:
    """The newest of the rows of each series: one LATEST upsert per series and commit, however
    many points a series has in it (a gateway's backfill after an outage: thousands)."""
    newest: dict[int, Row] = {}
    for row in rows:
        kept = newest.get(row[0])
        if kept is None or row[1] > kept[1]:
            newest[row[0]] = row
    return newest.values()


def of_series(param: str) -> str:
    """The condition selecting one series' points, its id the SQL parameter `param` (e.g. '?1'):
    the group first, so that SQLite searches the primary key."""
    return f"grp = {param} >> {GROUP_SHIFT} AND series_id = {param}"


RANGE: Final = f"{of_series('?1')} AND ts >= ?2 AND ts < ?3"
"""One series' points in [start, end): parameters (series_id, start, end)."""


def ensure(conn: sqlite3.Connection) -> None:
    """Create `points` and `latest_points`, or rebuild an older file's `points` (autocommit mode)."""
    columns = [row[1] for row in conn.execute("PRAGMA table_info(points)")]
    if columns and "grp" not in columns:
        _rebuild(conn)
        return
    conn.execute(f"CREATE TABLE IF NOT EXISTS points ({_COLUMNS}\n) WITHOUT ROWID")
    conn.execute(_LATEST_TABLE)


def _rebuild(conn: sqlite3.Connection) -> None:
    """Points keyed (series_id, ts) into the grouped layout, and their latest per series."""
    (count,) = conn.execute("SELECT value FROM counters WHERE name = 'points'").fetchone()
    log.info("store_points_rebuilding", points=count, group_size=GROUP_SIZE)
    with transaction(conn):
        conn.execute(f"CREATE TABLE points_grouped ({_COLUMNS}\n) WITHOUT ROWID")
        conn.execute(
            "INSERT INTO points_grouped (grp, ts, series_id, value, status) "
            f"SELECT series_id >> {GROUP_SHIFT}, ts, series_id, value, status FROM points "
            f"ORDER BY series_id >> {GROUP_SHIFT}, ts, series_id"
        )
        conn.execute(_LATEST_TABLE)
        # SQLite documents that a bare column next to max() comes from the row holding it.
        conn.execute(
            "INSERT OR REPLACE INTO latest_points (series_id, ts, value, status) "
            "SELECT series_id, ts, value, status FROM "
            "(SELECT series_id, max(ts) AS ts, value, status FROM points GROUP BY series_id)"
        )
        conn.execute("DROP TABLE points")
        conn.execute("ALTER TABLE points_grouped RENAME TO points")
    log.info("store_points_rebuilt", points=count)
