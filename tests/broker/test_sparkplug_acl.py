"""The generated ACL for Sparkplug B in a real Mosquitto: a gateway is only its own edge node."""

from __future__ import annotations

from brokertest_support import Plant, connect, settings_for

from plantwire.broker import MosquittoProcess
from plantwire.broker_auth import gateway_sparkplug_client_id


def test_a_gateway_publishes_only_as_its_own_edge_node_and_receives_its_commands(
    secured: MosquittoProcess, plant: Plant
) -> None:
    platform, _ = connect(settings_for(secured, plant.platform), "plantwire-platform")
    try:
        platform.subscribe("spBv1.0/#")  # the host application reads every group
        forged = [
            "spBv1.0/line/NBIRTH/gw2",
            "spBv1.0/line/DDATA/gw2/press",
            "spBv1.0/line/NCMD/gw1",  # a gateway never commands, not even itself
            "spBv1.0/line/DCMD/gw1/press",
            "spBv1.0/STATE/scada",  # nor claims to be the host
        ]
        for topic in forged:
            attacker, _ = connect(settings_for(secured, plant.gw1), gateway_sparkplug_client_id("gw1"))
            assert attacker.publish_refused(topic, b"forged"), topic
            attacker.close()
        gw1, _ = connect(settings_for(secured, plant.gw1), gateway_sparkplug_client_id("gw1"))
        try:
            gw1.subscribe("spBv1.0/line/DCMD/gw1/+")
            gw1.subscribe("spBv1.0/line/NCMD/gw1")
            gw1.subscribe("spBv1.0/STATE/scada")
            for topic in ("spBv1.0/line/NBIRTH/gw1", "spBv1.0/line/DDATA/gw1/press"):
                gw1.publish(topic, topic.encode())
                assert platform.received(until=topic.encode())[-1] == (topic, topic.encode())
            platform.publish("spBv1.0/line/DCMD/gw1/press", b"write")
            platform.publish("spBv1.0/line/NCMD/gw1", b"rebirth")
            platform.publish("spBv1.0/STATE/scada", b"state")
            got = gw1.received(until=b"state")
            assert [p for _, p in got] == [b"write", b"rebirth", b"state"]
        finally:
            gw1.close()
        # Another gateway cannot listen to gw1's commands.
        gw2, _ = connect(settings_for(secured, plant.gw2), gateway_sparkplug_client_id("gw2"))
        try:
            gw2.subscribe("spBv1.0/line/DCMD/gw1/+")  # SUBACK'd, but the ACL delivers nothing
            gw2.subscribe("spBv1.0/line/DCMD/gw2/+")
            platform.publish("spBv1.0/line/DCMD/gw1/press", b"not-for-gw2")
            platform.publish("spBv1.0/line/DCMD/gw2/press", b"for-gw2")
            assert gw2.received(until=b"for-gw2") == [("spBv1.0/line/DCMD/gw2/press", b"for-gw2")]
        finally:
            gw2.close()
    finally:
        platform.close()


def test_a_viewer_reads_sparkplug_but_can_neither_command_nor_pose_as_an_edge_node_or_host(
    secured: MosquittoProcess, plant: Plant
) -> None:
    platform, _ = connect(settings_for(secured, plant.platform), "plantwire-platform")
    try:
        platform.subscribe("spBv1.0/#")
        for topic in (
            "spBv1.0/line/DCMD/gw1/press",
            "spBv1.0/line/NCMD/gw1",
            "spBv1.0/STATE/plantwire",
            "spBv1.0/line/NBIRTH/gw1",
            "spBv1.0/line/DDATA/gw1/press",
            "spBv1.0/line/NDEATH/gw1",
        ):
            person, _ = connect(settings_for(secured, plant.viewer), "any-id-a-person-picks")
            assert person.publish_refused(topic, b"from-viewer"), topic
            person.close()
        viewer, _ = connect(settings_for(secured, plant.viewer), "any-id-a-person-picks")
        gw1, _ = connect(settings_for(secured, plant.gw1), gateway_sparkplug_client_id("gw1"))
        try:
            viewer.subscribe("spBv1.0/#")
            gw1.publish("spBv1.0/line/DDATA/gw1/press", b"data")
            assert viewer.received(until=b"data") == [("spBv1.0/line/DDATA/gw1/press", b"data")]
            assert all(payload != b"from-viewer" for _, payload in platform.received(until=b"data"))
        finally:
            gw1.close()
            viewer.close()
    finally:
        platform.close()
