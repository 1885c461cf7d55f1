"""The asyncua internals `plantwire_sims.asyncua_internals` relies on are still there and still behave so.

Each assertion names the item of that module's docstring it guards; a failure here means asyncua
changed under the pin and the simulator's fast path must be re-checked before anything else.
"""

from __future__ import annotations

import asyncio
import inspect
from importlib import metadata

from asyncua import Client, Server, ua
from asyncua.server.address_space import AttributeValue
from asyncua.server.history import HistoryStorageInterface
from asyncua.server.monitored_item_service import MonitoredItemValues
from sim_client import node

from plantwire_sims.asyncua_internals import ASYNCUA_VERSION, FrozenDataValue, value_attributes
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
