"""OPC UA values as the wire carries them, tag-name escaping, and JSON arguments as typed Variants."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from asyncua import ua

from plantwire import wire
from plantwire_gateway.tag_names import escape, sibling_names, unescape
from plantwire_gateway.ua_input import Declared, InputError, to_variant
from plantwire_gateway.ua_values import to_wire_value


@dataclass
class _Tool:
    Name: str
    Offsets: list[float]
    Uses: int


def test_every_shape_passes_the_wire_decoder() -> None:
    values = [
        [57.0, 114.0, -57.0],
        b"\x01\x02\xfe\xff",
        ua.LocalizedText("Fräse", "de-DE"),
        uuid.UUID("72962b91-fa75-4ae6-8d28-b404dc7daf63"),
        2**63 + 5,
        [2**64 - 1, 1],
        _Tool("T1", [0.5], 3),
        ua.QualifiedName("Name", 2),
        ua.NodeId("x", 2),
        datetime(2026, 1, 1, tzinfo=UTC),
        b"\x00" * 10_000,
    ]
    shapes = [to_wire_value(v) for v in values]
    assert shapes[:8] == [
        [57.0, 114.0, -57.0],
        "AQL+/w==",
        "Fräse",
        "72962b91-fa75-4ae6-8d28-b404dc7daf63",
        str(2**63 + 5),
        [str(2**64 - 1), 1],
        {"Name": "T1", "Offsets": [0.5], "Uses": 3},
        "2:Name",
    ]
    assert shapes[8] == "ns=2;s=x" and shapes[9] == 1_767_225_600_000_000
    assert len(shapes[10]) == wire.MAX_STRING_VALUE  # type: ignore[arg-type]
    batch = wire.DataBatch(1, 1, [wire.Sample(f"t{i}", i, v) for i, v in enumerate(shapes)])
    assert wire.decode_data(wire.encode_data(batch), compound="native").samples == batch.samples


def _ref(name: str, node: str, cls: ua.NodeClass) -> ua.ReferenceDescription:
    ref = ua.ReferenceDescription()
    ref.BrowseName = ua.QualifiedName(name, 2)
    ref.NodeId = ua.NodeId.from_string(node)
    ref.NodeClass = cls
    return ref


def test_names_escape_slashes_and_suffix_collisions_deterministically() -> None:
    assert escape("Axis/X") == "Axis~1X" and escape("a~b") == "a~0b"
    assert unescape(escape("x/~1/~")) == "x/~1/~"
    refs = [
        _ref("Pump", "ns=2;s=folder", ua.NodeClass.Object),
        _ref("Axis/X", "ns=2;s=slash", ua.NodeClass.Variable),
        _ref("Pump", "ns=2;s=var", ua.NodeClass.Variable),
        _ref("Level", "ns=3;s=b", ua.NodeClass.Variable),
        _ref("Level", "ns=2;s=a", ua.NodeClass.Variable),
    ]
    names = sibling_names(refs)
    assert names == ["Pump~2", "Axis~1X", "Pump", "Level~2", "Level"]
    assert sibling_names(list(reversed(refs))) == list(reversed(names))  # order of the server's answer


def _decl(vtype: ua.VariantType, rank: int = -1) -> Declared:
    return Declared("A", ua.NodeId(ua.Int32(vtype.value)), vtype, rank, vtype.name)


def test_json_arguments_become_typed_variants() -> None:
    v = to_variant([1, 2.0], _decl(ua.VariantType.Double, 1), "m(A)")
    assert v.VariantType == ua.VariantType.Double and v.Value == [1.0, 2.0] and v.is_array
    assert to_variant(str(2**64 - 1), _decl(ua.VariantType.UInt64), "m(A)").Value == 2**64 - 1
    assert to_variant("AQL+/w==", _decl(ua.VariantType.ByteString), "m(A)").Value == b"\x01\x02\xfe\xff"
    when = to_variant("2026-01-01T00:00:00Z", _decl(ua.VariantType.DateTime), "m(A)").Value
    assert when == datetime(2026, 1, 1, tzinfo=UTC)
    guid = "72962b91-fa75-4ae6-8d28-b404dc7daf63"
    assert to_variant(guid, _decl(ua.VariantType.Guid), "m(A)").Value == uuid.UUID(guid)
    assert to_variant(
        {"text": "Hallo", "locale": "de"}, _decl(ua.VariantType.LocalizedText), "m(A)"
    ).Value == (ua.LocalizedText("Hallo", "de"))


@pytest.mark.parametrize(
    ("value", "vtype", "rank", "message"),
    [
        ("fast", ua.VariantType.Double, -1, "expected a Double"),
        ([1.0], ua.VariantType.Double, -1, "expected a single Double"),
        (1.0, ua.VariantType.Double, 1, "expected an array"),
        (256, ua.VariantType.Byte, -1, "outside the Byte range"),
        (["x"], ua.VariantType.Int32, 1, "m(A)[0]"),
        ("not base64!", ua.VariantType.ByteString, -1, "base64"),
        (1.5, ua.VariantType.DiagnosticInfo, -1, "cannot be sent"),
    ],
)
def test_arguments_that_do_not_fit_name_the_argument(
    value: object, vtype: ua.VariantType, rank: int, message: str
) -> None:
    with pytest.raises(InputError, match="m\\(A\\)") as err:
        to_variant(value, _decl(vtype, rank), "m(A)")
    assert message in str(err.value)
