"""Unknown PLANTWIRE_* variables stop the platform like unknown keys do: exit 2, one line naming it."""

from __future__ import annotations

import os
import subprocess
import sys
import typing

import pytest
from pydantic import BaseModel

from plantwire.config import ConfigError
from plantwire.settings_env import GATEWAY_SECTIONS, PLATFORM_SECTIONS, check_env_names, unknown_env_names
from plantwire_gateway.settings import GatewaySettings
from plantwire_platform.settings import PlatformSettings


def run_platform(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PLANTWIRE_")} | env
    return subprocess.run(
        [sys.executable, "-m", "plantwire", "platform"],
        capture_output=True,
        text=True,
        timeout=60,
        env=environ,
    )


@pytest.mark.parametrize(
    "name",
    [
        "PLANTWIRE_STORE__BACKENT",
        "PLANTWIRE_STOR__BACKEND",
        "PLANTWIRE_STORE__INFLUXDB__TOKN",
    ],
)
def test_an_unknown_variable_stops_start_up_with_one_line(name: str) -> None:
    result = run_platform({name: "influxdb" if name.endswith("BACKENT") else "x"})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"plantwire platform: configuration error: environment: {name}:")


def test_a_section_given_a_plain_value_stops_with_one_line() -> None:
    result = run_platform({"PLANTWIRE_HTTP": "x"})
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("plantwire platform: configuration error: environment: ") and '"http"' in line


def test_known_nested_and_shared_names_pass() -> None:
    environ = {
        "PLANTWIRE_STORE__BACKEND": "sqlite",
        "plantwire_store__influxdb__url": "http://127.0.0.1:8086",  # names are case-insensitive
        "PLANTWIRE_MQTT__PORT": "1883",
        "PLANTWIRE_APPS__CONFIG__OEE__IDEAL_RATE": "2",  # below `config` every key is the app's own
        "PLANTWIRE_CLIENT_ID": "p",
        "PLANTWIRE_OUTBOX__MAX_BYTES": "1",  # the gateway's, when one shell runs both
        "PLANTWIRE_LOG_LEVEL": "debug",
        "PLANTWIRE_TEST_INFLUXDB_URL": "x",
        "HOME": "/root",
    }
    assert unknown_env_names(PlatformSettings, environ, ("outbox",)) == []
    with pytest.raises(
        ConfigError, match=r"PLANTWIRE_MQTT__PORTS: not a setting of this service \(and 1 more\)"
    ):
        check_env_names(PlatformSettings, environ={"PLANTWIRE_MQTT__PORTS": "1", "PLANTWIRE_X": "2"})


def test_every_nested_model_forbids_unknown_keys() -> None:
    seen: list[type[BaseModel]] = []

    def walk(model: type[BaseModel]) -> None:
        seen.append(model)
        for info in model.model_fields.values():
            for arg in (info.annotation, *typing.get_args(info.annotation)):
                if isinstance(arg, type) and issubclass(arg, BaseModel) and arg not in seen:
                    walk(arg)

    walk(PlatformSettings)
    assert len(seen) >= 6  # platform, mqtt, http, store, influxdb, apps
    assert [m.__name__ for m in seen if m.model_config.get("extra") != "forbid"] == []


def test_the_sections_each_service_leaves_to_the_other_match_the_models() -> None:
    assert set(GATEWAY_SECTIONS) == set(GatewaySettings.model_fields) - {"mqtt"}
    assert set(PLATFORM_SECTIONS) == set(PlatformSettings.model_fields) - {"mqtt"}


@pytest.mark.parametrize("name", ["PLANTWIRE_OUTBOX__MAX_BYTEZ", "PLANTWIRE_HEALTH__PROT", "PLANTWIRE_IDD"])
def test_the_gateway_stops_on_an_unknown_variable_too(name: str) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PLANTWIRE_")} | {name: "1"}
    result = subprocess.run(
        [sys.executable, "-m", "plantwire", "gateway", "--id", "gw"],
        capture_output=True,
        text=True,
        timeout=60,
        env=environ,
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"plantwire gateway: configuration error: environment: {name}:")


def test_the_platform_leaves_the_gateway_s_names_alone_and_the_gateway_the_platform_s() -> None:
    assert unknown_env_names(PlatformSettings, {"PLANTWIRE_OUTBOX__MAX_BYTES": "1"}, GATEWAY_SECTIONS) == []
    assert unknown_env_names(GatewaySettings, {"PLANTWIRE_STORE__BACKEND": "x"}, PLATFORM_SECTIONS) == []
