"""Schema step "value types" of the PostgreSQL backend, run after `schema.create` (idempotent).

- `points.jval jsonb`: arrays and structures, as JSON (store/value_shapes.py); NULL for scalars.
  Added at the end of the table, so statements name their columns rather than rely on the order.
- `series.dims`, `series.enum_names` (JSON text), `series.locale`: what `meta` says of arrays,
  enumerations and LocalizedText; `series.json_values`: set once a point of the series was JSON.

A separate step so that a database of any earlier version gains the columns on its next start.
"""

from __future__ import annotations

from typing import Final

import asyncpg

_LOCK: Final = 0x706C7674
MIGRATE: Final = """
ALTER TABLE points ADD COLUMN IF NOT EXISTS jval jsonb;
ALTER TABLE series ADD COLUMN IF NOT EXISTS dims text;
ALTER TABLE series ADD COLUMN IF NOT EXISTS enum_names text;
ALTER TABLE series ADD COLUMN IF NOT EXISTS locale text;
ALTER TABLE series ADD COLUMN IF NOT EXISTS json_values boolean NOT NULL DEFAULT false;
"""


async def migrate(conn: asyncpg.Connection, schema_name: str) -> None:
    """Add the value-type columns where they are missing (under an advisory lock, like the DDL)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK)
        await conn.execute(f'SET LOCAL search_path TO "{schema_name}"')
        await conn.execute(MIGRATE)
