"""The Store contract: every backend gives the same answers to the same writes.

SQLite always runs (a real file in tmp_path). PostgreSQL always runs too, against the real server
on 127.0.0.1:5432 (a database per test run, a schema per test; see conftest.py): CI has it, and a
missing server fails the run. InfluxDB runs against a real InfluxDB 2 when
PLANTWIRE_TEST_INFLUXDB_URL, _TOKEN, _ORG and _BUCKET are set, and is skipped with that reason
otherwise. Device ids are unique per test, so a shared InfluxDB bucket never mixes runs.

Expected answers are computed by hand from the points written (T0 is a multiple of 10 s).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
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
from plantwire_platform.store.device_changes import START, ChangeCursor, DeviceChange
from plantwire_platform.store.model import Bucket, IncomingBatch, Registration, Store, StoreError, WriteResult

T0 = 1_700_000_000_000_000
S = 1_000_000
GW = "gw1"
INFLUX_ENV = ("URL", "TOKEN", "ORG", "BUCKET")


def _influx_env() -> dict[str, str] | None:
    values = {k: os.environ.get(f"PLANTWIRE_TEST_INFLUXDB_{k}", "") for k in INFLUX_ENV}
    return values if all(values.values()) else None


def _open_sqlite(tmp_path: Path) -> Store:
    from plantwire_platform.store.sqlite import SqliteStore

    return SqliteStore.open(tmp_path / "contract.sqlite")


def _open_influx(tmp_path: Path) -> Store:
    env = _influx_env()
    if env is None:
        pytest.skip(
            "InfluxDB contract run needs PLANTWIRE_TEST_INFLUXDB_URL, _TOKEN, _ORG and _BUCKET "
            "(no InfluxDB server on this machine)"
        )
    from plantwire_platform.store.influx.store import InfluxSettings, InfluxStore

    settings = InfluxSettings(
        url=env["URL"],
        token=env["TOKEN"],
        org=env["ORG"],
        bucket=env["BUCKET"],
        registry_path=tmp_path / "registry.sqlite",
        startup_timeout_s=5,
    )
    return InfluxStore.open(settings)


def _open_postgresql(request: pytest.FixtureRequest) -> Store:
    from pydantic import SecretStr

    from plantwire_platform.store.postgresql.store import PostgresSettings, PostgresStore

    dsn: str = request.getfixturevalue("postgres_dsn")
    schema: str = request.getfixturevalue("postgres_schema")
    return PostgresStore.open(PostgresSettings(dsn=SecretStr(dsn), schema_name=schema, startup_timeout_s=5))


BACKENDS: dict[str, Callable[[Path], Store]] = {"sqlite": _open_sqlite, "influxdb": _open_influx}


@pytest.fixture(params=[*BACKENDS, "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s = _open_postgresql(request) if request.param == "postgresql" else BACKENDS[request.param](tmp_path)
    yield s
    s.close()


@pytest.fixture
def dev(unique_id: str) -> str:
    return f"press-{unique_id}"


def batch(device: str, seq: int, *samples: Sample) -> IncomingBatch:
    return IncomingBatch(GW, device, DataBatch(seq=seq, sent=T0, samples=list(samples)))


def meta(*tags: TagInfo) -> DeviceMeta:
    return DeviceMeta(endpoint="opc.tcp://press:4840", root="ns=2;s=Press", tags=list(tags))


def numbers(device: str, seq: int = 1) -> IncomingBatch:
    """Tag 'p' at T0+0, +4, +12, +15, +31 s (buckets of 10 s: [0, 10), [10, 20), [30, 40))."""
    values = [(0, 2.0), (4, 6.0), (12, -1.0), (15, 5.0), (31, 10.0)]
    return batch(device, seq, *(Sample("p", T0 + sec * S, v) for sec, v in values))


# --- writes ----------------------------------------------------------------------------------------


def test_redelivered_message_is_counted_as_duplicate_and_stored_once(store: Store, dev: str) -> None:
    first = store.write_batches([numbers(dev)])
    again = store.write_batches([numbers(dev)])
    assert first == WriteResult(stored=5, duplicates=0, seq_gaps=0)
    assert again == WriteResult(stored=0, duplicates=5, seq_gaps=0)
    assert store.count_points() == 5
    assert len(store.series(dev, "p", T0, T0 + 60 * S, 100)) == 5


def test_sequence_gaps_are_counted_per_device_and_last_seq_kept(store: Store, dev: str) -> None:
    other = dev + "-b"
    one = Sample("p", T0, 1.0)
    result = store.write_batches(
        [
            batch(dev, 1, one),
            batch(dev, 2, Sample("p", T0 + S, 1.0)),
            batch(dev, 5, Sample("p", T0 + 2 * S, 1.0)),  # 3 and 4 missing
            batch(other, 3, one),  # first message seen is 3: 1 and 2 missing
        ]
    )
    assert result.seq_gaps == 2 + 2
    assert store.write_batches([batch(dev, 9, Sample("p", T0 + 3 * S, 1.0))]).seq_gaps == 3
    # A late redelivery of 5 is no gap and does not move last_seq back.
    assert store.write_batches([batch(dev, 5, Sample("p", T0 + 2 * S, 1.0))]).seq_gaps == 0
    device = store.get_device(dev)
    assert device is not None
    assert (device.last_seq, device.gateway, device.last_data) == (9, GW, T0 + 3 * S)
    assert store.get_device(other) is not None


# --- registry ----------------------------------------------------------------------------------------


def test_meta_registers_tags_and_keeps_tags_missing_from_a_later_meta(store: Store, dev: str) -> None:
    speed = TagInfo("Speed", "ns=2;s=Speed", "Double", unit="rpm", low=0.0, high=3000.0)
    run = TagInfo("Running", "ns=2;s=Running", "Boolean", writable=True)
    store.apply_meta(GW, dev, meta(speed, run))
    store.apply_meta(GW, dev, meta(TagInfo("Speed", "ns=2;s=Speed", "Double", unit="1/min")))
    tags = store.list_tags(dev)
    assert [(t.tag, t.data_type, t.unit, t.writable) for t in tags] == [
        ("Running", "Boolean", None, True),
        ("Speed", "Double", "1/min", False),
    ]
    assert (tags[1].low, tags[1].high, tags[1].node_id) == (None, None, "ns=2;s=Speed")
    device = store.get_device(dev)
    assert device is not None
    assert (device.endpoint, device.tag_count, device.state, device.last_seq) == (
        "opc.tcp://press:4840",
        2,
        "unknown",
        0,
    )
    assert device.last_data is None


def test_device_and_gateway_status(store: Store, dev: str) -> None:
    store.apply_device_status(GW, dev, DeviceStatus("offline", T0, "opc.tcp://press:4840", "refused"))
    store.apply_gateway_status(GW, GatewayStatus("online", T0 + S, "0.1.0"))
    device = store.get_device(dev)
    assert device is not None
    assert (device.state, device.state_since, device.error, device.gateway_state) == (
        "offline",
        T0,
        "refused",
        "online",
    )
    assert dev in [d.id for d in store.list_devices()]
    assert store.get_device(dev + "-none") is None


def _registrations(prefix: str) -> list[Registration]:
    """Two devices and their gateway, device `a` three times over (meta, status, a new meta with
    other tags and endpoint, a last status), `b` status before meta, the gateway's status twice."""
    gw, a, b = f"{prefix}-gw", f"{prefix}-a", f"{prefix}-b"
    x = TagInfo("x", "ns=2;s=x", "Double", unit="bar", low=0.0, high=10.0)
    y = TagInfo("y", "ns=2;s=y", "Int32", description="count")
    y2 = TagInfo("y", "ns=2;s=y2", "Int64", unit="1", writable=True)
    z = TagInfo("z", "ns=2;s=z", "Double", dims=(3,))
    return [
        Registration(gw, a, DeviceMeta("opc.tcp://a:1", "ns=2;s=A", [x, y])),
        Registration(gw, a, DeviceStatus("online", T0, "opc.tcp://a:1")),
        Registration(gw, None, GatewayStatus("offline", T0, "0.1.0")),
        Registration(gw, b, DeviceStatus("connecting", T0 + S, "opc.tcp://b:1", "slow")),
        Registration(gw, a, DeviceMeta("opc.tcp://a:2", "ns=2;s=A2", [y2, z])),
        Registration(gw, b, DeviceMeta("opc.tcp://b:2", "ns=2;s=B", [x])),
        Registration(gw, a, DeviceStatus("offline", T0 + 2 * S, "opc.tcp://a:3", "refused")),
        Registration(gw, None, GatewayStatus("online", T0 + 3 * S, "0.2.0")),
    ]


def _catalog_of(store: Store, prefix: str) -> list[tuple[object, ...]]:
    """Devices `a` and `b` of `_registrations(prefix)` and their tags, the prefix taken out."""
    out: list[tuple[object, ...]] = []
    for name in ("a", "b"):
        device = store.get_device(f"{prefix}-{name}")
        assert device is not None
        out.append(
            (
                name,
                device.gateway.removeprefix(prefix),
                device.endpoint,
                device.state,
                device.state_since,
                device.error,
                device.gateway_state,
                device.gateway_since,
                device.tag_count,
                *((t.tag, t.node_id, t.data_type, t.unit, t.description, t.writable, t.low, t.high, t.dims)
                  for t in store.list_tags(f"{prefix}-{name}")),
            )
        )  # fmt: skip
    return out


def test_registrations_in_one_batch_give_what_one_by_one_gives(store: Store, dev: str) -> None:
    one, many = f"{dev}-1", f"{dev}-n"
    for r in _registrations(one):
        store.apply_registrations([r])
    store.apply_registrations(_registrations(many))
    catalog = _catalog_of(store, many)
    assert catalog == _catalog_of(store, one)
    a_tags = [("x", "ns=2;s=x", "Double", "bar", None, False, 0.0, 10.0, None),
              ("y", "ns=2;s=y2", "Int64", "1", None, True, None, None, None),
              ("z", "ns=2;s=z", "Double", None, None, False, None, None, (3,))]  # fmt: skip
    assert catalog == [
        ("a", "-gw", "opc.tcp://a:3", "offline", T0 + 2 * S, "refused", "online", T0 + 3 * S, 3, *a_tags),
        ("b", "-gw", "opc.tcp://b:2", "connecting", T0 + S, "slow", "online", T0 + 3 * S, 1, a_tags[0]),
    ]
    # A batch of statuses only keeps what the metas said (root, tags); an empty batch is nothing.
    store.apply_registrations([Registration(f"{many}-gw", f"{many}-b", DeviceStatus("online", T0, "e"))])
    store.apply_registrations([])
    device = store.get_device(f"{many}-b")
    assert device is not None and (device.state, device.endpoint, device.tag_count) == ("online", "e", 1)


def _poison_series(store: Store, on: bool) -> None:
    """A real failure inside the store's transaction: a trigger that refuses the tag 'poison'."""
    from plantwire_platform.store.postgresql.store import PostgresStore
    from plantwire_platform.store.sqlite import SqliteStore

    if isinstance(store, SqliteStore):
        conn = sqlite3.connect(store.path)
        conn.execute(
            "CREATE TRIGGER poison BEFORE INSERT ON series WHEN new.tag = 'poison' "
            "BEGIN SELECT RAISE(ABORT, 'poisoned'); END"
            if on
            else "DROP TRIGGER poison"
        )
        conn.commit()
        conn.close()
        return
    assert isinstance(store, PostgresStore), "InfluxDB: no way in to fail its registry mid-batch"
    schema = f'"{store.settings.schema_name}"'
    sql = (
        f"CREATE FUNCTION {schema}.poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF NEW.tag = 'poison' THEN RAISE EXCEPTION 'poisoned'; END IF; RETURN NEW; END $$; "
        f"CREATE TRIGGER poison BEFORE INSERT ON {schema}.series "
        f"FOR EACH ROW EXECUTE FUNCTION {schema}.poison()"
        if on
        else f"DROP TRIGGER poison ON {schema}.series; DROP FUNCTION {schema}.poison()"
    )

    async def run() -> None:
        import asyncpg

        conn = await asyncpg.connect(store.settings.dsn.get_secret_value(), timeout=10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def test_a_failing_registration_batch_applies_nothing_and_all_when_retried(store: Store, dev: str) -> None:
    batch = _registrations(dev)
    poisoned = DeviceMeta("opc.tcp://b:2", "ns=2;s=B", [TagInfo("poison", "ns=2;s=p", "Double")])
    batch.append(Registration(f"{dev}-gw", f"{dev}-b", poisoned))  # last: everything else went first
    _poison_series(store, True)
    with pytest.raises(StoreError):
        store.apply_registrations(batch)
    assert store.get_device(f"{dev}-a") is None and store.get_device(f"{dev}-b") is None
    assert store.list_tags(f"{dev}-a") == []
    store.apply_device_status(f"{dev}-gw", f"{dev}-c", DeviceStatus("online", T0, "e"))
    device = store.get_device(f"{dev}-c")
    assert device is not None and device.gateway_state == "unknown"  # the gateway's status: not kept
    _poison_series(store, False)
    store.apply_registrations(batch)  # the same batch again, whole
    catalog = _catalog_of(store, dev)
    assert [c[:9] for c in catalog] == [
        ("a", "-gw", "opc.tcp://a:3", "offline", T0 + 2 * S, "refused", "online", T0 + 3 * S, 3),
        ("b", "-gw", "opc.tcp://b:2", "connecting", T0 + S, "slow", "online", T0 + 3 * S, 2),
    ]


def test_device_pages_filter_count_and_order_by_id(store: Store, dev: str) -> None:
    from plantwire_platform.store.device_query import DeviceQuery

    # Other tests' devices may share the store (InfluxDB's bucket): filter by this test's gateway.
    gw_a, gw_b = f"{dev}-ga", f"{dev}-gb"
    ids = [f"{dev}-{i:02d}" for i in range(7)]
    for i, d in enumerate(ids):
        state = "online" if i % 2 == 0 else "offline"
        store.apply_device_status(gw_a if i < 5 else gw_b, d, DeviceStatus(state, T0, None, None))
    store.write_batches([batch(ids[2], 1, Sample("a", T0 + 3 * S, 1.0), Sample("b", T0, 2))])
    page = store.page_devices(DeviceQuery(gateway=gw_a, offset=1, limit=2))
    assert ([d.id for d in page.devices], page.total) == (ids[1:3], 5)
    assert (page.devices[1].tag_count, page.devices[1].last_data) == (2, T0 + 3 * S)
    page = store.page_devices(DeviceQuery(gateway=gw_a, state="online"))
    assert ([d.id for d in page.devices], page.total) == ([ids[0], ids[2], ids[4]], 3)
    # The id substring is case-insensitive and literal (no wildcards).
    page = store.page_devices(DeviceQuery(name=f"{dev}-0".upper() + "6"))
    assert ([d.id for d in page.devices], page.total) == ([ids[6]], 1)
    assert store.page_devices(DeviceQuery(name=f"{dev}-%")).total == 0
    assert store.page_devices(DeviceQuery(name=f"{dev}-_6")).total == 0
    # limit 0: only the total; past the end: an empty page with the total.
    assert store.page_devices(DeviceQuery(gateway=gw_b, limit=0)) == type(page)([], 2)
    assert store.page_devices(DeviceQuery(gateway=gw_b, offset=2)) == type(page)([], 2)
    assert store.page_devices(DeviceQuery(gateway=gw_b, state="connecting")).total == 0
    assert [d.id for d in store.page_devices(DeviceQuery(gateway=gw_b)).devices] == ids[5:]


def _changes_after(store: Store, after: ChangeCursor, limit: int, want: int) -> list[DeviceChange]:
    """`changed_devices` once it has `want` rows: PostgreSQL holds back rows of transactions newer
    than the oldest one still running in the cluster (another test run's, say) until it ends."""
    deadline = time.monotonic() + 10
    while True:
        rows = store.changed_devices(after, limit)
        if len(rows) >= want or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def test_changed_devices_follow_creations_and_moves_only_in_pages(store: Store, dev: str) -> None:
    a, b, c, d = f"{dev}-a", f"{dev}-b", f"{dev}-c", f"{dev}-d"
    store.write_batches([batch(a, 1, Sample("p", T0, 1.0))])  # the write path registers `a`
    store.apply_meta(GW, b, meta())
    store.apply_device_status(GW, c, DeviceStatus("online", T0, "opc.tcp://c:1", None))
    first = _changes_after(store, START, 2, 2)
    assert [(r.id, r.gateway, r.endpoint) for r in first] == [(a, GW, None), (b, GW, "opc.tcp://press:4840")]
    rest = _changes_after(store, first[-1].cursor, 10, 1)
    assert [(r.id, r.endpoint) for r in rest] == [(c, "opc.tcp://c:1")]
    assert first[0].cursor < first[1].cursor < rest[0].cursor
    # Neither data, nor a status with the same endpoint, nor the same meta again change a device.
    store.write_batches([batch(a, 2, Sample("p", T0 + S, 2.0))])
    store.apply_device_status(GW, c, DeviceStatus("offline", T0 + S, "opc.tcp://c:1", "gone"))
    store.apply_meta(GW, b, meta())
    store.apply_gateway_status(GW, GatewayStatus("online", T0, "0.1.0"))
    store.apply_device_status(GW, d, DeviceStatus("online", T0, None, None))  # a new one, as a marker
    assert [r.id for r in _changes_after(store, rest[-1].cursor, 10, 1)] == [d]
    # A move and a new endpoint bring a device back, once, after the cursor.
    mark = _changes_after(store, rest[-1].cursor, 10, 1)[-1].cursor
    store.apply_meta(f"{dev}-gw2", a, meta())
    store.apply_device_status(GW, c, DeviceStatus("online", T0 + 2 * S, "opc.tcp://c:2", None))
    moved = _changes_after(store, mark, 10, 2)
    assert [(r.id, r.gateway, r.endpoint) for r in moved] == [
        (a, f"{dev}-gw2", "opc.tcp://press:4840"),
        (c, GW, "opc.tcp://c:2"),
    ]
    assert store.changed_devices(moved[-1].cursor, 10) == []
    assert store.changed_devices(START, 0) == []


def test_tags_seen_only_in_data_are_listed(store: Store, dev: str) -> None:
    store.write_batches([batch(dev, 1, Sample("a", T0, 1.5), Sample("flag", T0, True))])
    tags = {t.tag: t.data_type for t in store.list_tags(dev)}
    assert set(tags) == {"a", "flag"}
    assert tags["flag"] == "Boolean"


# --- reads -------------------------------------------------------------------------------------------


def test_latest_is_the_newest_point_of_each_tag_with_its_type_and_unit(store: Store, dev: str) -> None:
    store.apply_meta(GW, dev, meta(TagInfo("t", "ns=2;s=t", "Double", unit="°C")))
    store.write_batches(
        [
            batch(
                dev,
                1,
                Sample("t", T0, 20.5),
                Sample("t", T0 + 2 * S, 21.25),
                Sample("mode", T0 + S, "auto"),
                Sample("on", T0, True),
                Sample("on", T0 + S, False),
                Sample("lost", T0, 3.0),
                Sample("lost", T0 + 5 * S, None, STATUS_BAD_NO_COMMUNICATION),
            )
        ]
    )
    latest = {v.tag: v for v in store.latest(dev)}
    assert sorted(latest) == ["lost", "mode", "on", "t"]
    assert (latest["t"].ts, latest["t"].value, latest["t"].unit) == (T0 + 2 * S, 21.25, "°C")
    assert latest["mode"].value == "auto"
    assert latest["on"].value is False
    # The newest point has no value: latest says so, it does not fall back to an older value.
    assert (latest["lost"].ts, latest["lost"].value, latest["lost"].status) == (
        T0 + 5 * S,
        None,
        STATUS_BAD_NO_COMMUNICATION,
    )
    assert store.latest(dev + "-none") == []


def test_series_is_half_open_oldest_first_and_limited(store: Store, dev: str) -> None:
    store.write_batches([numbers(dev)])
    points = store.series(dev, "p", T0 + 4 * S, T0 + 31 * S, 100)
    assert [(p.ts - T0) // S for p in points] == [4, 12, 15]  # 31 s is the excluded end
    assert [p.value for p in points] == [6.0, -1.0, 5.0]
    assert [p.status for p in points] == [0, 0, 0]
    assert [p.ts for p in store.series(dev, "p", T0, T0 + 60 * S, 2)] == [T0, T0 + 4 * S]
    assert store.series(dev, "nope", T0, T0 + 60 * S, 10) == []


def test_series_keeps_value_types(store: Store, dev: str) -> None:
    store.write_batches(
        [batch(dev, 1, Sample("s", T0, "a"), Sample("s", T0 + S, None, 5), Sample("b", T0, True))]
    )
    strings = store.series(dev, "s", T0, T0 + 10 * S, 10)
    assert [(p.value, p.status) for p in strings] == [("a", 0), (None, 5)]
    flags = store.series(dev, "b", T0, T0 + 10 * S, 10)
    assert [type(p.value) for p in flags] == [bool]


@pytest.mark.parametrize(
    ("agg", "expected"),
    [
        # buckets [0,10): 2, 6   [10,20): -1, 5   [30,40): 10   ([20,30) is empty, so left out)
        ("avg", [4.0, 2.0, 10.0]),
        ("min", [2.0, -1.0, 10.0]),
        ("max", [6.0, 5.0, 10.0]),
        ("last", [6.0, 5.0, 10.0]),
        ("count", [2, 2, 1]),
        ("first", [2.0, -1.0, 10.0]),
    ],
)
def test_buckets_aligned_and_empty_ones_left_out(store: Store, dev: str, agg: str, expected: list) -> None:
    store.write_batches([numbers(dev)])
    # The range starts mid-bucket: buckets still align to multiples of `every` since the epoch.
    got = store.buckets(dev, "p", T0 - 5 * S, T0 + 60 * S, 10 * S, agg)  # type: ignore[arg-type]
    assert [(b.start - T0) // S for b in got] == [0, 10, 30]
    assert [b.value for b in got] == expected
    assert [b.count for b in got] == [2, 2, 1]


def test_buckets_clip_points_to_the_range(store: Store, dev: str) -> None:
    store.write_batches([numbers(dev)])
    got = store.buckets(dev, "p", T0 + 4 * S, T0 + 15 * S, 10 * S, "avg")
    assert got == [Bucket(T0, 6.0, 1), Bucket(T0 + 10 * S, -1.0, 1)]


def test_buckets_of_strings_and_booleans(store: Store, dev: str) -> None:
    store.apply_meta(GW, dev, meta(TagInfo("on", "ns=2;s=on", "Boolean")))
    store.write_batches(
        [
            batch(
                dev,
                1,
                Sample("mode", T0, "auto"),
                Sample("mode", T0 + S, "manual"),
                *(Sample("on", T0 + i * S, v) for i, v in enumerate([True, False, True, True])),
            )
        ]
    )
    # Text has no average, but the bucket is not empty: value None, count 2; last is the text.
    assert store.buckets(dev, "mode", T0, T0 + 10 * S, 10 * S, "avg") == [Bucket(T0, None, 2)]
    assert store.buckets(dev, "mode", T0, T0 + 10 * S, 10 * S, "last") == [Bucket(T0, "manual", 2)]
    assert store.buckets(dev, "mode", T0, T0 + 10 * S, 10 * S, "first") == [Bucket(T0, "auto", 2)]
    # Booleans count as 0/1 in an average; min, max, first and last stay booleans.
    assert store.buckets(dev, "on", T0, T0 + 10 * S, 10 * S, "avg") == [Bucket(T0, 0.75, 4)]
    for agg, want in (("min", False), ("max", True), ("last", True), ("first", True)):
        (got,) = store.buckets(dev, "on", T0, T0 + 10 * S, 10 * S, agg)  # type: ignore[arg-type]
        assert got.value is want, agg


def test_buckets_reject_bad_arguments(store: Store, dev: str) -> None:
    with pytest.raises(ValueError, match="aggregate"):
        store.buckets(dev, "p", T0, T0 + S, S, "median")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="every"):
        store.buckets(dev, "p", T0, T0 + S, 0, "avg")
    assert store.buckets(dev + "-none", "p", T0, T0 + S, S, "avg") == []


# --- apps: derived series and alarms -----------------------------------------------------------------


def test_derived_points_are_stored_marked_and_read_like_device_points(store: Store, dev: str) -> None:
    from plantwire_platform.store.model import DerivedPoint

    store.write_batches([batch(dev, 1, Sample("p", T0, 1.0))])
    points = [DerivedPoint(dev, "oee/OEE", T0 + i * S, 0.5 + i / 10, unit="1") for i in range(3)]
    assert store.write_derived("oee", points) == 3
    tags = {t.tag: t for t in store.list_tags(dev)}
    assert tags["oee/OEE"].derived_by == "oee"
    assert tags["oee/OEE"].unit == "1"
    assert tags["p"].derived_by is None
    got = store.series(dev, "oee/OEE", T0, T0 + 10 * S, 10)
    assert [(p.ts, p.value) for p in got] == [(T0, 0.5), (T0 + S, 0.6), (T0 + 2 * S, 0.7)]
    assert {v.tag: v.value for v in store.latest(dev)}["oee/OEE"] == 0.7
    # A virtual device (not seen from any gateway) appears in the device list.
    store.write_derived("energy", [DerivedPoint(dev + "-virtual", "energy/kWh", T0, 2.5)])
    virtual = store.get_device(dev + "-virtual")
    assert virtual is not None and virtual.gateway == "apps"


def test_alarm_raise_update_clear_ack(store: Store, dev: str) -> None:
    first = store.raise_alarm("limits", dev, "Temp", "warning", "Temp 81 > 80", T0)
    assert (first.state, first.severity, first.acked, first.cleared_at) == ("active", "warning", False, None)
    # Raising again while active updates the same alarm instead of adding one.
    again = store.raise_alarm("limits", dev, "Temp", "critical", "Temp 95 > 90", T0 + S)
    assert again.id == first.id and again.severity == "critical" and again.raised_at == T0
    assert [a.id for a in store.list_alarms(active_only=True, device=dev)] == [first.id]
    cleared = store.clear_alarm("limits", dev, "Temp", T0 + 5 * S)
    assert cleared is not None and cleared.state == "cleared" and cleared.cleared_at == T0 + 5 * S
    assert store.clear_alarm("limits", dev, "Temp", T0 + 6 * S) is None
    assert store.list_alarms(active_only=True, device=dev) == []
    second = store.raise_alarm("limits", dev, "Temp", "warning", "again", T0 + 7 * S)
    assert second.id != first.id
    assert [a.id for a in store.list_alarms(device=dev)] == [second.id, first.id]
    acked = store.ack_alarm(first.id, "ops", T0 + 8 * S)
    assert acked is not None and acked.acked and acked.acked_by == "ops" and acked.acked_at == T0 + 8 * S
    # Acknowledging twice keeps the first acknowledgement.
    assert store.ack_alarm(first.id, "other", T0 + 9 * S) == acked
    assert store.ack_alarm(-1, "ops", T0) is None
    assert store.list_alarms(device=dev, app="nobody") == []
    with pytest.raises(ValueError, match="severity"):
        store.raise_alarm("limits", dev, "Temp", "fatal", "x", T0)


# --- audit of commands ------------------------------------------------------------------------------


def test_audit_entries_are_kept_newest_first_filtered_and_paged(store: Store, dev: str) -> None:
    from plantwire_platform.store.model import AuditEntry

    def entry(i: int, device: str | None) -> AuditEntry:
        return AuditEntry(
            0, T0 + i * S, f"user{i}", "write", GW, device, f"c{i}", {"tag": "A", "value": i / 2},
            "ok" if i % 2 else "rejected", 200 if i % 2 else 422, 0 if i % 2 else None,
            None if i % 2 else "out of range", 1.5 if i % 2 else None,
        )  # fmt: skip

    added = [store.add_audit(entry(i, dev if i < 4 else f"{dev}-other")) for i in range(5)]
    assert [a.id for a in added] == sorted({a.id for a in added})
    assert added[1].user == "user1" and added[1].ts == T0 + S and added[1].command_id == "c1"
    mine = store.list_audit(device=dev)
    assert [e.user for e in mine] == ["user3", "user2", "user1", "user0"]
    assert mine[0].request == {"tag": "A", "value": 1.5} and mine[0].rtt_ms == 1.5
    assert (mine[1].outcome, mine[1].http_status, mine[1].status, mine[1].message) == (
        "rejected", 422, None, "out of range",
    )  # fmt: skip
    assert [e.user for e in store.list_audit(limit=2, device=dev)] == ["user3", "user2"]
    assert [e.user for e in store.list_audit(device=dev, before_id=mine[1].id)] == ["user1", "user0"]
    assert store.list_audit(device=f"{dev}-none") == []


# --- trust: device ownership and sequence jumps ----------------------------------------------------


def test_a_device_belongs_to_the_gateway_that_registered_it_until_moved(store: Store, dev: str) -> None:
    assert store.device_owner(dev) is None
    assert store.claim_device(GW, dev) == GW
    assert store.claim_device("forger", dev) == GW  # first come keeps it
    store.apply_meta(GW, dev, meta(TagInfo("p", "ns=2;s=P", "Double")))
    assert store.move_device(dev, "gw2") == GW
    assert store.device_owner(dev) == "gw2" and store.claim_device(GW, dev) == "gw2"
    device = store.get_device(dev)
    assert device is not None and device.gateway == "gw2"  # commands follow the owner
    assert store.move_device(dev + "-never-seen", "gw2") is None


def test_a_device_registered_before_ownership_existed_keeps_its_gateway(store: Store, dev: str) -> None:
    store.apply_device_status(
        GW, dev, DeviceStatus(state="online", since=T0, endpoint="opc.tcp://press:4840")
    )
    assert store.claim_device("forger", dev) == GW


def test_claim_devices_gives_each_device_to_its_first_claimer_in_one_call(store: Store, dev: str) -> None:
    a, b, c = f"{dev}-a", f"{dev}-b", f"{dev}-c"
    assert store.claim_device(GW, a) == GW
    store.apply_meta("gw-old", c, meta())  # registered before ownership existed: its gateway keeps it
    claims = [("forger", a), ("gw2", b), ("forger", b), ("forger", c), ("gw2", b)]
    assert store.claim_devices(claims) == {a: GW, b: "gw2", c: "gw-old"}
    assert [store.device_owner(d) for d in (a, b, c)] == [GW, "gw2", "gw-old"]
    assert store.claim_devices([]) == {}


def test_a_seq_jump_is_counted_but_neither_gaps_nor_moves_last_seq(store: Store, dev: str) -> None:
    store.write_batches([batch(dev, 1, Sample("p", T0, 1.0))])
    forged = store.write_batches([batch(dev, 2**63 - 1, Sample("p", T0 + S, 2.0))])
    assert (forged.seq_gaps, forged.seq_jumps) == (0, 1)
    later = store.write_batches([batch(dev, 3, Sample("p", T0 + 2 * S, 3.0))])
    assert (later.stored, later.seq_gaps, later.seq_jumps) == (1, 1, 0)
    device = store.get_device(dev)
    assert device is not None and device.last_seq == 3
    # A device first seen far along its numbering (a fresh store, a long-running gateway): a baseline.
    other = dev + "-b"
    first = store.write_batches([batch(other, 5_000_000, Sample("p", T0, 1.0))])
    assert (first.seq_gaps, first.seq_jumps) == (0, 1)
    assert store.write_batches([batch(other, 5_000_002, Sample("p", T0 + S, 1.0))]).seq_gaps == 1


def test_audit_retention_deletes_old_entries_and_keeps_the_newest_rows(store: Store, dev: str) -> None:
    from plantwire_platform.store.model import AuditEntry

    def entry(i: int) -> AuditEntry:
        return AuditEntry(0, T0 + i * S, "u", "write", GW, dev, None, {"i": i}, "ok", 200, 0, None, None)

    for i in range(10):
        store.add_audit(entry(i))
    assert store.prune_audit(keep_rows=100, before_ts=T0 + 2 * S) == 2  # entries 0 and 1 are too old
    assert store.prune_audit(keep_rows=5, before_ts=0) == 3  # the newest 5 stay
    assert [e.request["i"] for e in store.list_audit(device=dev)] == [9, 8, 7, 6, 5]
    assert store.prune_audit(keep_rows=5, before_ts=0) == 0
