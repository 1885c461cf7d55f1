"""Plantwire's generated password file and ACL in a real Mosquitto: who may connect, publish, subscribe."""

from __future__ import annotations

import queue
import ssl
import subprocess
from pathlib import Path

import pytest
from brokertest_support import REFUSED_WAIT_S, Plant, connect, settings_for, start_broker

from plantwire import wire
from plantwire.broker import BrokerTls, MosquittoProcess
from plantwire.broker_auth import (
    Identity,
    Role,
    mosquitto_acl_file,
    mosquitto_password_file,
)
from plantwire.pki import Pki


def test_anonymous_and_wrong_password_are_refused(secured: MosquittoProcess, plant: Plant) -> None:
    for settings in (settings_for(secured, None), settings_for(secured, plant.viewer, password="guess")):
        conn, reason = connect(settings, "intruder", expect_ok=False)
        conn.close()
        assert reason.is_failure and "authori" in str(reason).lower(), reason
    conn, reason = connect(settings_for(secured, plant.viewer), "viewer-ok")
    conn.close()


def test_a_gateway_cannot_publish_another_gateways_topics_or_commands(
    secured: MosquittoProcess, plant: Plant
) -> None:
    platform, _ = connect(settings_for(secured, plant.platform), "plantwire-platform")
    gw2_cmd, _ = connect(settings_for(secured, plant.gw2), wire_command_id("gw2"))
    try:
        platform.subscribe(f"{wire.ROOT}/#")  # the ACL narrows what it receives to its own filters
        gw2_cmd.subscribe(wire.command_topic("gw2"))
        forged = [
            wire.device_topic("gw2", "pump-1", "data"),
            wire.gateway_status_topic("gw2"),
            wire.reply_topic("gw2"),
            wire.command_topic("gw2"),
            wire.command_topic("gw1"),
        ]
        for topic in forged:
            attacker, _ = connect(settings_for(secured, plant.gw1), "plantwire-gw-gw1")
            assert attacker.publish_refused(topic, b"forged"), topic
            attacker.close()
        # Its own topics work (connections of one username replace each other: a fresh one now).
        gw1, _ = connect(settings_for(secured, plant.gw1), "plantwire-gw-gw1")
        own = wire.device_topic("gw1", "pump-1", "data")
        gw1.publish(own, b"mine")
        assert platform.received(until=b"mine") == [(own, b"mine")]
        gw1.close()
        # The platform may command gw2; gw2 sees that and nothing gw1 sent.
        platform.publish(wire.command_topic("gw2"), b"real-command")
        assert gw2_cmd.received(until=b"real-command") == [(wire.command_topic("gw2"), b"real-command")]
    finally:
        for conn in (platform, gw2_cmd):
            conn.close()


def test_the_viewer_reads_everything_and_its_publishes_go_nowhere(
    secured: MosquittoProcess, plant: Plant
) -> None:
    platform, _ = connect(settings_for(secured, plant.platform), "plantwire-platform")
    gw1_cmd, _ = connect(settings_for(secured, plant.gw1), wire_command_id("gw1"))
    gw1, _ = connect(settings_for(secured, plant.gw1), "plantwire-gw-gw1")
    data = wire.device_topic("gw1", "pump-1", "data")
    try:
        platform.subscribe(f"{wire.ROOT}/#")
        gw1_cmd.subscribe(wire.command_topic("gw1"))
        for topic in (wire.command_topic("gw1"), data, wire.gateway_status_topic("gw1")):
            person, _ = connect(settings_for(secured, plant.viewer), "any-id-a-person-picks")
            assert person.publish_refused(topic, b"from-viewer"), topic
            person.close()
        viewer, _ = connect(settings_for(secured, plant.viewer), "any-id-a-person-picks")
        viewer.subscribe("plantwire/#")
        gw1.publish(data, b"data")
        platform.publish(wire.command_topic("gw1"), b"command")
        assert gw1_cmd.received(until=b"command") == [(wire.command_topic("gw1"), b"command")]
        assert platform.received(until=b"data") == [(data, b"data")]
        seen = viewer.received(until=b"command")
        assert (data, b"data") in seen
        assert all(payload != b"from-viewer" for _, payload in seen)
        viewer.close()
    finally:
        for conn in (platform, gw1_cmd, gw1):
            conn.close()


def wire_command_id(gateway: str) -> str:
    from plantwire.broker_auth import gateway_command_client_id

    return gateway_command_client_id(gateway)


def test_files_match_what_mosquitto_passwd_and_the_acl_grammar_expect(tmp_path: Path, plant: Plant) -> None:
    text = mosquitto_password_file(plant.all)
    names = [line.split(":", 1)[0] for line in text.splitlines()]
    assert names == [
        *("platform", "platform-cmd", "platform-spb"),
        *("gw1", "gw1-cmd", "gw1-spb"),  # -spb: the Sparkplug edge node connection
        *("gw2", "gw2-cmd", "gw2-spb"),
        "viewer",
    ]
    assert all(line.split(":", 1)[1].startswith("$7$") for line in text.splitlines())
    # mosquitto_passwd rewrites the file it reads: it must parse ours (it keeps our hashes as they are).
    path = tmp_path / "passwd"
    path.write_text(text)
    subprocess.run(["mosquitto_passwd", "-b", str(path), "extra", "x"], check=True, capture_output=True)
    assert path.read_text().startswith(text)
    acl = mosquitto_acl_file(plant.all)
    assert "topic write" not in acl.split("user viewer", 1)[1]
    with pytest.raises(ValueError, match="unique"):
        mosquitto_password_file([plant.gw1, Identity("gw1", "x", Role.VIEWER)])
    with pytest.raises(ValueError, match="gateway id"):
        Identity("gw3", "x", Role.GATEWAY)


# --- TLS ------------------------------------------------------------------------------------------------


def test_tls_works_with_the_ca_and_fails_without_it(tmp_path: Path, plant: Plant, pki: Pki) -> None:
    tls = BrokerTls(pki.ca_file, pki.server_cert, pki.server_key, require_certificate=True)
    broker = start_broker(tmp_path, plant, tls=tls)
    client_tls = (pki.client_cert("platform"), pki.client_key("platform"))
    try:
        ok = settings_for(broker, plant.platform, ca=pki.ca_file, cert=client_tls)
        conn, _ = connect(ok, "plantwire-platform")
        assert isinstance(conn.client.socket(), ssl.SSLSocket)
        conn.close()
        # Plain MQTT to the TLS listener: no CONNACK ever comes.
        plain = settings_for(broker, plant.platform)
        with pytest.raises(queue.Empty):
            connect(plain, "plain", wait_s=REFUSED_WAIT_S)
        # TLS without our CA: the system trust store does not know the broker's certificate.
        other_ca = init_other_ca(tmp_path)
        bad = settings_for(broker, plant.platform, ca=other_ca, cert=client_tls)
        with pytest.raises(ssl.SSLCertVerificationError):
            connect(bad, "wrong-ca")
        # A client without a certificate is refused when the broker requires one.
        no_cert = settings_for(broker, plant.platform, ca=pki.ca_file)
        with pytest.raises((ssl.SSLError, ConnectionError, queue.Empty)):
            connect(no_cert, "no-cert", wait_s=REFUSED_WAIT_S)
    finally:
        broker.stop()


def init_other_ca(tmp_path: Path) -> Path:
    from plantwire.pki import init_pki

    return init_pki(tmp_path / "other-pki", ["elsewhere"]).ca_file
