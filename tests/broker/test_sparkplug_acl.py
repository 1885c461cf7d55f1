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
