"""What a server says about itself, read once per session: operation limits, namespaces, its clock.

OPC UA servers publish how many operations one request may carry
(Server/ServerCapabilities/OperationLimits); a PLC with a limit of 20 refuses a Read of 21 nodes
with BadTooManyOperations. Every request the gateway sends with many operations (read, browse,
monitored-item creation, call, write) is cut into batches of the server's limit; a limit of 0
(or one the server does not publish) means "no limit", which the gateway caps at `DEFAULT_BATCH`.

One Read request (of fewer nodes than any limit a real server sets) fetches the limits, the
NamespaceArray (to resolve `nsu=` node ids) and the server's CurrentTime (its clock offset).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final, TypeVar

from asyncua import Client, ua

from .ua_values import to_us

CLOCK_INTERVAL: Final = 60.0
"""Seconds between clock offset measurements while a session is up."""
DEFAULT_BATCH: Final = 1000
"""Operations per request when the server sets no limit (keeps messages a sane size)."""
_LIMIT_NODES: Final[dict[str, int]] = {
    "read": ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead,
    "browse": ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerBrowse,
    "write": ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerWrite,
    "call": ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerMethodCall,
    "monitored_items": ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall,
    "history_read": ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerHistoryReadData,
}


def standard_node(identifier: int) -> ua.NodeId:
    """A node of the standard namespace (index 0) by its numeric id, e.g. `ua.ObjectIds.Server`."""
    return ua.NodeId(ua.Int32(identifier))


_NAMESPACE_ARRAY: Final = standard_node(ua.ObjectIds.Server_NamespaceArray)
_CURRENT_TIME: Final = standard_node(ua.ObjectIds.Server_ServerStatus_CurrentTime)

T = TypeVar("T")
R = TypeVar("R")


class TooManyOperations(ua.UaError):
    """The server refused a request as too large (BadTooManyOperations), even in batches of its limit."""


@dataclass(frozen=True, slots=True)
class OperationLimits:
    """Operations per request, by kind; each at least 1."""

    read: int = DEFAULT_BATCH
    browse: int = DEFAULT_BATCH
    write: int = DEFAULT_BATCH
    call: int = DEFAULT_BATCH
    monitored_items: int = DEFAULT_BATCH
    history_read: int = DEFAULT_BATCH


@dataclass(frozen=True, slots=True)
class ServerProfile:
    limits: OperationLimits = field(default_factory=OperationLimits)
    namespaces: tuple[str, ...] = ("http://opcfoundation.org/UA/",)
    clock_offset_us: int | None = None
    """Server clock minus gateway clock (µs), from the CurrentTime read; None if not published."""


def _batch_size(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return min(value, DEFAULT_BATCH)
    return DEFAULT_BATCH


def _good(dv: ua.DataValue) -> Any:
    if dv.StatusCode is not None and not dv.StatusCode.is_good():
        return None
    return dv.Value.Value if dv.Value is not None else None


def clock_offset(server_time: Any, sent_ns: int, received_ns: int) -> int | None:
    """Server time minus the midpoint of the request's round trip, in µs."""
    if not isinstance(server_time, datetime):
        return None
    return to_us(server_time) - (sent_ns + received_ns) // 2_000


async def read_profile(client: Client) -> ServerProfile:
    """The server's limits, namespaces and clock offset; defaults for whatever it does not publish."""
    kinds = list(_LIMIT_NODES)
    nodes = [standard_node(_LIMIT_NODES[k]) for k in kinds] + [_NAMESPACE_ARRAY, _CURRENT_TIME]
    params = ua.ReadParameters()
    params.NodesToRead = [ua.ReadValueId(NodeId=n, AttributeId=ua.AttributeIds.Value) for n in nodes]
    sent = time.time_ns()
    try:
        values = await client.uaclient.read(params)
    except ua.uaerrors.BadTooManyOperations:  # a server with a limit below 8: ask one by one
        values = []
        for item in params.NodesToRead:
            one = ua.ReadParameters()
            one.NodesToRead = [item]
            values.extend(await client.uaclient.read(one))
    received = time.time_ns()
    limits = OperationLimits(**{k: _batch_size(_good(dv)) for k, dv in zip(kinds, values, strict=False)})
    namespaces = _good(values[len(kinds)])
    return ServerProfile(
        limits=limits,
        namespaces=tuple(namespaces) if isinstance(namespaces, list) else ServerProfile().namespaces,
        clock_offset_us=clock_offset(_good(values[len(kinds) + 1]), sent, received),
    )


async def measure_clock(client: Client, profile: ServerProfile) -> ServerProfile:
    """The profile with a fresh clock offset (one Read of CurrentTime)."""
    params = ua.ReadParameters()
    params.NodesToRead = [ua.ReadValueId(NodeId=_CURRENT_TIME, AttributeId=ua.AttributeIds.Value)]
    sent = time.time_ns()
    (dv,) = await client.uaclient.read(params)
    return replace(profile, clock_offset_us=clock_offset(_good(dv), sent, time.time_ns()))


async def batched(items: Sequence[T], size: int, send: Callable[[list[T]], Awaitable[list[R]]]) -> list[R]:
    """`send` applied to consecutive batches of at most `size` items; results in order.

    A BadTooManyOperations refusal becomes `TooManyOperations`, naming the batch size that failed.
    """
    results: list[R] = []
    for start in range(0, len(items), size):
        chunk = list(items[start : start + size])
        try:
            results.extend(await send(chunk))
        except ua.uaerrors.BadTooManyOperations as err:
            raise TooManyOperations(
                f"the server refused {len(chunk)} operations in one request (BadTooManyOperations)"
            ) from err
    return results


class UnknownNamespace(ValueError):
    """An `nsu=` node id whose namespace URI the server does not have."""


def parse_node_id(text: str, profile: ServerProfile) -> ua.NodeId:
    """A node id string, `ns=<index>;...` or `nsu=<uri>;...` (resolved with the NamespaceArray).

    Raises ValueError (or UaError) for a malformed string, UnknownNamespace for a URI the server lacks.
    """
    parsed = ua.NodeId.from_string(text)
    uri = getattr(parsed, "NamespaceUri", None)
    if not uri:
        return ua.NodeId(parsed.Identifier, parsed.NamespaceIndex, parsed.NodeIdType)
    try:
        index = profile.namespaces.index(uri)
    except ValueError:
        raise UnknownNamespace(f"the server has no namespace {uri!r}") from None
    return ua.NodeId(parsed.Identifier, ua.Int16(index), parsed.NodeIdType)


@contextlib.asynccontextmanager
async def clock_watch(
    client: Client,
    profile: ServerProfile,
    on_offset: Callable[[int | None], None],
    interval: float = CLOCK_INTERVAL,
) -> AsyncIterator[None]:
    """While the block runs, measure the server's clock offset every `interval` s and report it."""

    async def watch() -> None:
        current = profile
        while True:
            await asyncio.sleep(interval)
            try:
                current = await measure_clock(client, current)
            except (OSError, ConnectionError, TimeoutError, ua.UaError):
                return  # the session's own loss detection reports the connection
            on_offset(current.clock_offset_us)

    task = asyncio.create_task(watch(), name="clock-watch")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
