"""Devices and gateways get identifiers when their meta reaches the platform's (real SQLite) store."""

from __future__ import annotations

import asyncio
from pathlib import Path

from plantwire.wire import DeviceMeta
from plantwire_platform.identifiers.device_naming import DeviceNamer
from plantwire_platform.identifiers.service import IdentifierService
from plantwire_platform.store import DeviceRecord
from plantwire_platform.store_sqlite import SqliteStore


async def test_devices_are_named_when_they_appear_and_renamed_when_they_move(
    service: IdentifierService, tmp_path: Path
) -> None:
    store = SqliteStore.open(tmp_path / "store.sqlite")

    async def devices() -> list[DeviceRecord]:
        return await asyncio.to_thread(store.list_devices)

    namer = DeviceNamer(service.registry, devices, every_s=0.05)
    try:
        async with asyncio.timeout(20):
            assert await namer.once() == 0 and namer.identifier_of("cnc-1") is None
            store.apply_meta("line-1", "cnc-1", DeviceMeta("opc.tcp://127.0.0.1:4840", "ns=2;s=CNC", []))
            store.apply_meta("line-1", "pump-1", DeviceMeta("opc.tcp://127.0.0.1:4841", "ns=2;s=P", []))
            assert await namer.once() == 2
            assert await namer.once() == 0  # nothing new: nothing rewritten
            assert namer.identifier_of("cnc-1") == "0.TEST/device.cnc-1"
            cnc = await service.catalog.get("0.TEST/device.cnc-1")
            gateway = await service.catalog.get("0.TEST/gateway.line-1")
            assert cnc is not None and cnc.value("endpoint") == "opc.tcp://127.0.0.1:4840"
            assert gateway is not None and gateway.value("URL") == "http://127.0.0.1:8080/api/gateways"
            store.apply_meta("line-2", "cnc-1", DeviceMeta("opc.tcp://127.0.0.1:4850", "ns=2;s=CNC", []))
            task = asyncio.create_task(namer.run())
            while True:
                moved = await service.catalog.get("0.TEST/device.cnc-1")
                if moved is not None and moved.value("gateway") == "line-2":
                    break
                await asyncio.sleep(0.02)
            task.cancel()
            assert moved.value("endpoint") == "opc.tcp://127.0.0.1:4850"
            assert await service.catalog.get("0.TEST/gateway.line-2") is not None
    finally:
        store.close()
