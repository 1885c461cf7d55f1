"""Protobuf's wire format, the few pieces the Sparkplug edge writes by hand (`metric_bytes`).

A varint is base-128, low group first, the high bit saying "more"; a field is its tag
(field number << 3 | wire type) then its value. Only what DDATA metrics need is here.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from typing import Any, Final

from plantwire.sparkplug.payload import _INT_WIDTH, DataType

_SMALL: Final = tuple(bytes((n,)) for n in range(128))


def varint(n: int) -> bytes:
    """Protobuf's base-128 varint of a non-negative int below 2**64."""
    if n < 128:
        return _SMALL[n]
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """(value, position after it); ValueError for a varint cut short."""
    shift = result = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


_pack_double = struct.Struct("<Bd").pack
_pack_float = struct.Struct("<Bf").pack


_double = functools.partial(_pack_double, 0x69)  # field 13, 64-bit
_float = functools.partial(_pack_float, 0x65)  # field 12, 32-bit; OverflowError beyond float32
_bool = {True: b"\x70\x01", False: b"\x70\x00"}.__getitem__  # field 14


def _string(v: str) -> bytes:
    data = v.encode()  # UnicodeEncodeError (a lone surrogate): protobuf's path says what is wrong
    return b"\x7a" + varint(len(data)) + data  # field 15


def _int_packer(tag: int, mask: int) -> Callable[[int], bytes]:
    prefix = bytes((tag,))
    return lambda v: prefix + varint(v & mask)


TIMESTAMP_FIELD_BYTES: Final = 7
"""A metric's timestamp field (tag + a 6-byte varint) for any ms time from 1971 to 2109."""
_WHOLE_VALUE: Final = {DataType.Double: (0x69, "d"), DataType.Float: (0x65, "f")}


def whole_metric_packer(datatype: DataType, head: bytes) -> tuple[Callable[..., bytes], int] | None:
    """For a Double or Float metric whose alias field is `head`: (pack, value tag), where
    `pack(timestamp_field, tag, value)` gives the whole repeated-field entry (field 2's tag and
    length, alias, a `TIMESTAMP_FIELD_BYTES` timestamp field, the value) in one call."""
    found = _WHOLE_VALUE.get(datatype)
    if found is None:
        return None
    tag, code = found
    length = len(head) + TIMESTAMP_FIELD_BYTES + struct.calcsize("<" + code) + 1
    pre = b"\x12" + varint(length) + head
    packer = struct.Struct(f"<{len(pre)}s{TIMESTAMP_FIELD_BYTES}sB{code}")
    return functools.partial(packer.pack, pre), tag


def value_packer(datatype: DataType) -> Callable[[Any], bytes] | None:
    """The value field's bytes for a value of the datatype's exact fast type (`MetricSlot.fast_type`;
    an int in the datatype's range): the caller checks the type, so it is `Any` here."""
    if datatype is DataType.Double:
        return _double
    if datatype is DataType.Float:
        return _float
    if datatype is DataType.Boolean:
        return _bool
    if datatype in (DataType.String, DataType.Text, DataType.UUID):
        return _string
    bits = _INT_WIDTH.get(datatype)
    if bits is not None:
        tag = 0x58 if bits == 64 else 0x50  # long_value (11) or int_value (10)
        return _int_packer(tag, (1 << bits) - 1)
    return None
