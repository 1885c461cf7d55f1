"""A device of an offline gateway reads offline (derived at read time, on every backend)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import test_store_contract as contract

from plantwire.wire import DeviceStatus, GatewayStatus
from plantwire_platform.store.device_query import DeviceQuery
from plantwire_platform.store.device_state import GATEWAY_OFFLINE, shown
from plantwire_platform.store.model import Store

T0 = contract.T0


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s = contract._open_sqlite(tmp_path) if request.param == "sqlite" else contract._open_postgresql(request)
    yield s
    s.close()


def test_offline_gateway_makes_its_devices_offline_until_it_is_back(store: Store, unique_id: str) -> None:
    gw, dev, other = f"gw-{unique_id}", f"d-{unique_id}", f"o-{unique_id}"
    store.apply_device_status(gw, dev, DeviceStatus("online", T0, "opc.tcp://a:4840"))
    store.apply_device_status(
        gw, other, DeviceStatus("offline", T0 + 1, "opc.tcp://b:4840", "unreachable: x")
    )
    store.apply_gateway_status(gw, GatewayStatus("online", T0))
    record = store.get_device(dev)
    assert record is not None and shown(record) == record  # online gateway: the device's own state

    store.apply_gateway_status(gw, GatewayStatus("offline", T0 + 50))
    record = store.get_device(dev)
    assert record is not None and record.state == "online"  # what the device said is kept
    view = shown(record)
    assert (view.state, view.error, view.state_since, view.gateway_since) == (
        "offline",
        GATEWAY_OFFLINE,
        T0 + 50,
        T0 + 50,
    )
    off = {d.id: shown(d) for d in store.list_devices()}[other]
    assert (off.state, off.error) == ("offline", "unreachable: x")  # its own reason stays
    # The device list's state filter sees the state as shown.
    offline = store.page_devices(DeviceQuery(gateway=gw, state="offline"))
    assert (offline.total, sorted(d.id for d in offline.devices)) == (2, sorted([dev, other]))
    assert store.page_devices(DeviceQuery(gateway=gw, state="online")).total == 0

    store.apply_gateway_status(gw, GatewayStatus("online", T0 + 90))
    record = store.get_device(dev)
    assert record is not None and (shown(record).state, shown(record).error) == ("online", None)
    assert [d.id for d in store.page_devices(DeviceQuery(gateway=gw, state="online")).devices] == [dev]
