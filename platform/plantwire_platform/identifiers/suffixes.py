"""The suffix rule: how a thing Plantwire knows becomes the part of its handle after the prefix.

- a device whose meta declares a model and a serial number (OPC UA DI DeviceType properties
  Model/SerialNumber, carried in the meta dict as `model` and `serial`): `device.<model>.<serial>`;
- any other gateway or device: `<kind>.<id>` (`gateway.line-1`, `device.cnc-1`);
- a produced part: `part.<machine>.<count>` (the CNC's part counter value at the part's end).

Every component is lower-cased; characters outside `a-z 0-9 - _` become `-` (runs collapsed, ends
trimmed) and components are joined with `.`, so a suffix is always URL-path safe and stable: the
same meta gives the same suffix on every platform, in every restart.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

KINDS: Final = ("gateway", "device", "part")
_OUTSIDE = re.compile(r"[^a-z0-9_-]+")
MAX_COMPONENT: Final = 64


class SuffixError(ValueError):
    """A component that escapes to nothing (e.g. only punctuation)."""


def component(text: object) -> str:
    """One suffix component: lower case, outside characters folded to '-', at most 64 characters."""
    out = _OUTSIDE.sub("-", str(text).strip().lower()).strip("-")[:MAX_COMPONENT].strip("-")
    if not out:
        raise SuffixError(f"{text!r} leaves nothing usable in a handle suffix")
    return out


def suffix(kind: str, *parts: object) -> str:
    if kind not in KINDS:
        raise SuffixError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    return ".".join([kind, *(component(p) for p in parts)])


def device_suffix(device_id: str, meta: Mapping[str, Any]) -> str:
    """`device.<model>.<serial>` when the meta says both, else `device.<id>`."""
    model, serial = meta.get("model"), meta.get("serial")
    if model and serial:
        try:
            return suffix("device", model, serial)
        except SuffixError:
            pass
    return suffix("device", device_id)


def gateway_suffix(gateway_id: str) -> str:
    return suffix("gateway", gateway_id)


def part_suffix(machine: str, count: int) -> str:
    return suffix("part", machine, count)
