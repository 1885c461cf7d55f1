"""The catalog half of the PostgreSQL backend: devices, tags, statuses, alarms and the audit.

The same statements as the SQLite registry (`store/registry.py`, `app_tables.py`,
`audit_table.py`) in PostgreSQL's dialect, as coroutines on the store's pool.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final

import asyncpg
import orjson

from plantwire_platform.store.app_tables import SEVERITIES
from plantwire_platform.store.audit_table import MAX_LIMIT
from plantwire_platform.store.device_query import DeviceQuery, shown_state_sql
from plantwire_platform.store.model import AlarmRecord, AuditEntry, TagRecord
from plantwire_platform.store.value_types_schema import dims_of, enum_of

DEVICE_SELECT: Final = """
SELECT d.id, d.gateway, d.endpoint, d.state, d.state_since, d.error,
       coalesce(g.state, 'unknown'),
       (SELECT count(*) FROM series s WHERE s.device = d.id),
       d.first_seen,
       (SELECT max(p.ts) FROM series s CROSS JOIN LATERAL (
            SELECT ts FROM points WHERE series_id = s.series_id ORDER BY ts DESC LIMIT 1) p
         WHERE s.device = d.id),
       d.last_seq, g.since
FROM devices d LEFT JOIN gateways g ON g.id = d.gateway
"""
TAGS_SELECT: Final = (
    "SELECT device, tag, node_id, data_type, unit, description, writable, low, high, derived_by, "
    "dims, enum_names, locale FROM series WHERE device = $1 ORDER BY tag"
)
_ALARM_COLUMNS: Final = (
    "id, app, device, tag, severity, message, state, raised_at, cleared_at, acked_at, acked_by"
)
_AUDIT_FIELDS: Final = (
    "ts", '"user"', "action", "gateway", "device", "command_id", "request", "outcome",
    "http_status", "status", "message", "rtt_ms",
)  # fmt: skip


# --- devices and tags ------------------------------------------------------------------------------


def device_where(q: DeviceQuery) -> tuple[str, list[Any]]:
    """The WHERE clause (empty or starting with ' WHERE') of a device page, with $1.. parameters."""
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (("gateway", q.gateway), (shown_state_sql(), q.state)):
        if value is not None:
            params.append(value)
            clauses.append(f"{column} = ${len(params)}")
    if q.name:
        params.append(q.name)
        clauses.append(f"strpos(lower(id), lower(${len(params)})) > 0")
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def tag_record(row: asyncpg.Record) -> TagRecord:
    """A row of TAGS_SELECT."""
    d, t, n, dt, u, desc, w, lo, hi, by, dims, names, locale = row
    return TagRecord(d, t, n, dt, u, desc, w, lo, hi, by, dims_of(dims), enum_of(names), locale)


# --- alarms ----------------------------------------------------------------------------------------


def check_severity(severity: str) -> None:
    if severity not in SEVERITIES:
        raise ValueError(f"severity {severity!r} is not one of {', '.join(SEVERITIES)}")


async def raise_alarm(
    pool: asyncpg.Pool, app: str, device: str, tag: str, severity: str, message: str, ts: int
) -> AlarmRecord:
    """Open an alarm, or update the active one of the key (the partial unique index decides)."""
    row = await pool.fetchrow(
        "INSERT INTO alarms (app, device, tag, severity, message, state, raised_at) "
        "VALUES ($1, $2, $3, $4, $5, 'active', $6) "
        "ON CONFLICT (app, device, tag) WHERE state = 'active' "
        "DO UPDATE SET severity = excluded.severity, message = excluded.message "
        f"RETURNING {_ALARM_COLUMNS}",
        app,
        device,
        tag,
        severity,
        message,
        ts,
    )
    assert row is not None  # INSERT ... ON CONFLICT DO UPDATE always returns the row
    return AlarmRecord.from_row(row)


async def clear_alarm(pool: asyncpg.Pool, app: str, device: str, tag: str, ts: int) -> AlarmRecord | None:
    row = await pool.fetchrow(
        "UPDATE alarms SET state = 'cleared', cleared_at = $1 "
        f"WHERE app = $2 AND device = $3 AND tag = $4 AND state = 'active' RETURNING {_ALARM_COLUMNS}",
        ts,
        app,
        device,
        tag,
    )
    return None if row is None else AlarmRecord.from_row(row)


async def ack_alarm(pool: asyncpg.Pool, alarm_id: int, by: str, ts: int) -> AlarmRecord | None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "UPDATE alarms SET acked_at = $1, acked_by = $2 WHERE id = $3 AND acked_at IS NULL",
            ts,
            by,
            alarm_id,
        )
        row = await conn.fetchrow(f"SELECT {_ALARM_COLUMNS} FROM alarms WHERE id = $1", alarm_id)
    return None if row is None else AlarmRecord.from_row(row)


def _where(conditions: list[tuple[str, Any]]) -> tuple[str, list[Any]]:
    """' WHERE a = $1 AND ...' for the conditions whose value is given, and their parameters."""
    parts: list[str] = []
    params: list[Any] = []
    for sql, value in conditions:
        params.append(value)
        parts.append(sql.format(f"${len(params)}"))
    return (" WHERE " + " AND ".join(parts) if parts else ""), params


async def list_alarms(
    pool: asyncpg.Pool, active_only: bool, device: str | None, app: str | None, limit: int
) -> list[AlarmRecord]:
    conditions: list[tuple[str, Any]] = [("state = {}", "active")] if active_only else []
    conditions += [(c, v) for c, v in (("device = {}", device), ("app = {}", app)) if v is not None]
    where, params = _where(conditions)
    order = f" ORDER BY raised_at DESC, id DESC LIMIT ${len(params) + 1}"
    rows = await pool.fetch(f"SELECT {_ALARM_COLUMNS} FROM alarms{where}{order}", *params, max(0, limit))
    return [AlarmRecord.from_row(r) for r in rows]


# --- audit -----------------------------------------------------------------------------------------


async def add_audit(pool: asyncpg.Pool, e: AuditEntry) -> AuditEntry:
    placeholders = ", ".join(f"${i}" for i in range(1, len(_AUDIT_FIELDS) + 1))
    entry_id = await pool.fetchval(
        f"INSERT INTO audit ({', '.join(_AUDIT_FIELDS)}) VALUES ({placeholders}) RETURNING id",
        *e.column_values(),
    )
    return dataclasses.replace(e, id=entry_id)


async def list_audit(
    pool: asyncpg.Pool, limit: int, device: str | None, before_id: int | None
) -> list[AuditEntry]:
    conditions = [(c, v) for c, v in (("device = {}", device), ("id < {}", before_id)) if v is not None]
    where, params = _where(conditions)
    rows = await pool.fetch(
        f"SELECT id, {', '.join(_AUDIT_FIELDS)} FROM audit{where} ORDER BY id DESC LIMIT ${len(params) + 1}",
        *params,
        max(0, min(limit, MAX_LIMIT)),
    )
    out = []
    for r in rows:
        values = list(r)
        values[7] = orjson.loads(values[7])
        out.append(AuditEntry(*values))
    return out


async def prune_audit(pool: asyncpg.Pool, keep_rows: int, before_ts: int) -> int:
    """Delete entries older than `before_ts` and all but the newest `keep_rows`; how many went."""
    async with pool.acquire() as conn, conn.transaction():
        aged = await conn.execute("DELETE FROM audit WHERE ts < $1", before_ts)
        extra = await conn.execute(
            "DELETE FROM audit WHERE id <= (SELECT id FROM audit ORDER BY id DESC LIMIT 1 OFFSET $1)",
            keep_rows,
        )
    return int(aged.split()[-1]) + int(extra.split()[-1])
