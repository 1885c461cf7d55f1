"""Nobody takes over the platform's client id: its connection stays up and its persistent session keeps
every message (the attack found against the demo: 20 kicks, 41 acknowledged data messages lost)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from brokertest_support import Plant, connect, settings_for

from plantwire import wire
from plantwire.broker import MosquittoProcess, free_port, mosquitto_config, mosquitto_path, wait_for_port
from plantwire.broker_auth import write_mosquitto_auth

PLATFORM_ID = "plantwire-platform"
MESSAGES = 41


def _attack(broker: MosquittoProcess, plant: Plant) -> None:
    """Connect with the platform's client id (and its broker username as id), clean session, repeatedly."""
    for identity in (plant.viewer, plant.gw1):
        for client_id in (PLATFORM_ID, plant.platform.username):
            for _ in range(3):
                conn, _ = connect(settings_for(broker, identity), client_id, clean_session=True)
                conn.close()


def test_viewer_or_gateway_credentials_cannot_take_over_the_platforms_session(
    secured: MosquittoProcess, plant: Plant
) -> None:
    data = wire.device_topic("gw1", "pump-1", "data")
    platform, _ = connect(settings_for(secured, plant.platform), PLATFORM_ID, clean_session=False)
    platform.subscribe(f"{wire.ROOT}/+/+/data")
    _attack(secured, plant)
    # Still the same connection, and it still receives.
    gw1, _ = connect(settings_for(secured, plant.gw1), "plantwire-gw-gw1")
    gw1.publish(data, b"live")
    assert platform.received(until=b"live") == [(data, b"live")]
    assert not platform.disconnected.is_set()
    # Offline, the broker queues for the persistent session; the attack must not delete it.
    platform.close()
    for i in range(MESSAGES):
        gw1.publish(data, b"%d" % i)
    gw1.close()
    _attack(secured, plant)
    platform, reason = connect(settings_for(secured, plant.platform), PLATFORM_ID, clean_session=False)
    try:
        assert not reason.is_failure and platform.session_present
        got = platform.received(until=b"%d" % (MESSAGES - 1))
        assert [p for _, p in got] == [b"%d" % i for i in range(MESSAGES)]
    finally:
        platform.close()


@pytest.fixture
def unbound(tmp_path: Path, plant: Plant) -> Iterator[MosquittoProcess]:
    """The same passwords and ACL without `use_username_as_clientid`: what an ACL alone gives."""
    binary = mosquitto_path()
    if binary is None:
        pytest.fail("mosquitto is not installed")
    auth = write_mosquitto_auth(tmp_path / "auth", plant.all)
    broker = MosquittoProcess(port=free_port(), data_dir=tmp_path / "mosquitto", auth=auth)
    broker.data_dir.mkdir(parents=True)
    conf = broker.data_dir / "mosquitto.conf"
    text = mosquitto_config(broker.port, broker.data_dir, auth=auth)
    conf.write_text(text.replace("use_username_as_clientid true\n", ""))
    broker.process = subprocess.Popen([binary, "-c", str(conf)], stderr=subprocess.DEVNULL)
    wait_for_port("127.0.0.1", broker.port)
    yield broker
    broker.stop()


def test_without_binding_the_viewer_kicks_the_platform_and_deletes_its_session(
    unbound: MosquittoProcess, plant: Plant
) -> None:
    """Why the binding is there: passwords and ACL lines (even `pattern` ones) do not restrict ids."""
    platform, _ = connect(settings_for(unbound, plant.platform), PLATFORM_ID, clean_session=False)
    platform.subscribe(f"{wire.ROOT}/+/+/data")
    attacker, _ = connect(settings_for(unbound, plant.viewer), PLATFORM_ID, clean_session=True)
    assert platform.disconnected.wait(5)
    platform.client.loop_stop()
    attacker.close()
    platform, reason = connect(settings_for(unbound, plant.platform), PLATFORM_ID, clean_session=False)
    platform.close()
    assert reason.is_failure is False
    assert platform.session_present is False  # the persistent session (and its queue) is gone
