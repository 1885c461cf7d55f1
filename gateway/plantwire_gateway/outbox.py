"""The durable outbox: every batch is written here before it is published, and leaves only on PUBACK.

Why SQLite in WAL mode with ``synchronous=NORMAL``: a commit appends to the WAL file in the OS page
cache, so a killed gateway process (kill -9, OOM, crash) loses nothing that was committed; only a
power cut or kernel crash can lose the last commits, because NORMAL skips the fsync per commit.
FULL would survive that too, at ~20% more cost per commit and no benefit against the failures we
expect at the edge (process restarts, broker and network outages). Each device's sequence number is
stored in the same transaction as the batch that uses it, so a restarted gateway continues the
sequence exactly where the last committed batch left it.

The outbox is bounded by `max_bytes`: when an append would exceed it, the oldest rows are dropped,
counted and warned about (rate-limited). That is the one place the gateway loses data on purpose,
after a broker outage longer than the disk budget.

All SQLite work runs on one dedicated thread (the connection never leaves it); callers batch
(many messages per append, many ids per delete) so the thread hop is paid per batch, not per value.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from plantwire import wire
from plantwire.logs import get_logger

log = get_logger(__name__)

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS outbox (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    device  TEXT    NOT NULL,
    seq     INTEGER NOT NULL,
    payload BLOB    NOT NULL
);
CREATE TABLE IF NOT EXISTS device_seq (
    device TEXT PRIMARY KEY,
    seq    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS link_state (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    state BLOB    NOT NULL
);
"""
_ROW_OVERHEAD: Final = 64
"""Rough per-row cost on disk beyond the payload, so many tiny rows still count against max_bytes."""
_DROP_WARN_EVERY: Final = 10.0


class LinkStateError(Exception):
    """The state a link keeps in its outbox cannot be read (so neither can the rows that need it)."""


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    device: str
    seq: int
    payload: bytes


class Outbox:
    """An append-only queue of encoded data messages on disk, with per-device sequence numbers.

    Open with `await Outbox.open(path, max_bytes)`, close with `await outbox.close()`.
    The counters (`rows`, `bytes`, `dropped`) are plain ints anyone may read. `link_state` is what
    the link that reads this outbox needs to read its rows (Sparkplug: the metric aliases), kept in
    the same transactions as the rows (`append_encoded`), so rows and state are never apart.
    """

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.rows = 0
        self.bytes = 0
        self.dropped = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        self._db: sqlite3.Connection | None = None
        self._seq: dict[str, int] = {}
        self.link_state: bytes | None = None
        self._last_drop_warning = 0.0
        self._dropped_since_warning = 0

    @classmethod
    async def open(cls, path: Path, max_bytes: int) -> Outbox:
        outbox = cls(path, max_bytes)
        try:
            await outbox._call(outbox._open_sync)
        except BaseException:
            outbox._executor.shutdown(wait=True)
            raise
        return outbox

    async def close(self) -> None:
        """Finish queued work (appends submitted before a cancellation included), then close."""
        await self._call(self._close_sync)
        self._executor.shutdown(wait=True)

    async def _call(self, fn: Any, *args: Any) -> Any:
        # Shielded: once submitted, a job finishes even if the caller is cancelled, so a batch is
        # never half-known (the caller cannot tell whether a cancelled append was committed).
        fut = asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        return await asyncio.shield(fut)

    # --- the async API ----------------------------------------------------------------------

    async def append(self, device: str, batches: list[list[wire.Sample]]) -> list[int]:
        """Store each batch as one message with the device's next seq; returns the seqs used."""
        if not batches:
            return []
        return await self._call(self._append_sync, device, batches)

    async def append_encoded(
        self, device: str, payloads: list[bytes], link_state: bytes | None = None
    ) -> None:
        """Store payloads encoded by the link (one message each) and, if given, its new `link_state`,
        in one transaction."""
        if payloads or link_state is not None:
            await self._call(self._append_encoded_sync, device, payloads, link_state)

    async def read_after(self, after_id: int, limit: int) -> list[OutboxRow]:
        """The next `limit` rows with id > `after_id`, oldest first."""
        return await self._call(self._read_sync, after_id, limit)

    async def delete(self, ids: list[int]) -> None:
        """Forget acknowledged rows (ids that are already gone, e.g. dropped, are ignored)."""
        if ids:
            await self._call(self._delete_sync, ids)

    def next_seq(self, device: str) -> int:
        """The seq the device's next message will get (for tests and diagnostics)."""
        return self._seq.get(device, 0) + 1

    # --- on the outbox thread ---------------------------------------------------------------

    def _open_sync(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        self._db = db
        self._seq = dict(db.execute("SELECT device, seq FROM device_seq").fetchall())
        state = db.execute("SELECT state FROM link_state").fetchone()
        self.link_state = bytes(state[0]) if state else None
        self.rows, payload_bytes = db.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0) FROM outbox"
        ).fetchone()
        self.bytes = payload_bytes + self.rows * _ROW_OVERHEAD
        log.info("outbox_opened", path=str(self.path), rows=self.rows, bytes=self.bytes)

    def _close_sync(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _append_sync(self, device: str, batches: list[list[wire.Sample]]) -> list[int]:
        seq = self._seq.get(device, 0)
        sent = wire.now_us()
        payloads = [
            wire.encode_data(wire.DataBatch(seq=seq + i, sent=sent, samples=samples))
            for i, samples in enumerate(batches, start=1)
        ]
        return self._append_encoded_sync(device, payloads, None)

    def _append_encoded_sync(self, device: str, payloads: list[bytes], link_state: bytes | None) -> list[int]:
        db = self._db
        assert db is not None
        seq = self._seq.get(device, 0)
        rows = []
        added = 0
        for payload in payloads:
            seq += 1
            rows.append((device, seq, payload))
            added += len(payload) + _ROW_OVERHEAD
        with db:  # one transaction: the rows, the device's new seq and the link's state, or none
            db.execute("BEGIN")
            if link_state is not None:
                db.execute(
                    "INSERT INTO link_state (id, state) VALUES (1, ?) "
                    "ON CONFLICT(id) DO UPDATE SET state = excluded.state",
                    (link_state,),
                )
            db.executemany("INSERT INTO outbox (device, seq, payload) VALUES (?, ?, ?)", rows)
            if rows:
                db.execute(
                    "INSERT INTO device_seq (device, seq) VALUES (?, ?) "
                    "ON CONFLICT(device) DO UPDATE SET seq = excluded.seq",
                    (device, seq),
                )
            dropped, freed = self._drop_oldest_sync(db, self.bytes + added - self.max_bytes)
        self._seq[device] = seq
        if link_state is not None:
            self.link_state = link_state
        self.rows += len(rows) - dropped
        self.bytes += added - freed
        if dropped:
            self._count_dropped(dropped)
        return [r[1] for r in rows]

    def _drop_oldest_sync(self, db: sqlite3.Connection, excess: int) -> tuple[int, int]:
        """Delete the oldest rows until `excess` bytes are freed; returns (rows, bytes)."""
        dropped = freed = 0
        last_id = None
        if excess <= 0:
            return 0, 0
        while freed < excess:
            chunk = db.execute(
                "SELECT id, LENGTH(payload) FROM outbox WHERE id > ? ORDER BY id LIMIT 256", (last_id or 0,)
            ).fetchall()
            if not chunk:
                break
            for row_id, size in chunk:
                dropped += 1
                freed += size + _ROW_OVERHEAD
                last_id = row_id
                if freed >= excess:
                    break
        if last_id is not None:
            db.execute("DELETE FROM outbox WHERE id <= ?", (last_id,))
        return dropped, freed

    def _count_dropped(self, n: int) -> None:
        self.dropped += n
        self._dropped_since_warning += n
        now = time.monotonic()
        if now - self._last_drop_warning >= _DROP_WARN_EVERY:
            log.warning(
                "outbox_full_dropped_oldest",
                dropped=self._dropped_since_warning,
                dropped_total=self.dropped,
                max_bytes=self.max_bytes,
            )
            self._last_drop_warning = now
            self._dropped_since_warning = 0

    def _read_sync(self, after_id: int, limit: int) -> list[OutboxRow]:
        assert self._db is not None
        cur = self._db.execute(
            "SELECT id, device, seq, payload FROM outbox WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)
        )
        return [OutboxRow(*r) for r in cur]

    def _delete_sync(self, ids: list[int]) -> None:
        db = self._db
        assert db is not None
        freed = removed = 0
        with db:
            db.execute("BEGIN")
            for row_id in ids:
                row = db.execute(
                    "DELETE FROM outbox WHERE id = ? RETURNING LENGTH(payload)", (row_id,)
                ).fetchall()
                if row:
                    removed += 1
                    freed += row[0][0] + _ROW_OVERHEAD
        self.rows -= removed
        self.bytes -= freed
