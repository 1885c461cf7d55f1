"""Settings from a TOML file, the environment and flags; one-line errors; the command's help."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from plantwire.config import ConfigError
from plantwire_gateway import cli
from plantwire_gateway.settings import load_settings

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return path


GOOD = """
id = "line-1"
[mqtt]
host = "broker.local"
port = 1884
[[devices]]
id = "cnc-1"
endpoint = "opc.tcp://127.0.0.1:4840"
root = "ns=2;s=cnc-1"
[[devices]]
id = "press-7"
endpoint = "opc.tcp://127.0.0.1:4841"
include = ["Hydraulics/*"]
"""


def test_example_config_in_deploy_is_valid() -> None:
    settings = load_settings(REPO / "deploy" / "gateway.example.toml")
    assert [d.id for d in settings.devices] == ["cnc-1", "press-7"]
    assert settings.devices[0].root == "ns=2;s=cnc-1"


def test_file_then_environment_then_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, GOOD)
    settings = load_settings(path)
    assert (settings.id, settings.mqtt.host, settings.mqtt.port) == ("line-1", "broker.local", 1884)
    assert settings.devices[1].include == ["Hydraulics/*"]
    assert settings.devices[1].queue_size == 1000 and settings.devices[1].publishing_interval_ms == 500
    assert settings.outbox.max_bytes == 512 * 1024 * 1024

    monkeypatch.setenv("PLANTWIRE_MQTT__PORT", "1999")
    monkeypatch.setenv("PLANTWIRE_ID", "from-env")
    settings = load_settings(path)
    assert (settings.id, settings.mqtt.host, settings.mqtt.port) == ("from-env", "broker.local", 1999)

    settings = load_settings(
        path, {"id": "from-flag", "mqtt": {"host": "h2"}}, [{"id": "x", "endpoint": "opc.tcp://h:1"}]
    )
    assert (settings.id, settings.mqtt.host, settings.mqtt.port) == ("from-flag", "h2", 1999)
    assert [d.id for d in settings.devices] == ["cnc-1", "press-7", "x"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("id = \n", "not valid TOML"),
        ('id = "line-1"\n[mqtt]\nport = "many"\n', "mqtt.port"),
        ('id = "bad id!"\n', "id: "),
        (GOOD.replace('"opc.tcp://127.0.0.1:4841"', '"http://127.0.0.1:4841"'), "devices[1].endpoint"),
        (GOOD.replace('id = "press-7"', 'id = "cnc-1"'), "appears more than once"),
        (GOOD.replace("include = [", "inclde = ["), "devices[1].inclde"),
        (GOOD + "queue_size = 0\n", "devices[1].queue_size"),
    ],
)
def test_bad_files_give_one_line_errors(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert expected in message


def test_missing_file_and_bad_device_flag(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "nope.toml")
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    with pytest.raises(ConfigError, match="--device"):
        cli.run(parser.parse_args(["--device", "opc.tcp://no-id:4840"]))


def test_help_explains_the_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "plantwire", "gateway", "--help"], capture_output=True, text=True, timeout=60
    )
    if (
        result.returncode != 0
        and "ModuleNotFoundError" in result.stderr
        and "plantwire_gateway" not in result.stderr
    ):
        # Another part's subcommand is not written yet; check this module's parser directly.
        parser = argparse.ArgumentParser(prog="plantwire gateway", description=cli.DESCRIPTION)
        cli.add_arguments(parser)
        text = parser.format_help()
    else:
        assert result.returncode == 0, result.stderr
        text = result.stdout
    for flag in ("--config", "--id", "--mqtt-host", "--mqtt-port", "--data-dir", "--device"):
        assert flag in text
    assert "outbox" in text and "PLANTWIRE_" in text


def test_values_become_what_the_wire_accepts() -> None:
    """Every value the gateway sends must pass the platform's decoder, or the whole batch is lost."""
    from datetime import UTC, datetime

    from plantwire import wire
    from plantwire_gateway.device_session import to_wire_value

    huge_uint64 = 2**64 - 1
    values = [1.5, 7, True, None, "RUNNING", huge_uint64, -(2**63), datetime(2026, 1, 1, tzinfo=UTC), b"\x01"]
    converted = [to_wire_value(v) for v in values]
    assert converted[:5] == [1.5, 7, True, None, "RUNNING"]
    assert converted[5] == str(huge_uint64) and converted[6] == -(2**63)  # exact, as a decimal string
    assert converted[7] == 1_767_225_600_000_000
    assert converted[8] == "AQ=="  # ByteString as base64
    batch = wire.DataBatch(1, 1, [wire.Sample(f"t{i}", i, v) for i, v in enumerate(converted)])
    assert wire.decode_data(wire.encode_data(batch)).samples == batch.samples
