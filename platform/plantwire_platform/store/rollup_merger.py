"""The SQLite store's rollup merger: pending notes into the rollup tables, off the commit path.

One thread with its own connection. Every `every_s` it sweeps `rollup_pending` once, oldest first,
`chunk` notes at a time. A chunk is grouped first without the store's write lock
(store.sqlite_rollups.group_chunk: it reads main and writes only its temporary tables), then
merged and its notes deleted in one write transaction under the lock (`apply_chunk`). So an
ingest commit waits for the merge of one chunk's groups at most, never for the grouping: with
the lock held for the whole chunk, a commit waited up to a second behind back-to-back chunks
(bench/fleet.py at 20,000 values/s: p99 from a message's arrival to its commit 1 s; SQLite has
one writer at a time, and the lock lets the two take turns without the busy handler's sleeps).
Stopping ends it between two chunks; what is left stays pending, durable, and the next open's
merger catches up (queries fold pending notes in meanwhile).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from functools import partial
from typing import Final, TypeVar

from plantwire.logs import get_logger
from plantwire_platform.store import sqlite_rollups
from plantwire_platform.store.model import StoreError

log = get_logger(__name__)
T = TypeVar("T")
DEFAULT_EVERY_S: Final = 2.0
CHUNK: Final = 20_000
"""Notes per merge transaction (50-120 ms of the write lock on 2 shared cores, bench/rollups.py)."""


def _pending(conn: sqlite3.Connection) -> int:
    return sqlite_rollups.pending_count(lambda sql, params: conn.execute(sql, params).fetchall())


class RollupMerger:
    """Merges pending rollup notes, in the background (`start`) or when asked (`merge_all`)."""

    def __init__(
        self, conn: sqlite3.Connection, write_lock: threading.Lock, every_s: float | None, chunk: int = CHUNK
    ) -> None:
        """`conn`: the merger's own connection (autocommit mode), one merge at a time; its writes of
        main under `write_lock` only.

        `every_s` None: no background thread (the notes wait for `merge_all`).
        """
        self._conn = conn
        self._lock = write_lock
        self._every_s = every_s
        self._chunk = chunk
        self._stop = threading.Event()
        self._merging = threading.Lock()
        """One merge at a time (the thread's and `merge_all` callers'): a chunk grouped outside
        the write lock must be the next one applied."""
        self._thread: threading.Thread | None = None
        self.merged = 0
        """Notes merged by this merger since it started."""
        self.backlog: int | None = None
        """Notes pending at the start of the last sweep (None before the first)."""
        sqlite_rollups.attach_merger(conn)

    def start(self) -> None:
        if self._every_s is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="rollup-merger", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        assert self._every_s is not None
        while not self._stop.wait(self._every_s):
            try:
                self.merge_all()
            except StoreError as err:
                log.warning("rollup_merge_failed", error=str(err))

    def merge_all(self) -> int:
        """Merge the notes pending now, oldest first, a chunk per transaction; returns how many.

        Notes taken while it runs wait for the next sweep: a sweep ends even when ingest is faster.
        """
        with self._merging:
            up_to = self._run_sql(sqlite_rollups.last_note)
            self.backlog = self._run_sql(_pending)
            total = 0
            while up_to is not None and not self._stop.is_set():
                n, last = self._run_sql(partial(sqlite_rollups.group_chunk, up_to=up_to, limit=self._chunk))
                if n == 0:
                    break
                with self._lock:
                    if self._stop.is_set():
                        break
                    self._run_sql(partial(sqlite_rollups.apply_chunk, last=last, taken=n))
                total += n
                if n < self._chunk:
                    break
            self.merged += total
            return total

    def _run_sql(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return fn(self._conn)
        except sqlite3.Error as err:
            raise StoreError(f"rollup merge failed: {err}") from err

    def stop(self) -> None:
        """End the thread after its current transaction and close the connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._merging, self._lock:
            self._conn.close()
