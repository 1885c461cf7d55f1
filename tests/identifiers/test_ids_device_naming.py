"""Devices and gateways get identifiers when their meta reaches the platform's (real SQLite) store.

The namer follows the store's device changes (store/device_changes.py) in pages and keeps its
cursor in the identifier catalog: every new or moved device is read once, nothing else is, and a
restart resumes where the last page ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from plantwire.wire import DataBatch, DeviceMeta, DeviceStatus, Sample
from plantwire_platform.identifiers.device_naming import ChangeReader, DeviceNamer
from plantwire_platform.identifiers.service import IdentifierService, open_identifiers
from plantwire_platform.identifiers.settings import IdentifierSettings
from plantwire_platform.store.device_changes import ChangeCursor, DeviceChange
from plantwire_platform.store.model import IncomingBatch
from plantwire_platform.store.sqlite import SqliteStore

T0 = 1_700_000_000_000_000


def reader(store: SqliteStore, pages: list[int] | None = None) -> ChangeReader:
    async def changes(after: ChangeCursor, limit: int) -> Sequence[DeviceChange]:
        rows = await asyncio.to_thread(store.changed_devices, after, limit)
        if pages is not None:
            pages.append(len(rows))
        return rows

    return changes


async def test_devices_are_named_when_they_appear_and_renamed_when_they_move(
    service: IdentifierService, tmp_path: Path
) -> None:
    store = SqliteStore.open(tmp_path / "store.sqlite")
    namer = DeviceNamer(service.registry, reader(store), every_s=0.05)
    try:
        async with asyncio.timeout(20):
            assert await namer.once() == 0 and await namer.identifier_of("cnc-1") is None
            store.apply_meta("line-1", "cnc-1", DeviceMeta("opc.tcp://127.0.0.1:4840", "ns=2;s=CNC", []))
            store.apply_meta("line-1", "pump-1", DeviceMeta("opc.tcp://127.0.0.1:4841", "ns=2;s=P", []))
            assert await namer.once() == 2
            assert await namer.once() == 0  # nothing new: nothing read, nothing rewritten
            assert await namer.identifier_of("cnc-1") == "0.TEST/device.cnc-1"
            assert await namer.identifiers_of(["cnc-1", "pump-1", "nobody"]) == {
                "cnc-1": "0.TEST/device.cnc-1",
                "pump-1": "0.TEST/device.pump-1",
            }
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


async def test_naming_reads_each_change_once_in_pages_and_resumes_after_a_restart(
    settings: IdentifierSettings, tmp_path: Path
) -> None:
    store = SqliteStore.open(tmp_path / "store.sqlite")
    ids_path = tmp_path / "identifiers.sqlite"
    # 2,500 devices registered by the write path (data before any meta), as ingest does.
    store.write_batches(
        [
            IncomingBatch(f"gw-{d % 7}", f"dev-{d:05d}", DataBatch(1, T0, [Sample("t", T0, float(d))]))
            for d in range(2500)
        ]
    )
    try:
        async with asyncio.timeout(30):
            async with open_identifiers(settings, ids_path) as service:
                pages: list[int] = []
                namer = DeviceNamer(service.registry, reader(store, pages), page=1000)
                assert await namer.once() == 2500
                assert pages == [1000, 1000, 500] and namer.rows_read == 2500
                total, _ = await service.catalog.list_page("0.TEST", 0, 1)
                assert total == 1 + 7 + 2500  # ADMIN, the gateways, the devices
                assert await namer.identifier_of("dev-02499") == "0.TEST/device.dev-02499"

                # More data, statuses with the same endpoint, a state change: no device changed.
                store.write_batches(
                    [IncomingBatch("gw-0", "dev-00000", DataBatch(2, T0 + 1, [Sample("t", T0 + 1, 1.0)]))]
                )
                store.apply_device_status("gw-1", "dev-00001", DeviceStatus("online", T0, None, None))
                assert await namer.once() == 0 and namer.rows_read == 2500

                # A new endpoint and a new device are read, and only they.
                moved_status = DeviceStatus("online", T0, "opc.tcp://h:1", None)
                store.apply_device_status("gw-1", "dev-00001", moved_status)
                store.apply_meta("gw-9", "dev-new", DeviceMeta("opc.tcp://h:2", "ns=2;s=N", []))
                assert await namer.once() == 2 and namer.rows_read == 2502
                moved = await service.catalog.get("0.TEST/device.dev-00001")
                assert moved is not None and moved.value("endpoint") == "opc.tcp://h:1"

            # Meanwhile the platform is down: one device moves, one appears.
            store.apply_meta("gw-3", "dev-00002", DeviceMeta("opc.tcp://h:3", "ns=2;s=M", []))
            store.apply_meta("gw-3", "dev-later", DeviceMeta("opc.tcp://h:4", "ns=2;s=L", []))

            async with open_identifiers(settings, ids_path) as service:
                pages = []
                namer = DeviceNamer(service.registry, reader(store, pages), page=1000)
                assert await namer.once() == 2 and namer.rows_read == 2
                # One probe that the saved cursor's row is still there (the row and the two
                # changes after it), then the one page of the two changes.
                assert pages == [3, 2]
                again = await service.catalog.get("0.TEST/device.dev-00002")
                assert again is not None and again.value("gateway") == "gw-3"
                assert await namer.identifier_of("dev-later") == "0.TEST/device.dev-later"
                assert await namer.once() == 0 and namer.rows_read == 2
    finally:
        store.close()


async def test_a_store_made_anew_beside_a_kept_identifiers_file_gets_its_devices_named(
    settings: IdentifierSettings, tmp_path: Path
) -> None:
    """The saved cursor belongs to the old store: its change numbers mean nothing in the new one."""
    ids_path = tmp_path / "identifiers.sqlite"
    old = SqliteStore.open(tmp_path / "old.sqlite")
    try:
        for d in range(5):
            old.apply_meta("gw", f"old-{d}", DeviceMeta(f"opc.tcp://h:{d}", "ns=2;s=O", []))
        async with asyncio.timeout(20), open_identifiers(settings, ids_path) as service:
            assert await DeviceNamer(service.registry, reader(old)).once() == 5
    finally:
        old.close()
    new = SqliteStore.open(tmp_path / "new.sqlite")  # change numbers start again at 1
    try:
        new.apply_meta("gw", "new-0", DeviceMeta("opc.tcp://h:9", "ns=2;s=N", []))
        async with asyncio.timeout(20), open_identifiers(settings, ids_path) as service:
            namer = DeviceNamer(service.registry, reader(new))
            assert await namer.once() == 1
            assert await namer.identifier_of("new-0") == "0.TEST/device.new-0"
    finally:
        new.close()
