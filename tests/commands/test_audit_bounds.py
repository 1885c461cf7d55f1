"""Audit entries stay small (issue 11, item 8): request values and messages are cut with a marker;
retention runs at start. Real SQLite store, the real `CommandService`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from plantwire import wire
from plantwire_platform.commands.audit_bounds import bounded, cut
from plantwire_platform.commands.audit_retention import audit_retention_running
from plantwire_platform.commands.errors import UnknownTarget
from plantwire_platform.commands.service import CommandService
from plantwire_platform.store.model import AuditEntry
from plantwire_platform.store.sqlite import SqliteStore


def test_cut_keeps_short_text_and_marks_what_it_left_out() -> None:
    assert cut("short", 256) == "short"
    long = "é" * 1000  # 2000 bytes of UTF-8: cut on a character boundary
    out = cut(long, 256)
    assert len(out.encode()) <= 256 and out.startswith("é") and "…[truncated: 2000 bytes," in out


def test_bounded_cuts_every_request_value_and_the_message() -> None:
    entry = AuditEntry(
        0, 1, "u", "write", None, "d", None,
        {"tag": "t", "value": list(range(10_000)), "root": "x" * 10_000}, "rejected", 400, None,
        "m" * 10_000, None,
    )  # fmt: skip
    out = bounded(entry, 512)
    assert out.request["tag"] == "t"
    assert all(len(orjson.dumps(v)) <= 512 + 2 for v in out.request.values())
    assert out.message is not None and len(out.message.encode()) <= 512
    assert str(out.request["value"]).startswith("[0,1,2,")


async def test_a_900_kb_write_leaves_a_small_audit_row(tmp_path: Path) -> None:
    with SqliteStore.open(tmp_path / "pw.sqlite") as store:
        service = CommandService(store, None, audit_max_field_bytes=4096)
        try:
            with pytest.raises(UnknownTarget):
                await asyncio.wait_for(service.write("mallory", "cnc-1", "Speed", "A" * 900_000), 10)
        finally:
            service.close()
        (entry,) = store.list_audit()
        assert (entry.user, entry.outcome) == ("mallory", "rejected")
        assert len(orjson.dumps(entry.request)) < 4500
        assert "…[truncated: 900000 bytes" in entry.request["value"]
        (size,) = store._query("SELECT length(request) + coalesce(length(message), 0) FROM audit")[0]
        assert size < 5000


async def test_retention_runs_at_start(tmp_path: Path) -> None:
    with SqliteStore.open(tmp_path / "pw.sqlite") as store:
        old = wire.now_us() - 400 * 86_400_000_000
        for ts in (old, old, wire.now_us()):
            store.add_audit(AuditEntry(0, ts, "u", "write", None, "d", None, {}, "ok", 200, 0, None, None))
        async with asyncio.timeout(10), audit_retention_running(store, 1000, 365, 3600):
            while len(store.list_audit()) != 1:
                await asyncio.sleep(0.02)
