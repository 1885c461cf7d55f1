"""`plantwire demo --sparkplug`: the gateway publishes Sparkplug B and the platform ingests it as host."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from plantwire.broker import free_port, mosquitto_path

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def test_demo_sparkplug_comes_up_with_every_device_through_sparkplug_and_stops(tmp_path: Path) -> None:
    if mosquitto_path() is None:
        pytest.fail("mosquitto is not installed")
    done = subprocess.run(
        [sys.executable, "-m", "plantwire", "demo", "--sparkplug", "--http-port", str(free_port()),
         "--mqtt-port", str(free_port()), "--sim-port", str(free_port()), "--broker", "mosquitto",
         "--rate", "5", "--data-dir", str(tmp_path / "demo"), "--duration", "3"],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    out = done.stdout
    # The demo prints the banner only once the platform lists all five devices online with data;
    # their endpoints say they came in through the Sparkplug host (group plantwire, edge node gw1).
    assert "gateway    gw1   (Sparkplug B: spBv1.0/plantwire/+/gw1/#, host plantwire)" in out
    for device in ("cnc-1", "cnc-2", "pump-1", "pump-2", "meter-1"):
        assert f"sparkplug://plantwire/gw1/{device}" in out, device
    assert "-t 'spBv1.0/#'" in out
    assert "Plantwire demo stopped." in out
    gateway_log = (tmp_path / "demo" / "logs" / "gateway.log").read_text()
    assert '"event": "sparkplug_session_started"' in gateway_log
