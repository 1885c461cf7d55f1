"""Find a device's tags: browse the OPC UA address space below the device's root.

Tag naming convention (the platform and the simulators rely on it): a tag's name is the path of
browse names from the root node to the variable, joined with "/", without namespace prefixes,
e.g. "Spindle/Speed". Objects and folders are walked recursively (to `MAX_DEPTH`); methods are
skipped; a variable's properties (HasProperty) are its metadata, not tags: EngineeringUnits gives
the unit, EURange the low/high range.

The walk is breadth-first with one Browse request per level and one Read request for all
attributes, so a device with hundreds of variables is browsed in a handful of round trips.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from asyncua import Client, ua

from plantwire import wire

from .settings import DeviceConfig, is_node_id

MAX_DEPTH: Final = 12
MAX_TAGS: Final = 50_000
_OBJECTS: Final = ua.NodeId(ua.ObjectIds.ObjectsFolder)
_SERVER: Final = ua.NodeId(ua.ObjectIds.Server)
_HAS_PROPERTY: Final = ua.NodeId(ua.ObjectIds.HasProperty)
_CURRENT_WRITE: Final = ua.AccessLevel.CurrentWrite.mask
_READ_CHUNK: Final = 1000
_PROPERTIES: Final = ("EngineeringUnits", "EURange")


class BrowseError(Exception):
    """The configured root does not exist on the server."""


@dataclass(frozen=True, slots=True)
class Tag:
    """A variable to subscribe to, and what meta says about it."""

    node_id: ua.NodeId
    info: wire.TagInfo


def tag_selected(name: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in include) and not any(
        fnmatch.fnmatchcase(name, p) for p in exclude
    )


async def _browse_many(client: Client, node_ids: list[ua.NodeId]) -> list[list[ua.ReferenceDescription]]:
    """Forward hierarchical references of many nodes in one request (continuations followed)."""
    results: list[list[ua.ReferenceDescription]] = []
    for start in range(0, len(node_ids), _READ_CHUNK):
        params = ua.BrowseParameters()
        params.NodesToBrowse = [
            ua.BrowseDescription(
                NodeId=nid,
                BrowseDirection=ua.BrowseDirection.Forward,
                ReferenceTypeId=ua.NodeId(ua.ObjectIds.HierarchicalReferences),
                IncludeSubtypes=True,
                NodeClassMask=ua.NodeClass.Object | ua.NodeClass.Variable,
                ResultMask=ua.BrowseResultMask.All,
            )
            for nid in node_ids[start : start + _READ_CHUNK]
        ]
        for result in await client.uaclient.browse(params):
            refs = list(result.References or [])
            cont = result.ContinuationPoint
            while cont:
                next_params = ua.BrowseNextParameters(
                    ReleaseContinuationPoints=False, ContinuationPoints=[cont]
                )
                more = (await client.uaclient.browse_next(next_params))[0]
                refs.extend(more.References or [])
                cont = more.ContinuationPoint
            results.append(refs)
    return results


async def _read_many(client: Client, items: list[tuple[ua.NodeId, ua.AttributeIds]]) -> list[ua.DataValue]:
    values: list[ua.DataValue] = []
    for start in range(0, len(items), _READ_CHUNK):
        params = ua.ReadParameters()
        params.NodesToRead = [
            ua.ReadValueId(NodeId=nid, AttributeId=attr) for nid, attr in items[start : start + _READ_CHUNK]
        ]
        values.extend(await client.uaclient.read(params))
    return values


async def resolve_root(client: Client, root: str) -> ua.NodeId:
    """The root node: a NodeId string, a "/"-path of browse names below Objects, or Objects itself."""
    if not root:
        return _OBJECTS
    if is_node_id(root):
        node_id = ua.NodeId.from_string(root)
        (dv,) = await _read_many(client, [(node_id, ua.AttributeIds.NodeClass)])
        if dv.StatusCode is not None and not dv.StatusCode.is_good():
            raise BrowseError(f"root {root!r} does not exist on the server")
        return node_id
    current = _OBJECTS
    for part in root.strip("/").split("/"):
        (refs,) = await _browse_many(client, [current])
        match = next((r for r in refs if r.BrowseName.Name == part), None)
        if match is None:
            raise BrowseError(f"root {root!r}: no node named {part!r} below {current.to_string()}")
        current = match.NodeId
    return current


async def browse_tags(client: Client, device: DeviceConfig) -> tuple[ua.NodeId, list[Tag]]:
    """All selected variables below the device's root, with type, unit, range, description, writability."""
    root = await resolve_root(client, device.root)
    found: list[tuple[str, ua.NodeId]] = []  # (tag name, node id) of every variable
    level: list[tuple[str, ua.NodeId]] = [("", root)]
    seen = {root}
    for _depth in range(MAX_DEPTH):
        if not level:
            break
        children = await _browse_many(client, [nid for _, nid in level])
        next_level: list[tuple[str, ua.NodeId]] = []
        for (prefix, _), refs in zip(level, children, strict=True):
            for ref in refs:
                nid = ref.NodeId
                if nid in seen or nid == _SERVER or ref.ReferenceTypeId == _HAS_PROPERTY:
                    continue
                seen.add(nid)
                name = f"{prefix}{ref.BrowseName.Name}"
                if ref.NodeClass == ua.NodeClass.Variable:
                    found.append((name, nid))
                elif ref.NodeClass == ua.NodeClass.Object:
                    next_level.append((f"{name}/", nid))
        level = next_level
        if len(found) > MAX_TAGS:
            break
    selected = [(n, nid) for n, nid in found if tag_selected(n, device.include, device.exclude)][:MAX_TAGS]
    return root, await _describe(client, selected)


async def _describe(client: Client, variables: list[tuple[str, ua.NodeId]]) -> list[Tag]:
    if not variables:
        return []
    node_ids = [nid for _, nid in variables]
    attrs = (ua.AttributeIds.DataType, ua.AttributeIds.AccessLevel, ua.AttributeIds.Description)
    values = await _read_many(client, [(nid, a) for nid in node_ids for a in attrs])
    # Properties of each variable: EngineeringUnits and EURange, read in one more request.
    props = await _browse_many(client, node_ids)
    prop_items: list[tuple[int, str, ua.NodeId]] = []
    for i, refs in enumerate(props):
        for ref in refs:
            if ref.ReferenceTypeId == _HAS_PROPERTY and ref.BrowseName.Name in (
                "EngineeringUnits",
                "EURange",
            ):
                prop_items.append((i, ref.BrowseName.Name, ref.NodeId))
    prop_values = await _read_many(client, [(nid, ua.AttributeIds.Value) for _, _, nid in prop_items])
    extras: dict[int, dict[str, Any]] = {}
    for (i, name, _), dv in zip(prop_items, prop_values, strict=True):
        if dv.Value is not None:
            extras.setdefault(i, {})[name] = dv.Value.Value
    type_ids = [_value(values[3 * i]) for i in range(len(variables))]
    type_names = await _type_names(client, type_ids)
    tags = []
    for i, (name, nid) in enumerate(variables):
        access = _value(values[3 * i + 1])
        desc = _value(values[3 * i + 2])
        eu = extras.get(i, {}).get("EngineeringUnits")
        rng = extras.get(i, {}).get("EURange")
        unit = eu.DisplayName.Text if isinstance(eu, ua.EUInformation) and eu.DisplayName else None
        info = wire.TagInfo(
            tag=name,
            node_id=nid.to_string(),
            data_type=type_names.get(type_ids[i], "Unknown") if type_ids[i] is not None else "Unknown",
            unit=unit or None,
            description=(desc.Text or None) if isinstance(desc, ua.LocalizedText) else None,
            writable=bool(isinstance(access, int) and access & _CURRENT_WRITE),
            low=float(rng.Low) if isinstance(rng, ua.Range) else None,
            high=float(rng.High) if isinstance(rng, ua.Range) else None,
        )
        tags.append(Tag(nid, info))
    return tags


def _value(dv: ua.DataValue) -> Any:
    if dv.StatusCode is not None and not dv.StatusCode.is_good():
        return None
    return dv.Value.Value if dv.Value is not None else None


async def _type_names(client: Client, type_ids: list[Any]) -> dict[ua.NodeId, str]:
    """Readable data type names: standard types from the table, others by their browse name."""
    names: dict[ua.NodeId, str] = {}
    unknown = []
    for tid in {t for t in type_ids if isinstance(t, ua.NodeId)}:
        if tid.NamespaceIndex == 0 and isinstance(tid.Identifier, int) and tid.Identifier in ua.ObjectIdNames:
            names[tid] = ua.ObjectIdNames[tid.Identifier]
        else:
            unknown.append(tid)
    if unknown:
        for tid, dv in zip(
            unknown, await _read_many(client, [(t, ua.AttributeIds.BrowseName) for t in unknown]), strict=True
        ):
            qn = _value(dv)
            names[tid] = qn.Name if isinstance(qn, ua.QualifiedName) else tid.to_string()
    return names
