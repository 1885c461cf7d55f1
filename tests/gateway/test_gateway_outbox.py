"""The outbox on a real SQLite file: seq survives a restart, unacked rows stay, oldest drop first."""

from __future__ import annotations

import asyncio
from pathlib import Path

from plantwire import wire
from plantwire_gateway.outbox import Outbox
from plantwire_gateway.service import split_batches


def samples(n: int, start: int = 0, tag: str = "Spindle/Speed") -> list[wire.Sample]:
    return [wire.Sample(tag, 1_700_000_000_000_000 + i, float(i)) for i in range(start, start + n)]


async def test_reopen_continues_seq_and_keeps_unacknowledged_rows(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    async with asyncio.timeout(10):
        outbox = await Outbox.open(path, 64 * 1024 * 1024)
        assert await outbox.append("m1", [samples(3), samples(3, 3)]) == [1, 2]
        assert await outbox.append("m2", [samples(1)]) == [1]
        assert await outbox.append("m1", [samples(2, 6)]) == [3]
        rows = await outbox.read_after(0, 10)
        await outbox.delete([rows[0].id])  # only m1 seq 1 was acknowledged
        await outbox.close()

        reopened = await Outbox.open(path, 64 * 1024 * 1024)
        try:
            left = await reopened.read_after(0, 10)
            assert [(r.device, r.seq) for r in left] == [("m1", 2), ("m2", 1), ("m1", 3)]
            assert reopened.rows == 3
            assert wire.decode_data(left[0].payload).samples == samples(3, 3)
            assert await reopened.append("m1", [samples(1, 9)]) == [4]
            assert await reopened.append("m2", [samples(1, 9)]) == [2]
            assert await reopened.append("new", [samples(1)]) == [1]
        finally:
            await reopened.close()


async def test_full_outbox_drops_the_oldest_rows_and_counts_them(tmp_path: Path) -> None:
    max_bytes = 1024 * 1024
    async with asyncio.timeout(20):
        outbox = await Outbox.open(tmp_path / "outbox.sqlite3", max_bytes)
        try:
            for i in range(60):  # ~40 KB per message, ~2.4 MB in all
                await outbox.append("m1", [samples(500, i * 500)])
            assert outbox.dropped > 0
            assert outbox.bytes <= max_bytes
            rows = await outbox.read_after(0, 1000)
            assert len(rows) == outbox.rows == 60 - outbox.dropped
            # The newest survive, in order, and the sequence has no holes among them.
            assert [r.seq for r in rows] == list(range(60 - len(rows) + 1, 61))
        finally:
            await outbox.close()


def test_split_batches_respects_count_and_size_limits() -> None:
    many = samples(4500)
    batches = split_batches(many, max_values=2000)
    assert [len(b) for b in batches] == [2000, 2000, 500]
    assert [s for b in batches for s in b] == many
    big = [wire.Sample("Status/Program", i, "x" * wire.MAX_STRING_VALUE) for i in range(300)]
    for batch in split_batches(big):
        assert len(wire.encode_data(wire.DataBatch(1, 1, batch))) < wire.MAX_PAYLOAD_BYTES
