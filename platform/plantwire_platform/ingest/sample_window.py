"""Which source timestamps ingest believes: not before 2000-01-01, not more than `max_future_s` ahead.

A value stamped in year 9999 would otherwise be every tag's `latest` forever (nothing newer can
come), and one stamped 1970 would sit outside every dashboard's window and distort latency figures.
Such samples are rejected one by one (the rest of their message is stored) and counted by reason.
"""

from __future__ import annotations

import dataclasses
from typing import Final, Literal

from plantwire import wire

EARLIEST_US: Final = 946_684_800_000_000
"""2000-01-01T00:00:00Z in µs: no plant value is older than the wire contract."""

WindowReason = Literal["future", "before_2000"]
WINDOW_REASONS: Final[tuple[WindowReason, ...]] = ("future", "before_2000")


@dataclasses.dataclass(frozen=True, slots=True)
class Windowed:
    batch: wire.DataBatch
    """The batch with only the samples inside the window (the same object when all were)."""
    future: int
    before_2000: int


def in_window(batch: wire.DataBatch, now_us: int, max_future_us: int) -> Windowed:
    latest = now_us + max_future_us
    samples = batch.samples
    if all(EARLIEST_US <= s.ts <= latest for s in samples):
        return Windowed(batch, 0, 0)
    kept = [s for s in samples if EARLIEST_US <= s.ts <= latest]
    future = sum(1 for s in samples if s.ts > latest)
    return Windowed(dataclasses.replace(batch, samples=kept), future, len(samples) - len(kept) - future)
