"""JSON values from a command as typed OPC UA Variants: method arguments and written values.

A method's InputArguments property declares, per argument, a data type and a ValueRank; every
argument is checked against it before anything is sent (count, type, scalar or array), and a
value that does not fit raises `InputError` naming the argument. The JSON shapes are the ones
`docs/wire.md` lists for values coming up, so an output can be sent back in as an input.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from asyncua import Client, ua
from asyncua.common.ua_utils import data_type_to_variant_type
from asyncua.common.utils import Buffer
from asyncua.ua.ua_binary import struct_from_binary

VT = ua.VariantType
INT_RANGES: Final[dict[ua.VariantType, tuple[int, int]]] = {
    VT.SByte: (-(2**7), 2**7 - 1),
    VT.Byte: (0, 2**8 - 1),
    VT.Int16: (-(2**15), 2**15 - 1),
    VT.UInt16: (0, 2**16 - 1),
    VT.Int32: (-(2**31), 2**31 - 1),
    VT.UInt32: (0, 2**32 - 1),
    VT.Int64: (-(2**63), 2**63 - 1),
    VT.UInt64: (0, 2**64 - 1),
}
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_SENDABLE: Final = frozenset(
    {*INT_RANGES, VT.Boolean, VT.Float, VT.Double, VT.String, VT.XmlElement, VT.DateTime, VT.Guid}
    | {VT.ByteString, VT.NodeId, VT.ExpandedNodeId, VT.StatusCode, VT.QualifiedName, VT.LocalizedText}
    | {VT.ExtensionObject}
)
_SCALAR: Final = -1
_ANY_RANKS: Final = (-2, -3)  # Any, ScalarOrOneDimension


class InputError(ValueError):
    """A value that does not fit its declared type; the message names the argument or tag."""


@dataclasses.dataclass(frozen=True, slots=True)
class Declared:
    """One declared input: name, data type node, the Variant type it is sent as, value rank."""

    name: str
    data_type: ua.NodeId
    vtype: ua.VariantType
    value_rank: int
    type_name: str


def as_argument(item: Any) -> ua.Argument | None:
    """An InputArguments element as ua.Argument, whatever shape the decoder gave it."""
    if isinstance(item, ua.Argument):
        return item
    if isinstance(item, ua.ExtensionObject) and item.Body:
        try:
            decoded = struct_from_binary(ua.Argument, Buffer(item.Body))
        except Exception:  # a body that is not an Argument: treated as undeclared
            return None
        return decoded if isinstance(decoded, ua.Argument) else None
    if hasattr(item, "Name") and hasattr(item, "DataType"):
        return ua.Argument(
            Name=str(item.Name),
            DataType=item.DataType,
            ValueRank=int(getattr(item, "ValueRank", _SCALAR)),
            ArrayDimensions=list(getattr(item, "ArrayDimensions", None) or []),
        )
    return None


async def declare(client: Client, args: list[ua.Argument]) -> list[Declared]:
    """The Variant type of each declared argument (structures, enumerations, subtypes resolved)."""
    out = []
    for arg in args:
        dt = arg.DataType
        if dt.NamespaceIndex == 0 and isinstance(dt.Identifier, int) and 1 <= dt.Identifier <= 25:
            vtype = VT(dt.Identifier)
        else:
            try:
                vtype = await data_type_to_variant_type(client.get_node(dt))
            except (ua.UaError, ValueError, KeyError):
                vtype = VT.Variant
        name = ua.ObjectIdNames.get(dt.Identifier, vtype.name) if dt.NamespaceIndex == 0 else vtype.name
        out.append(Declared(arg.Name or "?", dt, vtype, int(arg.ValueRank), str(name)))
    return out


def to_variant(value: Any, decl: Declared, what: str) -> ua.Variant:
    """`value` as the Variant `decl` asks for; InputError if it does not fit."""
    rank = decl.value_rank
    if isinstance(value, list):
        if rank == _SCALAR:
            raise InputError(f"{what}: expected a single {decl.type_name}, got an array")
        if decl.vtype == VT.Variant:
            return ua.Variant([_infer(v, what) for v in value])
        items = [convert(v, decl.vtype, f"{what}[{i}]", decl.data_type) for i, v in enumerate(value)]
        return ua.Variant(items, decl.vtype, is_array=True)
    if rank >= 0:
        raise InputError(f"{what}: expected an array of {decl.type_name}, got {value!r}")
    if decl.vtype == VT.Variant:
        return _infer(value, what)
    return ua.Variant(convert(value, decl.vtype, what, decl.data_type), decl.vtype)


def _infer(value: Any, what: str) -> ua.Variant:
    """A value for an argument declared as any type (BaseDataType): from its JSON type."""
    if isinstance(value, bool):
        return ua.Variant(value, VT.Boolean)
    if isinstance(value, int):
        return ua.Variant(convert(value, VT.Int64, what), VT.Int64)
    if isinstance(value, float):
        return ua.Variant(value, VT.Double)
    if isinstance(value, str):
        return ua.Variant(value, VT.String)
    raise InputError(f"{what}: {value!r} has no OPC UA type of its own; the method must declare one")


def _integer(value: Any, vtype: ua.VariantType, what: str) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str) and vtype in (VT.Int64, VT.UInt64):
        try:  # 64-bit integers may come as decimal strings (how the wire carries them above 2^63-1)
            value = int(value, 10)
        except ValueError:
            pass
    if type(value) is not int:
        raise InputError(f"{what}: expected a whole number ({vtype.name}), got {value!r}")
    low, high = INT_RANGES[vtype]
    if not low <= value <= high:
        raise InputError(f"{what}: {value} is outside the {vtype.name} range {low}..{high}")
    return value


def convert(value: Any, vtype: ua.VariantType, what: str, data_type: ua.NodeId | None = None) -> Any:
    """A JSON scalar as the Python value asyncua encodes as `vtype`; InputError if it cannot be."""
    if vtype not in _SENDABLE:
        raise InputError(f"{what}: data type {vtype.name} cannot be sent by Plantwire")
    if vtype in INT_RANGES:
        return _integer(value, vtype, what)
    if vtype == VT.Boolean and isinstance(value, bool):
        return value
    if vtype in (VT.Float, VT.Double):
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    elif vtype in (VT.String, VT.XmlElement) and isinstance(value, str):
        return value
    elif vtype == VT.DateTime:
        return _datetime(value, what)
    elif vtype == VT.Guid and isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError as err:
            raise InputError(f"{what}: {value!r} is not a Guid") from err
    elif vtype == VT.ByteString and isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as err:
            raise InputError(f"{what}: a ByteString is sent as base64 text; {value!r} is not") from err
    elif vtype in (VT.NodeId, VT.ExpandedNodeId) and isinstance(value, str):
        try:
            return ua.NodeId.from_string(value)
        except (ValueError, ua.UaError) as err:
            raise InputError(f"{what}: {value!r} is not a NodeId") from err
    elif vtype == VT.StatusCode and type(value) is int and 0 <= value <= 0xFFFFFFFF:
        return ua.StatusCode(ua.UInt32(value))
    elif vtype == VT.QualifiedName and isinstance(value, str):
        return ua.QualifiedName.from_string(value)
    elif vtype == VT.LocalizedText:
        if isinstance(value, str):
            return ua.LocalizedText(value)
        if isinstance(value, dict) and isinstance(value.get("text"), str):
            return ua.LocalizedText(value["text"], value.get("locale"))
    elif vtype == VT.ExtensionObject and isinstance(value, dict) and data_type is not None:
        return _structure(value, data_type, what)
    raise InputError(f"{what}: expected a {vtype.name}, got {value!r}")


def _datetime(value: Any, what: str) -> datetime:
    if type(value) is int:  # wire time: µs since the epoch
        return _EPOCH + timedelta(microseconds=value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as err:
            raise InputError(f"{what}: {value!r} is not an ISO 8601 time") from err
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    raise InputError(f"{what}: a DateTime is µs since the epoch or ISO 8601 text, not {value!r}")


def _structure(value: dict[str, Any], data_type: ua.NodeId, what: str) -> Any:
    """A JSON object as the structure class asyncua knows for `data_type` (fields by name)."""
    cls = ua.extension_objects_by_datatype.get(data_type)
    if cls is None or not dataclasses.is_dataclass(cls):
        raise InputError(f"{what}: the server publishes no definition of structure {data_type.to_string()}")
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(value) - fields)
    if unknown:
        raise InputError(
            f"{what}: structure has no field(s) {', '.join(unknown)}; it has {', '.join(sorted(fields))}"
        )
    try:
        return cls(**value)
    except TypeError as err:
        raise InputError(f"{what}: {err}") from err
