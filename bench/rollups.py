"""Rollups: a long-range bucketed query from rollups against the raw scan, and what rollups cost ingest.

    python bench/rollups.py [--days 365] [--backend sqlite|postgresql|both] [--dir /tmp/pwbench]

1. Ingest cost: 100 devices x 10 tags, one message per device per time step (interleaved series,
   as a plant writes), 10,000 points per transaction (SQLite also 1,000: one point per series
   per commit, as the platform's writer commits at 1 Hz, on half the points). Points/s of
   `write_batches`, side by side (median of 3 alternating runs: the machine's load drifts), on
   SQLite and PostgreSQL: the commit path alone (new points noted in `rollup_pending`, no merger running);
     with the background merger (every 2 s, as in the platform) and the final catch-up counted
     (points / (write time + time to merge what is left)); merged after every commit (the old
     cost, roughly: the former in-transaction merge plus a commit); the trigger dropped.
   The merge's own rate (notes/s, 20k per transaction) is printed too.
2. A year (`--days`) of one tag at 1 Hz (31.5M points for 365 days), written through
   `write_batches` in key order, 50,000 points per transaction (rollups kept on the way). Then
   `buckets(every=1h)` and `buckets(every=1d)` (avg) over the whole range: from rollups (the
   planner's choice) and from raw points (the same store with the planner switched off: its own
   raw path). Median of 3 runs each; the answers are compared (equal counts, avg to 1e-9).
PostgreSQL: a database made for the run on 127.0.0.1:5432 and dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from plantwire.timeunits import from_iso
from plantwire.wire import DataBatch, Sample
from plantwire_platform.store import sqlite_rollups
from plantwire_platform.store.model import Bucket, IncomingBatch, Store
from plantwire_platform.store.postgresql import rollups as pg_rollups
from plantwire_platform.store.postgresql.store import PostgresSettings, PostgresStore
from plantwire_platform.store.sqlite import SqliteStore

S = 1_000_000
HOUR = 3600 * S
DAY = 24 * HOUR
START = from_iso("2025-12-01T00:00:00Z")
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def timed(fn: Callable[[], Any], runs: int = 3) -> tuple[float, Any]:
    """Median milliseconds of `runs` calls, and the last result."""
    times, out = [], None
    for _ in range(runs):
        t = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), out


# --- stores ----------------------------------------------------------------------------------------


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def open_store(
    backend: str, folder: Path, name: str, merge_every_s: float | None = 2.0
) -> Iterator[SqliteStore | PostgresStore]:
    if backend == "sqlite":
        with SqliteStore.open(folder / f"{name}.sqlite", merge_every_s=merge_every_s) as store:
            yield store
        return
    db = f"plantwire_bench_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(f'CREATE DATABASE "{db}"'))
    try:
        dsn = SecretStr(ADMIN_DSN.rsplit("/", 1)[0] + "/" + db)
        with PostgresStore.open(
            PostgresSettings(dsn=dsn, startup_timeout_s=10, request_timeout_s=600), merge_every_s
        ) as pg:
            yield pg
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))


def drop_trigger(backend: str, store: Store) -> None:
    if isinstance(store, SqliteStore):
        store._writer.execute("DROP TRIGGER temp.points_rollup")  # bench only: the writer's own trigger
    elif isinstance(store, PostgresStore):
        store._run(store._db.execute("DROP TRIGGER points_rollup ON points"))  # bench only


@contextmanager
def raw_only(store: Store) -> Iterator[None]:
    """The store's own raw path: the planner is told rollups cannot help."""
    saved = sqlite_rollups.bucket_rows, pg_rollups.bucket_rows

    async def no_rollups(*a: object) -> None:
        return None

    sqlite_rollups.bucket_rows = lambda *a: None  # type: ignore[assignment]  # bench: planner off
    pg_rollups.bucket_rows = no_rollups  # type: ignore[assignment]  # bench: planner off
    try:
        yield
    finally:
        sqlite_rollups.bucket_rows, pg_rollups.bucket_rows = saved


# --- 1. ingest cost --------------------------------------------------------------------------------


def interleaved(steps: int, first: int = 0, per_tx: int = 10) -> Iterator[list[IncomingBatch]]:
    """Transactions of `per_tx` x 1,000 points: `per_tx` time steps x 100 devices x 10 tags."""
    for chunk in range(first, first + steps, per_tx):
        out = []
        for step in range(chunk, chunk + per_tx):
            ts = START + step * S
            for d in range(100):
                samples = [Sample(f"t{t}", ts, float((step + d + t) % 97)) for t in range(10)]
                out.append(IncomingBatch("gw", f"dev{d:03d}", DataBatch(step + 1, ts, samples)))
        yield out


def ingest_rate_noted(store: SqliteStore | PostgresStore, steps: int, merge: str, per_tx: int) -> float:
    """Points/s of `write_batches`, with the merges `merge` says counted in ("none": none)."""
    for tx in interleaved(10, 0, per_tx):  # series created, caches warm
        store.write_batches(tx)
    store.merge_rollups()
    t = time.perf_counter()
    n = 0
    for tx in interleaved(steps, 10, per_tx):
        n += store.write_batches(tx).stored
        if merge == "every-commit":
            store.merge_rollups()
    if merge != "none":
        store.merge_rollups()  # the catch-up: what the background merger had not done yet
    return n / (time.perf_counter() - t)


MODES = {
    "none": "commit path (notes only)",
    "background": "background merger + catch-up",
    "every-commit": "merged after every commit",
    "no-trigger": "without rollups",
}


def bench_ingest_modes(backend: str, folder: Path, steps: int, per_tx: int, rounds: int = 3) -> None:
    rates: dict[str, list[float]] = {m: [] for m in MODES}
    merge_rates: list[float] = []
    for r in range(rounds):
        for mode in MODES:
            every = 2.0 if mode == "background" else None
            with open_store(backend, folder, f"ingest-{mode}-{per_tx}-{r}", every) as store:
                if mode == "no-trigger":
                    drop_trigger(backend, store)
                merge = "none" if mode == "no-trigger" else mode
                rates[mode].append(ingest_rate_noted(store, steps, merge, per_tx))
                if mode == "none":  # the notes of the whole run, merged at once: the merger's own rate
                    t = time.perf_counter()
                    merged = store.merge_rollups()
                    merge_rates.append(merged / (time.perf_counter() - t))
    print(f"[{backend}] ingest, 1,000 interleaved series, {per_tx}k points per transaction "
          f"({steps * 1000:,} points, median of {rounds} alternating runs)")  # fmt: skip
    without = statistics.median(rates["no-trigger"])
    for mode, label in MODES.items():
        rate = statistics.median(rates[mode])
        cost = "" if mode == "no-trigger" else f"   (rollups cost {100 * (1 - rate / without):.0f}%)"
        print(f"  {label:31} {rate:10,.0f} points/s{cost}")
    print(f"  merger alone (20k notes per transaction): {statistics.median(merge_rates):10,.0f} notes/s")


def bench_ingest(backend: str, folder: Path, steps: int, rounds: int = 3) -> None:
    """Alternating runs of each mode (the machine's load drifts), medians."""
    for per_tx in (10, 1) if backend == "sqlite" else (10,):  # 1: one point per series per commit
        bench_ingest_modes(backend, folder, steps if per_tx == 10 else steps // 2, per_tx, rounds)


# --- 2. a year of 1 Hz ----------------------------------------------------------------------------


def year_batches(days: int) -> Iterator[list[IncomingBatch]]:
    total = days * 86_400
    step = 50_000
    for first in range(0, total, step):
        samples = [
            Sample("speed", START + k * S, round(1500 + 200 * math.sin(k / 3600), 3))
            for k in range(first, min(first + step, total))
        ]
        yield [IncomingBatch("gw", "spindle", DataBatch(first // step + 1, START, samples))]


def same(a: list[Bucket], b: list[Bucket]) -> bool:
    return len(a) == len(b) and all(
        x.start == y.start and x.count == y.count and math.isclose(x.value, y.value, rel_tol=1e-9)  # type: ignore[arg-type]
        for x, y in zip(a, b, strict=True)
    )


def bench_year(backend: str, folder: Path, days: int) -> None:
    with open_store(backend, folder, "year") as store:
        t = time.perf_counter()
        n = sum(store.write_batches(tx).stored for tx in year_batches(days))
        fill_s = time.perf_counter() - t
        end = START + days * DAY
        print(f"[{backend}] {days} days of one tag at 1 Hz: {n:,} points written in {fill_s:.0f} s "
              f"({n / fill_s:,.0f} points/s, rollups kept on the way)")  # fmt: skip
        for every, label in ((HOUR, "1h"), (DAY, "1d")):
            ms_roll, rolled = timed(lambda e=every: store.buckets("spindle", "speed", START, end, e, "avg"))
            with raw_only(store):
                ms_raw, raw = timed(lambda e=every: store.buckets("spindle", "speed", START, end, e, "avg"))
            print(f"  every={label:2} avg, {len(rolled):5} buckets: rollups {ms_roll:9.1f} ms   raw scan "
                  f"{ms_raw:9.1f} ms   ({ms_raw / ms_roll:,.0f}x)   same: {same(rolled, raw)}")  # fmt: skip
        # A window that starts and ends mid-minute: the edges come from the 1-minute tier and raw points.
        lo, hi = START + 90 * DAY + 1234 * S + 5, START + 200 * DAY + 77 * S
        ms_roll, rolled = timed(lambda: store.buckets("spindle", "speed", lo, hi, HOUR, "max"))
        with raw_only(store):
            ms_raw, raw = timed(lambda: store.buckets("spindle", "speed", lo, hi, HOUR, "max"))
        print(f"  every=1h max, 110 days unaligned: rollups {ms_roll:9.1f} ms   raw scan {ms_raw:9.1f} ms"
              f"   same: {same(rolled, raw)}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--days", type=int, default=365, help="days of 1 Hz data for the long-range query (0: skip it)"
    )
    ap.add_argument(
        "--ingest-steps", type=int, default=200, help="time steps (1,000 points each) for the ingest cost"
    )
    ap.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument(
        "--dir", type=Path, default=None, help="folder for the SQLite files (default: a temporary one)"
    )
    args = ap.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    with tempfile.TemporaryDirectory(prefix="plantwire-rollups-", dir=args.dir) as tmp:
        for backend in backends:
            bench_ingest(backend, Path(tmp), args.ingest_steps)
            if args.days:
                bench_year(backend, Path(tmp), args.days)


if __name__ == "__main__":
    main()
