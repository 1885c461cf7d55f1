"""A machine's OPC UA address space: one object under Objects, a folder per group, typed variables, methods.

Node ids are strings in the simulator's namespace: ``ns=2;s=<machine>`` for the machine object and
``ns=2;s=<machine>/<Folder>/<Var>`` for variables, so a tag's name (its browse path below the machine
object, e.g. ``Spindle/Speed``) and its node id say the same thing. Analog variables are AnalogItemType
with EngineeringUnits and EURange properties (hung off the variable by HasProperty); folders hang off the
machine by Organizes and variables off folders by HasComponent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial

from asyncua import Server, ua
from asyncua.crypto.permission_rules import User, UserRole

from plantwire.logs import get_logger
from plantwire_sims.asyncua_internals import (
    ADMIN,
    WriteService,
    add_nodes,
    add_references_in_batches,
    replace_items,
    wrap_write_service,
)
from plantwire_sims.model import ArgumentSpec, MethodRefusal, MethodSpec, TagSpec

log = get_logger(__name__)

NAMESPACE_URI = "urn:plantwire:sim"
UNITS_NAMESPACE = "http://www.opcfoundation.org/UA/units/un/cefact"
_DATA_TYPES = {
    "Double": ua.ObjectIds.Double,
    "UInt32": ua.ObjectIds.UInt32,
    "Int32": ua.ObjectIds.Int32,
    "String": ua.ObjectIds.String,
}
_VARIANT_TYPES = {
    "Double": ua.VariantType.Double,
    "UInt32": ua.VariantType.UInt32,
    "Int32": ua.VariantType.Int32,
    "String": ua.VariantType.String,
}
_CHUNK = 200  # children added per batch below one folder (see _add_children)


class SimError(Exception):
    """The simulator cannot start as asked (address space or port problems)."""


@dataclass(frozen=True, slots=True)
class MachineNodes:
    root: ua.NodeId
    variables: list[ua.NodeId]
    """Node ids in the order of the specs they were built from."""


def _nid(identifier: str | int, ns: int = 0) -> ua.NodeId:
    """A NodeId (asyncua annotates its arguments with its own int/str subclasses)."""
    return ua.NodeId(identifier, ns)  # type: ignore[arg-type]


def _status(code: int) -> ua.StatusCode:
    return ua.StatusCode(code)  # type: ignore[arg-type]


def machine_node_id(ns: int, name: str) -> ua.NodeId:
    return _nid(name, ns)


def variable_node_id(ns: int, name: str, path: str) -> ua.NodeId:
    return _nid(f"{name}/{path}", ns)


async def build_machine(
    server: Server,
    ns: int,
    name: str,
    description: str,
    specs: Sequence[TagSpec],
    methods: Sequence[MethodSpec],
    *,
    history: bool = False,
) -> MachineNodes:
    root = machine_node_id(ns, name)
    await _add_nodes(server, [_object_item(root, ua.QualifiedName(name, ns), description)])

    by_folder: dict[str, list[TagSpec]] = {}
    for spec in specs:
        by_folder.setdefault(spec.folder, []).append(spec)
    for folder, folder_specs in by_folder.items():
        folder_id = _nid(f"{name}/{folder}", ns)
        await _add_nodes(server, [_folder_item(folder_id, root, ua.QualifiedName(folder, ns))])
        items = [
            item for spec in folder_specs for item in _variable_items(ns, name, folder_id, spec, history)
        ]
        await _add_children(server, folder_id, items)

    root_node = server.get_node(root)
    for method in methods:
        node = await root_node.add_method(
            _nid(f"{name}/{method.name}", ns),
            ua.QualifiedName(method.name, ns),
            _method_callback(name, method),
            [_argument(arg) for arg in method.inputs],
            [_argument(arg) for arg in method.outputs],
        )
        await node.write_attribute(
            ua.AttributeIds.Description, ua.DataValue(ua.Variant(ua.LocalizedText(method.description)))
        )
    return MachineNodes(root, [variable_node_id(ns, name, spec.path) for spec in specs])


def guard_setpoint_ranges(server: Server, ranges: dict[ua.NodeId, tuple[float, float]]) -> None:
    """Refuse client writes outside a setpoint's EURange with BadOutOfRange, as a real controller does.

    asyncua has no per-node write validation, so this wraps this server's attribute service; writes by
    the server itself (the Admin role) are not checked.
    """
    wrap_write_service(server, partial(_range_checked_write, ranges))


def _range_checked_write(
    ranges: dict[ua.NodeId, tuple[float, float]], stock_write: WriteService
) -> WriteService:
    async def write(params: ua.WriteParameters, user: User = ADMIN) -> list[ua.StatusCode]:
        verdicts: list[ua.StatusCode | None] = []
        allowed: list[ua.WriteValue] = []
        for item in params.NodesToWrite:
            bounds = ranges.get(item.NodeId) if item.AttributeId == ua.AttributeIds.Value else None
            value = item.Value.Value.Value if item.Value and item.Value.Value else None
            if (
                bounds is not None
                and user.role != UserRole.Admin
                and isinstance(value, int | float)
                and not bounds[0] <= value <= bounds[1]
            ):
                verdicts.append(_status(ua.StatusCodes.BadOutOfRange))
            else:
                verdicts.append(None)
                allowed.append(item)
        results = iter(await stock_write(replace_items(params, allowed), user))
        return [verdict if verdict is not None else next(results) for verdict in verdicts]

    return write


def _argument(arg: ArgumentSpec) -> ua.Argument:
    argument = ua.Argument()
    argument.Name = arg.name
    argument.DataType = _nid(_DATA_TYPES[arg.vtype])
    argument.ValueRank = ua.ValueRank.Scalar
    argument.ArrayDimensions = []
    argument.Description = ua.LocalizedText(arg.description)
    return argument


def check_arguments(method: MethodSpec, args: Sequence[ua.Variant]) -> ua.CallMethodResult | None:
    """A refusal as OPC UA defines it (Part 4, Call), or None when the arguments fit the declaration."""
    result = ua.CallMethodResult()
    if len(args) < len(method.inputs):
        result.StatusCode = _status(ua.StatusCodes.BadArgumentsMissing)
        return result
    if len(args) > len(method.inputs):
        result.StatusCode = _status(ua.StatusCodes.BadTooManyArguments)
        return result
    verdicts = [
        _status(
            ua.StatusCodes.Good
            if arg.VariantType == _VARIANT_TYPES[spec.vtype]
            else ua.StatusCodes.BadTypeMismatch
        )
        for arg, spec in zip(args, method.inputs, strict=True)
    ]
    if all(verdict.is_good() for verdict in verdicts):
        return None
    result.StatusCode = _status(ua.StatusCodes.BadInvalidArgument)
    result.InputArgumentResults = verdicts
    return result


def _method_callback(machine: str, method: MethodSpec) -> Callable[..., Awaitable[object]]:
    async def callback(parent: ua.NodeId, *args: ua.Variant) -> list[ua.Variant] | ua.CallMethodResult:
        refusal = check_arguments(method, args)
        if refusal is not None:
            log.info(
                "sim_method_refused", machine=machine, method=method.name, status=refusal.StatusCode.name
            )
            return refusal
        outcome = method.call(*(arg.Value for arg in args))
        if isinstance(outcome, MethodRefusal):
            log.info("sim_method_refused", machine=machine, method=method.name, reason=outcome.reason)
            result = ua.CallMethodResult()
            result.StatusCode = _status(getattr(ua.StatusCodes, outcome.status))
            result.InputArgumentResults = [_status(ua.StatusCodes.Good) for _ in args]
            return result
        log.info("sim_method_called", machine=machine, method=method.name)
        return [
            ua.Variant(value, _VARIANT_TYPES[spec.vtype])
            for value, spec in zip(outcome, method.outputs, strict=True)
        ]

    return callback


async def _add_nodes(server: Server, items: list[ua.AddNodesItem]) -> None:
    results = await add_nodes(server, items)
    for item, result in zip(items, results, strict=True):
        if not result.StatusCode.is_good():
            raise SimError(
                f"cannot create node {item.RequestedNewNodeId.to_string()}: {result.StatusCode.name}"
            )


async def _add_children(server: Server, parent_id: ua.NodeId, items: list[ua.AddNodesItem]) -> None:
    """Add many children below one folder in linear time.

    asyncua checks each new reference against all of the parent's existing ones, which is quadratic:
    10,000 tags in one folder take minutes. Our node ids are unique by construction, so each batch is
    added against an empty reference list and the lists are joined afterwards.
    """
    batches = [
        partial(_add_nodes, server, items[start : start + _CHUNK * 3])
        for start in range(0, len(items), _CHUNK * 3)
    ]
    await add_references_in_batches(server, parent_id, batches)


def _object_item(node_id: ua.NodeId, browse_name: ua.QualifiedName, description: str) -> ua.AddNodesItem:
    attrs = ua.ObjectAttributes()
    attrs.DisplayName = ua.LocalizedText(browse_name.Name)
    attrs.Description = ua.LocalizedText(description)
    attrs.EventNotifier = 0
    attrs.WriteMask = attrs.UserWriteMask = 0
    return ua.AddNodesItem(
        RequestedNewNodeId=node_id,
        BrowseName=browse_name,
        NodeClass=ua.NodeClass.Object,
        ParentNodeId=_nid(ua.ObjectIds.ObjectsFolder),
        ReferenceTypeId=_nid(ua.ObjectIds.Organizes),
        TypeDefinition=_nid(ua.ObjectIds.BaseObjectType),
        NodeAttributes=attrs,
    )


def _folder_item(node_id: ua.NodeId, parent: ua.NodeId, browse_name: ua.QualifiedName) -> ua.AddNodesItem:
    item = _object_item(node_id, browse_name, f"{browse_name.Name} signals of the machine")
    item.ParentNodeId = parent
    item.TypeDefinition = _nid(ua.ObjectIds.FolderType)
    return item


def _variable_items(
    ns: int, machine: str, folder_id: ua.NodeId, spec: TagSpec, history: bool
) -> list[ua.AddNodesItem]:
    node_id = variable_node_id(ns, machine, spec.path)
    attrs = ua.VariableAttributes()
    attrs.DisplayName = ua.LocalizedText(spec.name)
    attrs.Description = ua.LocalizedText(spec.description)
    attrs.DataType = _nid(_DATA_TYPES[spec.vtype])
    attrs.Value = ua.Variant(spec.initial, _VARIANT_TYPES[spec.vtype])
    attrs.ValueRank = ua.ValueRank.Scalar
    attrs.ArrayDimensions = None  # type: ignore[assignment]
    access = ua.AccessLevel.CurrentRead.mask | (ua.AccessLevel.CurrentWrite.mask if spec.writable else 0)
    if history:
        access |= ua.AccessLevel.HistoryRead.mask
    attrs.AccessLevel = attrs.UserAccessLevel = access
    attrs.WriteMask = attrs.UserWriteMask = 0
    attrs.Historizing = history
    analog = spec.unit is not None
    items = [
        ua.AddNodesItem(
            RequestedNewNodeId=node_id,
            BrowseName=ua.QualifiedName(spec.name, ns),
            NodeClass=ua.NodeClass.Variable,
            ParentNodeId=folder_id,
            ReferenceTypeId=_nid(ua.ObjectIds.HasComponent),
            TypeDefinition=_nid(ua.ObjectIds.AnalogItemType if analog else ua.ObjectIds.BaseDataVariableType),
            NodeAttributes=attrs,
        )
    ]
    if spec.unit is not None:
        unit = ua.EUInformation(
            NamespaceUri=UNITS_NAMESPACE,
            UnitId=spec.unit.unit_id,
            DisplayName=ua.LocalizedText(spec.unit.text),
            Description=ua.LocalizedText(spec.unit.name),
        )
        items.append(
            _property_item(node_id, "EngineeringUnits", ua.ObjectIds.EUInformation, unit, "Unit of the value")
        )
    if spec.eu_range is not None:
        low, high = spec.eu_range
        items.append(
            _property_item(
                node_id, "EURange", ua.ObjectIds.Range, ua.Range(Low=low, High=high), "Normal operating range"
            )
        )
    return items


def _property_item(
    parent: ua.NodeId, name: str, data_type: int, value: object, description: str
) -> ua.AddNodesItem:
    attrs = ua.VariableAttributes()
    attrs.DisplayName = ua.LocalizedText(name)
    attrs.Description = ua.LocalizedText(description)
    attrs.DataType = _nid(data_type)
    attrs.Value = ua.Variant(value, ua.VariantType.ExtensionObject)
    attrs.ValueRank = ua.ValueRank.Scalar
    attrs.ArrayDimensions = None  # type: ignore[assignment]
    attrs.AccessLevel = attrs.UserAccessLevel = ua.AccessLevel.CurrentRead.mask
    attrs.WriteMask = attrs.UserWriteMask = 0
    attrs.Historizing = False
    return ua.AddNodesItem(
        RequestedNewNodeId=_nid(f"{parent.Identifier!s}/{name}", parent.NamespaceIndex),
        BrowseName=ua.QualifiedName(name, 0),
        NodeClass=ua.NodeClass.Variable,
        ParentNodeId=parent,
        ReferenceTypeId=_nid(ua.ObjectIds.HasProperty),
        TypeDefinition=_nid(ua.ObjectIds.PropertyType),
        NodeAttributes=attrs,
    )
