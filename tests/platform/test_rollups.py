"""Rollups answer bucketed queries exactly as a scan of the raw points would, on SQLite and PostgreSQL.

The expected answer of every query is computed here, in Python, from the raw points the store
gives back (`series`), so it is independent of both the rollups and the store's own raw path.
The data: three series over 30 hours at irregular times, written out of order, partly twice
(redelivered), with integers, quarter floats (sums of them are exact), booleans, missing values
(bad status) and, in one series, text. The windows: whole, unaligned on both ends, aligned on
hours, inside one minute, empty; `every` from 1 minute to a day, for every aggregate.

SQLite keeps rollups off the commit path (new points are noted in `rollup_pending`, a merger
folds the notes into the rollup tables later): its cases run with every point still pending
(no merger) and after a merge, and the rollup tables themselves are compared with the raw points
after merges, a kill -9 mid-merge, redeliveries and a reopen.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plantwire.timeunits import from_iso
from plantwire.wire import DataBatch, Sample
from plantwire_platform.store import rollup_plan, sqlite_rollups
from plantwire_platform.store.model import AGGREGATES, Agg, Bucket, IncomingBatch, Store
from plantwire_platform.store.postgresql.store import PostgresSettings, PostgresStore
from plantwire_platform.store.retention import Horizons, RetentionStore
from plantwire_platform.store.sqlite import SqliteStore

GW = "gw"
S = 1_000_000
MIN = 60 * S
HOUR = 60 * MIN
DAY = 24 * HOUR
T0 = from_iso("2026-03-01T00:00:00Z") - 7 * HOUR - 13 * MIN - 17 * S  # not aligned to anything
SPAN = 30 * HOUR
BAD = 0x80310000


def _value(tag: str, k: int) -> Any:
    if k % 29 == 0:
        return None
    if tag == "flag":
        return k % 3 == 0
    if tag == "mode" and k % 5 == 0:
        return f"mode-{k % 4}"
    return (k % 17) - 8 if k % 2 else (k % 13) * 0.25 - 1.5


def _samples(tag: str) -> list[Sample]:
    out, ts, k = [], T0, 0
    while ts < T0 + SPAN:
        v = _value(tag, k)
        out.append(Sample(tag, ts, v, BAD if v is None else 0))
        ts += (7 + (k * 37) % 53) * S  # 7 s to 59 s apart
        k += 1
    return out


_MERGE_AFTER_WRITE: set[int] = set()
"""ids of the stores whose tests run after a merge (the others keep every note pending)."""


def _write(store: Store, dev: str) -> None:
    _write_points(store, dev)
    if isinstance(store, SqliteStore | PostgresStore):
        if id(store) in _MERGE_AFTER_WRITE:
            assert store.merge_rollups() == store.count_points()
            assert store.pending_rollups() == 0
        else:  # no merger ran: every point is still a note
            assert store.pending_rollups() == store.count_points() > 0


def _write_points(store: Store, dev: str) -> None:
    samples = [s for tag in ("mixed", "flag", "mode") for s in _samples(tag)]
    chunks = [samples[i : i + 700] for i in range(0, len(samples), 700)]
    order = list(reversed(chunks[::2])) + chunks[1::2]  # out of order
    seq = 0
    for chunk in order:
        seq += 1
        store.write_batches([IncomingBatch(GW, dev, DataBatch(seq=seq, sent=T0, samples=chunk))])
    # Redelivery: whole messages again, and a message half old, half new.
    again = store.write_batches([IncomingBatch(GW, dev, DataBatch(seq=1, sent=T0, samples=order[0]))])
    assert (again.stored, again.duplicates) == (0, len(order[0]))
    extra = [Sample("mixed", T0 + SPAN + k * 11 * S, float(k), 0) for k in range(40)]
    mixed = store.write_batches(
        [IncomingBatch(GW, dev, DataBatch(seq=seq + 1, sent=T0, samples=order[1][:50] + extra))]
    )
    assert (mixed.stored, mixed.duplicates) == (40, 50)


def _expected(store: Store, dev: str, tag: str, start: int, end: int, every: int, agg: Agg) -> list[Bucket]:
    groups: dict[int, list[tuple[int, Any]]] = {}
    for p in store.series(dev, tag, start, end, 10**7):
        groups.setdefault(p.ts // every * every, []).append((p.ts, p.value))
    out = []
    for b in sorted(groups):
        points = groups[b]
        numbers = [v for _, v in points if isinstance(v, int | float)]
        value: Any
        if agg == "count":
            value = len(points)
        elif agg == "last":
            value = max(points, key=lambda tv: tv[0])[1]
        elif agg == "first":
            value = min(points, key=lambda tv: tv[0])[1]
        elif not numbers:
            value = None
        elif agg == "avg":
            value = sum(float(v) for v in numbers) / len(numbers)
        else:
            value = min(numbers) if agg == "min" else max(numbers)
        out.append(Bucket(b, value, len(points)))
    return out


EVERY = [MIN, 2 * MIN, 15 * MIN, HOUR, 3 * HOUR, DAY]
WINDOWS = [
    (T0 - DAY, T0 + 2 * DAY),  # everything
    (T0 + 1_234_567, T0 + 20 * HOUR + 3_333),  # unaligned on both ends
    (T0 - T0 % HOUR + 2 * HOUR, T0 - T0 % HOUR + 9 * HOUR),  # aligned on hours
    (T0 + 3 * HOUR + 5 * S, T0 + 3 * HOUR + 50 * S),  # inside one minute
    (T0 - 2 * DAY, T0 - DAY),  # before the data
]


@pytest.fixture(params=["sqlite-pending", "sqlite-merged", "postgresql-pending", "postgresql-merged"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A store without background merger: its notes stay pending, or are merged after `_write`."""
    s: Store
    if request.param.startswith("sqlite"):
        s = SqliteStore.open(tmp_path / "rollups.sqlite", merge_every_s=None)
    else:
        from pydantic import SecretStr

        dsn: str = request.getfixturevalue("postgres_dsn")
        schema: str = request.getfixturevalue("postgres_schema")
        settings = PostgresSettings(dsn=SecretStr(dsn), schema_name=schema, startup_timeout_s=5)
        s = PostgresStore.open(settings, merge_every_s=None)
    if request.param.endswith("-merged"):
        _MERGE_AFTER_WRITE.add(id(s))
    yield s
    s.close()
    _MERGE_AFTER_WRITE.discard(id(s))


def test_bucketed_queries_from_rollups_equal_the_raw_points(store: Store) -> None:
    dev = "press"
    _write(store, dev)
    checked = 0
    for tag in ("mixed", "flag", "mode"):
        for start, end in WINDOWS:
            for every in EVERY:
                for agg in AGGREGATES:
                    got = store.buckets(dev, tag, start, end, every, agg)
                    assert got == _expected(store, dev, tag, start, end, every, agg), (
                        tag,
                        start,
                        end,
                        every,
                        agg,
                    )
                    checked += len(got)
    assert checked > 10_000  # the windows hold data, not only empty answers


def test_the_planner_reads_tiers_in_the_middle_and_raw_points_at_the_edges() -> None:
    start, end = 10 * HOUR + 90 * S, 13 * HOUR + 5 * MIN + 7 * S
    one_h, one_m = rollup_plan.TIERS
    assert rollup_plan.segments(start, end, HOUR, "avg", text_seen=False) == [
        (None, start, 10 * HOUR + 2 * MIN),
        (one_m, 10 * HOUR + 2 * MIN, 11 * HOUR),
        (one_h, 11 * HOUR, 13 * HOUR),
        (one_m, 13 * HOUR, 13 * HOUR + 5 * MIN),
        (None, 13 * HOUR + 5 * MIN, end),
    ]
    assert rollup_plan.segments(start, end, 30 * S, "avg", text_seen=False) is None  # no tier divides 30 s
    assert rollup_plan.segments(start, end, HOUR, "last", text_seen=True) is None  # text: raw last
    assert rollup_plan.segments(start, end, HOUR, "first", text_seen=True) is None  # and raw first
    assert rollup_plan.segments(start, end, HOUR, "first", text_seen=False) == rollup_plan.segments(
        start, end, HOUR, "avg", text_seen=False
    )
    assert rollup_plan.segments(start, start + 30 * S, MIN, "max", text_seen=False) is None  # inside a minute
    assert rollup_plan.segments(-HOUR, end, HOUR, "max", text_seen=False) is None  # before 1970: raw


def test_retention_keeps_rollups_after_raw_points_go_and_never_counts_twice(store: Store) -> None:
    assert isinstance(store, RetentionStore)
    dev = "press"
    _write(store, dev)
    window = (T0 - DAY, T0 + 2 * DAY)
    before = {agg: store.buckets(dev, "mixed", *window, HOUR, agg) for agg in AGGREGATES}
    total = store.count_points()
    horizon = T0 + 10 * HOUR + 30 * MIN  # raw points before it go; all rollups stay
    deleted = store.enforce_retention(Horizons(raw=horizon, rollup_1m=None, rollup_1h=None))
    assert deleted["raw"] > 0 and deleted["1m"] == deleted["1h"] == 0
    assert store.count_points() == total - deleted["raw"]
    assert store.series(dev, "mixed", T0 - DAY, horizon, 10) == []
    # Whole-hour buckets come from the 1-hour tier: the answers did not change.
    hour = horizon - horizon % HOUR
    for agg in AGGREGATES:
        assert store.buckets(dev, "mixed", hour - 5 * HOUR, window[1], HOUR, agg) == [
            b for b in before[agg] if b.start >= hour - 5 * HOUR
        ]
    # A redelivered old point is stored raw again, but is not rolled up a second time.
    old = _samples("mixed")[3]
    store.write_batches([IncomingBatch(GW, dev, DataBatch(seq=999, sent=T0, samples=[old]))])
    assert store.buckets(dev, "mixed", *window, HOUR, "count") == before["count"]
    # Rollup retention deletes whole buckets older than its horizon only.
    deleted = store.enforce_retention(Horizons(raw=None, rollup_1m=None, rollup_1h=T0 + 5 * HOUR + 1))
    first_hour = T0 - T0 % HOUR
    assert deleted["1h"] == 5 * 3  # five whole hours, three series
    got = store.buckets(dev, "mixed", T0 + 5 * HOUR - T0 % HOUR, window[1], DAY, "count")
    assert sum(b.count for b in got) > 0
    assert store.buckets(dev, "mixed", first_hour, first_hour + 4 * HOUR, HOUR, "count") == []


def test_an_older_sqlite_file_gets_its_points_rolled_up_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with SqliteStore.open(path, merge_every_s=None) as s:
        _write(s, "press")
        want = {agg: s.buckets("press", "mixed", T0 - DAY, T0 + 2 * DAY, HOUR, agg) for agg in AGGREGATES}
    conn = sqlite3.connect(path)  # as the file was before rollups
    conn.executescript(
        "DROP TABLE rollup_1m; DROP TABLE rollup_1h;"
        "DROP TABLE rollup_text_series; DROP TABLE rollup_horizon; DROP TABLE store_steps;"
    )
    conn.close()
    with SqliteStore.open(path, merge_every_s=None) as s:
        assert s.pending_rollups() == 0  # the backfill counted them all, once
        _assert_rollup_tables_equal_raw(path)
        for agg in AGGREGATES:
            assert s.buckets("press", "mixed", T0 - DAY, T0 + 2 * DAY, HOUR, agg) == want[agg]
        assert s.buckets("press", "mode", T0 - DAY, T0 + 2 * DAY, HOUR, "last") == _expected(
            s, "press", "mode", T0 - DAY, T0 + 2 * DAY, HOUR, "last"
        )


def test_rollup_tables_keyed_by_series_are_rebuilt_grouped_and_answer_the_same(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with SqliteStore.open(path, merge_every_s=None) as s:
        _write(s, "press")
        s.merge_rollups()
        want = {agg: s.buckets("press", "mixed", T0 - DAY, T0 + 2 * DAY, HOUR, agg) for agg in AGGREGATES}
    conn = sqlite3.connect(path, isolation_level=None)  # as the tables were keyed before
    for tier in rollup_plan.TIERS:
        columns = "series_id, bucket, count, n, vmin, vmax, vsum, first_ts, first_value, last_ts, last_value"
        conn.executescript(
            f"CREATE TABLE old (series_id INTEGER NOT NULL, bucket INTEGER NOT NULL, count INTEGER NOT NULL, "
            "n INTEGER NOT NULL, vmin, vmax, vsum REAL, first_ts INTEGER NOT NULL, first_value, "
            "last_ts INTEGER NOT NULL, last_value, PRIMARY KEY (series_id, bucket)) WITHOUT ROWID;"
            f"INSERT INTO old SELECT {columns} FROM {tier.table}; DROP TABLE {tier.table};"
            f"ALTER TABLE old RENAME TO {tier.table};"
        )
    conn.close()
    with SqliteStore.open(path, merge_every_s=None) as s:
        for tier in rollup_plan.TIERS:
            columns = [r[1] for r in sqlite3.connect(path).execute(f"PRAGMA table_info({tier.table})")]
            assert columns[:3] == ["grp", "series_id", "bucket"]
        _assert_rollup_tables_equal_raw(path)
        for agg in AGGREGATES:
            assert s.buckets("press", "mixed", T0 - DAY, T0 + 2 * DAY, HOUR, agg) == want[agg]
        later = [Sample("mixed", T0 + 3 * DAY + k * S, float(k), 0) for k in range(5)]
        assert (
            s.write_batches([IncomingBatch(GW, "press", DataBatch(seq=999, sent=T0, samples=later))]).stored
            == 5
        )
        assert s.merge_rollups() == 5
        _assert_rollup_tables_equal_raw(path)


async def test_the_platform_applies_retention_in_the_background(tmp_path: Path) -> None:
    import asyncio

    from plantwire_platform.store.retention import RetentionSettings, retention_running

    with SqliteStore.open(tmp_path / "r.sqlite", merge_every_s=None) as s:
        _write(s, "press")  # March 2026: older than a day
        kept = s.buckets("press", "mixed", T0 - DAY, T0 + 2 * DAY, DAY, "count")
        settings = RetentionSettings(raw_days=1, every_s=1)
        async with asyncio.timeout(20), retention_running(settings, s):
            while s.count_points() > 0:
                await asyncio.sleep(0.05)
        assert s.series("press", "mixed", T0 - DAY, T0 + 2 * DAY, 10) == []
        # Whole days of the rollups stay (the window's edges are read from the 1-minute tier).
        assert s.buckets("press", "mixed", T0 - DAY, T0 + 2 * DAY, DAY, "count") == kept


# --- SQLite: the rollup tables themselves, against the raw points -------------------------------------


def _assert_rollup_tables_equal_raw(path: Path) -> None:
    """Every rollup row is what a grouping of the raw points gives, and no bucket is missing or extra.

    Read from the file with a connection of its own (no store code), after the notes were merged.
    """
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT count(*) FROM rollup_pending").fetchone()[0] == 0
        points = conn.execute("SELECT series_id, ts, value FROM points WHERE ts >= 0 ORDER BY series_id, ts")
        want: dict[tuple[str, int, int], list[Any]] = {}
        n_points = 0
        for sid, ts, value in points:
            n_points += 1
            numeric = type(value) in (int, float)
            for tier in rollup_plan.TIERS:
                key = (tier.table, sid, ts - ts % tier.width)
                row = want.get(key)
                if row is None:  # count, n, min, max, sum, first_ts, first_value, last_ts, last_value
                    row = want[key] = [0, 0, None, None, None, ts, value, ts, value]
                row[0] += 1
                row[7], row[8] = ts, value  # ordered by ts: the newest so far
                if numeric:
                    row[1] += 1
                    row[2] = value if row[2] is None else min(row[2], value)
                    row[3] = value if row[3] is None else max(row[3], value)
                    row[4] = float(value) if row[4] is None else row[4] + value
        assert n_points > 0
        got: dict[tuple[str, int, int], list[Any]] = {}
        for tier in rollup_plan.TIERS:
            for sid, bucket, *rest in conn.execute(
                "SELECT series_id, bucket, count, n, vmin, vmax, vsum, first_ts, first_value, last_ts, "
                f"last_value FROM {tier.table}"
            ):
                got[(tier.table, sid, bucket)] = rest
        assert got.keys() == want.keys()
        for key, row in want.items():
            text = any(type(v) is str for v in (row[6], row[8], *got[key][5::2]))
            if text:  # a text series' first/last values are read raw; its numbers must still match
                assert got[key][:6] == row[:6] and got[key][7] == row[7], key
            else:
                assert got[key] == row, key
    finally:
        conn.close()


def _samples_at(first: int, n: int, tags: tuple[str, ...] = ("mixed", "flag", "mode")) -> list[Sample]:
    out = []
    for tag in tags:
        for k in range(first, first + n):
            v = _value(tag, k)
            out.append(Sample(tag, T0 + k * 13 * S, v, BAD if v is None else 0))
    return out


def test_a_bucket_half_merged_half_pending_answers_as_raw(tmp_path: Path) -> None:
    path = tmp_path / "half.sqlite"
    with SqliteStore.open(path, merge_every_s=None) as s:
        s.write_batches([IncomingBatch(GW, "press", DataBatch(1, T0, _samples_at(0, 3000, ("mixed",))[::2]))])
        assert s.merge_rollups() == 1500
        # The other half of the same buckets, pending, plus a redelivery of merged points.
        s.write_batches([IncomingBatch(GW, "press", DataBatch(2, T0, _samples_at(0, 3000, ("mixed",))))])
        assert s.pending_rollups() == 1500
        window = (T0 - DAY, T0 + 2 * DAY)
        for every in (MIN, HOUR):
            for agg in AGGREGATES:
                got = s.buckets("press", "mixed", *window, every, agg)
                assert got == _expected(s, "press", "mixed", *window, every, agg), (every, agg)
        assert sum(b.count for b in s.buckets("press", "mixed", *window, HOUR, "count")) == 3000
        assert s.merge_rollups() == 1500
    _assert_rollup_tables_equal_raw(path)


def test_the_merger_groups_a_chunk_while_ingest_holds_the_write_lock(tmp_path: Path) -> None:
    """Grouping (most of a merge) reads the file and writes only the merger's temporary tables, so
    it runs while another connection holds SQLite's write lock; only applying the groups needs the
    lock. Notes stored between the two stay pending, and a chunk whose notes changed meanwhile is
    refused whole."""
    path = tmp_path / "turns.sqlite"
    with SqliteStore.open(path, merge_every_s=None) as s:
        _write_points(s, "press")
        pending = s.pending_rollups()
        merger = sqlite3.connect(path, isolation_level=None, timeout=0.2)
        sqlite_rollups.attach_merger(merger)
        writer = sqlite3.connect(path, isolation_level=None)
        try:
            up_to = sqlite_rollups.last_note(merger)
            assert up_to is not None
            writer.execute("BEGIN IMMEDIATE")  # ingest's commit in progress
            started = time.monotonic()
            taken, last = sqlite_rollups.group_chunk(merger, up_to, limit=pending - 100)
            assert time.monotonic() - started < 0.2  # the busy timeout: it never waited for the lock
            assert taken == pending - 100 and last < up_to
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                sqlite_rollups.apply_chunk(merger, last, taken)  # this part does need the lock
            writer.execute("COMMIT")
            # The rolled-back apply kept every note; a second grouping applies normally, and the
            # notes written after it (a redelivery adds none, new points do) stay pending.
            taken, last = sqlite_rollups.group_chunk(merger, up_to, limit=pending - 100)
            s.write_batches([IncomingBatch(GW, "press", DataBatch(10**6, T0, [Sample("late", T0, 1.0)]))])
            sqlite_rollups.apply_chunk(merger, last, taken)
            assert s.pending_rollups() == 100 + 1
            # Notes merged by someone else between grouping and applying: refused, nothing changed.
            taken, last = sqlite_rollups.group_chunk(merger, 2**62, limit=10**9)
            before = writer.execute("SELECT count(*), sum(count) FROM rollup_1m").fetchone()
            writer.execute("DELETE FROM rollup_pending WHERE seq = (SELECT min(seq) FROM rollup_pending)")
            with pytest.raises(sqlite_rollups.StaleChunk):
                sqlite_rollups.apply_chunk(merger, last, taken)
            assert writer.execute("SELECT count(*), sum(count) FROM rollup_1m").fetchone() == before
            assert s.pending_rollups() == 100
        finally:
            merger.close()
            writer.close()


def test_redelivered_points_never_count_twice_pending_or_merged(tmp_path: Path) -> None:
    path = tmp_path / "dup.sqlite"
    with SqliteStore.open(path, merge_every_s=None) as s:
        _write(s, "press")  # redelivers inside, while its notes are pending
        total = s.count_points()
        s.merge_rollups()
        again = s.write_batches([IncomingBatch(GW, "press", DataBatch(1, T0, _samples_at(0, 2000)))])
        assert again.stored < again.stored + again.duplicates  # some were stored already
        assert s.pending_rollups() == again.stored  # duplicates leave no note
        again2 = s.write_batches([IncomingBatch(GW, "press", DataBatch(1, T0, _samples_at(0, 2000)))])
        assert (again2.stored, s.pending_rollups()) == (0, again.stored)
        window = (T0 - DAY, T0 + 2 * DAY)
        counted = sum(
            b.count
            for tag in ("mixed", "flag", "mode")
            for b in s.buckets("press", tag, *window, HOUR, "count")
        )
        assert counted == s.count_points() == total + again.stored
        s.merge_rollups()
    _assert_rollup_tables_equal_raw(path)


def test_a_store_reopened_with_pending_notes_catches_up(tmp_path: Path) -> None:
    path = tmp_path / "reopen.sqlite"
    with SqliteStore.open(path, merge_every_s=None) as s:
        _write(s, "press")
        pending = s.pending_rollups()
    assert pending > 0  # closing left them durable
    with SqliteStore.open(path, merge_every_s=0.01) as s:  # the background merger
        window = (T0 - DAY, T0 + 2 * DAY)
        deadline = time.monotonic() + 30
        while s.pending_rollups() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert s.pending_rollups() == 0
        for agg in AGGREGATES:
            assert s.buckets("press", "mixed", *window, HOUR, agg) == _expected(
                s, "press", "mixed", *window, HOUR, agg
            )
    _assert_rollup_tables_equal_raw(path)


_WRITER = """
import sys
from plantwire.wire import DataBatch
from plantwire_platform.store.model import IncomingBatch
from plantwire_platform.store.sqlite import SqliteStore
from test_rollups import GW, _samples_at

store = SqliteStore.open(sys.argv[1], merge_every_s=0.0)  # the merger sweeps without pause
first = int(sys.argv[2])
k = first
while True:  # each message twice (redelivered), and overlapping the one before
    for _ in range(2):
        store.write_batches([IncomingBatch(GW, "press", DataBatch(k + 1, 0, _samples_at(k, 400)))])
    k += 300
    if k == first + 3000:
        print("ready", flush=True)
"""


def test_kill_9_while_merging_loses_nothing_and_counts_nothing_twice(tmp_path: Path) -> None:
    """A real process writing and merging without pause is killed five times; the file stays exact."""
    path = tmp_path / "killed.sqlite"
    here = Path(__file__).parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(here), *sys.path])}
    for round_ in range(5):
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path), str(round_ * 5000)],
            stdout=subprocess.PIPE,
            env=env,
        )
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline() == b"ready\n"
            conn = sqlite3.connect(path)
            deadline = time.monotonic() + 30  # both kinds of transaction committed at least once
            while time.monotonic() < deadline:
                merged = conn.execute("SELECT count(*) FROM rollup_1m").fetchone()[0]
                pending = conn.execute("SELECT count(*) FROM rollup_pending").fetchone()[0]
                if merged and pending:
                    break
                time.sleep(0.005)
            conn.close()
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
        assert proc.returncode == -signal.SIGKILL
    with SqliteStore.open(path, merge_every_s=None) as s:
        s.merge_rollups()
        window = (T0 - DAY, T0 + 200 * DAY)
        assert sum(b.count for b in s.buckets("press", "mixed", *window, DAY, "count")) == len(
            s.series("press", "mixed", *window, 10**7)
        )
    _assert_rollup_tables_equal_raw(path)


def test_postgresql_workers_merging_at_once_take_each_note_once(
    postgres_dsn: str, postgres_schema: str
) -> None:
    """Two store instances (two workers) on one schema merge the same backlog at the same time."""
    import threading

    from pydantic import SecretStr

    settings = PostgresSettings(dsn=SecretStr(postgres_dsn), schema_name=postgres_schema, startup_timeout_s=5)
    with (
        PostgresStore.open(settings, merge_every_s=None) as a,
        PostgresStore.open(settings, merge_every_s=None) as b,
    ):
        _write_points(a, "press")
        b.write_batches([IncomingBatch(GW, "press", DataBatch(9999, T0, _samples_at(0, 3000)))])
        pending = a.pending_rollups()
        assert pending == a.count_points() > 0
        merged: list[int] = []
        workers = [
            threading.Thread(target=lambda s=s: merged.append(s.merge_rollups())) for s in (a, b, a, b)
        ]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert sum(merged) == pending and a.pending_rollups() == 0
        window = (T0 - DAY, T0 + 2 * DAY)
        for tag in ("mixed", "flag", "mode"):
            for agg in AGGREGATES:
                for every in (MIN, HOUR):
                    got = b.buckets("press", tag, *window, every, agg)
                    assert got == _expected(b, "press", tag, *window, every, agg), (tag, agg, every)


async def test_metrics_show_the_rollup_backlog_the_merger_counted(store: Store) -> None:
    import asyncio

    from aiohttp.test_utils import TestClient, TestServer
    from test_api import Status

    from plantwire_platform.web.app import create_app
    from plantwire_platform.web.runtime import PlatformRuntime

    gauge = "plantwire_platform_rollup_pending_rows"
    samples = [Sample("p", T0 + i * S, float(i)) for i in range(30)]
    async with (
        asyncio.timeout(30),
        TestClient(TestServer(create_app(PlatformRuntime(store, Status())))) as client,
    ):

        async def scraped() -> str:
            resp = await client.get("/metrics")
            assert resp.status == 200
            return await resp.text()

        assert gauge not in await scraped()  # no sweep yet: nothing counted
        await asyncio.to_thread(
            store.write_batches, [IncomingBatch("gw", "press", DataBatch(1, T0, samples))]
        )
        assert await asyncio.to_thread(store.merge_rollups) == 30
        assert f"{gauge} 30\n" in await scraped()  # what that sweep found
        assert await asyncio.to_thread(store.merge_rollups) == 0
        assert f"{gauge} 0\n" in await scraped()
