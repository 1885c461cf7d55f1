"""The SQLite catalog: persistence, create-vs-overwrite, paging, the hot cache, the registry."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from plantwire_platform.identifiers.catalog import HandleExists, IdentifierCatalog
from plantwire_platform.identifiers.handle import Handle, HandleValue
from plantwire_platform.identifiers.registry import LocalRegistry
from plantwire_platform.identifiers.settings import IdentifierSettings


def _h(suffix: str, url: str = "http://x") -> Handle:
    return Handle("0.TEST", suffix, (HandleValue(1, "URL", url, timestamp=1.0),))


async def test_handles_survive_reopening_and_create_refuses_an_existing_one(tmp_path: Path) -> None:
    path = tmp_path / "platform.sqlite"
    async with asyncio.timeout(10):
        async with IdentifierCatalog(path) as cat:
            assert await cat.put(_h("device.a"), 1.0) is True
            with pytest.raises(HandleExists):
                await cat.put(_h("device.a", "http://other"), 2.0)
            assert await cat.put(_h("device.a", "http://y"), 3.0, overwrite=True) is False
        async with IdentifierCatalog(path, hot_cache_size=1) as cat:
            got = await cat.get("0.TEST/device.a")
            assert got is not None and got.value("URL") == "http://y"
            assert await cat.get("0.TEST/device.none") is None
            assert await cat.delete("0.TEST/device.a") is True
            assert await cat.get("0.TEST/device.a") is None
            assert await cat.delete("0.TEST/device.a") is False


async def test_paging_lists_by_suffix_and_counts_the_prefix(tmp_path: Path) -> None:
    async with asyncio.timeout(10), IdentifierCatalog(tmp_path / "c.sqlite") as cat:
        assert await cat.put_many([_h(f"part.m.{i:03d}") for i in range(25)], 1.0) == 25
        assert await cat.put_many([_h("part.m.000"), _h("part.m.100")], 1.0) == 1
        total, page = await cat.list_page("0.TEST", page=2, page_size=10)
        assert total == 26 and page == [f"0.TEST/part.m.{i:03d}" for i in (20, 21, 22, 23, 24)] + [
            "0.TEST/part.m.100"
        ]
        assert await cat.list_page("88.1.2", 0, 10) == (0, [])


async def test_unsynced_handles_until_marked_and_again_after_a_change(tmp_path: Path) -> None:
    async with asyncio.timeout(10), IdentifierCatalog(tmp_path / "c.sqlite") as cat:
        await cat.put_many([_h("device.a"), _h("device.b")], 1.0)
        assert [h.suffix for h in await cat.unsynced()] == ["device.a", "device.b"]
        await cat.mark_synced(["0.TEST/device.a", "0.TEST/device.b"], 2.0)
        assert await cat.unsynced() == []
        await cat.put(_h("device.b", "http://new"), 3.0, overwrite=True)
        assert [h.suffix for h in await cat.unsynced()] == ["device.b"]


async def test_registry_names_devices_by_the_rule_and_updates_only_on_change(tmp_path: Path) -> None:
    settings = IdentifierSettings(prefix="0.TEST", public_url="http://plant.example:8080")
    clock = iter(range(1000, 2000)).__next__
    async with asyncio.timeout(10), IdentifierCatalog(tmp_path / "c.sqlite") as cat:
        reg = LocalRegistry(settings, cat, clock=lambda: float(clock()))
        meta = {"endpoint": "opc.tcp://127.0.0.1:4840", "root": "ns=2;s=CNC", "tags": []}
        first = await reg.ensure_device("line-1", "cnc-1", meta)
        assert first.name == "0.TEST/device.cnc-1"
        assert first.value("URL") == "http://plant.example:8080/api/devices/cnc-1"
        assert first.value("gateway") == "line-1" and first.value("endpoint") == meta["endpoint"]
        assert first.value("HS_ADMIN") == {
            "handle": "0.TEST/ADMIN",
            "index": 300,
            "permissions": "011111110011",
        }
        again = await reg.ensure_device("line-1", "cnc-1", meta)
        assert again.values == first.values  # same timestamps: nothing rewritten
        moved = await reg.ensure_device("line-2", "cnc-1", meta)
        assert moved.value("gateway") == "line-2"
        stored = await cat.get("0.TEST/device.cnc-1")
        assert stored is not None and stored.value("gateway") == "line-2"
        serial = await reg.ensure_device("line-1", "cnc-2", {**meta, "model": "VMC-850", "serial": "A17"})
        assert serial.suffix == "device.vmc-850.a17" and serial.value("serial") == "A17"
        part = await reg.mint("part", "cnc-1.17", {"machine": "cnc-1", "start": "s", "end": "e"})
        assert part.name == "0.TEST/part.cnc-1.17"
        with pytest.raises(HandleExists):
            await reg.mint("part", "cnc-1.17", {"machine": "cnc-1", "start": "s", "end": "e"})
