"""The Store contract for the value types of docs/wire.md: arrays, structures, UInt64, enumerations.

Runs on SQLite (a real file) and PostgreSQL (the real server; see conftest.py), opened as
test_store_contract.py opens them. The InfluxDB backend keeps arrays and structures as JSON text
(docs/wire.md), so it is not in this contract. Expected answers are computed by hand.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import test_store_contract as contract
from test_store_contract import GW, T0, S, meta

from plantwire.wire import DataBatch, Sample, TagInfo
from plantwire_platform.store.model import Bucket, IncomingBatch, Store

BIG = 2**63 + 5
"""A UInt64 counter value a signed 64-bit column cannot hold."""
TOP = 2**64 - 1


@pytest.fixture(params=["sqlite", "postgresql"])
def typed_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        s = contract._open_sqlite(tmp_path)
    else:
        s = contract._open_postgresql(request)
    yield s
    s.close()


@pytest.fixture
def dev(unique_id: str) -> str:
    return f"typed-{unique_id}"


def _write(st: Store, device: str, seq: int, *samples: Sample) -> None:
    st.write_batches([IncomingBatch(GW, device, DataBatch(seq=seq, sent=T0, samples=list(samples)))])


def test_arrays_and_structures_come_back_as_arrays_and_objects(typed_store: Store, dev: str) -> None:
    s = typed_store
    _write(
        s,
        dev,
        1,
        Sample("vec", T0, [57.0, 114.0, -57.0]),
        Sample("matrix", T0, [[1, 2], [3, 4]]),
        Sample("range", T0, {"Low": 1.5, "High": 3.25}),
        Sample("text", T0, "[1, 2]"),  # a String whose text looks like JSON stays text
        Sample("empty", T0, []),
        Sample("flags", T0, [True, False]),
    )
    latest = {v.tag: v.value for v in s.latest(dev)}
    assert latest == {
        "vec": [57.0, 114.0, -57.0],
        "matrix": [[1, 2], [3, 4]],
        "range": {"Low": 1.5, "High": 3.25},
        "text": "[1, 2]",
        "empty": [],
        "flags": [True, False],
    }
    assert [p.value for p in s.series(dev, "matrix", T0, T0 + 1, 10)] == [[[1, 2], [3, 4]]]
    assert [p.value for p in s.series(dev, "text", T0, T0 + 1, 10)] == ["[1, 2]"]


def test_array_aggregates_are_element_wise_over_points_of_one_shape(typed_store: Store, dev: str) -> None:
    s = typed_store
    s.apply_meta(GW, dev, meta(TagInfo("vec", "ns=2;s=vec", "Double", dims=(3,))))
    _write(
        s,
        dev,
        1,
        Sample("vec", T0, [1.0, 10.0, -1.0]),
        Sample("vec", T0 + 1 * S, [3.0, 20.0, -5.0]),
        Sample("vec", T0 + 2 * S, [9.0, 9.0]),  # another shape: left out, counted
        Sample("vec", T0 + 3 * S, None, 0x80310000),  # a marker: no value
        Sample("vec", T0 + 4 * S, [5.0, 30.0, -3.0]),
        Sample("vec", T0 + 12 * S, [7, 8, 9]),
    )
    every = 10 * S
    assert s.buckets(dev, "vec", T0, T0 + 20 * S, every, "avg") == [
        Bucket(T0, [3.0, 20.0, -3.0], 5, 1),
        Bucket(T0 + every, [7.0, 8.0, 9.0], 1, 0),
    ]
    assert s.buckets(dev, "vec", T0, T0 + 20 * S, every, "min")[0] == Bucket(T0, [1.0, 10.0, -5.0], 5, 1)
    assert s.buckets(dev, "vec", T0, T0 + 20 * S, every, "max")[1] == Bucket(T0 + every, [7, 8, 9], 1, 0)
    assert s.buckets(dev, "vec", T0, T0 + 20 * S, every, "last")[0] == Bucket(T0, [5.0, 30.0, -3.0], 5, 0)
    assert s.buckets(dev, "vec", T0, T0 + 20 * S, every, "first")[0] == Bucket(T0, [1.0, 10.0, -1.0], 5, 0)
    assert [b.value for b in s.buckets(dev, "vec", T0, T0 + 20 * S, every, "count")] == [5, 1]


def test_matrices_and_structures_aggregate_element_by_element(typed_store: Store, dev: str) -> None:
    s = typed_store
    _write(
        s,
        dev,
        1,
        Sample("m", T0, [[1, 2], [3, 4]]),
        Sample("m", T0 + S, [[3, 2], [5, "x"]]),  # a non-number element is left out of its position
        Sample("r", T0, {"Low": 1.0, "High": 3.0}),
        Sample("r", T0 + S, {"Low": 2.0, "High": 5.0}),
        Sample("r", T0 + 2 * S, {"Low": 9.0}),  # other fields: left out
    )
    assert s.buckets(dev, "m", T0, T0 + 10 * S, 10 * S, "avg") == [Bucket(T0, [[2.0, 2.0], [4.0, 4.0]], 2, 0)]
    assert s.buckets(dev, "r", T0, T0 + 10 * S, 10 * S, "max") == [Bucket(T0, {"Low": 9.0}, 3, 2)]


def test_uint64_above_int64_is_exact_and_aggregates_as_integers(typed_store: Store, dev: str) -> None:
    s = typed_store
    s.apply_meta(
        GW, dev, meta(TagInfo("count", "ns=2;s=count", "UInt64"), TagInfo("i64", "ns=2;s=i", "Int64"))
    )
    _write(
        s,
        dev,
        1,
        Sample("count", T0, str(BIG)),
        Sample("count", T0 + S, str(BIG + 1)),
        Sample("count", T0 + 2 * S, str(TOP)),
        Sample("count", T0 + 3 * S, 7),  # wrapped around: small values travel as integers
        Sample("i64", T0, -(2**63)),
        Sample("i64", T0 + S, 2**63 - 1),
    )
    assert [p.value for p in s.series(dev, "count", T0, T0 + 10 * S, 10)] == [
        str(BIG),
        str(BIG + 1),
        str(TOP),
        7,
    ]
    assert [p.value for p in s.series(dev, "i64", T0, T0 + 10 * S, 10)] == [-(2**63), 2**63 - 1]
    every = 10 * S
    assert s.buckets(dev, "count", T0, T0 + every, every, "max")[0].value == str(TOP)
    assert s.buckets(dev, "count", T0, T0 + every, every, "min")[0].value == 7
    assert s.buckets(dev, "count", T0, T0 + 2 * S, every, "min")[0].value == str(BIG)
    # (BIG + BIG + 1) / 2 exactly, rounded once to the nearest float
    assert s.buckets(dev, "count", T0, T0 + 2 * S, every, "avg")[0].value == (2 * BIG + 1) / 2
    assert s.buckets(dev, "count", T0, T0 + every, every, "last")[0].value == 7
    assert {v.tag: v.value for v in s.latest(dev)} == {"count": 7, "i64": 2**63 - 1}


def test_meta_dims_enum_and_locale_are_listed_with_the_tags(typed_store: Store, dev: str) -> None:
    s = typed_store
    s.apply_meta(
        GW,
        dev,
        meta(
            TagInfo("vec", "ns=2;s=vec", "Double", dims=(3,)),
            TagInfo("grid", "ns=2;s=grid", "Int32", dims=(0, 2)),
            TagInfo("state", "ns=2;s=state", "MachineState", enum={0: "Idle", 1: "Running", 2: "Fault"}),
            TagInfo("msg", "ns=2;s=msg", "LocalizedText", locale="de-DE"),
            TagInfo("plain", "ns=2;s=plain", "Double"),
        ),
    )
    _write(s, dev, 1, Sample("state", T0, 1), Sample("msg", T0, "Fräse läuft"))
    tags = {t.tag: t for t in s.list_tags(dev)}
    assert (tags["vec"].dims, tags["grid"].dims, tags["plain"].dims) == ((3,), (0, 2), None)
    assert tags["state"].enum == {0: "Idle", 1: "Running", 2: "Fault"}
    assert tags["msg"].locale == "de-DE"
    assert (tags["plain"].enum, tags["plain"].locale) == (None, None)
    assert {v.tag: v.value for v in s.latest(dev)} == {"state": 1, "msg": "Fräse läuft"}
    # enumerations aggregate as their integers (the names are for display)
    assert s.buckets(dev, "state", T0, T0 + S, S, "last")[0].value == 1


def test_other_wire_shapes_are_kept_as_the_wire_has_them(typed_store: Store, dev: str) -> None:
    s = typed_store
    values = {
        "bytes": "AQL+/w==",
        "guid": "72962b91-fa75-4ae6-8d28-b404dc7daf63",
        "when": 1764000000400000,
        "node": "ns=2;s=Pump",
        "nul": "a\x00b" if type(s).__name__ == "SqliteStore" else "a\ufffdb",
    }
    _write(s, dev, 1, *(Sample(tag, T0, v) for tag, v in values.items()))
    _write(s, dev, 2, Sample("arr_nul", T0, ["a\x00b"]))
    latest = {v.tag: v.value for v in s.latest(dev)}
    assert {k: latest[k] for k in values} == values
    assert latest["arr_nul"] in (["a\x00b"], ["a\ufffdb"])


def test_the_value_type_columns_are_added_to_an_older_sqlite_file(tmp_path: Path) -> None:
    import sqlite3

    from plantwire_platform.store.sqlite import SqliteStore

    path = tmp_path / "old.sqlite"
    with SqliteStore.open(path) as st:
        st.apply_meta(GW, "old", meta(TagInfo("vec", "ns=2;s=vec", "Double")))
    conn = sqlite3.connect(path)
    for column in ("dims", "enum_names", "locale", "json_values"):
        conn.execute(f"ALTER TABLE series DROP COLUMN {column}")
    conn.commit()
    conn.close()
    with SqliteStore.open(path) as st:
        st.apply_meta(GW, "old", meta(TagInfo("vec", "ns=2;s=vec", "Double", dims=(3,))))
        _write(st, "old", 1, Sample("vec", T0, [1.0, 2.0, 3.0]))
        assert [t.dims for t in st.list_tags("old")] == [(3,)]
        assert st.buckets("old", "vec", T0, T0 + S, S, "avg")[0].value == [1.0, 2.0, 3.0]
