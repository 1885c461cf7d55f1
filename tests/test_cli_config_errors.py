"""A bad configuration stops a service at start-up with exit code 2 and one line naming the field."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def run_plantwire(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PLANTWIRE_")} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "plantwire", *args], capture_output=True, text=True, timeout=60, env=environ
    )


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ('id = "gw"\n[[devices]]\nid = "cnc-1"\nendpoint = "http://10.0.0.5:4840"\n', "devices[0].endpoint"),
        ('id = "gw"\n[mqtt]\nport = "many"\n', "mqtt.port"),
        ('id = "gw"\n[mqtt]\nprot = 1883\n', "mqtt.prot"),
        ('id = "gw/1"\n', "id"),
    ],
)
def test_gateway_with_a_bad_config_file_stops_with_one_line(tmp_path: Path, config: str, field: str) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(config)
    result = run_plantwire("gateway", "--config", str(path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("plantwire gateway: configuration error:")
    assert str(path) in lines[0] and field in lines[0]


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"PLANTWIRE_HTTP__PORT": "99999"}, "http.port"),
        ({"PLANTWIRE_STORE__BACKEND": "oracle"}, "store.backend"),
    ],
)
def test_platform_with_a_bad_setting_stops_with_one_line(env: dict[str, str], field: str) -> None:
    result = run_plantwire("platform", env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("plantwire platform: configuration error: environment: " + field)
