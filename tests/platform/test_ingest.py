"""MqttIngest against a real Mosquitto and a real SQLite file.

Tests whose assertions depend on global counters (decode errors, messages) use `own_mosquitto`,
so that retained messages left by other tests on the session broker cannot reach them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from plantwire import wire
from plantwire.broker import MosquittoProcess
from plantwire.config import ConfigError, MqttSettings
from plantwire.metrics_text import MetricsText
from plantwire_platform.ingest.mqtt_ingest import MessageRejected, MqttIngest, decode_message
from plantwire_platform.ingest.stats import LATENCY_BOUNDS_MS, LatencySummary
from plantwire_platform.settings import PlatformSettings, StoreSettings
from plantwire_platform.store.model import IncomingBatch, Point
from plantwire_platform.store.sqlite import SqliteStore

T0 = 1_700_000_000_000_000


class Publisher:
    """A gateway stand-in: publishes wire messages at QoS 1 and waits for the broker's PUBACK."""

    def __init__(self, broker: MosquittoProcess, client_id: str) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv311
        )
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    async def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        await asyncio.to_thread(info.wait_for_publish, 5)
        assert info.is_published(), f"broker did not acknowledge {topic}"

    async def data(self, gateway: str, device: str, seq: int, samples: list[wire.Sample]) -> None:
        batch = wire.DataBatch(seq=seq, sent=wire.now_us(), samples=samples)
        await self.publish(wire.device_topic(gateway, device, "data"), wire.encode_data(batch))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(mosquitto: MosquittoProcess, unique_id: str) -> Iterator[Publisher]:
    pub = Publisher(mosquitto, f"pub-{unique_id}")
    yield pub
    pub.close()


def settings_for(broker: MosquittoProcess, client_id: str, path: Path, **store: int) -> PlatformSettings:
    return PlatformSettings.load(
        mqtt=MqttSettings(host=broker.host, port=broker.port, reconnect_max_delay=0.5),
        client_id=client_id,
        store=StoreSettings(path=path, **{"commit_interval_ms": 20, **store}),
    )


@asynccontextmanager
async def running_ingest(
    settings: PlatformSettings, store: SqliteStore, on_committed: Callable[..., None] | None = None
) -> AsyncIterator[MqttIngest]:
    async with MqttIngest(settings, store, on_committed) as ingest:
        await ingest.wait_subscribed()
        yield ingest


async def until(condition: Callable[[], bool], poll: float = 0.02) -> None:
    """Poll a condition; the caller's asyncio.timeout bounds the wait."""
    while not condition():
        await asyncio.sleep(poll)


def samples(tag: str, start: int, n: int) -> list[wire.Sample]:
    return [wire.Sample(tag, T0 + start + i, float(start + i)) for i in range(n)]


async def test_data_meta_and_status_are_stored(
    tmp_path: Path, mosquitto: MosquittoProcess, publisher: Publisher, unique_id: str
) -> None:
    gw, dev = f"gw-{unique_id}", f"dev-{unique_id}"
    committed: list[IncomingBatch] = []
    with SqliteStore.open(tmp_path / "pw.sqlite") as store:
        settings = settings_for(mosquitto, f"p-{unique_id}", store.path)
        async with asyncio.timeout(20), running_ingest(settings, store, committed.extend) as ingest:
            meta = wire.DeviceMeta(
                endpoint="opc.tcp://127.0.0.1:4840",
                root="ns=2;s=M",
                tags=[wire.TagInfo("temp", "ns=2;s=T", "Double", "degC", "Oil", True, -10.0, 90.0)],
            )
            await publisher.publish(wire.device_topic(gw, dev, "meta"), wire.encode_meta(meta))
            await publisher.publish(
                wire.device_topic(gw, dev, "status"),
                wire.encode_device_status(wire.DeviceStatus("online", T0, "opc.tcp://127.0.0.1:4840")),
            )
            await publisher.publish(
                wire.gateway_status_topic(gw), wire.encode_gateway_status(wire.GatewayStatus("online", T0))
            )
            await publisher.data(gw, dev, 1, [wire.Sample("temp", T0, 20.5), wire.Sample("mode", T0, "auto")])
            await publisher.data(
                gw, dev, 2, [wire.Sample("temp", T0 + 10, 21), wire.Sample("alarm", T0, True)]
            )
            await until(lambda: len(store.series(dev, "temp", 0, 2**62, 10)) == 2)
            await until(lambda: (d := store.get_device(dev)) is not None and d.gateway_state == "online")
            # on_committed runs after the commit (and the acks): wait for it too.
            await until(lambda: sum(b.device == dev for b in committed) == 2)

            assert store.series(dev, "temp", 0, 2**62, 10) == [Point(T0, 20.5, 0), Point(T0 + 10, 21, 0)]
            assert store.series(dev, "mode", 0, 2**62, 10) == [Point(T0, "auto", 0)]
            assert store.series(dev, "alarm", 0, 2**62, 10) == [Point(T0, True, 0)]
            (temp,) = [t for t in store.list_tags(dev) if t.tag == "temp"]
            assert (temp.unit, temp.writable, temp.low, temp.high) == ("degC", True, -10.0, 90.0)
            device = store.get_device(dev)
            assert device is not None
            assert (device.gateway, device.state, device.last_seq, device.last_data) == (
                gw,
                "online",
                2,
                T0 + 10,
            )
            assert [(b.device, b.batch.seq) for b in committed if b.device == dev] == [(dev, 1), (dev, 2)]
            stats = ingest.stats()
            assert stats.connected and stats.commits >= 1
            assert stats.latency.count >= 4


async def test_redelivery_is_not_duplicated_and_gaps_are_counted(
    tmp_path: Path, mosquitto: MosquittoProcess, publisher: Publisher, unique_id: str
) -> None:
    gw, dev = f"gw-{unique_id}", f"dev-{unique_id}"
    with SqliteStore.open(tmp_path / "pw.sqlite") as store:
        settings = settings_for(mosquitto, f"p-{unique_id}", store.path)
        async with asyncio.timeout(20), running_ingest(settings, store) as ingest:
            await publisher.data(gw, dev, 1, samples("t", 0, 5))
            await publisher.data(gw, dev, 1, samples("t", 0, 5))  # the same message again
            await publisher.data(gw, dev, 2, samples("t", 5, 5))
            await publisher.data(gw, dev, 6, samples("t", 10, 5))  # 3, 4 and 5 never came
            await until(lambda: ingest.stats().points_stored >= 15)
            await until(lambda: (d := store.get_device(dev)) is not None and d.last_seq == 6)
            stats = ingest.stats()
            assert stats.duplicates == 5
            assert stats.seq_gaps == 3
            points = store.series(dev, "t", 0, 2**62, 100)
            assert [p.ts for p in points] == [T0 + i for i in range(15)]


async def test_bad_messages_are_counted_by_reason_and_ingest_goes_on(
    tmp_path: Path, own_mosquitto: MosquittoProcess, unique_id: str
) -> None:
    gw, dev = f"gw-{unique_id}", f"dev-{unique_id}"
    publisher = Publisher(own_mosquitto, f"pub-{unique_id}")
    store = SqliteStore.open(tmp_path / "pw.sqlite")
    settings = settings_for(own_mosquitto, f"p-{unique_id}", store.path)
    try:
        async with asyncio.timeout(30):
            async with running_ingest(settings, store) as ingest:
                await publisher.publish(wire.device_topic(gw, dev, "data"), b"{not json")
                await publisher.publish(wire.device_topic(gw, dev, "data"), b'{"seq": 0, "values": []}')
                await publisher.publish(wire.device_topic(gw, dev, "meta"), b'{"tags": 5}')
                await publisher.publish(f"{wire.ROOT}/{gw}/bad$device/data", b"{}")
                await publisher.data(gw, dev, 1, samples("t", 0, 3))
                await until(lambda: ingest.stats().points_stored == 3)
                assert ingest.stats().decode_errors == {"topic": 1, "json": 1, "oversized": 0, "schema": 2}
                assert ingest.stats().messages == 5
                assert len(store.series(dev, "t", 0, 2**62, 10)) == 3
            # The bad messages were acknowledged: the same session gets nothing back after a restart.
            async with running_ingest(settings, store) as ingest:
                await publisher.data(gw, dev, 2, samples("t", 3, 1))
                await until(lambda: ingest.stats().points_stored == 1)
                assert ingest.stats().messages == 1
                assert sum(ingest.stats().decode_errors.values()) == 0
    finally:
        publisher.close()
        store.close()


def test_decode_message_classifies_every_rejection() -> None:
    topic = wire.device_topic("gw", "dev", "data")
    cases: list[tuple[str, bytes, str]] = [
        ("plantwire/v1/gw/dev/bogus", b"{}", "topic"),
        ("other/v1/gw/dev/data", b"{}", "topic"),
        (topic, b"\xff\xfe", "json"),
        (topic, b"[1, 2]", "schema"),
        (topic, b" " * (wire.MAX_PAYLOAD_BYTES + 1), "oversized"),
        (wire.gateway_status_topic("gw"), b'{"state": "sleepy", "since": 1}', "schema"),
    ]
    for t, payload, reason in cases:
        with pytest.raises(MessageRejected) as err:
            decode_message(t, payload)
        assert err.value.reason == reason, (t, payload[:20])
    ok = decode_message(topic, wire.encode_data(wire.DataBatch(1, 2, [wire.Sample("x", 3, 4)])))
    assert ok.topic == wire.Topic("gw", "dev", "data") and isinstance(ok.body, wire.DataBatch)


async def test_messages_sent_while_away_arrive_after_restart(
    tmp_path: Path, own_mosquitto: MosquittoProcess, unique_id: str
) -> None:
    """Counts messages, so it has a broker of its own (no retained messages of other tests)."""
    gw, dev = f"gw-{unique_id}", f"dev-{unique_id}"
    publisher = Publisher(own_mosquitto, f"pub-{unique_id}")
    mosquitto = own_mosquitto
    with SqliteStore.open(tmp_path / "pw.sqlite") as store:
        # A long commit interval: the clean shutdown, not the timer, commits the first message.
        settings = settings_for(mosquitto, f"p-{unique_id}", store.path, commit_interval_ms=60_000)
        async with asyncio.timeout(30):
            async with running_ingest(settings, store) as ingest:
                await publisher.data(gw, dev, 1, samples("t", 0, 4))
                await until(lambda: ingest.stats().messages == 1)
                assert store.count_points() == 0
            assert store.count_points() == 4  # committed on the way out

            for seq in range(2, 5):  # the platform is away: the broker keeps these for its session
                await publisher.data(gw, dev, seq, samples("t", seq * 10, 10))

            settings = settings_for(mosquitto, f"p-{unique_id}", store.path)
            async with running_ingest(settings, store) as ingest:
                await until(lambda: store.count_points() == 34)
                stats = ingest.stats()
                # Only the three new ones: the first was acknowledged at shutdown, not redelivered.
                assert stats.messages == 3 and stats.duplicates == 0 and stats.seq_gaps == 0
            device = store.get_device(dev)
            assert device is not None and device.last_seq == 4
    publisher.close()


_CRASHING_PLATFORM = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from plantwire.config import MqttSettings
    from plantwire.logs import configure_logging
    from plantwire_platform.ingest.mqtt_ingest import MqttIngest
    from plantwire_platform.settings import PlatformSettings, StoreSettings
    from plantwire_platform.store.sqlite import SqliteStore

    async def main(host, port, client_id, path):
        settings = PlatformSettings.load(
            mqtt=MqttSettings(host=host, port=int(port)),
            client_id=client_id,
            store=StoreSettings(path=Path(path), commit_interval_ms=60_000),
        )
        async with MqttIngest(settings, SqliteStore.open(Path(path))) as ingest:
            await ingest.wait_subscribed()
            print("subscribed", flush=True)
            while ingest.stats().messages == 0:
                await asyncio.sleep(0.01)
            print("received", flush=True)
            await asyncio.sleep(600)  # waits for its commit timer; the test kills it first

    configure_logging("warning", "console")  # logs to stderr: stdout talks to the test
    asyncio.run(main(*sys.argv[1:]))
    """
)


async def test_a_crash_before_commit_loses_nothing(
    tmp_path: Path, own_mosquitto: MosquittoProcess, unique_id: str
) -> None:
    """Acknowledge only after commit: a platform killed with the message uncommitted gets it again."""
    gw, dev, client_id = f"gw-{unique_id}", f"dev-{unique_id}", f"p-{unique_id}"
    path = tmp_path / "pw.sqlite"
    publisher = Publisher(own_mosquitto, f"pub-{unique_id}")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _CRASHING_PLATFORM,
        own_mosquitto.host,
        str(own_mosquitto.port),
        client_id,
        str(path),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(30):
            assert proc.stdout is not None
            assert await proc.stdout.readline() == b"subscribed\n"
            await publisher.data(gw, dev, 1, samples("t", 0, 5))
            assert await proc.stdout.readline() == b"received\n"
            with SqliteStore.open(path) as store:
                assert store.count_points() == 0
            os.kill(proc.pid, signal.SIGKILL)
            await proc.wait()

            with SqliteStore.open(path) as store:
                settings = settings_for(own_mosquitto, client_id, path)
                async with running_ingest(settings, store) as ingest:
                    await until(lambda: store.count_points() == 5)
                    assert ingest.stats().messages == 1  # delivered again, stored once
                    assert store.series(dev, "t", 0, 2**62, 10) == [
                        Point(T0 + i, float(i), 0) for i in range(5)
                    ]
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        publisher.close()


async def test_latency_histogram_reports_and_resets(
    tmp_path: Path, mosquitto: MosquittoProcess, publisher: Publisher, unique_id: str
) -> None:
    gw, dev = f"gw-{unique_id}", f"dev-{unique_id}"
    with SqliteStore.open(tmp_path / "pw.sqlite") as store:
        settings = settings_for(mosquitto, f"p-{unique_id}", store.path)
        async with asyncio.timeout(20), running_ingest(settings, store) as ingest:
            ingest.reset_latency()
            sent = wire.now_us()
            old = wire.now_us() - 3_000_000  # a sample taken 3 s ago
            await publisher.data(gw, dev, 1, [wire.Sample("t", sent, 1.0), wire.Sample("u", old, 2.0)])
            await until(lambda: ingest.stats().latency.count == 2)
            waited_ms = (time.time_ns() // 1000 - sent) / 1000
            lat = ingest.stats().latency
            # A percentile is the upper bound of its bucket: p50 covers the fresh sample, p99 the old one.
            assert waited_ms < 900
            assert lat.p50_ms is not None
            assert 0 < lat.p50_ms <= min(b for b in LATENCY_BOUNDS_MS if b >= waited_ms)
            assert lat.p99_ms == min(b for b in LATENCY_BOUNDS_MS if b > 3000)
            # The same buckets as a Prometheus histogram, in seconds, with the sum of the latencies;
            # and the platform's own share: one message, received to committed well under a second.
            text = _histograms(ingest)
            assert 'point_source_to_commit_seconds_bucket{le="3.0"} 1\n' in text
            assert 'point_source_to_commit_seconds_bucket{le="4.0"} 2\n' in text
            latency_sum = float(text.split("point_source_to_commit_seconds_sum ")[1].split()[0])
            assert 3.0 < latency_sum < 3.0 + 2 * waited_ms / 1000 + 0.1
            assert "receive_to_commit_seconds_count 1\n" in text
            assert 'receive_to_commit_seconds_bucket{le="1.0"} 1\n' in text
            ingest.reset_latency()
            assert ingest.stats().latency == LatencySummary(0, None, None, None)
            assert "point_source_to_commit_seconds_count 0\n" in _histograms(ingest)


def _histograms(ingest: MqttIngest) -> str:
    out = MetricsText("")
    ingest.write_histograms(out)
    return out.render()


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANTWIRE_MQTT__HOST", "broker.local")
    monkeypatch.setenv("PLANTWIRE_STORE__COMMIT_INTERVAL_MS", "50")
    monkeypatch.setenv("PLANTWIRE_CLIENT_ID", "plant-a")
    s = PlatformSettings.load()
    assert (s.mqtt.host, s.store.commit_interval_ms, s.client_id) == ("broker.local", 50, "plant-a")
    assert (s.http.port, s.store.max_batch_points, s.store.queue_max_messages) == (8080, 50_000, 5000)
    monkeypatch.setenv("PLANTWIRE_MQTT__PORT", "70000")
    with pytest.raises(ConfigError, match=r"^environment: mqtt\.port: "):
        PlatformSettings.load()
