"""Commands on one device: write a tag (and read it back), call a method, browse the address space.

Commands use their own OPC UA session, opened on the first command and kept while it lives, not
the streaming session: a command never disturbs the subscription's reconnect loop, and the
streaming code stays the measured hot path. The session is dropped when the server closes it and
opened again by the next command.

Method calls are never retried: a call that timed out may have run, and running Start twice is
not what anybody asked for. Arguments are checked against the method's InputArguments (count,
type, scalar or array) before the call is sent (`ua_input`). Every request with many operations
is cut to the server's operation limits (`server_profile`). Errors carry a reply code
(`wire.REPLY_CODES`).
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from asyncua import Client, ua

from plantwire import wire
from plantwire.logs import get_logger

from .browse import BrowseError, Tag, _type_names, read_many, resolve_root
from .browse import _browse_many as browse_many
from .opcua_connect import ConnectFailure, classify, make_client
from .pki import Pki
from .server_profile import (
    ServerProfile,
    TooManyOperations,
    UnknownNamespace,
    parse_node_id,
    read_profile,
    standard_node,
)
from .settings import DeviceConfig
from .structures import load_structures
from .ua_input import Declared, InputError, as_argument, declare, to_variant
from .ua_values import to_us, to_wire_value

log = get_logger(__name__)

TIMEOUT: Final = 5.0
METHOD_SEARCH_DEPTH: Final = 4
_HAS_PROPERTY: Final = standard_node(ua.ObjectIds.HasProperty)
_CURRENT_WRITE: Final = ua.AccessLevel.CurrentWrite.mask
_ALL_CLASSES: Final = ua.NodeClass.Object | ua.NodeClass.Variable | ua.NodeClass.Method
_CONNECTION_ERRORS: Final = (OSError, ConnectionError, TimeoutError, ua.UaError)


class ControlError(Exception):
    """A command that could not be done; `code` is a wire reply code, `status` an OPC UA code if any."""

    def __init__(self, code: str, message: str, status: ua.StatusCode | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def _status(code: ua.StatusCode | None) -> ua.StatusCode:
    return code if code is not None else ua.StatusCode(ua.UInt32(ua.StatusCodes.Good))


class DeviceControl:
    """Write, call and browse on one device over an on-demand OPC UA session."""

    def __init__(self, device: DeviceConfig, pki: Pki) -> None:
        self.device = device
        self.pki = pki
        self._client: Client | None = None
        self._root: ua.NodeId | None = None
        self._profile = ServerProfile()
        self._methods: dict[str, tuple[ua.NodeId, ua.NodeId]] | None = None
        self._lock = asyncio.Lock()

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                async with asyncio.timeout(2.0):
                    await client.disconnect()
            except (*_CONNECTION_ERRORS, RuntimeError):
                client.disconnect_socket()

    async def _connected(self) -> tuple[Client, ua.NodeId]:
        if self._client is not None and self._root is not None:
            return self._client, self._root
        try:
            client = await make_client(self.device, self.pki, " (commands)")
        except ConnectFailure as err:
            raise ControlError(err.code, str(err.args[0])) from err

        async def on_lost(exc: Exception) -> None:
            if self._client is client:
                self._client = None

        client.connection_lost_callback = on_lost
        try:
            async with asyncio.timeout(TIMEOUT):
                await client.connect(auto_reconnect=False)
                profile = await read_profile(client)
                root = await resolve_root(client, self.device.root, profile)
        except BrowseError as err:
            client.disconnect_socket()
            raise ControlError("unknown_node", str(err)) from err
        except (*_CONNECTION_ERRORS, ConnectFailure) as err:
            client.disconnect_socket()
            failure = classify(err, self.device, self.pki)
            code = "not_connected" if failure.code == "unreachable" else failure.code
            raise ControlError(code, f"cannot reach {self.device.endpoint}: {failure.args[0]}") from err
        except Exception:
            client.disconnect_socket()
            raise
        await load_structures(client, self.device.id)
        self._client, self._root, self._methods, self._profile = client, root, None, profile
        return client, root

    async def _run(self, op: Any) -> Any:
        """Run `op(client, root)` under the lock; a broken session is dropped for the next command."""
        async with self._lock:
            client, root = await self._connected()
            try:
                async with asyncio.timeout(TIMEOUT):
                    return await op(client, root)
            except TooManyOperations as err:
                raise ControlError("too_many_operations", f"{self.device.endpoint}: {err}") from err
            except (OSError, ConnectionError, TimeoutError) as err:
                await self.close()
                reason = str(err) or type(err).__name__
                raise ControlError("not_connected", f"{self.device.endpoint}: {reason}") from err

    # --- write --------------------------------------------------------------------------------

    async def write(self, tag: Tag, value: wire.JsonValue) -> dict[str, Any]:
        """Write, then read back. Result: status, the value read back and its source timestamp."""

        async def op(client: Client, root: ua.NodeId) -> tuple[ua.StatusCode, dict[str, Any]]:
            vtype = getattr(ua.VariantType, tag.info.data_type, None)
            if not isinstance(vtype, ua.VariantType):
                (current,) = await client.uaclient.read(_read_params([(tag.node_id, ua.AttributeIds.Value)]))
                if current.Value is None:
                    raise ControlError("invalid", f"cannot tell the data type of {tag.info.tag!r}")
                vtype = current.Value.VariantType
            rank = -1 if tag.info.dims is None else len(tag.info.dims)
            decl = Declared(tag.info.tag, standard_node(vtype.value), vtype, rank, tag.info.data_type)
            try:
                variant = to_variant(value, decl, tag.info.tag)
            except InputError as err:
                raise ControlError("invalid", str(err)) from err
            params = ua.WriteParameters()
            params.NodesToWrite = [
                ua.WriteValue(
                    NodeId=tag.node_id, AttributeId=ua.AttributeIds.Value, Value=ua.DataValue(variant)
                )
            ]
            (status,) = await client.uaclient.write(params)
            (dv,) = await client.uaclient.read(_read_params([(tag.node_id, ua.AttributeIds.Value)]))
            ts = dv.SourceTimestamp or dv.ServerTimestamp
            readback = {
                "value": to_wire_value(dv.Value.Value) if dv.Value is not None else None,
                "ts": to_us(ts) if ts is not None else None,
                "read_status": _status(dv.StatusCode).value,
            }
            return _status(status), readback

        status, result = await self._run(op)
        if not status.is_good():
            raise ControlError("opcua_status", f"the device refused the write: {status.name}", status)
        return result

    # --- call ---------------------------------------------------------------------------------

    async def call(self, method: str, args: list[wire.JsonValue]) -> dict[str, Any]:
        async def op(client: Client, root: ua.NodeId) -> tuple[ua.StatusCode, dict[str, Any]]:
            methods = await self._find_methods(client, root)
            if method not in methods:
                known = ", ".join(sorted(methods)) or "none"
                raise ControlError(
                    "unknown_method", f"no method {method!r} below the device root; it has: {known}"
                )
            parent, method_id = methods[method]
            variants = await self._call_arguments(client, method, method_id, args)
            (result,) = await client.uaclient.call(
                [ua.CallMethodRequest(ObjectId=parent, MethodId=method_id, InputArguments=variants)]
            )
            outputs = [to_wire_value(v.Value) for v in (result.OutputArguments or [])]
            return _status(result.StatusCode), {"outputs": outputs}

        status, result = await self._run(op)
        if not status.is_good():
            raise ControlError("opcua_status", f"the device refused {method}: {status.name}", status)
        return result

    async def _find_methods(self, client: Client, root: ua.NodeId) -> dict[str, tuple[ua.NodeId, ua.NodeId]]:
        """Methods by browse name below the root: name -> (object it belongs to, method node)."""
        if self._methods is not None:
            return self._methods
        found: dict[str, tuple[ua.NodeId, ua.NodeId]] = {}
        level, seen = [root], {root}
        for _ in range(METHOD_SEARCH_DEPTH):
            next_level = []
            refs_of = await browse_many(client, self._profile, level, _ALL_CLASSES)
            for parent, refs in zip(level, refs_of, strict=True):
                for ref in refs:
                    if ref.NodeId in seen:
                        continue
                    seen.add(ref.NodeId)
                    if ref.NodeClass == ua.NodeClass.Method:
                        found.setdefault(ref.BrowseName.Name, (parent, ref.NodeId))
                    elif ref.NodeClass == ua.NodeClass.Object:
                        next_level.append(ref.NodeId)
            if not next_level:
                break
            level = next_level
        self._methods = found
        return found

    # --- browse -------------------------------------------------------------------------------

    async def browse(self, node: str | None) -> dict[str, Any]:
        async def op(client: Client, root: ua.NodeId) -> dict[str, Any]:
            try:
                target = parse_node_id(node, self._profile) if node else root
            except UnknownNamespace as err:
                raise ControlError("unknown_node", f"node {node!r}: {err}") from err
            except (ValueError, ua.UaError) as err:
                raise ControlError("invalid", f"node {node!r} is not a NodeId: {err}") from err
            (nc, name) = await read_many(
                client,
                self._profile,
                [(target, ua.AttributeIds.NodeClass), (target, ua.AttributeIds.BrowseName)],
            )
            if not _status(nc.StatusCode).is_good():
                raise ControlError(
                    "unknown_node", f"node {target.to_string()!r} does not exist on the device"
                )
            (refs,) = await browse_many(client, self._profile, [target], _ALL_CLASSES)
            refs = [r for r in refs if r.ReferenceTypeId != _HAS_PROPERTY]
            children = await _describe_nodes(client, self._profile, refs)
            return {
                "node": {
                    "node_id": target.to_string(),
                    "browse_name": name.Value.Value.Name if name.Value is not None else None,
                    "node_class": ua.NodeClass(nc.Value.Value).name if nc.Value is not None else None,
                },
                "root": root.to_string(),
                "children": children,
            }

        result: dict[str, Any] = await self._run(op)
        return result

    async def _call_arguments(
        self, client: Client, method: str, method_id: ua.NodeId, args: list[Any]
    ) -> list[ua.Variant]:
        """Arguments as the method's InputArguments declare them; untyped if it declares none."""
        (refs,) = await browse_many(client, self._profile, [method_id], _ALL_CLASSES)
        prop = next((r.NodeId for r in refs if r.BrowseName.Name == "InputArguments"), None)
        if prop is None:
            return [ua.Variant(a) for a in args]
        (dv,) = await read_many(client, self._profile, [(prop, ua.AttributeIds.Value)])
        raw = dv.Value.Value if dv.Value is not None else None
        items = raw if isinstance(raw, list) else [] if raw is None else [raw]
        parsed = [as_argument(a) for a in items]
        if any(a is None for a in parsed):
            raise ControlError("invalid", f"{method}: the device's InputArguments cannot be read")
        declared = await declare(client, [a for a in parsed if a is not None])
        if len(declared) != len(args):
            names = ", ".join(f"{d.name}: {d.type_name}{'[]' if d.value_rank >= 0 else ''}" for d in declared)
            raise ControlError(
                "invalid", f"{method} takes {len(declared)} argument(s) ({names or 'none'}); got {len(args)}"
            )
        try:
            return [
                to_variant(value, d, f"{method} argument {i} ({d.name})")
                for i, (d, value) in enumerate(zip(declared, args, strict=True), start=1)
            ]
        except InputError as err:
            raise ControlError("invalid", str(err)) from err


def _read_params(items: list[tuple[ua.NodeId, ua.AttributeIds]]) -> ua.ReadParameters:
    params = ua.ReadParameters()
    params.NodesToRead = [ua.ReadValueId(NodeId=nid, AttributeId=attr) for nid, attr in items]
    return params


async def _describe_nodes(
    client: Client, profile: ServerProfile, refs: list[ua.ReferenceDescription]
) -> list[dict[str, Any]]:
    if not refs:
        return []
    variables = [r.NodeId for r in refs if r.NodeClass == ua.NodeClass.Variable]
    attrs = await read_many(
        client,
        profile,
        [(n, a) for n in variables for a in (ua.AttributeIds.DataType, ua.AttributeIds.AccessLevel)],
    )
    info: dict[ua.NodeId, tuple[Any, Any]] = {}
    for i, nid in enumerate(variables):
        dt, access = attrs[2 * i], attrs[2 * i + 1]
        info[nid] = (
            dt.Value.Value if dt.Value is not None and _status(dt.StatusCode).is_good() else None,
            access.Value.Value if access.Value is not None and _status(access.StatusCode).is_good() else None,
        )
    names = await _type_names(client, [t for t, _ in info.values() if t is not None], profile)
    grand = await browse_many(client, profile, [r.NodeId for r in refs], _ALL_CLASSES)
    out = []
    for ref, kids in zip(refs, grand, strict=True):
        dtype, access = info.get(ref.NodeId, (None, None))
        out.append(
            {
                "node_id": ref.NodeId.to_string(),
                "browse_name": ref.BrowseName.Name,
                "node_class": ref.NodeClass.name,
                "data_type": names.get(dtype) if dtype is not None else None,
                "writable": bool(isinstance(access, int) and access & _CURRENT_WRITE),
                "has_children": any(k.ReferenceTypeId != _HAS_PROPERTY for k in kids),
            }
        )
    return out
