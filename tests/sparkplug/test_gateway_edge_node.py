"""The running gateway as a Sparkplug B edge node: a real OPC UA machine, a real Mosquitto, every
message decoded from the broker. Tests are named after the tck-id assertions they check."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from sparkplug_link import Link, Peer
from spb_gateway import Machine, Recorder, aliases, running, settings, wait_for

from plantwire.broker import MosquittoProcess
from plantwire.sparkplug.edge import REBIRTH
from plantwire.sparkplug.payload import DataType, Metric, Payload, encode_payload
from plantwire.sparkplug.tag_types import READ_ONLY_KEY
from plantwire.sparkplug.topics import encode_state, state_topic
from plantwire_gateway.health_http import render_metrics

pytestmark = pytest.mark.integration


@pytest.fixture
def group() -> str:
    return "g" + uuid.uuid4().hex[:8]


def metrics_by_name(seen: object) -> dict[str, Metric]:
    return {m.name: m for m in seen.payload.metrics if m.name is not None}  # type: ignore[attr-defined]


def command(port: int, topic: str, metrics: list[Metric]) -> None:
    link = Link(port, "cmd-" + uuid.uuid4().hex[:8], lambda t, p: [])
    link.start(["plantwire-test/idle"])
    try:
        link.client.publish(topic, encode_payload(Payload(1, None, metrics)), qos=1).wait_for_publish(10)
    finally:
        link.stop()


async def test_tck_id_topics_nbirth_dbirth_ddata_ndeath_from_the_running_gateway(
    machine: Machine, mosquitto: MosquittoProcess, tmp_path: Path, group: str
) -> None:
    rec = Recorder(mosquitto.port, group)
    s = settings(
        "gw1", mosquitto.port, tmp_path, machine, northbound="sparkplug", sparkplug={"group_id": group}
    )
    try:
        async with asyncio.timeout(60):
            async with running(s):
                dbirth = (await wait_for(lambda: rec.of("DBIRTH"), what="DBIRTH"))[0]
                await machine.write("Speed", 1234.5)
                await machine.write("Count", 7)
                names = aliases(dbirth)
                await wait_for(lambda: (1234.5, False) in rec.values("Speed", names), what="Speed DDATA")
                await wait_for(lambda: (7, False) in rec.values("Count", names), what="Count DDATA")
            await wait_for(lambda: rec.of("NDEATH"), what="NDEATH on a graceful stop")
    finally:
        rec.stop()

    kinds = rec.kinds()
    assert kinds[:2] == ["NBIRTH", "DBIRTH"] and kinds[-1] == "NDEATH"
    nbirth = rec.of("NBIRTH")[0]
    assert nbirth.topic.edge_node_id == "gw1" and dbirth.topic.device_id == "press"
    # tck-id-topics-nbirth-seq-num, -bdseq-included, -rebirth-metric
    nb = metrics_by_name(nbirth)
    assert nbirth.payload.seq == 0
    assert (nb["bdSeq"].datatype, nb[REBIRTH].datatype, nb[REBIRTH].value) == (
        DataType.Int64,
        DataType.Boolean,
        False,
    )
    # tck-id-payloads-ndeath-bdseq: the NDEATH carries the NBIRTH's bdSeq
    assert metrics_by_name(rec.of("NDEATH")[0])["bdSeq"].value == nb["bdSeq"].value
    # tck-id-payloads-sequence-num-incrementing: seq gap-free over every message but NDEATH
    seqs = [m.payload.seq for m in rec.messages if m.topic.message_type != "NDEATH"]
    assert seqs == [i % 256 for i in range(len(seqs))]
    # tck-id-topics-dbirth-metrics: every tag with name, alias, datatype and properties
    db = metrics_by_name(dbirth)
    assert set(db) == {"Speed", "Count", "Running", "Setpoint"}
    assert {n: m.datatype for n, m in db.items()} == {
        "Speed": DataType.Double,
        "Count": DataType.UInt32,
        "Running": DataType.Boolean,
        "Setpoint": DataType.Double,
    }
    assert len({m.alias for m in db.values()}) == 4
    assert db["Speed"].properties["engUnit"].value == "rpm"
    assert (db["Speed"].properties["engLow"].value, db["Speed"].properties["engHigh"].value) == (0.0, 3000.0)
    # a tag that is not writable says so (readOnly), a writable one carries no such property
    assert db["Speed"].properties[READ_ONLY_KEY].value is True
    assert READ_ONLY_KEY not in db["Setpoint"].properties
    # tck-id-payloads-alias-data-cmd-requirement: DDATA metrics by alias only, no names
    for msg in rec.of("DDATA"):
        assert all(m.name is None and m.alias in names for m in msg.payload.metrics)


async def test_tck_id_operational_behavior_edge_node_rebirth_ncmd_and_dcmd_write(
    machine: Machine, mosquitto: MosquittoProcess, tmp_path: Path, group: str
) -> None:
    rec = Recorder(mosquitto.port, group)
    s = settings("gw2", mosquitto.port, tmp_path, machine, northbound="both", sparkplug={"group_id": group})
    try:
        async with asyncio.timeout(60), running(s) as gateway:
            dbirth = (await wait_for(lambda: rec.of("DBIRTH"), what="DBIRTH"))[0]
            bd_seq = metrics_by_name(rec.of("NBIRTH")[0])["bdSeq"].value
            # Node Control/Rebirth: births again on the same connection (same bdSeq), NBIRTH seq 0
            command(mosquitto.port, f"spBv1.0/{group}/NCMD/gw2", [Metric(REBIRTH, DataType.Boolean, True)])
            await wait_for(lambda: len(rec.of("NBIRTH")) == 2 and len(rec.of("DBIRTH")) == 2, what="rebirth")
            again = rec.of("NBIRTH")[1]
            assert again.payload.seq == 0 and metrics_by_name(again)["bdSeq"].value == bd_seq
            assert rec.of("DBIRTH")[1].payload.seq == 1
            assert not rec.of("NDEATH")

            # DCMD: a write through the gateway's command path reaches the machine
            alias = metrics_by_name(dbirth)["Setpoint"].alias
            dcmd = f"spBv1.0/{group}/DCMD/gw2/press"
            command(mosquitto.port, dcmd, [Metric(None, DataType.Double, 42.5, alias=alias)])
            await wait_for(
                lambda: gateway.commands is not None and gateway.commands.executed == 1, what="write"
            )
            await wait_for(lambda: (42.5, False) in rec.values("Setpoint", aliases(dbirth)), what="new value")
            assert await machine.read("Setpoint") == 42.5
            # ...with the same checks: a read-only tag is refused and stays as it was
            assert gateway.sparkplug is not None
            speed = metrics_by_name(dbirth)["Speed"].alias
            command(mosquitto.port, dcmd, [Metric(None, DataType.Double, 9.0, alias=speed)])
            await wait_for(lambda: gateway.commands.executed == 2, what="refused write")  # type: ignore[union-attr]
            await wait_for(lambda: gateway.stats()["sparkplug_rejected"] == 1, what="refusal counted")
            assert await machine.read("Speed") == 0.0
            # a DCMD with an alias the DBIRTH never gave: rejected without reaching the device
            command(mosquitto.port, dcmd, [Metric(None, DataType.Double, 1.0, alias=999)])
            await wait_for(lambda: gateway.stats()["sparkplug_rejected"] == 2, what="unknown alias refused")
            assert gateway.commands.executed == 2  # type: ignore[union-attr]
            metrics = render_metrics(gateway.stats())
            assert "plantwire_gateway_sparkplug_commands_rejected_total 2" in metrics
            assert f"plantwire_gateway_sparkplug_bd_seq {bd_seq}" in metrics
            assert "plantwire_gateway_sparkplug_born 1" in metrics
    finally:
        rec.stop()


async def test_tck_id_topics_ddeath_when_the_device_is_lost_and_dbirth_when_back(
    machine: Machine, mosquitto: MosquittoProcess, tmp_path: Path, group: str
) -> None:
    rec = Recorder(mosquitto.port, group)
    s = settings(
        "gw3", mosquitto.port, tmp_path, machine, northbound="sparkplug", sparkplug={"group_id": group}
    )

    def born_again() -> bool:
        kinds = rec.kinds()
        deaths = [i for i, k in enumerate(kinds) if k == "DDEATH"]
        return bool(deaths) and "DBIRTH" in kinds[deaths[-1] :]

    try:
        async with asyncio.timeout(90), running(s) as gateway:
            await wait_for(lambda: rec.of("DBIRTH"), what="DBIRTH")
            await machine.stop()
            await wait_for(lambda: rec.of("DDEATH"), within=40, what="DDEATH")
            await machine.start()
            await wait_for(
                lambda: gateway.stats()["devices"].get("press") == "online", within=40, what="back"
            )
            await wait_for(born_again, what="a DBIRTH after the last DDEATH")
            await machine.write("Count", 77)
            await wait_for(
                lambda: (77, False) in rec.values("Count", aliases(rec.of("DBIRTH")[-1])), what="data"
            )
    finally:
        rec.stop()
    death = rec.of("DDEATH")[0]
    assert death.topic.device_id == "press" and death.payload.metrics == []
    kinds = rec.kinds()
    # tck-id-operational-behavior-device-ddeath: no DDATA between a DDEATH and the next DBIRTH (values
    # sampled before the loss but sent after it travel inside a DBIRTH ... DDEATH pair)
    for i, kind in enumerate(kinds):
        if kind == "DDEATH":
            following = [k for k in kinds[i + 1 :] if k in ("DDATA", "DBIRTH")]
            assert not following or following[0] == "DBIRTH", kinds
    seqs = [m.payload.seq for m in rec.messages if m.topic.message_type != "NDEATH"]
    assert seqs == [i % 256 for i in range(len(seqs))]


async def test_tck_id_host_state_births_wait_for_the_primary_host_and_stop_when_it_goes(
    machine: Machine, mosquitto: MosquittoProcess, tmp_path: Path, group: str
) -> None:
    host = "scada-" + group
    rec = Recorder(mosquitto.port, group)
    sp = {"group_id": group, "primary_host_id": host}
    s = settings("gw4", mosquitto.port, tmp_path, machine, northbound="sparkplug", sparkplug=sp)
    scada = Link(mosquitto.port, "host-" + group, lambda t, p: [])
    scada.start(["plantwire-test/idle"])
    try:
        async with asyncio.timeout(60), running(s) as gateway:
            await wait_for(lambda: gateway.stats().get("sparkplug_connected"), what="edge node connected")
            await wait_for(lambda: gateway.registry and gateway.registry.sessions[0].tags, what="device up")
            assert rec.kinds() == []  # tck-id-components-ph-state: no birth before the host is online
            online = encode_state(True, 1_000)
            scada.client.publish(state_topic(host), online, qos=1, retain=True).wait_for_publish(10)
            await wait_for(lambda: rec.of("DBIRTH"), what="births once the host is online")
            offline = encode_state(False, 2_000)
            scada.client.publish(state_topic(host), offline, qos=1, retain=True).wait_for_publish(10)
            await wait_for(lambda: rec.of("NDEATH"), what="NDEATH when the host went offline")
            assert rec.kinds()[:2] == ["NBIRTH", "DBIRTH"]
    finally:
        scada.client.publish(state_topic(host), b"", qos=1, retain=True).wait_for_publish(10)
        scada.stop()
        rec.stop()


async def test_tck_id_payloads_historical_store_and_forward_after_a_broker_outage(
    machine: Machine, own_mosquitto: MosquittoProcess, tmp_path: Path, group: str
) -> None:
    broker, host = own_mosquitto, "host-" + group
    sp = {"group_id": group, "primary_host_id": host}
    s = settings("gw5", broker.port, tmp_path, machine, northbound="sparkplug", sparkplug=sp)

    async def host_online(timestamp: int) -> Recorder:
        """A recorder first, then the host's STATE: the edge node births (and pumps) only after it."""
        rec = Recorder(broker.port, group)
        await wait_for(lambda: gateway.stats()["sparkplug_connected"], what="edge node subscribed")
        rec.link.client.publish(state_topic(host), encode_state(True, timestamp), qos=1).wait_for_publish(10)
        return rec

    async with asyncio.timeout(90), running(s) as gateway:
        rec = await host_online(1_000)
        try:
            dbirth = (await wait_for(lambda: rec.of("DBIRTH"), what="DBIRTH"))[0]
            await machine.write("Count", 1)
            await wait_for(lambda: (1, False) in rec.values("Count", aliases(dbirth)), what="live value")
        finally:
            rec.stop()
        broker.stop()
        await wait_for(lambda: not gateway.stats()["sparkplug_connected"], what="outage noticed")
        for i in range(2, 6):
            await machine.write("Count", i)
            await wait_for(lambda: gateway.stats()["values_in"] >= i, what="value sampled")  # noqa: B023
        await wait_for(lambda: gateway.stats()["sparkplug_outbox_rows"] > 0, what="values held")
        broker.start()
        rec = await host_online(3_000)
        try:
            dbirth = (await wait_for(lambda: rec.of("DBIRTH"), what="DBIRTH after reconnect"))[0]
            await wait_for(
                lambda: gateway.stats()["sparkplug_outbox_rows"] == 0, within=30, what="backlog sent"
            )
            await machine.write("Count", 9)
            await wait_for(lambda: (9, False) in rec.values("Count", aliases(dbirth)), what="live again")
            counts = rec.values("Count", aliases(dbirth))
            bd_seq_after = gateway.stats()["sparkplug_bd_seq"]
        finally:
            rec.stop()
    # every value sampled during the outage arrives once, flagged historical; new ones are live
    assert [(v, h) for v, h in counts if v in (2, 3, 4, 5)] == [(i, True) for i in range(2, 6)]
    # tck-id-payloads-nbirth-bdseq-increment: a new session number (one per CONNECT tried since)
    assert metrics_by_name(rec.of("NBIRTH")[0])["bdSeq"].value == bd_seq_after > 0


async def test_tck_id_payloads_historical_rows_stored_before_a_gateway_restart_go_out_after_it(
    machine: Machine, own_mosquitto: MosquittoProcess, tmp_path: Path, group: str
) -> None:
    """The outbox's rows are DDATA metrics encoded with the aliases of the gateway that stored them:
    the next gateway process reads those aliases from the outbox and publishes the rows (as
    historical) under the same metric names, even before the device's description is back."""
    broker = own_mosquitto
    s = settings("gw7", broker.port, tmp_path, machine, northbound="sparkplug", sparkplug={"group_id": group})
    async with asyncio.timeout(120):
        rec = Recorder(broker.port, group)
        try:
            async with running(s) as gateway:
                dbirth = (await wait_for(lambda: rec.of("DBIRTH"), what="DBIRTH"))[0]
                await machine.write("Count", 1)
                await wait_for(lambda: (1, False) in rec.values("Count", aliases(dbirth)), what="live value")
                broker.stop()
                await wait_for(lambda: not gateway.stats()["sparkplug_connected"], what="outage noticed")
                for i in range(2, 6):
                    await machine.write("Count", i)
                    await wait_for(lambda: gateway.stats()["values_in"] >= i, what="value sampled")  # noqa: B023
                await wait_for(lambda: gateway.stats()["sparkplug_outbox_rows"] > 0, what="values held")
        finally:
            rec.stop()
        broker.start()
        rec = Recorder(broker.port, group)
        try:
            async with running(s) as gateway:
                await wait_for(
                    lambda: gateway.stats()["sparkplug_outbox_rows"] == 0, within=30, what="backlog sent"
                )
                births = await wait_for(lambda: rec.of("DBIRTH"), what="DBIRTH after the restart")
                counts = [v for birth in births for v in rec.values("Count", aliases(birth))]
                rejected = gateway.stats()["sparkplug_rejected"]
        finally:
            rec.stop()
    assert {v: h for v, h in counts if v in (2, 3, 4, 5)} == dict.fromkeys(range(2, 6), True)
    assert rejected == 0


async def test_tck_id_topics_dbirth_metrics_the_running_gateway_decoded_by_pysparkplug(
    machine: Machine, mosquitto: MosquittoProcess, tmp_path: Path, group: str, start_peer: Callable[..., Peer]
) -> None:
    """Interop: pysparkplug's Client (code nobody here wrote) as the host reading the real gateway."""
    listener = start_peer("listen.py", "127.0.0.1", str(mosquitto.port), group)
    listener.next("ready")
    s = settings(
        "gw6", mosquitto.port, tmp_path, machine, northbound="sparkplug", sparkplug={"group_id": group}
    )
    async with asyncio.timeout(60):
        async with running(s):
            nbirth = await asyncio.to_thread(listener.next, "message")
            dbirth = await asyncio.to_thread(listener.next, "message")
            await machine.write("Speed", 777.25)
            await machine.write("Running", True)
            ddata = []
            wanted = {("Speed", 777.25), ("Running", True)}
            while not wanted <= {(m["name"], m["value"]) for d in ddata for m in d["metrics"]}:
                ddata.append(await asyncio.to_thread(listener.next, "message"))
        ndeath = await asyncio.to_thread(listener.next, "message")

    assert (nbirth["type"], dbirth["type"], ndeath["type"]) == ("NBIRTH", "DBIRTH", "NDEATH")
    assert nbirth["topic"] == f"spBv1.0/{group}/NBIRTH/gw6" and nbirth["seq"] == 0
    nb = {m["name"]: m for m in nbirth["metrics"]}
    assert (nb["bdSeq"]["datatype"], nb[REBIRTH]["datatype"], nb[REBIRTH]["value"]) == (
        "INT64",
        "BOOLEAN",
        False,
    )
    assert [(m["name"], m["value"]) for m in ndeath["metrics"]] == [("bdSeq", nb["bdSeq"]["value"])]
    assert dbirth["topic"] == f"spBv1.0/{group}/DBIRTH/gw6/press" and dbirth["seq"] == 1
    db = {m["name"]: m for m in dbirth["metrics"]}
    assert {n: m["datatype"] for n, m in db.items()} == {
        "Speed": "DOUBLE",
        "Count": "UINT32",
        "Running": "BOOLEAN",
        "Setpoint": "DOUBLE",
    }
    assert all(isinstance(m["alias"], int) for m in db.values())
    assert db["Speed"]["properties"] == {
        "engUnit": {"type": DataType.String, "value": "rpm"},
        "engLow": {"type": DataType.Double, "value": 0.0},
        "engHigh": {"type": DataType.Double, "value": 3000.0},
        READ_ONLY_KEY: {"type": DataType.Boolean, "value": True},
    }
    # DDATA: pysparkplug resolves our aliases through the DBIRTH; seq continues from the births
    values = {m["name"]: m for d in ddata for m in d["metrics"]}  # the last of each
    assert (values["Speed"]["value"], values["Running"]["value"]) == (777.25, True)
    assert values["Speed"]["alias"] == db["Speed"]["alias"]
    assert not values["Speed"]["is_historical"]
    assert [d["seq"] for d in ddata] == list(range(2, 2 + len(ddata)))
    assert all(d["type"] == "DDATA" and d["qos"] == 1 for d in ddata)
