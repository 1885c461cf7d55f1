"""WAL checkpoints inside the ingest commit (SQLite's default) against the store's own checkpointer.

    python bench/wal_checkpoints.py [--devices 100] [--tags 100] [--commits 60]

The SQLite store's `write_batches`, one commit per time step of D devices x T tags (interleaved
series, as a plant writes), no rollup merger running. Printed side by side, per point of the
steady commits (the first 5 left out): wall time and CPU of the committing thread's process, and
the WAL file's peak size:

- "in the commit": the store with SQLite's default restored on its writer (`wal_autocheckpoint`
  1,000 pages: the commit that passes it copies the WAL into the file and fsyncs it; the
  checkpointer thread still runs beside it);
- "checkpointer": the store as it ships (store/wal_checkpointer.py: commits never checkpoint,
  a thread does every second, and makes the WAL start over once it passes 64 MiB).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from plantwire.wire import DataBatch, Sample
from plantwire_platform.store.model import IncomingBatch
from plantwire_platform.store.sqlite import SqliteStore

T0 = 1_780_000_000_000_000


def run(args: argparse.Namespace, in_commit: bool) -> tuple[float, float, int]:
    """(wall µs per point, CPU µs per point, peak WAL bytes)."""
    path = Path(tempfile.mkdtemp(prefix="plantwire-wal-")) / "s.sqlite"
    tags = [f"t{i}" for i in range(args.tags)]
    walls, cpus, peak = [], [], 0
    with SqliteStore.open(path, merge_every_s=None) as store:
        if in_commit:
            store._writer.execute("PRAGMA wal_autocheckpoint=1000")  # SQLite's default
        for k in range(args.commits):
            ts = T0 + k * 1_000_000
            batches = [
                IncomingBatch("gw", f"d{d}", DataBatch(k + 1, ts, [Sample(t, ts, float(k)) for t in tags]))
                for d in range(args.devices)
            ]
            wall, cpu = time.perf_counter(), time.process_time()
            store.write_batches(batches)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
            peak = max(peak, os.path.getsize(path.with_name(path.name + "-wal")))
    n = args.devices * args.tags * (args.commits - 5)
    return sum(walls[5:]) / n * 1e6, sum(cpus[5:]) / n * 1e6, peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=100)
    ap.add_argument("--tags", type=int, default=100)
    ap.add_argument("--commits", type=int, default=60)
    args = ap.parse_args()
    print(f"{args.devices} devices x {args.tags} tags per commit, {args.commits} commits")
    for label, in_commit in (("in the commit", True), ("checkpointer", False), ("in the commit", True)):
        wall, cpu, peak = run(args, in_commit)
        print(f"  {label:<14} {wall:6.2f} µs wall, {cpu:6.2f} µs CPU per point; WAL peak {peak / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
