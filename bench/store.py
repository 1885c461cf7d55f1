"""Benchmark of the SQLite store: interleaved ingest rate and query timings. Prints figures.

    /tmp/pwvenv/bin/python bench/store.py [--points 1000000] [--dir /tmp/pwbench]

Ingest: 10 devices x 50 tags = 500 series; each message is one device's 50 tags at one time
(what a gateway batch looks like), so consecutive rows land in different series (interleaved
B-tree inserts). Messages are grouped per commit as the ingest writer does (it commits every
`commit_interval_ms` or `max_batch_points`, whichever comes first), for a few commit sizes.
Queries run on the same file once it holds millions of points.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from plantwire.wire import DataBatch, Sample
from plantwire_platform.store.model import Agg, IncomingBatch
from plantwire_platform.store.sqlite import SqliteStore

T0 = 1_700_000_000_000_000
DEVICES = 10
TAGS = 50


def messages(first_step: int, steps: int, device_prefix: str) -> list[IncomingBatch]:
    """`steps` time steps, each one message per device (50 points), devices interleaved."""
    out = []
    for step in range(first_step, first_step + steps):
        ts = T0 + step * 100_000
        for d in range(DEVICES):
            samples = [Sample(f"tag{t:02d}", ts, float(step % 1000) + t * 0.5) for t in range(TAGS)]
            out.append(IncomingBatch("gw", f"{device_prefix}{d}", DataBatch(step + 1, ts, samples)))
    return out


def bench_ingest(store: SqliteStore, total_points: int, points_per_commit: int, prefix: str) -> float:
    steps = total_points // (DEVICES * TAGS)
    msgs = messages(0, steps, prefix)
    per_commit = max(points_per_commit // TAGS, 1)
    started = time.perf_counter()
    stored = 0
    for i in range(0, len(msgs), per_commit):
        stored += store.write_batches(msgs[i : i + per_commit]).stored
    elapsed = time.perf_counter() - started
    assert stored == steps * DEVICES * TAGS, stored
    return stored / elapsed


def fill_query_data(store: SqliteStore) -> None:
    """A device with 100 tags x 10k points, and one dense series of 1M points (10 ms apart)."""
    for start in range(0, 10_000, 500):
        store.write_batches(
            [
                IncomingBatch(
                    "gw",
                    "q100",
                    DataBatch(
                        step + 1,
                        0,
                        [Sample(f"t{t:03d}", T0 + step * 1_000_000, step + t) for t in range(100)],
                    ),
                )
                for step in range(start, start + 500)
            ]
        )
    for start in range(0, 1_000_000, 50_000):
        samples = [Sample("v", T0 + i * 10_000, float(i % 977)) for i in range(start, start + 50_000)]
        store.write_batches([IncomingBatch("gw", "dense", DataBatch(start // 50_000 + 1, 0, samples))])


def timed(fn: Callable[[], object], repeat: int = 7) -> tuple[float, object]:
    times = []
    result: object = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000, help="points per ingest run")
    parser.add_argument(
        "--dir", type=Path, default=None, help="folder for the database (default: a temp dir)"
    )
    args = parser.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="pwbench-"))
    path = folder / "bench.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)

    with SqliteStore.open(path) as store:
        print(f"database: {path}")
        print(
            f"interleaved ingest, {DEVICES * TAGS} series, 50-point messages, {args.points:,} points per run:"
        )
        for n, per_commit in enumerate((5_000, 20_000, 50_000)):
            rate = bench_ingest(store, args.points, per_commit, prefix=f"r{n}d")
            print(f"  {per_commit:>6,} points per commit: {rate:>9,.0f} points/s")

        fill_query_data(store)
        print(f"queries on {store.count_points():,} points (median of 7):")
        ms, latest = timed(lambda: store.latest("q100"))
        assert isinstance(latest, list) and len(latest) == 100
        print(f"  latest(), device with 100 tags:           {ms:8.2f} ms")
        ms, points = timed(lambda: store.series("q100", "t000", 0, 2**62, 10_000))
        assert isinstance(points, list) and len(points) == 10_000
        print(f"  series(), 10k points:                     {ms:8.2f} ms")
        end = T0 + 1_000_000 * 10_000
        aggs: tuple[Agg, ...] = ("avg", "last", "count")
        for agg in aggs:
            ms, buckets = timed(partial(store.buckets, "dense", "v", T0, end, 60_000_000, agg), repeat=3)
            assert isinstance(buckets, list) and sum(b.count for b in buckets) == 1_000_000
            print(f"  buckets(), 1-minute {agg:<5} over 1M points: {ms:8.1f} ms ({len(buckets)} buckets)")
        ms, devices = timed(lambda: store.list_devices())
        print(f"  list_devices(), {len(devices)} devices:                {ms:8.2f} ms")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
