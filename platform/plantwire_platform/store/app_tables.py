"""Relational tables the app layer needs in every backend: alarms, and the derived-series mark.

SQLite keeps them in the store file; the InfluxDB backend in its local registry side file (alarms
are few, relational and updated in place: InfluxDB's append-only points suit them badly). Both
give `AlarmTable` their own transaction and query functions, so the SQL lives here once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Final

from plantwire_platform.store.model import AlarmRecord, StoreError

ALARMS_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS alarms (
    id         INTEGER PRIMARY KEY,
    app        TEXT NOT NULL,
    device     TEXT NOT NULL,
    tag        TEXT NOT NULL,
    severity   TEXT NOT NULL,
    message    TEXT NOT NULL,
    state      TEXT NOT NULL,
    raised_at  INTEGER NOT NULL,
    cleared_at INTEGER,
    acked_at   INTEGER,
    acked_by   TEXT
);
-- At most one active alarm per key: raising again updates it instead of adding a row.
CREATE UNIQUE INDEX IF NOT EXISTS alarms_active ON alarms (app, device, tag) WHERE state = 'active';
"""

SEVERITIES: Final = ("info", "warning", "critical")
_COLUMNS: Final = "id, app, device, tag, severity, message, state, raised_at, cleared_at, acked_at, acked_by"

Transaction = Callable[[], AbstractContextManager[sqlite3.Connection]]
Query = Callable[[str, Sequence[Any]], list[Any]]


def ensure_derived_column(conn: sqlite3.Connection) -> None:
    """Add `series.derived_by` to a registry file made before apps existed."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(series)").fetchall()}
    if "derived_by" not in columns:
        conn.execute("ALTER TABLE series ADD COLUMN derived_by TEXT")


class AlarmTable:
    """The alarm operations of `Store`, on whichever SQLite connection the backend provides."""

    def __init__(self, transaction: Transaction, query: Query) -> None:
        self._transaction = transaction
        self._query = query

    def raise_alarm(
        self, app: str, device: str, tag: str, severity: str, message: str, ts: int
    ) -> AlarmRecord:
        if severity not in SEVERITIES:
            raise ValueError(f"severity {severity!r} is not one of {', '.join(SEVERITIES)}")
        with self._transaction() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM alarms "
                "WHERE app = ? AND device = ? AND tag = ? AND state = 'active'",
                (app, device, tag),
            ).fetchone()
            if row is None:
                row = conn.execute(
                    "INSERT INTO alarms (app, device, tag, severity, message, state, raised_at) "
                    f"VALUES (?, ?, ?, ?, ?, 'active', ?) RETURNING {_COLUMNS}",
                    (app, device, tag, severity, message, ts),
                ).fetchone()
            elif (row[4], row[5]) != (severity, message):
                row = conn.execute(
                    f"UPDATE alarms SET severity = ?, message = ? WHERE id = ? RETURNING {_COLUMNS}",
                    (severity, message, row[0]),
                ).fetchone()
        return AlarmRecord.from_row(row)

    def clear_alarm(self, app: str, device: str, tag: str, ts: int) -> AlarmRecord | None:
        with self._transaction() as conn:
            row = conn.execute(
                "UPDATE alarms SET state = 'cleared', cleared_at = ? "
                f"WHERE app = ? AND device = ? AND tag = ? AND state = 'active' RETURNING {_COLUMNS}",
                (ts, app, device, tag),
            ).fetchone()
        return None if row is None else AlarmRecord.from_row(row)

    def ack_alarm(self, alarm_id: int, by: str, ts: int) -> AlarmRecord | None:
        with self._transaction() as conn:
            conn.execute(
                "UPDATE alarms SET acked_at = ?, acked_by = ? WHERE id = ? AND acked_at IS NULL",
                (ts, by, alarm_id),
            )
            row = conn.execute(f"SELECT {_COLUMNS} FROM alarms WHERE id = ?", (alarm_id,)).fetchone()
        return None if row is None else AlarmRecord.from_row(row)

    def list_alarms(
        self, active_only: bool = False, device: str | None = None, app: str | None = None, limit: int = 1000
    ) -> list[AlarmRecord]:
        where, params = [], []
        if active_only:
            where.append("state = 'active'")
        if device is not None:
            where.append("device = ?")
            params.append(device)
        if app is not None:
            where.append("app = ?")
            params.append(app)
        sql = f"SELECT {_COLUMNS} FROM alarms"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY raised_at DESC, id DESC LIMIT ?"
        try:
            rows = self._query(sql, (*params, limit))
        except sqlite3.Error as err:
            raise StoreError(f"alarm query failed: {err}") from err
        return [AlarmRecord.from_row(r) for r in rows]
