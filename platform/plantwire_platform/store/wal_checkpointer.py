"""The SQLite store's WAL checkpoints: in a thread of their own, never inside an ingest commit.

By default SQLite checkpoints from whichever connection commits once the WAL holds 1,000 pages:
the ingest writer's COMMIT then copies the WAL into the database file and fsyncs it. With 100
devices x 100 tags per commit (bench/wal_checkpoints.py) that nearly doubled the wall time of a
commit (19.7-23.4 against 11.9-12.8 µs per point). In bench/fleet.py at 20,000 values/s, commits
took 50-100 ms (p50) while the writer thread was idle two thirds of the time.

So the store's connections that write do not checkpoint (`wal_autocheckpoint=0`). This thread,
with its own connection, runs a PASSIVE checkpoint every `every_s`: it copies what no reader still
needs and takes no lock that a writer or a reader waits for, so commits go on during its fsync.

SQLite starts the WAL over only at a write that begins after a checkpoint copied all of it. Under
steady ingest, commits keep landing while the checkpoint runs, so that never happens by itself
and the WAL would grow without end. So once the WAL holds more than `RESTART_FRAMES`, the next
PASSIVE checkpoint (which has copied the bulk meanwhile) is followed by a second one under the
store's write lock: no commit runs then, it copies the few pages committed since, and the next
commit starts the WAL over (`journal_size_limit` truncates the file). The lock is held for those
few pages only. A checkpoint that cannot copy everything (a long read keeps old pages) is tried
again next time; a WAL past `WARN_FRAMES` is logged.

Durability is unchanged: in WAL mode a commit is in the WAL when COMMIT returns; a checkpoint
only moves it into the main file.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from typing import Final

from plantwire.logs import get_logger

log = get_logger(__name__)

DEFAULT_EVERY_S: Final = 1.0
JOURNAL_SIZE_LIMIT: Final = 64 * 1024 * 1024
"""Bytes the WAL file is truncated to when SQLite starts it over (without it, it keeps its peak size)."""
RESTART_FRAMES: Final = 16_384
"""WAL pages (64 MiB of 4 KiB pages) past which a checkpoint makes the next commit start it over."""
WARN_FRAMES: Final = 262_144
"""Pages left in the WAL after a checkpoint that are worth a warning (1 GiB of 4 KiB pages)."""
WARN_EVERY_S: Final = 60.0


def writer_pragmas(conn: sqlite3.Connection) -> None:
    """For every connection of the store that writes: commit without checkpointing."""
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")


class WalCheckpointer:
    """PASSIVE checkpoints every `every_s` on `conn` (its own connection), in a thread (`start`);
    `write_lock` is the store's (taken only to let the WAL start over, see the module doc)."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        write_lock: threading.Lock,
        every_s: float = DEFAULT_EVERY_S,
        restart_frames: int = RESTART_FRAMES,
    ) -> None:
        self._conn = conn
        self._lock = write_lock
        self._every_s = every_s
        self._restart_frames = restart_frames
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned = 0.0
        self.checkpoints = 0
        """Checkpoints run (read by tests and figures)."""
        self.wal_frames = 0
        """Pages in the WAL at the last checkpoint."""

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="wal-checkpointer", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._every_s):
            try:
                self.checkpoint()
            except sqlite3.Error as err:
                log.warning("wal_checkpoint_failed", error=str(err))

    def checkpoint(self) -> tuple[int, int]:
        """A PASSIVE checkpoint, and a second one under the write lock when the WAL is past
        `restart_frames`: (pages in the WAL, pages copied into the database file)."""
        frames, copied = self._passive()
        if frames > self._restart_frames:
            with self._lock:
                frames, copied = self._passive()
        self.checkpoints += 1
        self.wal_frames = frames
        now = time.monotonic()
        if frames - copied > WARN_FRAMES and now - self._warned > WARN_EVERY_S:
            self._warned = now
            log.warning("wal_checkpoint_behind", wal_pages=int(frames), copied_pages=int(copied))
        return frames, copied

    def _passive(self) -> tuple[int, int]:
        _busy, frames, copied = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(frames), int(copied)

    def stop(self) -> None:
        """End the thread and close its connection (closing the store's last one checkpoints)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._conn.close()
