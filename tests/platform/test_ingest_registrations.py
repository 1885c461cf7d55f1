"""A fresh platform against a broker holding the retained meta and status of many devices (what a
restart of the platform meets): they share commits, each one still passes the ownership check,
every one is acknowledged, and data that follows finds its device registered.

Real Mosquitto (this module's own: it counts messages) and a real SQLite file.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from test_ingest import Publisher, running_ingest, samples, settings_for, until

from plantwire import wire
from plantwire.broker import MosquittoProcess
from plantwire_platform.store.device_query import DeviceQuery
from plantwire_platform.store.model import Registration, StoreError
from plantwire_platform.store.sqlite import SqliteStore

GATEWAYS = 10
DEVICES = 1000
"""Each with a retained meta and a retained status: 2,000 messages, and the gateways' statuses."""


@pytest.fixture
def mosquitto(module_mosquitto: MosquittoProcess) -> MosquittoProcess:
    return module_mosquitto  # not the session's: its retained messages would be counted here


def _retained(uid: str) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    for g in range(GATEWAYS):
        gw = f"gw{g}-{uid}"
        out.append(
            (wire.gateway_status_topic(gw), wire.encode_gateway_status(wire.GatewayStatus("online", 1)))
        )
        for d in range(g, DEVICES, GATEWAYS):
            dev, endpoint = f"dev{d}-{uid}", f"opc.tcp://10.0.0.{g}:{4840 + d}"
            tags = [
                wire.TagInfo("temp", "ns=2;s=T", "Double", "degC"),
                wire.TagInfo("on", "ns=2;s=O", "Boolean"),
            ]
            meta = wire.DeviceMeta(endpoint, "ns=2;s=M", tags)
            status = wire.DeviceStatus("online", 2, endpoint)
            out.append((wire.device_topic(gw, dev, "meta"), wire.encode_meta(meta)))
            out.append((wire.device_topic(gw, dev, "status"), wire.encode_device_status(status)))
    return out


async def _publish_retained(publisher: Publisher, messages: list[tuple[str, bytes]]) -> None:
    infos = [publisher.client.publish(t, p, qos=1, retain=True) for t, p in messages]
    for info in infos:
        await asyncio.to_thread(info.wait_for_publish, 10)
        assert info.is_published()


def _session_leftovers(broker: MosquittoProcess, client_id: str, marker: str) -> list[str]:
    """Take over the platform's persistent session without subscribing to its topics: the broker
    hands over what it still holds for it (unacknowledged or queued), then a marker we publish."""
    received: list[str] = []
    done, subscribed = threading.Event(), threading.Event()

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == marker:
            done.set()
        else:
            received.append(msg.topic)

    probe = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=False,
        protocol=MQTTProtocolVersion.MQTTv311,
    )
    probe.on_message = on_message
    probe.on_subscribe = lambda *args: subscribed.set()
    probe.connect(broker.host, broker.port)
    probe.loop_start()
    try:
        probe.subscribe(marker, qos=1)
        assert subscribed.wait(10)
        probe.publish(marker, b"end", qos=1)
        assert done.wait(10), "the marker never came back"
    finally:
        probe.disconnect()
        probe.loop_stop()
    return received


async def test_retained_registrations_share_commits_are_checked_acked_and_data_follows(
    tmp_path: Path, mosquitto: MosquittoProcess, unique_id: str
) -> None:
    uid = unique_id
    publisher = Publisher(mosquitto, f"pub-{uid}")
    messages = _retained(uid)
    # Ownership per message: `dev0` belongs to gw0 already, so a forger's retained meta is refused;
    # `x` is claimed by whichever of its two gateways' messages comes first, the other is refused.
    x, endpoint = f"x-{uid}", "opc.tcp://x:1"
    messages += [
        (
            wire.device_topic(f"forger-{uid}", f"dev0-{uid}", "meta"),
            wire.encode_meta(wire.DeviceMeta("f", "f", [])),
        ),
        (
            wire.device_topic(f"gw1-{uid}", x, "meta"),
            wire.encode_meta(wire.DeviceMeta(endpoint, "ns=2;s=X", [])),
        ),
        (
            wire.device_topic(f"forger-{uid}", x, "status"),
            wire.encode_device_status(wire.DeviceStatus("offline", 3, "forged")),
        ),
    ]
    registered = len(messages) - 2
    try:
        async with asyncio.timeout(60):
            await _publish_retained(publisher, messages)
            with SqliteStore.open(tmp_path / "pw.sqlite") as store:
                assert store.claim_device(f"gw0-{uid}", f"dev0-{uid}") == f"gw0-{uid}"
                settings = settings_for(mosquitto, f"p-{uid}", store.path)
                async with running_ingest(settings, store) as ingest:
                    await until(lambda: ingest.stats().registrations == registered, poll=0.1)
                    stats = ingest.stats()
                    assert stats.messages == len(messages)
                    assert (
                        sum(stats.ownership_rejected.values()) == 2 and stats.ownership_rejected["meta"] >= 1
                    )
                    # Far fewer commits than messages (one each before they were grouped).
                    assert 1 <= stats.registration_commits <= registered // 20, stats.registration_commits
                    # Data after them finds its device registered.
                    dev = f"dev7-{uid}"
                    await publisher.data(f"gw7-{uid}", dev, 1, samples("temp", 0, 3))
                    await until(lambda: len(store.series(dev, "temp", 0, 2**62, 10)) == 3)
                    assert store.page_devices(DeviceQuery(name=f"-{uid}", limit=0)).total == DEVICES + 1
                device = store.get_device(dev)
                assert device is not None
                assert (device.gateway, device.state, device.gateway_state, device.tag_count) == (
                    f"gw7-{uid}",
                    "online",
                    "online",
                    2,
                )
                first = store.get_device(f"dev0-{uid}")
                assert first is not None and (first.gateway, first.endpoint) == (
                    f"gw0-{uid}",
                    "opc.tcp://10.0.0.0:4840",
                )
                claimed = store.get_device(x)
                assert claimed is not None and store.device_owner(x) == claimed.gateway
                # Only the owner's message of `x` was applied.
                assert (claimed.endpoint, claimed.state) in ((endpoint, "unknown"), ("forged", "offline"))
            # Every message was acknowledged: the session holds nothing for a next platform.
            leftovers = await asyncio.to_thread(_session_leftovers, mosquitto, f"p-{uid}", f"marker/{uid}")
            assert leftovers == []
    finally:
        publisher.close()


class FailingStore(SqliteStore):
    """A real SQLite store whose registration batches fail (as an outage does) while `failing` is set."""

    failing = False

    def apply_registrations(self, registrations: Sequence[Registration]) -> None:
        if self.failing:
            raise StoreError("the disk is gone")
        super().apply_registrations(registrations)


async def test_a_failing_registration_commit_is_retried_whole_and_acknowledged_after(
    tmp_path: Path, own_mosquitto: MosquittoProcess, unique_id: str
) -> None:
    uid, n, mosquitto = unique_id, 40, own_mosquitto  # a broker without the retained ones above
    publisher = Publisher(mosquitto, f"pub-{uid}")
    store = FailingStore.open(tmp_path / "pw.sqlite")
    assert isinstance(store, FailingStore)
    status = wire.encode_device_status(wire.DeviceStatus("online", 1, "opc.tcp://h:1"))
    try:
        async with asyncio.timeout(60):
            store.failing = True
            settings = settings_for(mosquitto, f"p-{uid}", store.path)
            async with running_ingest(settings, store) as ingest:
                for d in range(n):
                    await publisher.publish(wire.device_topic(f"gw-{uid}", f"d{d}-{uid}", "status"), status)
                await until(lambda: ingest.stats().store_errors >= 2 and ingest.stats().messages == n)
                assert store.page_devices(DeviceQuery(name=f"-{uid}", limit=0)).total == 0
                store.failing = False
                await until(lambda: ingest.stats().registrations == n)
                assert store.page_devices(DeviceQuery(name=f"-{uid}", limit=0)).total == n
                assert ingest.stats().registration_commits < n
            leftovers = await asyncio.to_thread(_session_leftovers, mosquitto, f"p-{uid}", f"marker/{uid}")
            assert leftovers == []
    finally:
        publisher.close()
        store.close()
