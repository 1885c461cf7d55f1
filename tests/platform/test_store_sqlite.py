"""SqliteStore on real files: exact values back, idempotent writes, sequence gaps, meta, queries."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from plantwire.wire import (
    STATUS_BAD_NO_COMMUNICATION,
    DataBatch,
    DeviceMeta,
    DeviceStatus,
    GatewayStatus,
    Sample,
    TagInfo,
)
from plantwire_platform.store import sqlite_points
from plantwire_platform.store.bounded_cache import TwoGenerationCache
from plantwire_platform.store.model import Bucket, IncomingBatch, LatestValue, Point, WriteResult
from plantwire_platform.store.sqlite import SqliteStore

T0 = 1_700_000_000_000_000
"""A multiple of 10 s in µs, so 10-second buckets start exactly at T0."""
S = 1_000_000


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore.open(tmp_path / "nested" / "dir" / "pw.sqlite") as s:
        yield s


def batch(device: str, seq: int, *samples: Sample, gateway: str = "gw1") -> IncomingBatch:
    return IncomingBatch(gateway, device, DataBatch(seq=seq, sent=T0, samples=list(samples)))


def meta(*tags: TagInfo) -> DeviceMeta:
    return DeviceMeta(endpoint="opc.tcp://127.0.0.1:4840", root="ns=2;s=Press", tags=list(tags))


def test_open_creates_file_and_folders(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "pw.sqlite"
    SqliteStore.open(path).close()
    assert path.is_file()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"gateways", "devices", "series", "points"} <= tables
    conn.close()


def test_points_come_back_exactly_with_their_types(store: SqliteStore) -> None:
    samples = [
        Sample("i", T0 + 1, 42),
        Sample("f", T0 + 2, 3.25),
        Sample("s", T0 + 3, "running"),
        Sample("b", T0 + 4, True),
        Sample("n", T0 + 5, None, STATUS_BAD_NO_COMMUNICATION),
        Sample("big", T0 + 6, 2**70),
    ]
    result = store.write_batches([batch("d1", 1, *samples)])
    assert result == WriteResult(stored=6, duplicates=0, seq_gaps=0)
    got = {s.tag: store.series("d1", s.tag, 0, 2**62, 10) for s in samples}
    assert got["i"] == [Point(T0 + 1, 42, 0)] and type(got["i"][0].value) is int
    assert got["f"] == [Point(T0 + 2, 3.25, 0)]
    assert got["s"] == [Point(T0 + 3, "running", 0)]
    # No meta yet: a boolean's type is taken from its first value, so it reads back as a boolean.
    assert got["b"] == [Point(T0 + 4, True, 0)] and type(got["b"][0].value) is bool
    assert got["n"] == [Point(T0 + 5, None, STATUS_BAD_NO_COMMUNICATION)]
    assert got["big"] == [Point(T0 + 6, float(2**70), 0)]  # beyond int64: kept as a float
    assert store.count_points() == 6


def test_redelivered_message_creates_no_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "pw.sqlite"
    msg = batch("d1", 1, Sample("t", T0, 1.0), Sample("t", T0 + S, 2.0), Sample("u", T0, 7))
    with SqliteStore.open(path) as store:
        assert store.write_batches([msg]) == WriteResult(3, 0, 0)
        # Same message again, and again inside one write together with a new one.
        assert store.write_batches([msg]) == WriteResult(0, 3, 0)
        new = batch("d1", 2, Sample("t", T0 + 2 * S, 3.0))
        assert store.write_batches([msg, new]) == WriteResult(1, 3, 0)
    with SqliteStore.open(path) as store:  # also after reopening (caches cold)
        assert store.write_batches([msg]) == WriteResult(0, 3, 0)
        assert store.count_points() == 4
        assert [p.value for p in store.series("d1", "t", 0, 2**62, 100)] == [1.0, 2.0, 3.0]


def test_seq_gaps_are_counted_per_device(tmp_path: Path) -> None:
    path = tmp_path / "pw.sqlite"
    with SqliteStore.open(path) as store:
        r = store.write_batches(
            [
                batch("a", 1, Sample("t", T0, 1)),
                batch("a", 2, Sample("t", T0 + 1, 1)),
                batch("a", 5, Sample("t", T0 + 5, 1)),  # 3 and 4 missing
                batch("b", 1, Sample("t", T0, 1)),
                batch("b", 3, Sample("t", T0 + 3, 1)),  # 2 missing
            ]
        )
        assert r.seq_gaps == 3
        # Late or redelivered messages (seq <= last) are not gaps and do not move last_seq back.
        assert store.write_batches([batch("a", 3, Sample("t", T0 + 3, 1))]).seq_gaps == 0
        assert store.write_batches([batch("a", 2, Sample("t", T0 + 1, 1))]) == WriteResult(0, 1, 0)
        assert store.write_batches([batch("a", 7, Sample("t", T0 + 7, 1))]).seq_gaps == 1
        dev_a = store.get_device("a")
        assert dev_a is not None and dev_a.last_seq == 7
    with SqliteStore.open(path) as store:  # last_seq survives a restart
        assert store.write_batches([batch("a", 10, Sample("t", T0 + 10, 1))]).seq_gaps == 2
        assert store.write_batches([batch("b", 4, Sample("t", T0 + 4, 1))]).seq_gaps == 0


def test_meta_registers_device_and_tags_and_later_meta_updates(store: SqliteStore) -> None:
    # Data first: the series exists before meta describes it.
    store.write_batches([batch("press", 1, Sample("speed", T0, 10.0))])
    assert [t.unit for t in store.list_tags("press")] == [None]

    store.apply_meta(
        "gw1",
        "press",
        meta(
            TagInfo("speed", "ns=2;s=Speed", "Double", "rpm", "Spindle speed", True, 0.0, 3000.0),
            TagInfo("alarm", "ns=2;s=Alarm", "Boolean"),
        ),
    )
    tags = {t.tag: t for t in store.list_tags("press")}
    assert set(tags) == {"speed", "alarm"}
    speed = tags["speed"]
    assert (speed.node_id, speed.data_type, speed.unit, speed.description) == (
        "ns=2;s=Speed",
        "Double",
        "rpm",
        "Spindle speed",
    )
    assert (speed.writable, speed.low, speed.high) == (True, 0.0, 3000.0)
    assert (tags["alarm"].writable, tags["alarm"].low, tags["alarm"].unit) == (False, None, None)

    store.apply_meta("gw1", "press", meta(TagInfo("speed", "ns=2;s=Speed", "Double", "1/min", None, False)))
    tags = {t.tag: t for t in store.list_tags("press")}
    assert set(tags) == {"speed", "alarm"}  # tags missing from meta are kept
    assert (tags["speed"].unit, tags["speed"].writable, tags["speed"].high) == ("1/min", False, None)
    # The point written before meta is still there under the same series.
    assert store.series("press", "speed", 0, 2**62, 10) == [Point(T0, 10.0, 0)]

    dev = store.get_device("press")
    assert dev is not None
    assert (dev.gateway, dev.endpoint, dev.tag_count, dev.state) == (
        "gw1",
        "opc.tcp://127.0.0.1:4840",
        2,
        "unknown",
    )


def test_device_and_gateway_status(store: SqliteStore) -> None:
    store.apply_meta("gw1", "press", meta(TagInfo("speed", "ns=2;s=Speed", "Double")))
    dev = store.get_device("press")
    assert dev is not None and (dev.state, dev.gateway_state, dev.last_data, dev.last_seq) == (
        "unknown",
        "unknown",
        None,
        0,
    )
    store.apply_device_status("gw1", "press", DeviceStatus("offline", T0, "opc.tcp://h:1", "refused"))
    store.apply_gateway_status("gw1", GatewayStatus("online", T0 + 1, "0.1.0"))
    store.write_batches([batch("press", 4, Sample("speed", T0 + 9, 1.0), Sample("speed", T0 + 3, 2.0))])
    dev = store.get_device("press")
    assert dev is not None
    assert (dev.state, dev.state_since, dev.error, dev.endpoint) == (
        "offline",
        T0,
        "refused",
        "opc.tcp://h:1",
    )
    assert (dev.gateway_state, dev.last_data, dev.last_seq) == ("online", T0 + 9, 4)
    store.apply_device_status("gw1", "press", DeviceStatus("online", T0 + 5, "opc.tcp://h:1"))
    store.apply_gateway_status("gw1", GatewayStatus("offline", T0 + 6))
    dev = store.get_device("press")
    assert dev is not None and (dev.state, dev.error, dev.gateway_state) == ("online", None, "offline")
    assert [d.id for d in store.list_devices()] == ["press"]
    assert store.get_device("nope") is None


def test_latest_gives_the_newest_point_of_each_tag(store: SqliteStore) -> None:
    store.apply_meta(
        "gw1",
        "d1",
        meta(
            TagInfo("temp", "n1", "Double", "degC"),
            TagInfo("on", "n2", "Boolean"),
            TagInfo("never", "n3", "Double"),
        ),
    )
    # Out of order across messages: the newest source timestamp wins, not the last write.
    store.write_batches([batch("d1", 1, Sample("temp", T0 + 5, 21.5), Sample("on", T0 + 1, 1))])
    store.write_batches([batch("d1", 2, Sample("temp", T0 + 2, 19.0), Sample("on", T0 + 3, False))])
    store.write_batches([batch("other", 1, Sample("temp", T0 + 9, 99.0))])
    assert store.latest("d1") == [
        LatestValue("on", T0 + 3, False, 0, None),
        LatestValue("temp", T0 + 5, 21.5, 0, "degC"),
    ]
    assert store.latest("missing") == []
    # Within one commit too: the newest of a series' points, wherever it is in the batch.
    store.write_batches(
        [
            batch("d2", 1, Sample("temp", T0 + 9, 9.0), Sample("temp", T0 + 1, 1.0)),
            batch("d2", 2, Sample("temp", T0 + 9, 9.0), Sample("temp", T0 + 5, 5.0)),
        ]
    )
    assert store.latest("d2") == [LatestValue("temp", T0 + 9, 9.0, 0, None)]


def test_series_bounds_are_half_open_and_limit_keeps_the_oldest(store: SqliteStore) -> None:
    store.write_batches([batch("d1", 1, *(Sample("t", T0 + i * S, i) for i in range(10)))])
    got = store.series("d1", "t", T0 + 2 * S, T0 + 6 * S, 100)
    assert [p.ts for p in got] == [T0 + 2 * S, T0 + 3 * S, T0 + 4 * S, T0 + 5 * S]
    assert [p.value for p in got] == [2, 3, 4, 5]
    assert [p.value for p in store.series("d1", "t", T0 + 2 * S, T0 + 6 * S, 3)] == [2, 3, 4]
    assert store.series("d1", "t", T0 + 6 * S, T0 + 6 * S, 10) == []
    assert store.series("d1", "nope", 0, 2**62, 10) == []
    assert store.series("d1", "t", 0, 2**62, 0) == []


def _buckets_by_agg(store: SqliteStore, tag: str, start: int, end: int) -> dict[str, list[Bucket]]:
    return {
        agg: store.buckets("d1", tag, start, end, 10 * S, agg)
        for agg in ("avg", "min", "max", "last", "count")
    }


def test_buckets_on_known_numbers(store: SqliteStore) -> None:
    store.write_batches(
        [
            batch(
                "d1",
                1,
                Sample("t", T0 + 1 * S, 10),
                Sample("t", T0 + 4 * S, 20.0),
                Sample("t", T0 + 10 * S - 1, 30),  # last µs of the first bucket
                Sample("t", T0 + 10 * S, 5),  # first µs of the second
                Sample("t", T0 + 15 * S, -1.5),
                Sample("t", T0 + 30 * S, 7),  # the bucket at +20 s stays empty and is left out
            )
        ]
    )
    b = _buckets_by_agg(store, "t", T0, T0 + 60 * S)
    starts = [T0, T0 + 10 * S, T0 + 30 * S]
    counts = [3, 2, 1]
    expected = {
        "avg": [20.0, 1.75, 7.0],
        "min": [10, -1.5, 7],
        "max": [30, 5, 7],
        "last": [30, -1.5, 7],
        "count": [3, 2, 1],
    }
    for agg, values in expected.items():
        assert b[agg] == [Bucket(s, v, c) for s, v, c in zip(starts, values, counts, strict=True)], agg

    # A start inside a bucket trims points, but buckets stay aligned to multiples of `every`.
    assert store.buckets("d1", "t", T0 + 4 * S, T0 + 15 * S, 10 * S, "avg") == [
        Bucket(T0, 25.0, 2),
        Bucket(T0 + 10 * S, 5.0, 1),
    ]


def test_buckets_with_strings_and_booleans(store: SqliteStore) -> None:
    store.apply_meta("gw1", "d1", meta(TagInfo("on", "n1", "Boolean"), TagInfo("mixed", "n2", "String")))
    store.write_batches(
        [
            batch(
                "d1",
                1,
                Sample("mixed", T0 + 1 * S, "abc"),
                Sample("mixed", T0 + 2 * S, 4),
                Sample("mixed", T0 + 3 * S, "zzz"),
                Sample("mixed", T0 + 11 * S, "only"),
                Sample("on", T0 + 1 * S, True),
                Sample("on", T0 + 2 * S, False),
                Sample("on", T0 + 3 * S, True),
                Sample("on", T0 + 12 * S, False),
            )
        ]
    )
    m = _buckets_by_agg(store, "mixed", T0, T0 + 20 * S)
    # avg/min/max ignore strings (never treat "abc" as 0); last and count use every point.
    assert m["avg"] == [Bucket(T0, 4.0, 3), Bucket(T0 + 10 * S, None, 1)]
    assert m["min"] == [Bucket(T0, 4, 3), Bucket(T0 + 10 * S, None, 1)]
    assert m["max"] == [Bucket(T0, 4, 3), Bucket(T0 + 10 * S, None, 1)]
    assert m["last"] == [Bucket(T0, "zzz", 3), Bucket(T0 + 10 * S, "only", 1)]
    assert m["count"] == [Bucket(T0, 3, 3), Bucket(T0 + 10 * S, 1, 1)]

    o = _buckets_by_agg(store, "on", T0, T0 + 20 * S)
    assert o["avg"][0] == Bucket(T0, pytest.approx(2 / 3), 3)
    assert o["avg"][1] == Bucket(T0 + 10 * S, 0.0, 1)
    assert o["min"] == [Bucket(T0, False, 3), Bucket(T0 + 10 * S, False, 1)]
    assert o["max"] == [Bucket(T0, True, 3), Bucket(T0 + 10 * S, False, 1)]
    assert o["last"] == [Bucket(T0, True, 3), Bucket(T0 + 10 * S, False, 1)]
    assert type(o["last"][0].value) is bool


def test_bad_bucket_arguments_are_refused(store: SqliteStore) -> None:
    with pytest.raises(ValueError, match="every"):
        store.buckets("d1", "t", 0, 1, 0, "avg")
    with pytest.raises(ValueError, match="aggregate"):
        store.buckets("d1", "t", 0, 1, 10, "median")  # type: ignore[arg-type]


def test_queries_use_the_primary_key(store: SqliteStore) -> None:
    """Guard against a query change that silently turns into a scan of `points`."""
    from plantwire_platform.store import sqlite as mod

    conn = sqlite3.connect(store.path)

    def plan(sql: str, params: tuple[object, ...]) -> str:
        return " | ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params))

    in_group = "SEARCH points USING PRIMARY KEY (grp=? AND ts>? AND ts<?)"
    assert in_group in plan(mod._SERIES_SQL, (1, 0, 1, 1))
    latest = plan(mod._LATEST_SQL, ("d",))
    assert "SEARCH l USING INTEGER PRIMARY KEY (rowid=?)" in latest
    assert "points" not in latest and "SCAN l" not in latest
    bucket_sql = (
        "SELECT (ts / ?1) * ?1 AS b, avg(value), count(*) FROM points "
        f"WHERE {sqlite_points.of_series('?2')} AND ts >= ?3 AND ts < ?4 GROUP BY b ORDER BY b"
    )
    assert in_group in plan(bucket_sql, (1, 1, 0, 1))
    one_bucket = f"SELECT avg(value), count(*) FROM points WHERE {sqlite_points.RANGE}"
    assert in_group in plan(one_bucket, (1, 0, 1))
    device = plan(mod._DEVICE_SELECT, ())
    assert "SCAN points" not in device and "SEARCH l USING INTEGER PRIMARY KEY (rowid=?)" in device
    edge = plan(mod._EDGE_SQL.format(order="DESC"), (1, 0, 1))
    assert "SEARCH points USING PRIMARY KEY" in edge and "TEMP B-TREE" not in edge
    conn.close()


def test_reads_do_not_wait_for_an_open_write_transaction(store: SqliteStore) -> None:
    store.write_batches([batch("d1", 1, Sample("t", T0, 1.0))])
    other = sqlite3.connect(store.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # holds the write lock, like a writer in the middle of a batch
    other.execute(
        "INSERT INTO points (grp, ts, series_id, value, status) VALUES (0, ?, 1, 2.0, 0)", (T0 + 1,)
    )
    results: list[object] = []
    reader = threading.Thread(target=lambda: results.append(store.latest("d1")))
    reader.start()
    reader.join(timeout=5)
    other.execute("ROLLBACK")
    other.close()
    assert results == [[LatestValue("t", T0, 1.0, 0, None)]]


def test_both_bucket_strategies_agree(store: SqliteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Few buckets: one range query each; many: one GROUP BY. Same answers either way."""
    from plantwire_platform.store import sqlite as mod

    values: list[float | str | None] = [1.5, 2, "x", None, -4, 8.25, "y", 3]
    store.write_batches(
        [batch("d1", 1, *(Sample("t", T0 + i * 3 * S + (i % 2), v) for i, v in enumerate(values)))]
    )
    ranges = [(T0, T0 + 30 * S), (T0 + 4 * S, T0 + 19 * S), (0, 2**62)]
    per_bucket = {
        (agg, r): store.buckets("d1", "t", *r, 5 * S, agg)
        for agg in ("avg", "min", "max", "last", "count")
        for r in ranges
    }
    monkeypatch.setattr(mod, "_MAX_BUCKET_QUERIES", 0)
    grouped = {key: store.buckets("d1", "t", *key[1], 5 * S, key[0]) for key in per_bucket}
    assert grouped == per_bucket
    assert per_bucket[("last", ranges[0])][0] == Bucket(T0, 2, 2)
    assert sum(b.count for b in per_bucket[("count", ranges[2])]) == len(values)


def test_an_app_integer_beyond_64_bits_is_stored_as_a_float(store: SqliteStore) -> None:
    """Apps' values never pass the wire decoder; one too large for SQLite must not lose the others."""
    from plantwire_platform.store.model import DerivedPoint

    points = [DerivedPoint("dev-1", "app/count", 1, 2**64), DerivedPoint("dev-1", "app/count", 2, 7)]
    assert store.write_derived("counter", points) == 2
    assert [(p.ts, p.value) for p in store.series("dev-1", "app/count", 0, 10, 10)] == [
        (1, float(2**64)),
        (2, 7),
    ]


def test_the_writers_series_id_cache_is_bounded_and_stays_right(store: SqliteStore) -> None:
    store._series_ids = TwoGenerationCache(10)  # as SERIES_CACHE_MAX = 10
    t0 = 1_700_000_000_000_000
    for round_ in range(3):  # every series written again after the cache turned over
        for d in range(8):
            samples = [Sample(f"t{k}", t0 + round_, float(d * 10 + k)) for k in range(5)]
            store.write_batches([batch(f"dev{d}", round_ + 1, *samples)])
        assert len(store._series_ids) <= 10
    for d in range(8):
        for k in range(5):
            points = store.series(f"dev{d}", f"t{k}", t0, t0 + 10, 10)
            assert [(p.ts - t0, p.value) for p in points] == [(r, float(d * 10 + k)) for r in range(3)]
    assert store.count_points() == 8 * 5 * 3


def test_a_file_from_before_device_changes_gains_them_and_lists_its_devices_first(tmp_path: Path) -> None:
    from plantwire_platform.store.device_changes import START

    path = tmp_path / "old.sqlite"
    with SqliteStore.open(path) as old:
        for d in ("b", "a"):
            old.apply_device_status("gw", d, DeviceStatus("online", 1, "opc.tcp://x:1", None))
    conn = sqlite3.connect(path)  # make it a file of the version before `devices.changed`
    conn.executescript(
        "DROP TRIGGER devices_changed_insert; DROP TRIGGER devices_changed_update; "
        "DROP INDEX devices_changed; ALTER TABLE devices DROP COLUMN changed; "
        "DELETE FROM counters WHERE name = 'device_changes';"
    )
    conn.close()
    with SqliteStore.open(path) as store:
        old_rows = store.changed_devices(START, 10)
        assert [(r.id, r.cursor.changed) for r in old_rows] == [("a", 0), ("b", 0)]
        store.apply_device_status("gw", "c", DeviceStatus("online", 1, None, None))
        store.apply_device_status("gw2", "a", DeviceStatus("online", 1, "opc.tcp://x:1", None))
        assert [(r.id, r.gateway) for r in store.changed_devices(old_rows[-1].cursor, 10)] == [
            ("c", "gw"),
            ("a", "gw2"),
        ]


def test_the_writers_last_seq_cache_is_bounded_and_gaps_stay_exact_after_eviction(
    store: SqliteStore,
) -> None:
    store._last_seq = TwoGenerationCache(4)  # as LAST_SEQ_CACHE_MAX = 4, for 10 devices
    devices = [f"dev{d}" for d in range(10)]
    t0 = 1_700_000_000_000_000
    results = []
    # seq 1, then 3 (one gap each), then 3 again (a redelivery: no gap), then 4 (no gap)
    for k, seq in enumerate([1, 3, 3, 4]):
        for dev in devices:  # one device per commit: the cache turns over between a device's writes
            results.append(store.write_batches([batch(dev, seq, Sample("t", t0 + k, float(seq)))]))
        assert len(store._last_seq) <= 4
    assert sum(r.seq_gaps for r in results) == 10
    assert [r.seq_gaps for r in results[10:20]] == [1] * 10
    assert sum(r.stored for r in results) == 40  # the redelivered seq 3 has a new ts: stored too
    rows = sqlite3.connect(store.path).execute("SELECT id, last_seq FROM devices ORDER BY id").fetchall()
    assert rows == [(dev, 4) for dev in devices]
    # several devices in one commit, some cached and some not
    result = store.write_batches([batch(dev, 6, Sample("t", t0 + 9, 0.0)) for dev in devices])
    assert result.seq_gaps == 10
    assert len(store._last_seq) <= 4


def _wal_frames_of_one_commit(store: SqliteStore, batches: list[IncomingBatch]) -> int:
    """Pages the commit of `batches` writes into the WAL (emptied first; no checkpoint between)."""
    conn = sqlite3.connect(store.path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.write_batches(batches)
    frames = int(conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])
    conn.close()
    return frames


def test_a_commit_of_one_point_per_series_writes_few_pages_however_long_the_history(tmp_path: Path) -> None:
    """1,000 series with 150 points of history each: keyed by series first, every point of a commit
    would land on a page of its own (~1,000 pages); grouped, a group's points share its last page."""
    devices, tags, history = 10, 100, 150
    with SqliteStore.open(tmp_path / "pw.sqlite", merge_every_s=None, checkpoint_every_s=3600) as store:

        def step(k: int) -> list[IncomingBatch]:
            samples = [Sample(f"t{t}", T0 + k * S, float(k + t)) for t in range(tags)]
            return [batch(f"d{d}", k + 1, *samples) for d in range(devices)]

        for k in range(history):
            store.write_batches(step(k))
        frames = _wal_frames_of_one_commit(store, step(history))
        assert store.count_points() == devices * tags * (history + 1)
    # Measured: 131 pages (points ~110 in ~31 groups, the rest the notes, latest points, counters);
    # 1,011 for the points alone when keyed (series_id, ts).
    groups = devices * tags // sqlite_points.GROUP_SIZE
    assert frames < 6 * groups, f"{frames} pages for {devices * tags} points in {groups} groups"


def test_a_file_with_points_keyed_by_series_is_rebuilt_grouped_and_answers_the_same(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    tags = [TagInfo(f"t{i}", f"n{i}", "Double") for i in range(40)]  # two groups of series

    def answers(store: SqliteStore) -> tuple[object, ...]:
        return (
            store.count_points(),
            store.latest("d1"),
            store.series("d1", "t33", T0, T0 + 100 * S, 100),
            store.buckets("d1", "t5", T0, T0 + 100 * S, 10 * S, "avg"),
            [d.last_data for d in store.list_devices()],
        )

    with SqliteStore.open(path, merge_every_s=None) as old:
        old.apply_meta("gw1", "d1", meta(*tags))
        for k in range(30):
            old.write_batches(
                [batch("d1", k + 1, *(Sample(t.tag, T0 + k * S, k * 0.5 + i) for i, t in enumerate(tags)))]
            )
        before = answers(old)
    conn = sqlite3.connect(path, isolation_level=None)  # make it a file of the layout keyed (series_id, ts)
    conn.executescript(
        "CREATE TABLE old_points (series_id INTEGER NOT NULL, ts INTEGER NOT NULL, value, "
        "status INTEGER NOT NULL, PRIMARY KEY (series_id, ts)) WITHOUT ROWID;"
        "INSERT INTO old_points SELECT series_id, ts, value, status FROM points;"
        "DROP TABLE points; DROP TABLE latest_points; ALTER TABLE old_points RENAME TO points;"
    )
    conn.close()
    with SqliteStore.open(path, merge_every_s=None) as store:
        columns = [r[1] for r in sqlite3.connect(path).execute("PRAGMA table_info(points)")]
        assert columns == ["grp", "ts", "series_id", "value", "status"]
        assert answers(store) == before
        again = store.write_batches([batch("d1", 30, Sample("t0", T0 + 29 * S, 14.5))])
        new = store.write_batches([batch("d1", 31, Sample("t0", T0 + 31 * S, 1.0))])
        assert (again.stored, again.duplicates, new.stored) == (0, 1, 1)
        assert store.latest("d1")[0] == LatestValue("t0", T0 + 31 * S, 1.0, 0, None)


def test_raw_retention_takes_the_latest_point_of_a_series_whose_points_all_went(store: SqliteStore) -> None:
    from plantwire_platform.store.retention import Horizons

    store.write_batches([batch("d1", 1, Sample("gone", T0, 1.0), Sample("kept", T0, 2.0))])
    store.write_batches([batch("d1", 2, Sample("kept", T0 + 10 * S, 3.0))])
    deleted = store.enforce_retention(Horizons(raw=T0 + 5 * S, rollup_1m=None, rollup_1h=None))
    assert deleted["raw"] == 2
    assert store.latest("d1") == [LatestValue("kept", T0 + 10 * S, 3.0, 0, None)]
    assert store.count_points() == 1
