"""What the platform checks before a command leaves: writable tag, value of the right type and range.

Everything here answers from the store's copy of the device's meta, so a bad request is refused
with a typed `CommandError` that names the problem, and never reaches the machine.
"""

from __future__ import annotations

import math
import re
from typing import Any, Final

from plantwire import wire
from plantwire_platform.commands.errors import BadCommand, InvalidCommand, NotWritable
from plantwire_platform.store.model import TagRecord

INT_RANGES: Final[dict[str, tuple[int, int]]] = {
    "SByte": (-(2**7), 2**7 - 1),
    "Byte": (0, 2**8 - 1),
    "Int16": (-(2**15), 2**15 - 1),
    "UInt16": (0, 2**16 - 1),
    "Int32": (-(2**31), 2**31 - 1),
    "UInt32": (0, 2**32 - 1),
    "Int64": (-(2**63), 2**63 - 1),
    "UInt64": (0, 2**64 - 1),
}
FLOAT_TYPES: Final = ("Float", "Double")


def _invalid(message: str) -> InvalidCommand:
    return InvalidCommand(message, "invalid_value")


def check_write(tag: TagRecord, value: Any) -> wire.Value:
    """The value to send; NotWritable, or InvalidCommand for a wrong type or a value out of range."""
    where = f"tag {tag.tag!r} of {tag.device!r}"
    if not tag.writable:
        raise NotWritable(f"{where} is read-only (meta says writable: false)")
    dtype = tag.data_type or "Unknown"
    if dtype == "Boolean":
        if not isinstance(value, bool):
            raise _invalid(f"{where} is a Boolean: send true or false, not {value!r}")
        return value
    if dtype == "String":
        if not isinstance(value, str):
            raise _invalid(f"{where} is a String: send a JSON string, not {value!r}")
        if len(value) > wire.MAX_STRING_VALUE:
            raise _invalid(f"{where}: the string is longer than {wire.MAX_STRING_VALUE} characters")
        return value
    if dtype in FLOAT_TYPES:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise _invalid(f"{where} is a {dtype}: send a finite number, not {value!r}")
        number: float | int = float(value)
    elif dtype in INT_RANGES:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if type(value) is not int:
            raise _invalid(f"{where} is an {dtype}: send a whole number, not {value!r}")
        low, high = INT_RANGES[dtype]
        if not low <= value <= high:
            raise _invalid(f"{where} is an {dtype}: {value} is outside {low}..{high}")
        number = value
    else:
        raise _invalid(f"{where} has data type {dtype}, which Plantwire cannot write")
    if (tag.low is not None and number < tag.low) or (tag.high is not None and number > tag.high):
        raise InvalidCommand(
            f"{value} is outside the engineering range of {where}: {tag.low} to {tag.high}", "out_of_range"
        )
    return number


def check_call_args(args: Any) -> list[wire.Value]:
    if not isinstance(args, list) or len(args) > wire.MAX_COMMAND_ARGS:
        raise BadCommand(f"'args' must be a list of at most {wire.MAX_COMMAND_ARGS} values")
    for i, v in enumerate(args):
        if not (v is None or isinstance(v, bool | int | float | str)):
            raise BadCommand(f"args[{i}] must be a number, boolean, string or null")
    return args


def device_id_for(endpoint: str) -> str:
    """A default device id from an endpoint: opc.tcp://127.0.0.1:4850 -> opc-127-0-0-1-4850."""
    rest = endpoint.removeprefix("opc.tcp://")
    return ("opc-" + re.sub(r"[^A-Za-z0-9]+", "-", rest).strip("-"))[:64].rstrip("-")


def nesting_depth(value: Any, stop: int = wire.MAX_NESTING + 1) -> int:
    """How deep arrays and objects nest in `value` (a scalar is 0), counted no further than `stop`."""
    depth = 0
    level: list[Any] = [value]
    while depth < stop:
        inner = [
            item
            for v in level
            if isinstance(v, list | dict)
            for item in (v.values() if isinstance(v, dict) else v)
        ]
        if not any(isinstance(v, list | dict) for v in level):
            return depth
        depth += 1
        level = inner
    return depth


def check_nesting(value: Any, what: str) -> None:
    if nesting_depth(value) > wire.MAX_NESTING:
        raise _invalid(f"{what} nests arrays/objects deeper than {wire.MAX_NESTING} levels")


NOT_KEPT: Final = f"<not kept: nests deeper than {wire.MAX_NESTING} levels>"


def audit_value(value: Any) -> Any:
    """`value` as the audit keeps it: as given, or `NOT_KEPT` when it nests too deep to store."""
    return value if nesting_depth(value) <= wire.MAX_NESTING else NOT_KEPT
