"""Schema step "value types" for the SQLite files (store and InfluxDB registry): tag columns from meta.

A separate, idempotent step run after the base schema (columns are added when missing, so a file of
any earlier version gains them and the base schema's version number is left alone):

- `series.dims` (JSON list of ArrayDimensions), `series.enum_names` (JSON object value -> name),
  `series.locale` (LocalizedText): what `meta` says of arrays, enumerations and texts;
- `series.json_values` (0/1): set once a point of the series was an array or a structure, so that
  reads decode its JSON and aggregates run element by element (store/value_shapes.py).
"""

from __future__ import annotations

import sqlite3
from typing import Final

import orjson

from plantwire.wire import TagInfo

COLUMNS: Final = {
    "dims": "TEXT",
    "enum_names": "TEXT",
    "locale": "TEXT",
    "json_values": "INTEGER NOT NULL DEFAULT 0",
}


def ensure_columns(conn: sqlite3.Connection) -> None:
    """Add the value-type columns to `series` where they are missing."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(series)").fetchall()}
    for name, decl in COLUMNS.items():
        if name not in have:
            conn.execute(f"ALTER TABLE series ADD COLUMN {name} {decl}")


def meta_columns(t: TagInfo) -> tuple[str | None, str | None, str | None]:
    """(dims, enum_names, locale) of a tag as stored."""
    dims = orjson.dumps(list(t.dims)).decode() if t.dims is not None else None
    names = orjson.dumps({str(k): v for k, v in t.enum.items()}).decode() if t.enum is not None else None
    return dims, names, t.locale


def dims_of(text: str | None) -> tuple[int, ...] | None:
    return tuple(orjson.loads(text)) if text else None


def enum_of(text: str | None) -> dict[int, str] | None:
    return {int(k): v for k, v in orjson.loads(text).items()} if text else None
