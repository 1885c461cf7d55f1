"""Every place the simulator reaches past asyncua's public API, in one module (asyncua 2.1.0, pinned).

The simulator must write tens of thousands of values/s with subscribers attached; asyncua's stock write
path cannot (it deep-copies every DataValue once per subscribed monitored item and looks up and
type-checks the node on every write). The internals used, all of asyncua 2.1.0:

1. `asyncua.server.monitored_item_service.MonitoredItemValues.set_current_datavalue` calls
   `copy.deepcopy` on the written DataValue for every monitored item. `FrozenDataValue.__deepcopy__`
   returns the value itself: the simulator builds a fresh DataValue per write and never mutates it.
2. `server.iserver.aspace[node_id]` is a `NodeData` whose `attributes[AttributeIds.Value]` is an
   `asyncua.server.address_space.AttributeValue` with `.value` (the current DataValue) and
   `.datachange_callbacks` (handle -> `async callback(handle, DataValue)`, one per monitored item).
   `write_and_notify` sets `.value` and awaits those callbacks itself, as `write_attribute_value` does.
3. `NodeData.references` is a plain list; `add_references_in_batches` swaps it out while adding nodes
   (asyncua checks each new reference against all existing ones: quadratic for big folders).
4. `server.iserver.isession.add_nodes` (the internal admin session) adds prepared `AddNodesItem`s.
5. `server.iserver.attribute_service.write(params, user=...)` is the Write service; `wrap_write_service`
   replaces it to validate client writes (asyncua has no per-node write validation).
6. `server.iserver.time_task` is the once-a-second clock task; `stop_server_now` cancels it so that
   `Server.stop()` does not wait up to a second for it.
7. `server.iserver.history_manager.set_storage(storage)` installs a `HistoryStorageInterface` that the
   HistoryRead service reads (`use_history_storage`); the simulator fills it from its own write path
   instead of asyncua's per-node internal subscription (`enable_history_data_change`), which costs
   as much as a second subscriber.
8. `server.bserver._server` is the listening `asyncio.Server`. `BinaryServer.stop()` closes the
   clients' connections first and the listener last, and Python 3.11's `wait_closed()` waits for
   every connection: a client that reconnects in between (a gateway does, within milliseconds)
   keeps `Server.stop()` waiting until that client goes. `stop_server_now` closes the listener first.
9. `InternalServer.load_standard_address_space` fills `aspace._nodes` (a dict of `NodeData`) with the
   ~6,000 standard nodes from generated code: ~2 s of CPU per server, most of a simulator's start.
   `init_server` fills it once, keeps a pickle of the result, and gives every later server its own
   copy from that pickle (~0.3 s): in memory for the process's later servers, and in the user's
   cache folder (`standard_nodes_cache`) for later processes. A cache file is read only when it and
   its folder belong to this user and nobody else may write them (a pickle runs code when loaded:
   the same trust as the interpreter's own `__pycache__`); anything else fills from code again.

`tests/sims/test_asyncua_internals.py` checks each of these against the installed asyncua and fails
with the item's number if one changed: re-check this module before moving the pin.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import os
import pickle
import stat
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from asyncua import Server, ua
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.address_space import AttributeValue
from asyncua.server.history import HistoryStorageInterface
from asyncua.server.internal_server import InternalServer

ASYNCUA_VERSION = "2.1.0"
ADMIN = User(role=UserRole.Admin)

CallbackErrorHandler = Callable[[int, Exception], None]
WriteService = Callable[[ua.WriteParameters, User], Awaitable[list[ua.StatusCode]]]


class FrozenDataValue(ua.DataValue):
    """A DataValue its writer never mutates after writing, so copying it is pointless (item 1)."""

    __slots__ = ()

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenDataValue:
        return self


def value_attributes(server: Server, node_ids: Sequence[ua.NodeId]) -> list[AttributeValue]:
    """The Value attribute holder of each node (item 2), looked up once instead of on every write."""
    aspace = server.iserver.aspace
    return [aspace[node_id].attributes[ua.AttributeIds.Value] for node_id in node_ids]


async def write_and_notify(
    attributes: Sequence[AttributeValue],
    items: Iterable[tuple[int, ua.DataValue]],
    on_callback_error: CallbackErrorHandler,
) -> None:
    """Store each `(attribute index, DataValue)` and hand it to every monitored item of it (item 2).

    `items` is best a generator: a list of thousands of live DataValues makes the garbage collector
    run over the whole address space again and again (2.5 times the cost per value, measured).

    A callback that fails (a monitored item whose filter cannot handle the value, say) is reported to
    `on_callback_error` and skipped: the other subscribers and the remaining values still get it.
    """
    for index, dv in items:
        attribute = attributes[index]
        attribute.value = dv
        if attribute.datachange_callbacks:
            # A copy: a client may delete its monitored item while a callback awaits.
            for handle, callback in list(attribute.datachange_callbacks.items()):
                try:
                    await callback(handle, dv)
                except KeyError:  # the monitored item went away between the copy and the call
                    continue
                except Exception as err:
                    on_callback_error(handle, err)


async def add_references_in_batches(
    server: Server, parent_id: ua.NodeId, batches: Sequence[Callable[[], Awaitable[None]]]
) -> None:
    """Run each `batch` (which adds children below `parent_id`) against an empty reference list (item 3).

    Sound only when the children's node ids are unique by construction, as the simulator's are.
    """
    parent = server.iserver.aspace[parent_id]
    for batch in batches:
        kept = parent.references
        parent.references = []
        try:
            await batch()
        finally:
            parent.references = kept + parent.references


async def add_nodes(server: Server, items: list[ua.AddNodesItem]) -> list[ua.AddNodesResult]:
    """Add prepared nodes through the server's internal admin session (item 4)."""
    results: list[ua.AddNodesResult] = await server.iserver.isession.add_nodes(items)
    return results


def wrap_write_service(server: Server, make: Callable[[WriteService], WriteService]) -> None:
    """Replace the server's Write service by `make(stock_write)` (item 5)."""
    service = server.iserver.attribute_service
    stock: WriteService = service.write
    wrapped = make(stock)

    async def write(params: ua.WriteParameters, user: User = ADMIN) -> list[ua.StatusCode]:
        return await wrapped(params, user)

    service.write = write  # type: ignore[method-assign]  # deliberate patch of asyncua's write service


def replace_items(params: ua.WriteParameters, items: list[ua.WriteValue]) -> ua.WriteParameters:
    return dataclasses.replace(params, NodesToWrite=items)


def use_history_storage(server: Server, storage: HistoryStorageInterface) -> None:
    """Make HistoryRead answer from `storage` (item 7)."""
    server.iserver.history_manager.set_storage(storage)


async def stop_server_now(server: Server) -> None:
    """Stop an asyncua server without its up-to-one-second wait for the clock task (item 6), and
    without waiting for a client that reconnects while it stops (item 8)."""
    listener = server.bserver._server if server.bserver is not None else None
    if listener is not None:
        listener.close()  # no new connections; BinaryServer.stop() then closes the existing ones
    clock = server.iserver.time_task
    if clock is not None and not clock.done():
        clock.cancel()
        await asyncio.wait([clock])
        server.iserver.time_task = None
    await server.stop()


def standard_nodes_cache() -> Path:
    """Where the pickled standard address space is kept between processes (item 9)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    version = f"asyncua-{ASYNCUA_VERSION}-py{sys.version_info[0]}{sys.version_info[1]}"
    return base / "plantwire" / f"{version}-standard-nodes.pickle"


_standard_nodes: bytes | None = None
"""The pickled standard address space (item 9), once this process has it."""


async def init_server(server: Server) -> None:
    """`Server.init()`, with the standard address space copied from one filled before (item 9)."""
    iserver = server.iserver

    async def load_standard_address_space(shelf_file: object = None) -> None:
        global _standard_nodes
        if _standard_nodes is None:
            _standard_nodes = await asyncio.to_thread(_read_private, standard_nodes_cache())
        if _standard_nodes is not None:
            try:
                iserver.aspace._nodes = _unpickle_without_collecting(_standard_nodes)
                return
            except Exception:  # a damaged cache file: fill from code, and write the file again
                _standard_nodes = None
        await InternalServer.load_standard_address_space(iserver)
        _standard_nodes = pickle.dumps(iserver.aspace._nodes, protocol=pickle.HIGHEST_PROTOCOL)
        await asyncio.to_thread(_write_private, standard_nodes_cache(), _standard_nodes)

    iserver.load_standard_address_space = load_standard_address_space  # type: ignore[method-assign]  # item 9
    await server.init()


def _private(st: os.stat_result) -> bool:
    return st.st_uid == os.getuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _read_private(path: Path) -> bytes | None:
    """The file's bytes if it and its folder are this user's alone (else, or if absent: None)."""
    try:
        with path.open("rb") as f:
            if not (_private(os.fstat(f.fileno())) and _private(path.parent.stat())):
                return None
            return f.read()
    except OSError:
        return None


def _write_private(path: Path, data: bytes) -> None:
    """Write the file whole (a reader sees the old file or the new one), readable by this user only."""
    with contextlib.suppress(OSError):  # no cache folder (read-only home): every process fills anew
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".standard-nodes-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except OSError:
            os.unlink(tmp)
            raise


def _unpickle_without_collecting(data: bytes) -> Any:
    """Unpickling builds ~100k objects at once: the collector would run dozens of times over them."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return pickle.loads(data)
    finally:
        if enabled:
            gc.enable()
