"""The pieces of the command path that need no network: wire format, checks, the at-most-once log."""

from __future__ import annotations

from pathlib import Path

import pytest

from plantwire import wire
from plantwire_gateway.command_log import CommandLog
from plantwire_platform.commands.checks import check_write, device_id_for
from plantwire_platform.commands.errors import CommandError, InvalidCommand, NotWritable
from plantwire_platform.store.model import TagRecord


def test_command_and_reply_round_trip_and_topics() -> None:
    cmd = wire.Command("c-1", "write", "cnc-1", {"tag": "A/B", "value": 1.5}, 10, 20, "alice")
    assert wire.decode_command(wire.encode_command(cmd)) == cmd
    reply = wire.CommandReply(
        "c-1", "write", "cnc-1", False, "opcua_status", 0x803C0000, "BadOutOfRange", "no"
    )
    assert wire.decode_reply(wire.encode_reply(reply)) == reply
    assert wire.parse_control_topic(wire.command_topic("gw1")) == ("gw1", "cmd")
    assert wire.parse_control_topic(wire.reply_topic("gw1")) == ("gw1", "reply")
    with pytest.raises(wire.WireError):
        wire.parse_control_topic("plantwire/v1/gw1/dev/cmd")


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        (b'{"id": "c", "op": "fly", "device": "d", "sent": 1, "expires": 2}', "'op'"),
        (
            b'{"id": "c", "op": "write", "device": "d", "sent": 1, "expires": 2, "args": {"tag": "x"}}',
            "value",
        ),
        (b'{"id": "a b", "op": "browse", "device": "d", "sent": 1, "expires": 2}', "command id"),
        (
            b'{"id": "c", "op": "call", "device": "d", "sent": 1, "expires": 2, '
            b'"args": {"method": "S", "args": 3}}',
            "list",
        ),
        (b'{"id": "c", "op": "attach", "device": "d", "sent": 1, "expires": 2, "args": {}}', "endpoint"),
    ],
)
def test_bad_commands_are_rejected_with_the_field_named(payload: bytes, words: str) -> None:
    with pytest.raises(wire.WireError, match=words):
        wire.decode_command(payload)


def _tag(
    data_type: str, writable: bool = True, low: float | None = None, high: float | None = None
) -> TagRecord:
    return TagRecord("d", "T", "ns=2;s=T", data_type, None, None, writable, low, high)


@pytest.mark.parametrize(
    ("tag", "value", "expected"),
    [
        (_tag("Double", low=0, high=10), 5, 5.0),
        (_tag("Float"), -1.5, -1.5),
        (_tag("UInt16"), 65535, 65535),
        (_tag("Int32"), 7.0, 7),
        (_tag("Boolean"), True, True),
        (_tag("String"), "abc", "abc"),
    ],
)
def test_values_that_fit_are_accepted(tag: TagRecord, value: object, expected: object) -> None:
    got = check_write(tag, value)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(
    ("tag", "value", "status", "code"),
    [
        (_tag("Double", writable=False), 1.0, 403, "tag_not_writable"),
        (_tag("Double", low=0, high=10), 10.5, 422, "out_of_range"),
        (_tag("Double"), float("nan"), 422, "invalid_value"),
        (_tag("Double"), True, 422, "invalid_value"),
        (_tag("UInt16"), -1, 422, "invalid_value"),
        (_tag("Int32"), 1.5, 422, "invalid_value"),
        (_tag("Boolean"), 1, 422, "invalid_value"),
        (_tag("String"), 5, 422, "invalid_value"),
        (_tag("DateTime"), 5, 422, "invalid_value"),
    ],
)
def test_values_that_do_not_fit_are_refused(tag: TagRecord, value: object, status: int, code: str) -> None:
    with pytest.raises(CommandError) as info:
        check_write(tag, value)
    assert (info.value.status, info.value.code) == (status, code)
    assert isinstance(info.value, NotWritable if status == 403 else InvalidCommand)
    assert "'T'" in info.value.message


def test_default_device_id_from_endpoint() -> None:
    assert device_id_for("opc.tcp://127.0.0.1:4850") == "opc-127-0-0-1-4850"
    wire.check_id("device", device_id_for("opc.tcp://" + "h" * 200 + ":1"))


def test_command_log_keeps_replies_and_unfinished_ids_across_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "commands.sqlite3"
    log = CommandLog.open(path)
    assert log.begin("done-1", 1) == (True, None)
    log.finish("done-1", b'{"reply": 1}')
    assert log.begin("running-1", 2) == (True, None)
    log.close()
    log = CommandLog.open(path)
    assert log.begin("done-1", 3) == (False, b'{"reply": 1}')
    assert log.begin("running-1", 4) == (False, None)
    assert log.begin("new-1", 5) == (True, None)
    log.close()
