"""The asyncua internals `plantwire_sims.asyncua_internals` relies on are still there and still behave so.

Each assertion names the item of that module's docstring it guards; a failure here means asyncua
changed under the pin and the simulator's fast path must be re-checked before anything else.
"""

from __future__ import annotations

import asyncio
import inspect
import pickle
from importlib import metadata
from pathlib import Path

import pytest
from asyncua import Client, Server, ua
from asyncua.server.address_space import AttributeValue
from asyncua.server.history import HistoryStorageInterface
from asyncua.server.monitored_item_service import MonitoredItemValues
from sim_client import node

from plantwire_sims import asyncua_internals
from plantwire_sims.asyncua_internals import (
    ASYNCUA_VERSION,
    FrozenDataValue,
    init_server,
    standard_nodes_cache,
    value_attributes,
)
from plantwire_sims.machine import SimMachine


def test_the_pinned_version_is_installed() -> None:
    assert metadata.version("asyncua") == ASYNCUA_VERSION, "asyncua moved: re-check asyncua_internals.py"


def test_item_1_monitored_items_deep_copy_and_frozen_values_are_not_copied() -> None:
    assert "copy.deepcopy" in inspect.getsource(MonitoredItemValues.set_current_datavalue), "item 1"
    frozen = FrozenDataValue(ua.Variant(1.5, ua.VariantType.Double))
    values = MonitoredItemValues()
    values.set_current_datavalue(frozen)
    assert values.get_current_datavalue() is frozen, "item 1: the frozen value was copied"
    plain = ua.DataValue(ua.Variant(1.5, ua.VariantType.Double))
    values.set_current_datavalue(plain)
    assert values.get_current_datavalue() is not plain, "item 1: asyncua no longer copies (drop the trick)"


async def test_items_2_to_8_on_a_running_machine(port: int) -> None:
    async with asyncio.timeout(30), SimMachine("pump", "pump-1", port, rate_hz=20, history_s=5) as machine:
        server = machine.server
        assert isinstance(server, Server)
        node_id = ua.NodeId.from_string(node(machine, "Hydraulics/Flow"))
        (attribute,) = value_attributes(server, [node_id])
        assert isinstance(attribute, AttributeValue), "item 2"
        assert isinstance(attribute.value, FrozenDataValue), "item 2: our writes are not what the node holds"
        assert attribute.datachange_callbacks == {}, "item 2"
        async with Client(machine.endpoint) as client:
            sub = await client.create_subscription(50, None)
            await sub.subscribe_data_change(client.get_node(node_id))
            assert len(attribute.datachange_callbacks) == 1, "item 2: subscribing adds no callback there"
            handle, callback = next(iter(attribute.datachange_callbacks.items()))
            assert inspect.iscoroutinefunction(callback) and isinstance(handle, int), "item 2"
        assert isinstance(server.iserver.aspace[node_id].references, list), "item 3"
        assert inspect.iscoroutinefunction(server.iserver.isession.add_nodes), "item 4"
        write_params = inspect.signature(type(server.iserver.attribute_service).write).parameters
        assert list(write_params)[:3] == ["self", "params", "user"], "item 5"
        assert isinstance(server.iserver.time_task, asyncio.Task), "item 6"
        assert isinstance(server.iserver.history_manager.storage, HistoryStorageInterface), "item 7"
        assert hasattr(server.iserver.history_manager, "set_storage"), "item 7"
        assert isinstance(server.bserver._server, asyncio.AbstractServer), "item 8"


def _shape(server: Server) -> dict[ua.NodeId, tuple[int, int]]:
    """Every node of the address space with its attribute and reference counts."""
    return {nid: (len(nd.attributes), len(nd.references)) for nid, nd in server.iserver.aspace._nodes.items()}


async def test_item_9_a_copied_standard_address_space_is_the_one_asyncua_fills(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(asyncua_internals, "_standard_nodes", None)
    plain = Server()
    await plain.init()
    first, copied = Server(), Server()
    await init_server(first)  # fills from code, writes the cache file
    assert standard_nodes_cache().is_file(), "item 9"
    monkeypatch.setattr(asyncua_internals, "_standard_nodes", None)  # as a new process would start
    await init_server(copied)
    assert len(_shape(plain)) > 5000
    assert _shape(first) == _shape(plain) == _shape(copied), "item 9"
    assert first.iserver.aspace._nodes is not copied.iserver.aspace._nodes


def test_item_9_a_cache_file_or_folder_others_may_write_is_not_read(tmp_path: Path) -> None:
    folder = tmp_path / "plantwire"
    folder.mkdir(mode=0o700)
    path = folder / "nodes.pickle"
    path.write_bytes(b"kept")
    path.chmod(0o600)
    assert asyncua_internals._read_private(path) == b"kept"
    path.chmod(0o620)
    assert asyncua_internals._read_private(path) is None, "group may write the file"
    path.chmod(0o600)
    folder.chmod(0o777)
    assert asyncua_internals._read_private(path) is None, "anyone may replace the file"
    folder.chmod(0o700)
    assert asyncua_internals._read_private(folder / "absent") is None


async def test_item_9_a_damaged_cache_file_is_filled_anew(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(asyncua_internals, "_standard_nodes", None)
    path = standard_nodes_cache()
    path.parent.mkdir(parents=True, mode=0o700)
    path.write_bytes(pickle.dumps({"x": "y" * 1000})[:50])
    path.chmod(0o600)
    server = Server()
    await init_server(server)
    assert len(_shape(server)) > 5000
    assert len(path.read_bytes()) > 1_000_000, "the damaged file is written again"
