"""Tag names from browse names: one name per node, never two nodes under one name.

A tag's name is the path of browse names from the device's root, joined with "/". Two rules
keep that path unique and reversible (docs/wire.md, "Tag names"):

- Escaping, as in JSON Pointer (RFC 6901): in each browse name "~" becomes "~0" and "/" becomes
  "~1", so the browse name "Axis/X" is the tag "Axis~1X", apart from "Axis/X" (folder Axis,
  variable X). Names without "~" or "/" are unchanged.
- Siblings whose escaped names are equal (a folder and a variable both called "Pump", or the same
  name in two namespaces) are told apart by a suffix: the first keeps the name, the next get
  "~2", "~3", ... Variables come before objects, then by node id, so the variable is "Pump" and
  the folder "Pump~2" (its tags "Pump~2/Flow"). Escaping only makes "~0" and "~1", so a suffix
  never meets an escaped name.
"""

from __future__ import annotations

from collections.abc import Sequence

from asyncua import ua


def escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def unescape(segment: str) -> str:
    return segment.replace("~1", "/").replace("~0", "~")


def sibling_names(refs: Sequence[ua.ReferenceDescription]) -> list[str]:
    """Unique path segments for children of one node, in the order of `refs`."""
    escaped = [escape(r.BrowseName.Name or "") for r in refs]
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(escaped):
        groups.setdefault(name, []).append(i)
    names = list(escaped)
    for name, members in groups.items():
        if len(members) == 1:
            continue
        members.sort(key=lambda i: (refs[i].NodeClass != ua.NodeClass.Variable, refs[i].NodeId.to_string()))
        for rank, i in enumerate(members[1:], start=2):
            names[i] = f"{name}~{rank}"
    return names
