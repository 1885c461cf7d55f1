"""Ingest under abuse: a flood faster than the store commits, and storms of malformed messages.

The flood proves backpressure: with a tiny ingest queue and a store slowed on purpose, the queue
never grows past its bound (the broker holds the rest in the persistent session) and every point
arrives once. The storms prove that no payload on any topic stops ingest: a good message sent after
a storm is stored.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_ingest import T0, Publisher, running_ingest, settings_for, until

from plantwire import wire
from plantwire.broker import MosquittoProcess
from plantwire_platform.ingest.mqtt_ingest import MessageRejected, MqttIngest, decode_message
from plantwire_platform.store.model import IncomingBatch, WriteResult
from plantwire_platform.store.sqlite import SqliteStore


class SlowStore(SqliteStore):
    """A real SQLite store whose commits take at least `delay` seconds (a slow disk)."""

    delay = 0.02

    def write_batches(self, batches: Sequence[IncomingBatch]) -> WriteResult:
        time.sleep(self.delay)
        return super().write_batches(batches)


async def test_a_flood_keeps_the_queue_bounded_and_loses_nothing(
    tmp_path: Path, mosquitto: MosquittoProcess, unique_id: str
) -> None:
    gw, dev = f"gw-{unique_id}", f"dev-{unique_id}"
    messages, per_message = 1500, 20
    store = SlowStore.open(tmp_path / "slow.sqlite")
    try:
        cfg = settings_for(
            mosquitto, f"p-{unique_id}", store.path, queue_max_messages=4, max_batch_points=100
        )
        depths: list[int] = []
        publisher = Publisher(mosquitto, f"flood-{unique_id}")
        try:
            async with asyncio.timeout(120), running_ingest(cfg, store) as ingest:
                stop = threading.Event()

                def watch() -> None:
                    while not stop.is_set():
                        depths.append(ingest.stats().queue_depth)
                        time.sleep(0.002)

                watcher = threading.Thread(target=watch)
                watcher.start()
                try:
                    topic = wire.device_topic(gw, dev, "data")
                    infos = []
                    for seq in range(1, messages + 1):
                        samples = [
                            wire.Sample("flow", T0 + seq * per_message + i, float(i))
                            for i in range(per_message)
                        ]
                        payload = wire.encode_data(wire.DataBatch(seq, T0, samples))
                        infos.append(publisher.client.publish(topic, payload, qos=1))
                        if seq % 200 == 0:  # paho's own queue is not what is under test
                            await asyncio.to_thread(infos[-1].wait_for_publish, 30)
                    await until(lambda: ingest.stats().points_stored >= messages * per_message, 0.05)
                finally:
                    stop.set()
                    watcher.join()
                stats = ingest.stats()
        finally:
            publisher.close()
        assert store.count_points() == messages * per_message
        assert stats.seq_gaps == 0
        assert stats.commits > 10, "the store should have been the bottleneck"
        assert max(depths) <= 4
        assert max(depths) >= 3, "the queue never filled: the flood did not outrun the store"
    finally:
        store.close()


# --- fuzzing the ingest path end to end ----------------------------------------------------------

_GOOD_DATA = {"seq": 1, "sent": T0, "values": [{"tag": "t", "ts": T0, "v": 1.0, "q": 0}]}
_GOOD_META = {
    "endpoint": "opc.tcp://x:1",
    "root": "r",
    "sent": T0,
    "tags": [{"tag": "t", "node_id": "n", "data_type": "Double"}],
}
_GOOD_STATUS = {"state": "online", "since": T0, "endpoint": "opc.tcp://x:1", "error": None}

_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _mutated(base: dict[str, Any]) -> st.SearchStrategy[bytes]:
    """A valid payload with one field (top level or in the first list item) replaced or removed."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        obj = orjson.loads(orjson.dumps(base))
        target = obj
        list_keys = [k for k, v in obj.items() if isinstance(v, list) and v]
        if list_keys and draw(st.booleans()):
            target = obj[draw(st.sampled_from(list_keys))][0]
        key = draw(st.sampled_from(sorted(target)))
        if draw(st.booleans()):
            del target[key]
        else:
            target[key] = draw(_JSON)
        return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS) if _fits(obj) else b"{}"

    return build()


def _fits(obj: Any) -> bool:
    try:
        orjson.dumps(obj)
        return True
    except TypeError:  # integers beyond 64 bits: send them as raw text below instead
        return False


_PAYLOADS = st.one_of(
    st.binary(max_size=200),
    _JSON.map(lambda o: orjson.dumps(o) if _fits(o) else b"[1e999]"),
    _mutated(_GOOD_DATA),
    _mutated(_GOOD_META),
    _mutated(_GOOD_STATUS),
    st.just(b'{"seq": 1, "sent": 1, "values": [{"tag": "t", "ts": 123456789012345678901234567890}]}'),
    st.just(b" " * (wire.MAX_PAYLOAD_BYTES + 1)),
)
_KINDS = st.sampled_from(["data", "meta", "status"])
_IDS = st.one_of(
    st.sampled_from(["gw", "dev-1"]),
    st.text(min_size=1, max_size=12).filter(
        lambda s: "/" not in s and "+" not in s and "#" not in s and "\x00" not in s
    ),
)


@settings(max_examples=400, deadline=None)
@given(kind=_KINDS, payload=_PAYLOADS, gw=_IDS, dev=_IDS)
def test_decode_message_accepts_or_rejects_never_crashes(
    kind: str, payload: bytes, gw: str, dev: str
) -> None:
    for topic in (wire.device_topic(gw, dev, kind), wire.gateway_status_topic(gw)):  # type: ignore[arg-type]
        try:
            decode_message(topic, payload)
        except MessageRejected as err:
            assert err.reason in ("topic", "json", "oversized", "schema")


@pytest.fixture(scope="module")
def live_ingest(
    tmp_path_factory: pytest.TempPathFactory, mosquitto: MosquittoProcess
) -> Iterator[tuple[asyncio.AbstractEventLoop, MqttIngest, SqliteStore, Publisher]]:
    """One ingest for all examples, on a loop of its own, so a synchronous hypothesis test can drive it."""
    path = tmp_path_factory.mktemp("fuzz") / "fuzz.sqlite"
    store = SqliteStore.open(path)
    client_id = f"fz-{time.monotonic_ns() % 10**9}"
    loop = asyncio.new_event_loop()
    ingest = MqttIngest(settings_for(mosquitto, client_id, path), store)
    loop.run_until_complete(asyncio.wait_for(ingest.__aenter__(), 10))
    loop.run_until_complete(asyncio.wait_for(ingest.wait_subscribed(), 10))
    publisher = Publisher(mosquitto, f"{client_id}-pub")
    yield loop, ingest, store, publisher
    publisher.close()
    loop.run_until_complete(asyncio.wait_for(ingest.__aexit__(None, None, None), 30))
    loop.close()
    store.close()


_counter = iter(range(1, 10**9))


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(storm=st.lists(st.tuples(_KINDS, _PAYLOADS, st.booleans()), min_size=1, max_size=25))
def test_a_storm_of_bad_messages_never_stops_ingest(
    live_ingest: tuple[asyncio.AbstractEventLoop, MqttIngest, SqliteStore, Publisher],
    storm: list[tuple[str, bytes, bool]],
) -> None:
    loop, ingest, store, publisher = live_ingest
    n = next(_counter)
    gw, dev = "fuzz-gw", f"fuzz-dev-{n}"

    async def run() -> None:
        async with asyncio.timeout(30):
            for kind, payload, gateway_topic in storm:
                topic = wire.gateway_status_topic(gw) if gateway_topic else wire.device_topic(gw, dev, kind)  # type: ignore[arg-type]
                await publisher.publish(topic, payload)
            good = wire.DataBatch(10**6, T0, [wire.Sample("canary", T0 + n, float(n))])
            await publisher.publish(wire.device_topic(gw, dev, "data"), wire.encode_data(good))
            await until(lambda: any(p.ts == T0 + n for p in store.series(dev, "canary", 0, 2**62, 10)), 0.02)

    loop.run_until_complete(run())
    assert ingest.stats().connected
