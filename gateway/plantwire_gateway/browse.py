"""Find a device's tags: browse the OPC UA address space below the device's root.

Tag naming convention (the platform and the simulators rely on it): a tag's name is the path of
browse names from the root node to the variable, joined with "/", without namespace prefixes,
e.g. "Spindle/Speed"; a "/" or "~" inside a browse name is escaped and siblings with the same
name get a suffix (`tag_names`). Objects and folders are walked recursively (to `MAX_DEPTH`);
methods are skipped; a variable's properties (HasProperty) are its metadata, not tags:
EngineeringUnits gives the unit, EURange the low/high range; an enumeration's EnumStrings or
EnumValues give the names of its values.

The walk is breadth-first with one Browse request per level and one Read request for all
attributes, each cut into batches of the server's operation limits (`server_profile`), so a
device with hundreds of variables is browsed in a handful of round trips.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from asyncua import Client, ua

from plantwire import wire

from .server_profile import (
    ServerProfile,
    UnknownNamespace,
    batched,
    parse_node_id,
    read_profile,
    standard_node,
)
from .settings import DeviceConfig, is_node_id
from .tag_names import sibling_names

MAX_DEPTH: Final = 12
MAX_TAGS: Final = 50_000
_OBJECTS: Final = standard_node(ua.ObjectIds.ObjectsFolder)
_SERVER: Final = standard_node(ua.ObjectIds.Server)
_HAS_PROPERTY: Final = standard_node(ua.ObjectIds.HasProperty)
_CURRENT_WRITE: Final = ua.AccessLevel.CurrentWrite.mask
_PROPERTIES: Final = ("EngineeringUnits", "EURange")
_ENUM_PROPERTIES: Final = ("EnumStrings", "EnumValues")
_LOCALIZED_TEXT: Final = standard_node(ua.ObjectIds.LocalizedText)
_ATTRS: Final = (
    ua.AttributeIds.DataType,
    ua.AttributeIds.AccessLevel,
    ua.AttributeIds.Description,
    ua.AttributeIds.ValueRank,
    ua.AttributeIds.ArrayDimensions,
)


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


async def _browse_many(
    client: Client,
    profile: ServerProfile,
    node_ids: list[ua.NodeId],
    mask: int = ua.NodeClass.Object | ua.NodeClass.Variable,
) -> list[list[ua.ReferenceDescription]]:
    """Forward hierarchical references of many nodes, in batches of the server's browse limit."""

    async def send(chunk: list[ua.NodeId]) -> list[list[ua.ReferenceDescription]]:
        params = ua.BrowseParameters()
        params.NodesToBrowse = [
            ua.BrowseDescription(
                NodeId=nid,
                BrowseDirection=ua.BrowseDirection.Forward,
                ReferenceTypeId=standard_node(ua.ObjectIds.HierarchicalReferences),
                IncludeSubtypes=True,
                NodeClassMask=mask,
                ResultMask=ua.BrowseResultMask.All,
            )
            for nid in chunk
        ]
        results = []
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

    return await batched(node_ids, profile.limits.browse, send)


async def read_many(
    client: Client, profile: ServerProfile, items: list[tuple[ua.NodeId, ua.AttributeIds]]
) -> list[ua.DataValue]:
    """Attributes of many nodes, in batches of the server's read limit."""

    async def send(chunk: list[tuple[ua.NodeId, ua.AttributeIds]]) -> list[ua.DataValue]:
        params = ua.ReadParameters()
        params.NodesToRead = [ua.ReadValueId(NodeId=nid, AttributeId=attr) for nid, attr in chunk]
        return list(await client.uaclient.read(params))

    return await batched(items, profile.limits.read, send)


async def resolve_root(client: Client, root: str, profile: ServerProfile) -> ua.NodeId:
    """The root node: a NodeId string (`ns=` or `nsu=`), a "/"-path of browse names below Objects,
    or Objects itself."""
    if not root:
        return _OBJECTS
    if is_node_id(root):
        try:
            node_id = parse_node_id(root, profile)
        except UnknownNamespace as err:
            raise BrowseError(f"root {root!r}: {err}") from err
        except (ValueError, ua.UaError) as err:
            raise BrowseError(f"root {root!r} is not a valid NodeId: {err}") from err
        (dv,) = await read_many(client, profile, [(node_id, ua.AttributeIds.NodeClass)])
        if dv.StatusCode is not None and not dv.StatusCode.is_good():
            raise BrowseError(f"root {root!r} does not exist on the server")
        return node_id
    current = _OBJECTS
    for part in root.strip("/").split("/"):
        (refs,) = await _browse_many(client, profile, [current])
        match = next((r for r in refs if r.BrowseName.Name == part), None)
        if match is None:
            raise BrowseError(f"root {root!r}: no node named {part!r} below {current.to_string()}")
        current = match.NodeId
    return current


async def browse_tags(
    client: Client, device: DeviceConfig, profile: ServerProfile | None = None
) -> tuple[ua.NodeId, list[Tag]]:
    """All selected variables below the device's root, with type, unit, range, description, writability."""
    if profile is None:
        profile = await read_profile(client)
    root = await resolve_root(client, device.root, profile)
    found: list[tuple[str, ua.NodeId]] = []  # (tag name, node id) of every variable
    level: list[tuple[str, ua.NodeId]] = [("", root)]
    seen = {root}
    for _depth in range(MAX_DEPTH):
        if not level:
            break
        children = await _browse_many(client, profile, [nid for _, nid in level])
        next_level: list[tuple[str, ua.NodeId]] = []
        for (prefix, _), all_refs in zip(level, children, strict=True):
            refs = [r for r in all_refs if r.ReferenceTypeId != _HAS_PROPERTY and r.NodeId != _SERVER]
            for ref, segment in zip(refs, sibling_names(refs), strict=True):
                nid = ref.NodeId
                if nid in seen:
                    continue
                seen.add(nid)
                name = f"{prefix}{segment}"
                if ref.NodeClass == ua.NodeClass.Variable:
                    found.append((name, nid))
                elif ref.NodeClass == ua.NodeClass.Object:
                    next_level.append((f"{name}/", nid))
        level = next_level
        if len(found) > MAX_TAGS:
            break
    selected = [(n, nid) for n, nid in found if tag_selected(n, device.include, device.exclude)][:MAX_TAGS]
    return root, await _describe(client, profile, selected)


async def _properties(
    client: Client, profile: ServerProfile, node_ids: list[ua.NodeId], wanted: tuple[str, ...]
) -> dict[int, dict[str, Any]]:
    """Values of the named properties of each node, by the node's position: {i: {name: value}}."""
    items: list[tuple[int, str, ua.NodeId]] = []
    for i, refs in enumerate(await _browse_many(client, profile, node_ids)):
        for ref in refs:
            if ref.ReferenceTypeId == _HAS_PROPERTY and ref.BrowseName.Name in wanted:
                items.append((i, ref.BrowseName.Name, ref.NodeId))
    values = await read_many(client, profile, [(nid, ua.AttributeIds.Value) for _, _, nid in items])
    out: dict[int, dict[str, Any]] = {}
    for (i, name, _), dv in zip(items, values, strict=True):
        value = _value(dv)
        if value is not None:
            out.setdefault(i, {})[name] = value
    return out


async def _describe(
    client: Client, profile: ServerProfile, variables: list[tuple[str, ua.NodeId]]
) -> list[Tag]:
    if not variables:
        return []
    node_ids = [nid for _, nid in variables]
    n = len(_ATTRS)
    values = await read_many(client, profile, [(nid, a) for nid in node_ids for a in _ATTRS])
    extras = await _properties(client, profile, node_ids, _PROPERTIES)
    type_ids = [_value(values[n * i]) for i in range(len(variables))]
    type_names = await _type_names(client, type_ids, profile)
    enums = await _enum_names(client, profile, type_ids)
    locales = await _locales(
        client, profile, [nid for nid, t in zip(node_ids, type_ids, strict=True) if t == _LOCALIZED_TEXT]
    )
    tags = []
    for i, (name, nid) in enumerate(variables):
        access, desc, rank, dims = (_value(values[n * i + k]) for k in range(1, n))
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
            dims=_dims(rank, dims),
            enum=enums.get(type_ids[i]) if type_ids[i] is not None else None,
            locale=locales.get(nid),
        )
        tags.append(Tag(nid, info))
    return tags


def _dims(rank: Any, dims: Any) -> tuple[int, ...] | None:
    """Array dimensions from ValueRank and ArrayDimensions; None for a scalar (or a rank it leaves open)."""
    if not isinstance(rank, int) or rank < 0:
        return None
    if isinstance(dims, list) and dims and all(isinstance(d, int) for d in dims):
        return tuple(max(0, d) for d in dims)
    return (0,) * max(1, rank)


async def _enum_names(
    client: Client, profile: ServerProfile, type_ids: list[Any]
) -> dict[ua.NodeId, dict[int, str]]:
    """Names of the values of every enumeration among the data types (EnumStrings or EnumValues)."""
    candidates = sorted(
        {t for t in type_ids if isinstance(t, ua.NodeId) and not _builtin(t)}, key=lambda t: t.to_string()
    )
    if not candidates:
        return {}
    props = await _properties(client, profile, candidates, _ENUM_PROPERTIES)
    out: dict[ua.NodeId, dict[int, str]] = {}
    for i, tid in enumerate(candidates):
        found = props.get(i, {})
        strings, enum_values = found.get("EnumStrings"), found.get("EnumValues")
        if isinstance(strings, list):
            out[tid] = {k: s.Text or "" for k, s in enumerate(strings) if isinstance(s, ua.LocalizedText)}
        elif isinstance(enum_values, list):
            out[tid] = {
                int(e.Value): (e.DisplayName.Text or "")
                for e in enum_values
                if isinstance(e, ua.EnumValueType)
            }
    return out


async def _locales(client: Client, profile: ServerProfile, node_ids: list[ua.NodeId]) -> dict[ua.NodeId, str]:
    """The locale of each LocalizedText variable's current value."""
    values = await read_many(client, profile, [(nid, ua.AttributeIds.Value) for nid in node_ids])
    out: dict[ua.NodeId, str] = {}
    for nid, dv in zip(node_ids, values, strict=True):
        value = _value(dv)
        if isinstance(value, ua.LocalizedText) and value.Locale:
            out[nid] = str(value.Locale)
    return out


def _builtin(tid: ua.NodeId) -> bool:
    return tid.NamespaceIndex == 0 and isinstance(tid.Identifier, int) and tid.Identifier <= 25


def _value(dv: ua.DataValue) -> Any:
    if dv.StatusCode is not None and not dv.StatusCode.is_good():
        return None
    return dv.Value.Value if dv.Value is not None else None


async def _type_names(client: Client, type_ids: list[Any], profile: ServerProfile) -> dict[ua.NodeId, str]:
    """Readable data type names: standard types from the table, others by their browse name."""
    names: dict[ua.NodeId, str] = {}
    unknown = []
    for tid in {t for t in type_ids if isinstance(t, ua.NodeId)}:
        if tid.NamespaceIndex == 0 and isinstance(tid.Identifier, int) and tid.Identifier in ua.ObjectIdNames:
            names[tid] = ua.ObjectIdNames[tid.Identifier]
        else:
            unknown.append(tid)
    if unknown:
        values = await read_many(client, profile, [(t, ua.AttributeIds.BrowseName) for t in unknown])
        for tid, dv in zip(unknown, values, strict=True):
            qn = _value(dv)
            names[tid] = qn.Name if isinstance(qn, ua.QualifiedName) else tid.to_string()
    return names
