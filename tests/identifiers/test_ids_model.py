"""The suffix rule, the templates and the Handle value model."""

from __future__ import annotations

import pytest

from plantwire_platform.identifiers.handle import (
    Handle,
    HandleSyntaxError,
    HandleValue,
    split_handle,
    values_from_json,
)
from plantwire_platform.identifiers.settings import IdentifierSettings
from plantwire_platform.identifiers.suffixes import SuffixError, device_suffix, part_suffix, suffix
from plantwire_platform.identifiers.templates import TEMPLATE_DIR, TemplateError, load_template


def test_device_suffix_uses_model_and_serial_when_the_meta_declares_both() -> None:
    meta = {"manufacturer": "ACME", "model": "VMC 850/II", "serial": "SN-00042"}
    assert device_suffix("cnc-1", meta) == "device.vmc-850-ii.sn-00042"
    assert device_suffix("cnc-1", {"model": "VMC 850"}) == "device.cnc-1"
    assert device_suffix("CNC_1", {"endpoint": "opc.tcp://x", "root": "ns=2;s=CNC"}) == "device.cnc_1"


def test_suffix_components_fold_to_the_safe_charset() -> None:
    assert suffix("gateway", "Line 1 / Hall B") == "gateway.line-1-hall-b"
    assert part_suffix("cnc-1", 41234) == "part.cnc-1.41234"
    assert suffix("device", "Ünïcode Maschine") == "device.n-code-maschine"
    with pytest.raises(SuffixError):
        suffix("device", "///")
    with pytest.raises(SuffixError):
        suffix("robot", "x")


def test_templates_are_versioned_data_with_unique_indices() -> None:
    for path in sorted(TEMPLATE_DIR.glob("*.json")):
        t = load_template(path.stem)
        assert t.version and t.class_ == path.stem
        assert all(1 < v.index < 100 for v in t.values)
    device = load_template("device")
    assert {v.key: v.scope for v in device.values}["endpoint"] == "read"


def test_template_build_refuses_unknown_and_missing_required_values() -> None:
    part = load_template("part")
    base = {"machine": "cnc-1", "start": "a", "end": "b"}
    values = part.build({**base, "spindle_load_max": 71.25}, ttl=60, timestamp=0)
    assert [(v.index, v.type, v.value) for v in values][-1] == (8, "spindle_load_max", "71.25")
    with pytest.raises(TemplateError, match="colour"):
        part.build({**base, "colour": "red"}, ttl=60, timestamp=0)
    with pytest.raises(TemplateError, match="machine"):
        part.build({"start": "a", "end": "b"}, ttl=60, timestamp=0)
    with pytest.raises(TemplateError):
        load_template("nonexistent")


def test_put_values_parse_the_handle_net_shapes_and_refuse_bad_ones() -> None:
    values = values_from_json(
        [
            {"index": 1, "type": "URL", "data": "http://x"},
            {"index": "2", "type": "EMAIL", "data": {"format": "string", "value": "a@b"}, "ttl": 60},
            {
                "index": 100,
                "type": "HS_ADMIN",
                "data": {"format": "admin", "value": {"handle": "0.TEST/ADMIN", "index": "300"}},
            },
        ],
        timestamp=1_700_000_000,
    )
    assert [v.value for v in values][:2] == ["http://x", "a@b"]
    assert values[2].value == {"handle": "0.TEST/ADMIN", "index": 300, "permissions": ""}
    assert values[0].as_json()["timestamp"] == "2023-11-14T22:13:20Z"
    for bad in (
        [],
        [{"index": 0, "type": "URL", "data": "x"}],
        [{"index": 1, "type": "", "data": "x"}],
        [{"index": 1, "type": "URL", "data": 5}],
        [{"index": 1, "type": "URL", "data": "x"}, {"index": 1, "type": "EMAIL", "data": "y"}],
    ):
        with pytest.raises(HandleSyntaxError):
            values_from_json(bad, 0)


def test_visible_values_follow_scope_and_filters() -> None:
    h = Handle(
        "0.TEST",
        "device.x",
        (
            HandleValue(1, "URL", "u"),
            HandleValue(5, "endpoint", "opc.tcp://10.0.0.5:4840", scope="read"),
            HandleValue(6, "gateway", "gw"),
        ),
    )
    assert [v.index for v in h.visible(None)] == [1, 6]
    assert [v.index for v in h.visible("read")] == [1, 5, 6]
    assert [v.index for v in h.visible("admin", frozenset({"URL"}), frozenset({6}))] == [1, 6]


def test_handle_names_and_prefix_settings() -> None:
    assert split_handle("hdl:0.TEST/part.cnc-1.5") == ("0.TEST", "part.cnc-1.5")
    with pytest.raises(HandleSyntaxError):
        split_handle("no-slash")
    with pytest.raises(ValueError, match="prefix"):
        IdentifierSettings(prefix="0.TEST/x")
    with pytest.raises(ValueError):
        IdentifierSettings.model_validate({"prefix": "0.TEST", "colour": 1})
    assert IdentifierSettings().admin_handle == "0.TEST/ADMIN"
