"""The platform's garbage-collector policy: a backlog of decoded messages causes no full collections."""

from __future__ import annotations

import gc
from collections import deque
from collections.abc import Iterator

import pytest

from plantwire import wire
from plantwire_platform import gc_policy


@pytest.fixture
def restored_gc() -> Iterator[None]:
    saved = gc.get_threshold()
    gc.collect()  # counts start from zero
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*saved)


def full_collections_during_backlog() -> int:
    """What ingest does to the heap: messages of 100 samples, each alive while 2,000 others arrive."""
    before = gc.get_stats()[2]["collections"]
    waiting: deque[list[wire.Sample]] = deque()
    for m in range(20_000):
        waiting.append([wire.Sample("t", m, float(i)) for i in range(100)])
        if len(waiting) > 2_000:
            waiting.popleft()
    return gc.get_stats()[2]["collections"] - before


def test_the_default_thresholds_collect_everything_again_and_again(restored_gc: None) -> None:
    assert full_collections_during_backlog() >= 1  # what the policy is for


def test_after_settle_a_backlog_runs_no_full_collection(restored_gc: None) -> None:
    gc_policy.settle()
    assert gc.get_freeze_count() > 0  # start-up's objects are out of every collection
    assert full_collections_during_backlog() == 0
    assert gc.get_threshold()[2] == gc_policy.FULL_AFTER
