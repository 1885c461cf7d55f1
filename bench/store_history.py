"""Benchmark: the SQLite store's write cost as history grows, with many series. Prints figures.

    python bench/store_history.py [--series 100000] [--seconds 120] [--per-commit 10000]

Every series gets one point per second of source time, `--per-commit` points per commit (a
plant's commit: about one point per series it holds), for `--seconds` seconds. A fleet bench of
15 s starts from an empty file, where every commit's points share pages; this one shows what the
store costs once each series has pages of history. Layouts, side by side, on the same pragmas as
the store (WAL, synchronous=NORMAL, 64 MB cache, a checkpoint between two seconds):

- `series-time`: `points` keyed (series_id, ts), the store's layout before store/sqlite_points.py;
- `group-16`, `group-32`, `group-64`: keyed (grp, ts, series_id), N series per group;
- `store`: the store itself (`SqliteStore.write_batches`, grouped by sqlite_points.GROUP_SIZE,
  with its latest points, rollup notes and sequence numbers; no merger).

Per layout: CPU and wall µs per point and bytes written per point (the process's own writes:
the WAL and the checkpoints into the file), over the first and the last 20 s of history; then
a raw read of one series over the whole history and its latest point.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from plantwire.wire import DataBatch, Sample
from plantwire_platform.store.model import IncomingBatch
from plantwire_platform.store.sqlite import SqliteStore
from plantwire_platform.store.sqlite_points import GROUP_SHIFT, GROUP_SIZE

T0 = 1_800_000_000_000_000
S = 1_000_000
TAGS = 100
WINDOW = 20
"""Seconds of history per figure."""


def written_bytes() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


class Figures:
    def __init__(self) -> None:
        self.rows: list[tuple[int, float, float, float]] = []
        """(second, wall µs, CPU µs, bytes) per point, one row per second of history."""

    def timed(self, second: int, points: int, write: Callable[[], None]) -> None:
        w, t, c = written_bytes(), time.perf_counter(), time.process_time()
        write()
        wall, cpu, out = time.perf_counter() - t, time.process_time() - c, written_bytes() - w
        self.rows.append((second, wall / points * 1e6, cpu / points * 1e6, out / points))

    def window(self, first: bool) -> str:
        rows = self.rows[:WINDOW] if first else self.rows[-WINDOW:]
        n = len(rows)
        wall, cpu, out = (sum(r[i] for r in rows) / n for i in (1, 2, 3))
        return f"{cpu:5.1f} CPU {wall:5.1f} wall µs, {out:6.0f} B"


def connect(path: Path) -> sqlite3.Connection:
    """A bare file with the store's pragmas (checkpoints left to the caller)."""
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "cache_size=-65536", "wal_autocheckpoint=0"):
        conn.execute(f"PRAGMA {pragma}")
    return conn


def raw_layout(path: Path, group_shift: int | None) -> tuple[sqlite3.Connection, str, str, str]:
    """A bare `points` table, keyed (series_id, ts) when `group_shift` is None; (connection,
    insert, range read, latest read)."""
    conn = connect(path)
    if group_shift is None:
        conn.execute(
            "CREATE TABLE points (series_id INTEGER NOT NULL, ts INTEGER NOT NULL, value, "
            "status INTEGER NOT NULL, PRIMARY KEY (series_id, ts)) WITHOUT ROWID"
        )
        insert = "INSERT OR IGNORE INTO points (series_id, ts, value, status) VALUES (?1, ?2, ?3, 0)"
        where = "series_id = ?1"
        latest = "SELECT ts, value FROM points WHERE series_id = ?1 ORDER BY ts DESC LIMIT 1"
    else:
        conn.execute(
            "CREATE TABLE points (grp INTEGER NOT NULL, ts INTEGER NOT NULL, series_id INTEGER NOT NULL, "
            "value, status INTEGER NOT NULL, PRIMARY KEY (grp, ts, series_id)) WITHOUT ROWID"
        )
        insert = (
            "INSERT OR IGNORE INTO points (grp, ts, series_id, value, status) "
            f"VALUES (?1 >> {group_shift}, ?2, ?1, ?3, 0)"
        )
        where = f"grp = ?1 >> {group_shift} AND series_id = ?1"
        latest = f"SELECT ts, value FROM points WHERE {where} ORDER BY ts DESC LIMIT 1"
    return conn, insert, f"SELECT ts, value FROM points WHERE {where} AND ts >= ?2 AND ts < ?3", latest


def run_raw(name: str, path: Path, group_shift: int | None, args: argparse.Namespace) -> None:
    conn, insert, read, latest = raw_layout(path, group_shift)
    figures = Figures()

    def write(ts: int) -> None:
        for lo in range(0, args.series, args.per_commit):
            sids = range(lo, min(lo + args.per_commit, args.series))
            conn.execute("BEGIN")
            conn.executemany(insert, [(sid, ts, random.random()) for sid in sids])
            conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    for second in range(args.seconds):
        figures.timed(second, args.series, partial(write, T0 + second * S))
    sid = args.series // 2 + 7
    range_ms = read_ms(lambda: conn.execute(read, (sid, T0, T0 + args.seconds * S)).fetchall())
    latest_ms = read_ms(lambda: conn.execute(latest, (sid,)).fetchall())
    report(name, figures, range_ms, latest_ms, args.seconds)
    conn.close()


def run_store(path: Path, args: argparse.Namespace) -> None:
    devices = args.series // TAGS
    per_commit = max(args.per_commit // TAGS, 1)
    tags = [f"tag{t:03d}" for t in range(TAGS)]
    figures = Figures()
    with SqliteStore.open(path, merge_every_s=None) as store:

        def write(msgs: list[IncomingBatch]) -> None:
            for lo in range(0, devices, per_commit):
                store.write_batches(msgs[lo : lo + per_commit])

        for second in range(args.seconds):
            ts = T0 + second * S
            msgs = [
                IncomingBatch(
                    "gw",
                    f"d{d:06d}",
                    DataBatch(second + 1, ts, [Sample(t, ts, random.random()) for t in tags]),
                )
                for d in range(devices)
            ]
            figures.timed(second, devices * TAGS, partial(write, msgs))
        device = f"d{devices // 2:06d}"
        end = T0 + args.seconds * S
        range_ms = read_ms(lambda: store.series(device, "tag007", T0, end, 1_000_000))
        latest_ms = read_ms(lambda: store.latest(device))
    report(f"store ({TAGS} tags of a device)", figures, range_ms, latest_ms, args.seconds)


def run_rollups(args: argparse.Namespace, tmp: Path) -> None:
    """1-minute rollup upserts after `--rollups` minutes of buckets per series, both keys."""
    minute = 60 * S
    cols = (
        "count INTEGER NOT NULL, vmin, vmax, vsum REAL, first_ts INTEGER NOT NULL, first_value, "
        "last_ts INTEGER NOT NULL, last_value"
    )
    update = (
        "DO UPDATE SET count = count + 1, vmax = max(vmax, excluded.vmax), "
        "last_ts = excluded.last_ts, last_value = excluded.last_value"
    )
    layouts = {
        "series-bucket": (
            f"CREATE TABLE r (series_id INTEGER NOT NULL, bucket INTEGER NOT NULL, {cols}, "
            "PRIMARY KEY (series_id, bucket)) WITHOUT ROWID",
            "INSERT INTO r VALUES (?1, ?2, 1, ?3, ?3, ?3, ?2, ?3, ?2, ?3) ON CONFLICT (series_id, bucket) ",
            lambda buckets: ((sid, b * minute, 1.0) for sid in range(args.series) for b in range(buckets)),
        ),
        f"group-{GROUP_SIZE}": (
            "CREATE TABLE r (grp INTEGER NOT NULL, series_id INTEGER NOT NULL, bucket INTEGER NOT NULL, "
            f"{cols}, PRIMARY KEY (grp, bucket, series_id)) WITHOUT ROWID",
            f"INSERT INTO r VALUES (?1 >> {GROUP_SHIFT}, ?1, ?2, 1, ?3, ?3, ?3, ?2, ?3, ?2, ?3) "
            "ON CONFLICT (grp, bucket, series_id) ",
            lambda buckets: ((sid, b * minute, 1.0) for b in range(buckets) for sid in range(args.series)),
        ),
    }
    chunk = 20_000  # the merger's (store/rollup_merger.py)
    for name, (create, upsert, history) in layouts.items():
        conn = connect(tmp / f"{name}.sqlite")
        conn.execute(create)
        conn.execute("BEGIN")
        conn.executemany(upsert + "DO NOTHING", history(args.rollups))
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        cpu, frames, upserts = time.process_time(), 0, 0
        for k in range(2 * args.series // chunk):  # two merges of every series into the next minute
            lo = k * chunk % args.series
            rows = [(sid, args.rollups * minute, float(k)) for sid in range(lo, min(lo + chunk, args.series))]
            conn.execute("BEGIN")
            conn.executemany(upsert + update, rows)
            conn.execute("COMMIT")
            frames += int(conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            upserts += len(rows)
        cpu = time.process_time() - cpu
        print(
            f"1-minute rollups, {name:<14} after {args.rollups} min: "
            f"{cpu / upserts * 1e6:5.2f} µs CPU and {frames / upserts:5.3f} pages per upsert",
            flush=True,
        )
        conn.close()


def read_ms(query: Callable[[], object], reps: int = 20) -> float:
    query()
    started = time.perf_counter()
    for _ in range(reps):
        query()
    return (time.perf_counter() - started) / reps * 1e3


def report(name: str, figures: Figures, range_ms: float, latest_ms: float, seconds: int) -> None:
    print(
        f"{name:<28} first {WINDOW} s: {figures.window(True)} | last {WINDOW} s: {figures.window(False)} "
        f"| one series, {seconds} points: {range_ms:6.2f} ms, latest {latest_ms:5.3f} ms",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--series", type=int, default=100_000)
    parser.add_argument(
        "--seconds", type=int, default=120, help="seconds of history, a point per series each"
    )
    parser.add_argument("--per-commit", type=int, default=10_000, help="points per commit")
    parser.add_argument(
        "--layouts",
        default="series-time,group-16,group-32,group-64,store",
        help="comma-separated: series-time, group-N (N a power of two), store",
    )
    parser.add_argument("--dir", type=Path, default=None, help="where the files go (a temporary folder)")
    parser.add_argument(
        "--rollups",
        type=int,
        default=0,
        metavar="MINUTES",
        help="instead: 1-minute rollup upserts (the merger's) after MINUTES buckets per series, both keys",
    )
    args = parser.parse_args()
    if args.rollups:
        print(f"{args.series:,} series; per upsert, {2 * args.series:,} of them in chunks of 20,000:")
    else:
        print(
            f"{args.series:,} series, one point per series per second for {args.seconds} s, "
            f"{args.per_commit:,} points per commit; per point:"
        )
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        if args.rollups:
            run_rollups(args, Path(tmp))
            return
        for name in args.layouts.split(","):
            path = Path(tmp) / f"{name}.sqlite"
            if name == "store":
                run_store(path, args)
            elif name == "series-time":
                run_raw(name, path, None, args)
            elif name.startswith("group-"):
                run_raw(name, path, int(name.removeprefix("group-")).bit_length() - 1, args)
            else:
                parser.error(f"unknown layout {name!r}")
            for file in Path(tmp).iterdir():
                file.unlink()


if __name__ == "__main__":
    main()
