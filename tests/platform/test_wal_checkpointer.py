"""WAL checkpoints run in their own thread: commits never checkpoint, and the WAL stays bounded.

Without them off the commit path, the ingest writer's COMMIT copied the WAL into the file and
fsynced it whenever the WAL passed 1,000 pages. Without the write-locked second checkpoint, a
writer that never pauses would keep the WAL from starting over, and it would grow without end.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

from plantwire.wire import DataBatch, Sample
from plantwire_platform.store.model import IncomingBatch
from plantwire_platform.store.sqlite import SqliteStore
from plantwire_platform.store.wal_checkpointer import WalCheckpointer, writer_pragmas

T0 = 1_780_000_000_000_000
PAGE = 4096


def _batches(k: int) -> list[IncomingBatch]:
    ts = T0 + k * 1_000_000
    return [
        IncomingBatch("gw", f"d{d}", DataBatch(k + 1, ts, [Sample(f"t{t}", ts, float(k)) for t in range(50)]))
        for d in range(40)
    ]


def _wal_pages(path: Path) -> int:
    return os.path.getsize(path.with_name(path.name + "-wal")) // PAGE


def test_commits_leave_checkpoints_to_the_checkpointer(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with SqliteStore.open(path, merge_every_s=None, checkpoint_every_s=3600) as store:
        for k in range(30):
            store.write_batches(_batches(k))
        # Every commit is still in the WAL: none of them checkpointed (SQLite's default would
        # have, at 1,000 pages), and a reader sees them all.
        probe = sqlite3.connect(path)
        try:
            busy, frames, _copied = probe.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        finally:
            probe.close()
        assert frames > 3000 and busy == 0
        assert store.count_points() == 30 * 40 * 50


def _wal_pages_while_writing(path: Path, restart_frames: int) -> tuple[int, int]:
    """Commit 400 transactions of ~60 pages each back to back (no pause for a checkpoint to find
    the WAL fully copied) beside a WalCheckpointer; returns (pages committed, the WAL's peak pages)."""
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA synchronous=NORMAL")
    writer.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
    writer_pragmas(writer)
    lock = threading.Lock()
    checkpointer = WalCheckpointer(
        sqlite3.connect(path, isolation_level=None, check_same_thread=False), lock, 0.01, restart_frames
    )
    checkpointer.start()
    peak = committed = 0
    try:
        for k in range(400):
            with lock:
                writer.execute("BEGIN IMMEDIATE")
                writer.executemany(
                    "INSERT INTO t VALUES (?, ?)", ((k * 200 + i, os.urandom(1000)) for i in range(200))
                )
                writer.execute("COMMIT")
            committed += 200 * 1000 // PAGE
            peak = max(peak, _wal_pages(path))
            time.sleep(0)  # let the checkpointer take the lock when it asks
        assert writer.execute("SELECT count(*) FROM t").fetchone()[0] == 400 * 200
    finally:
        checkpointer.stop()
        writer.close()
    return committed, peak


def test_the_wal_starts_over_under_a_writer_that_never_pauses(tmp_path: Path) -> None:
    committed, peak = _wal_pages_while_writing(tmp_path / "bounded.sqlite", restart_frames=500)
    assert committed > 15_000 and peak < 2_000
    # The passive checkpoints alone copy the pages, but the WAL never starts over: it keeps it all.
    committed, peak = _wal_pages_while_writing(tmp_path / "unbounded.sqlite", restart_frames=10**9)
    assert peak > committed * 0.9
