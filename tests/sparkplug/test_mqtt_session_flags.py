"""What the MQTT clients themselves must do (docs/sparkplug.md, "Spec assertions"): the CONNECT's
clean-session flag, subscribing before the first publish, a death message before a clean
DISCONNECT. Read from a real Mosquitto's packet log (`log_type debug`: every CONNECT with its
flags, SUBSCRIBE, PUBLISH and DISCONNECT per client, in order), beside a raw subscriber."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from plant_harness import platform_settings_for
from sparkplug_link import Link
from spb_gateway import Machine, Recorder, running, settings, wait_for

from plantwire.broker import MosquittoProcess, free_port
from plantwire.broker_auth import PLATFORM_SPARKPLUG_CLIENT_PREFIX, gateway_sparkplug_client_id
from plantwire.sparkplug.edge import BDSEQ
from plantwire.sparkplug.topics import Outgoing
from plantwire_platform.service import platform_running

pytestmark = pytest.mark.integration


@pytest.fixture
def packet_broker(tmp_path: Path) -> Iterator[MosquittoProcess]:
    broker = MosquittoProcess(port=free_port(), data_dir=tmp_path / "mosquitto", log_types=("debug",))
    broker.start()
    yield broker
    broker.stop()


def packets(broker: MosquittoProcess, client_id: str) -> list[str]:
    """The broker's log lines about `client_id`, in order, without their timestamps."""
    pattern = re.compile(rf"(?: as | from | to |Client ){re.escape(client_id)}(?:[ ,.]|$)")
    lines = [line.split(": ", 1)[1] for line in broker.log_path.read_text().splitlines() if ": " in line]
    return [line for line in lines if pattern.search(line)]


def first(lines: list[str], prefix: str) -> int:
    return next(i for i, line in enumerate(lines) if line.startswith(prefix))


async def test_tck_id_message_flow_phid_sparkplug_clean_session_311_subscription_and_death_before_disconnect(
    packet_broker: MosquittoProcess, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:8]
    settings_ = platform_settings_for(packet_broker, tmp_path, f"pw-{suffix}")
    host = settings_.sparkplug_host.model_copy(update={"enabled": True, "host_id": suffix})
    settings_ = settings_.model_copy(update={"sparkplug_host": host})
    state_topic = f"spBv1.0/STATE/{suffix}"
    states: list[dict[str, object]] = []

    def on_state(topic: str, payload: bytes) -> list[Outgoing]:
        states.append(orjson.loads(payload))
        return []

    watcher = Link(packet_broker.port, f"watch-{suffix}", on_state)
    watcher.start([state_topic])
    try:
        async with asyncio.timeout(60), platform_running(settings_) as platform:
            assert platform.sparkplug is not None
            await asyncio.to_thread(platform.sparkplug.subscribed.wait, 20)
            await wait_for(lambda: states, what="STATE birth")
        await wait_for(lambda: len(states) == 2, what="STATE death")
    finally:
        watcher.stop()
    log = packets(packet_broker, f"{PLATFORM_SPARKPLUG_CLIENT_PREFIX}pw-{suffix}")
    # tck-id-message-flow-phid-sparkplug-clean-session-311: MQTT 3.1.1 (p2), Clean Session (c1)
    assert re.search(r"^New client connected from \S+ as \S+ \(p2, c1, ", log[first(log, "New client")])
    # tck-id-message-flow-phid-sparkplug-subscription, -state-publish: SUBSCRIBE, its SUBACK,
    # then the STATE birth is the client's first PUBLISH
    subscribe, suback = first(log, "Received SUBSCRIBE"), first(log, "Sending SUBACK")
    publishes = [i for i, line in enumerate(log) if line.startswith("Received PUBLISH")]
    assert subscribe < suback < publishes[0]
    assert f"'{state_topic}'" in log[publishes[0]] and "q1, r1" in log[publishes[0]]
    # tck-id-host-topic-phid-death-payload-disconnect-clean: STATE offline, then DISCONNECT, last
    assert f"'{state_topic}'" in log[publishes[-1]]
    assert log[-2].startswith("Received DISCONNECT") and publishes[-1] < len(log) - 2
    assert [s["online"] for s in states] == [True, False]


async def test_tck_id_principles_persistence_clean_session_311_and_edge_node_intentional_disconnect_ndeath(
    packet_broker: MosquittoProcess, machine: Machine, tmp_path: Path
) -> None:
    group = "g" + uuid.uuid4().hex[:8]
    rec = Recorder(packet_broker.port, group)
    s = settings(
        "gw1", packet_broker.port, tmp_path, machine, northbound="sparkplug", sparkplug={"group_id": group}
    )
    try:
        async with asyncio.timeout(60):
            async with running(s):
                await wait_for(lambda: rec.of("DBIRTH"), what="DBIRTH")
            await wait_for(lambda: rec.of("NDEATH"), what="NDEATH on a graceful stop")
            await asyncio.sleep(0.3)  # a Will after the DISCONNECT would be a second NDEATH by now
    finally:
        rec.stop()
    log = packets(packet_broker, gateway_sparkplug_client_id("gw1"))
    # tck-id-principles-persistence-clean-session-311: MQTT 3.1.1 (p2), Clean Session (c1)
    assert re.search(r"^New client connected from \S+ as \S+ \(p2, c1, ", log[first(log, "New client")])
    publishes = [line for line in log if line.startswith("Received PUBLISH")]
    assert f"'spBv1.0/{group}/NBIRTH/gw1'" in publishes[0]
    assert first(log, "Received SUBSCRIBE") < first(log, "Received PUBLISH")
    # tck-id-operational-behavior-edge-node-intentional-disconnect-ndeath: NDEATH, then DISCONNECT
    assert f"'spBv1.0/{group}/NDEATH/gw1'" in publishes[-1]
    assert log[-2].startswith("Received DISCONNECT")
    assert log.index(publishes[-1]) < len(log) - 2
    ndeaths = rec.of("NDEATH")
    assert len(ndeaths) == 1  # the broker sent no Will: the session ended cleanly
    (nbirth,) = rec.of("NBIRTH")
    bd = {m.name: m.value for m in nbirth.payload.metrics}[BDSEQ]
    assert [m.value for m in ndeaths[0].payload.metrics if m.name == BDSEQ] == [bd]
