"""The audit log of commands, as one SQLite table every backend keeps.

SQLite keeps it in the store file, the InfluxDB backend in its local registry side file (entries
are few and relational). Both hand `AuditTable` their own transaction and query functions, the
same way as the app tables, so the SQL lives here once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Final

import orjson

from plantwire_platform.store.app_tables import Query, Transaction
from plantwire_platform.store.model import AuditEntry

AUDIT_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS audit (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    ts          INTEGER NOT NULL,
    user        TEXT NOT NULL,
    action      TEXT NOT NULL,
    gateway     TEXT,
    device      TEXT,
    command_id  TEXT,
    request     TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    http_status INTEGER NOT NULL,
    status      INTEGER,
    message     TEXT,
    rtt_ms      REAL
);
CREATE INDEX IF NOT EXISTS audit_device ON audit (device, id);
"""

_FIELDS: Final = (
    "id",
    "ts",
    "user",
    "action",
    "gateway",
    "device",
    "command_id",
    "request",
    "outcome",
    "http_status",
    "status",
    "message",
    "rtt_ms",
)
_COLUMNS: Final = ", ".join(_FIELDS)
MAX_LIMIT: Final = 1000


def _entry(row: Sequence[Any]) -> AuditEntry:
    values = list(row)
    values[7] = orjson.loads(values[7])
    return AuditEntry(*values)


class AuditTable:
    def __init__(self, transaction: Transaction, query: Query) -> None:
        self._transaction = transaction
        self._query = query

    def add(self, e: AuditEntry) -> AuditEntry:
        with self._transaction() as conn:
            (entry_id,) = conn.execute(
                f"INSERT INTO audit ({', '.join(_FIELDS[1:])}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                e.column_values(),
            ).fetchone()
        return dataclasses.replace(e, id=entry_id)

    def list(
        self, limit: int = 100, device: str | None = None, before_id: int | None = None
    ) -> list[AuditEntry]:
        where: list[str] = []
        params: list[object] = []
        if device is not None:
            where.append("device = ?")
            params.append(device)
        if before_id is not None:
            where.append("id < ?")
            params.append(before_id)
        sql = f"SELECT {_COLUMNS} FROM audit"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(max(0, min(limit, MAX_LIMIT)))
        return [_entry(row) for row in self._query(sql, params)]

    def prune(self, keep_rows: int, before_ts: int) -> int:
        """Delete entries older than `before_ts` and all but the newest `keep_rows`; how many went."""
        with self._transaction() as conn:
            aged = conn.execute("DELETE FROM audit WHERE ts < ?", (before_ts,)).rowcount
            extra = conn.execute(
                "DELETE FROM audit WHERE id <= (SELECT id FROM audit ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (keep_rows,),
            ).rowcount
        return int(aged) + int(extra)
