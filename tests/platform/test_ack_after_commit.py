"""The shared ack-after-commit writer, against a real Mosquitto (persistent sessions, manual acks)
and a real SQLite file: what it acknowledges is committed, what it could not commit is delivered
again to the next session, and a writer stuck on a failing store is abandoned at shutdown."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from plantwire import wire
from plantwire.broker import MosquittoProcess
from plantwire.config import MqttSettings
from plantwire.mqtt_control import new_client
from plantwire_platform.ingest.ack_after_commit import AckAfterCommitWriter
from plantwire_platform.store.model import IncomingBatch, StoreError, WriteResult
from plantwire_platform.store.sqlite import SqliteStore

T0 = 1_700_000_000_000_000
Value = IncomingBatch | None
"""A data message's batch; None for a message that commits alone (a stand-in for meta/status)."""


class FailingStore(SqliteStore):
    """A real SQLite store whose batch writes fail (as an outage does) while `failing` is set."""

    failing = False

    def write_batches(self, batches: Sequence[IncomingBatch]) -> WriteResult:
        if self.failing:
            raise StoreError("the disk is gone")
        return super().write_batches(batches)


def _wait(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _publish(broker: MosquittoProcess, topic_values: list[tuple[str, bytes]]) -> None:
    pub = new_client(MqttSettings(port=broker.port), f"pub-{time.monotonic_ns()}", clean_session=True)
    pub.connect(broker.host, broker.port)
    pub.loop_start()
    try:
        for topic, payload in topic_values:
            pub.publish(topic, payload, qos=1).wait_for_publish(5)
    finally:
        pub.disconnect()
        pub.loop_stop()


def _data(device: str, seq: int, n: int = 5) -> tuple[str, bytes]:
    samples = [wire.Sample("t", T0 + seq * 1000 + i, float(i)) for i in range(n)]
    return wire.device_topic("gw", device, "data"), wire.encode_data(wire.DataBatch(seq, T0, samples))


class Consumer:
    """A persistent-session subscriber that offers each message to an AckAfterCommitWriter."""

    def __init__(
        self,
        broker: MosquittoProcess,
        client_id: str,
        store: SqliteStore,
        *,
        max_points: int = 10_000,
        shutdown_timeout_s: float = 5,
        alone_is_registration: bool = False,
    ) -> None:
        self.store = store
        self.groups: list[list[str]] = []
        """Per commit: each value's device ("alone" for the stand-in meta)."""
        self.received: list[str] = []
        self.subscribed = threading.Event()
        settings = MqttSettings(port=broker.port)
        self.client = new_client(settings, client_id, clean_session=False, manual_ack=True)
        self.writer: AckAfterCommitWriter[Value] = AckAfterCommitWriter(
            name="test-writer",
            client=self.client,
            queue_max=100,
            commit_interval_s=0.2,
            max_points=max_points,
            points=lambda v: None if v is None else len(v.batch.samples),
            commit=self._commit,
            registration_rows=(lambda v: 1 if v is None else None)
            if alone_is_registration
            else lambda v: None,
            max_registration_rows=3,
            shutdown_timeout_s=shutdown_timeout_s,
        )
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_message
        self.broker = broker

    def _commit(self, values: list[Value]) -> bool:
        batches = [v for v in values if v is not None]
        self.groups.append(["alone" if v is None else v.device for v in values])
        if not batches:
            return True
        return self.writer.retry("write_batches", lambda: self.store.write_batches(batches))

    def _on_connect(self, client: mqtt.Client, *_: object) -> None:
        self.writer.connected()
        client.subscribe("plantwire/v1/+/+/data", qos=1)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        self.received.append(msg.topic)
        topic = wire.parse_topic(msg.topic)
        value = None
        if topic.device is not None and not topic.device.startswith("alone"):
            value = IncomingBatch(topic.gateway, topic.device, wire.decode_data(bytes(msg.payload)))
        self.writer.offer(value, msg.mid, msg.qos)

    def start(self) -> None:
        self.writer.start()
        self.client.connect(self.broker.host, self.broker.port)
        self.client.loop_start()
        assert self.subscribed.wait(5)

    def stop(self) -> None:
        self.writer.stop()
        self.client.disconnect()
        self.client.loop_stop()


@contextmanager
def consuming(consumer: Consumer) -> Iterator[Consumer]:
    consumer.start()
    try:
        yield consumer
    finally:
        consumer.stop()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FailingStore]:
    s = FailingStore.open(tmp_path / "p.sqlite")
    assert isinstance(s, FailingStore)
    yield s
    s.close()


def test_values_commit_in_groups_in_order_and_acknowledged_ones_never_come_back(
    own_mosquitto: MosquittoProcess, store: FailingStore, unique_id: str
) -> None:
    client_id = f"w-{unique_id}"
    first = Consumer(own_mosquitto, client_id, store)
    with consuming(first):
        burst = [_data("dev", seq) for seq in range(1, 21)]
        alone = (wire.device_topic("gw", "alone", "data"), b"{}")
        _publish(own_mosquitto, [*burst[:10], alone, *burst[10:]])
        _wait(lambda: store.count_points() == 100 and len(first.received) == 21)
        _wait(lambda: sum(map(len, first.groups)) == 21)
    # grouped: fewer commits than messages; the barrier committed alone, after the 10 before it
    assert len(first.groups) < 21
    barrier = first.groups.index(["alone"])
    assert [d for g in first.groups[:barrier] for d in g] == ["dev"] * 10

    # Every message was acknowledged after its commit: the same session gets only what is new.
    second = Consumer(own_mosquitto, client_id, store)
    with consuming(second):
        _publish(own_mosquitto, [_data("dev", 21)])
        _wait(lambda: store.count_points() == 105)
    assert second.received == [wire.device_topic("gw", "dev", "data")]
    assert store.count_points() == 105


def test_registrations_group_apart_from_data_in_arrival_order_up_to_their_bound(
    own_mosquitto: MosquittoProcess, store: FailingStore, unique_id: str
) -> None:
    consumer = Consumer(own_mosquitto, f"w-{unique_id}", store, alone_is_registration=True)
    with consuming(consumer):
        alone = (wire.device_topic("gw", "alone", "data"), b"{}")
        _publish(own_mosquitto, [_data("a", 1), _data("a", 2), *[alone] * 7, _data("b", 1), alone])
        _wait(lambda: sum(map(len, consumer.groups)) == 11)
    groups = consumer.groups
    assert [d for g in groups for d in g] == ["a", "a", *["alone"] * 7, "b", "alone"]  # arrival order
    assert all(len(set(g)) == 1 for g in groups)  # a change of kind commits what came before
    registrations = [len(g) for g in groups if g[0] == "alone"]
    assert max(registrations) > 1 and all(n <= 3 for n in registrations)  # max_registration_rows


def test_a_store_outage_is_retried_and_acknowledged_once_it_committed(
    own_mosquitto: MosquittoProcess, store: FailingStore, unique_id: str
) -> None:
    store.failing = True
    consumer = Consumer(own_mosquitto, f"w-{unique_id}", store)
    with consuming(consumer):
        _publish(own_mosquitto, [_data("dev", seq) for seq in range(1, 4)])
        _wait(lambda: consumer.writer.store_errors >= 2 and consumer.writer.store_failing)
        assert store.count_points() == 0
        store.failing = False
        _wait(lambda: store.count_points() == 15)
        _wait(lambda: not consumer.writer.store_failing)
    again = Consumer(own_mosquitto, f"w-{unique_id}", store)
    with consuming(again):
        _publish(own_mosquitto, [_data("dev", 4)])
        _wait(lambda: store.count_points() == 20)
    assert len(again.received) == 1  # the three were acknowledged once committed


def test_a_writer_stuck_on_a_failing_store_is_abandoned_and_its_messages_are_delivered_again(
    own_mosquitto: MosquittoProcess, store: FailingStore, unique_id: str
) -> None:
    client_id = f"w-{unique_id}"
    store.failing = True
    stuck = Consumer(own_mosquitto, client_id, store, shutdown_timeout_s=0.3)
    stuck.start()
    _publish(own_mosquitto, [_data("dev", seq) for seq in range(1, 4)])
    _wait(lambda: len(stuck.received) == 3 and stuck.writer.store_errors >= 1)
    started = time.monotonic()
    stuck.stop()
    assert time.monotonic() - started < 3  # gave up after its timeout instead of retrying forever
    assert not stuck.writer.crashed
    assert store.count_points() == 0

    # Nothing was acknowledged: the broker delivers all three to the session's next connection.
    store.failing = False
    again = Consumer(own_mosquitto, client_id, store)
    with consuming(again):
        _wait(lambda: store.count_points() == 15)
        _publish(own_mosquitto, [_data("dev", 4)])
        _wait(lambda: store.count_points() == 20)
    assert len(again.received) == 4
    assert store.count_points() == 20
