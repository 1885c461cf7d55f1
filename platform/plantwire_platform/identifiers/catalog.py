"""`IdentifierCatalog`: the handles this platform owns, in one SQLite table, with a hot cache.

`CatalogDb` is the blocking store (one connection, used from one thread); `IdentifierCatalog`
is the async facade the rest of the platform uses: writes and cache misses go through a dedicated
single-thread executor, cache hits answer without leaving the event loop.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import orjson

from plantwire_platform.identifiers.handle import Handle, HandleValue, same_values

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS identifiers (
    handle  TEXT PRIMARY KEY,
    prefix  TEXT NOT NULL,
    suffix  TEXT NOT NULL,
    kind    TEXT NOT NULL,
    record  BLOB NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    synced  REAL
);
CREATE INDEX IF NOT EXISTS identifiers_prefix ON identifiers (prefix, suffix);
CREATE INDEX IF NOT EXISTS identifiers_unsynced ON identifiers (synced) WHERE synced IS NULL;
-- Where a follower of the store's device list is (identifiers.device_naming), saved with what it named.
CREATE TABLE IF NOT EXISTS cursors (
    name    TEXT PRIMARY KEY,
    changed INTEGER NOT NULL,
    device  TEXT NOT NULL
);
"""


class HandleExists(Exception):
    """A create of a handle that is already there (Handle response code 101)."""


class HandleMissing(Exception):
    """A change of values of a handle that does not exist (Handle response code 100)."""


class ValueExists(Exception):
    """A value index that is already taken, where overwriting was not allowed (response code 201)."""


def _encode(values: Sequence[HandleValue]) -> bytes:
    return orjson.dumps([[v.index, v.type, v.value, v.format, v.ttl, v.timestamp, v.scope] for v in values])


def _decode(prefix: str, suffix: str, blob: bytes) -> Handle:
    return Handle(prefix, suffix, tuple(HandleValue(*row) for row in orjson.loads(blob)))


class CatalogDb:
    """Blocking access to the `identifiers` table of a SQLite file (WAL)."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def get(self, name: str) -> Handle | None:
        row = self._db.execute(
            "SELECT prefix, suffix, record FROM identifiers WHERE handle = ?", (name,)
        ).fetchone()
        return None if row is None else _decode(row[0], row[1], row[2])

    def put(self, handle: Handle, now: float, overwrite: bool) -> bool:
        """Store `handle`; True if it was new. Without `overwrite` an existing one raises HandleExists."""
        kind = handle.suffix.partition(".")[0]
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            exists = self._db.execute("SELECT 1 FROM identifiers WHERE handle = ?", (handle.name,)).fetchone()
            if exists and not overwrite:
                raise HandleExists(handle.name)
            self._db.execute(
                "INSERT INTO identifiers (handle, prefix, suffix, kind, record, created, updated)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (handle) DO UPDATE SET"
                " record = excluded.record, updated = excluded.updated, synced = NULL",
                (handle.name, handle.prefix, handle.suffix, kind, _encode(handle.values), now, now),
            )
        return not exists

    def merge(self, name: str, values: Sequence[HandleValue], now: float, overwrite: bool) -> Handle:
        """Add or replace `values` (by index) in an existing handle, keeping the others."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            row = self._db.execute(
                "SELECT prefix, suffix, record FROM identifiers WHERE handle = ?", (name,)
            ).fetchone()
            if row is None:
                raise HandleMissing(name)
            current = _decode(row[0], row[1], row[2])
            taken = {v.index for v in current.values} & {v.index for v in values}
            if taken and not overwrite:
                raise ValueExists(f"{name}: index {min(taken)} is already taken")
            new = {v.index: v for v in current.values} | {v.index: v for v in values}
            merged = Handle(current.prefix, current.suffix, tuple(new[i] for i in sorted(new)))
            self._db.execute(
                "UPDATE identifiers SET record = ?, updated = ?, synced = NULL WHERE handle = ?",
                (_encode(merged.values), now, name),
            )
        return merged

    def ensure_many(
        self, handles: Sequence[Handle], now: float, cursor: tuple[str, int, str] | None = None
    ) -> list[tuple[Handle, bool]]:
        """Write the handles whose values differ from those stored (timestamps aside), in one
        transaction with `cursor` (name, changed, device) saved; returns (handle, created) of each written."""
        written: list[tuple[Handle, bool]] = []
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            for handle in handles:
                row = self._db.execute(
                    "SELECT prefix, suffix, record FROM identifiers WHERE handle = ?", (handle.name,)
                ).fetchone()
                if row is not None and same_values(_decode(row[0], row[1], row[2]), handle):
                    continue
                kind = handle.suffix.partition(".")[0]
                self._db.execute(
                    "INSERT INTO identifiers (handle, prefix, suffix, kind, record, created, updated)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (handle) DO UPDATE SET"
                    " record = excluded.record, updated = excluded.updated, synced = NULL",
                    (handle.name, handle.prefix, handle.suffix, kind, _encode(handle.values), now, now),
                )
                written.append((handle, row is None))
            if cursor is not None:
                self._db.execute(
                    "INSERT INTO cursors (name, changed, device) VALUES (?, ?, ?) ON CONFLICT (name)"
                    " DO UPDATE SET changed = excluded.changed, device = excluded.device",
                    cursor,
                )
        return written

    def cursor(self, name: str) -> tuple[int, str] | None:
        """The (changed, device) saved under `name` by `ensure_many`, None before any."""
        row = self._db.execute("SELECT changed, device FROM cursors WHERE name = ?", (name,)).fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    def existing(self, names: Sequence[str]) -> set[str]:
        """Which of these handles exist."""
        found: set[str] = set()
        for i in range(0, len(names), 500):
            chunk = names[i : i + 500]
            marks = ", ".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT handle FROM identifiers WHERE handle IN ({marks})", chunk)
            found.update(r[0] for r in rows)
        return found

    def put_many(self, handles: Iterable[Handle], now: float) -> int:
        """Insert new handles in one transaction, skipping those already there; returns how many."""
        rows = [
            (h.name, h.prefix, h.suffix, h.suffix.partition(".")[0], _encode(h.values), now, now)
            for h in handles
        ]
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            before = self._db.total_changes
            self._db.executemany(
                "INSERT OR IGNORE INTO identifiers (handle, prefix, suffix, kind, record, created, updated)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            return self._db.total_changes - before

    def delete(self, name: str) -> bool:
        return self._db.execute("DELETE FROM identifiers WHERE handle = ?", (name,)).rowcount > 0

    def list_page(self, prefix: str, page: int, page_size: int) -> tuple[int, list[str]]:
        """(total under `prefix`, the names of one page, ordered by suffix); page counts from 0."""
        total = self._db.execute("SELECT count(*) FROM identifiers WHERE prefix = ?", (prefix,)).fetchone()[0]
        rows = self._db.execute(
            "SELECT handle FROM identifiers WHERE prefix = ? ORDER BY suffix LIMIT ? OFFSET ?",
            (prefix, page_size, page * page_size),
        ).fetchall()
        return int(total), [r[0] for r in rows]

    def newest(self, limit: int) -> list[Handle]:
        """The `limit` most recently changed handles, oldest of them first."""
        rows = self._db.execute(
            "SELECT prefix, suffix, record FROM (SELECT prefix, suffix, record, updated FROM identifiers"
            " ORDER BY updated DESC LIMIT ?) ORDER BY updated",
            (limit,),
        ).fetchall()
        return [_decode(r[0], r[1], r[2]) for r in rows]

    def unsynced(self, limit: int) -> list[Handle]:
        rows = self._db.execute(
            "SELECT prefix, suffix, record FROM identifiers WHERE synced IS NULL ORDER BY created LIMIT ?",
            (limit,),
        ).fetchall()
        return [_decode(r[0], r[1], r[2]) for r in rows]

    def mark_synced(self, names: Sequence[str], now: float) -> None:
        with self._db:
            self._db.executemany(
                "UPDATE identifiers SET synced = ? WHERE handle = ?", [(now, n) for n in names]
            )


class IdentifierCatalog:
    """Async facade over `CatalogDb` with an LRU of hot handles. Use as an async context manager."""

    def __init__(self, path: Path, hot_cache_size: int = 50_000) -> None:
        self._path = path
        self._size = hot_cache_size
        self._hot: OrderedDict[str, Handle] = OrderedDict()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="identifier-catalog")
        self._db: CatalogDb | None = None

    async def __aenter__(self) -> IdentifierCatalog:
        self._db = await self._run(CatalogDb, self._path)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._db is not None:
            await self._run(self._db.close)
            self._db = None
        self._pool.shutdown(wait=True)

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    @property
    def db(self) -> CatalogDb:
        if self._db is None:
            raise RuntimeError("the identifier catalog is not open (use `async with`)")
        return self._db

    def _remember(self, handle: Handle) -> None:
        self._hot[handle.name] = handle
        self._hot.move_to_end(handle.name)
        if len(self._hot) > self._size:
            self._hot.popitem(last=False)

    async def warm(self) -> int:
        """Fill the hot cache with the most recently changed handles (at start-up); returns how many."""
        handles: list[Handle] = await self._run(self.db.newest, self._size)
        for h in handles:
            self._remember(h)
        return len(handles)

    async def get(self, name: str) -> Handle | None:
        hot = self._hot.get(name)
        if hot is not None:
            self._hot.move_to_end(name)
            return hot
        handle: Handle | None = await self._run(self.db.get, name)
        if handle is not None:
            self._remember(handle)
        return handle

    async def put(self, handle: Handle, now: float, overwrite: bool = False) -> bool:
        created: bool = await self._run(self.db.put, handle, now, overwrite)
        self._remember(handle)
        return created

    async def merge(
        self, name: str, values: Sequence[HandleValue], now: float, overwrite: bool = True
    ) -> Handle:
        merged: Handle = await self._run(self.db.merge, name, values, now, overwrite)
        self._remember(merged)
        return merged

    async def ensure_many(
        self, handles: Sequence[Handle], now: float, cursor: tuple[str, int, str] | None = None
    ) -> list[tuple[Handle, bool]]:
        """`CatalogDb.ensure_many`; handles already hot are refreshed, others are not added (a bulk
        write would evict the handles someone asked for)."""
        written: list[tuple[Handle, bool]] = await self._run(self.db.ensure_many, handles, now, cursor)
        for handle, _ in written:
            if handle.name in self._hot:
                self._hot[handle.name] = handle
        return written

    async def cursor(self, name: str) -> tuple[int, str] | None:
        result: tuple[int, str] | None = await self._run(self.db.cursor, name)
        return result

    async def existing(self, names: Sequence[str]) -> set[str]:
        """Which of these handles exist (the hot ones answered without I/O)."""
        found = {n for n in names if n in self._hot}
        rest = [n for n in names if n not in found]
        if rest:
            found |= await self._run(self.db.existing, rest)
        return found

    async def put_many(self, handles: Sequence[Handle], now: float) -> int:
        count: int = await self._run(self.db.put_many, handles, now)
        return count

    async def delete(self, name: str) -> bool:
        self._hot.pop(name, None)
        deleted: bool = await self._run(self.db.delete, name)
        return deleted

    async def list_page(self, prefix: str, page: int = 0, page_size: int = 1000) -> tuple[int, list[str]]:
        result: tuple[int, list[str]] = await self._run(self.db.list_page, prefix, page, page_size)
        return result

    async def unsynced(self, limit: int = 500) -> list[Handle]:
        result: list[Handle] = await self._run(self.db.unsynced, limit)
        return result

    async def mark_synced(self, names: Sequence[str], now: float) -> None:
        await self._run(self.db.mark_synced, names, now)
