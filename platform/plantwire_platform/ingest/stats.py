"""Cheap running measurements for ingest: a latency histogram and rate-limited warnings."""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable
from typing import Any, Final

from plantwire.logs import get_logger

# Upper bounds of the latency buckets, in ms: ten per decade, so a percentile is at most ~25% high.
LATENCY_BOUNDS_MS: Final[tuple[float, ...]] = tuple(
    m * 10**e for e in range(-1, 6) for m in (1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 8)
)
_BOUNDS_US: Final = tuple(int(b * 1000) for b in LATENCY_BOUNDS_MS)


class LatencyHistogram:
    """Fixed buckets of (commit time - source time); percentiles are bucket upper bounds.

    Updated once per commit from the writer thread and read from any thread, hence the lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = [0] * (len(_BOUNDS_US) + 1)
        self._total = 0

    def add(self, commit_us: int, source_ts: Iterable[int]) -> None:
        local = Counter(bisect_left(_BOUNDS_US, commit_us - ts) for ts in source_ts)
        with self._lock:
            for index, n in local.items():
                self._counts[index] += n
                self._total += n

    def reset(self) -> None:
        with self._lock:
            self._counts = [0] * (len(_BOUNDS_US) + 1)
            self._total = 0

    def summary(self) -> dict[str, Any]:
        """Count and p50/p95/p99 in ms (None when empty; inf past the last bucket)."""
        with self._lock:
            counts, total = list(self._counts), self._total
        out: dict[str, Any] = {"count": total}
        for name, q in (("p50_ms", 0.50), ("p95_ms", 0.95), ("p99_ms", 0.99)):
            out[name] = _percentile(counts, total, q)
        return out


def _percentile(counts: list[int], total: int, q: float) -> float | None:
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index, n in enumerate(counts):
        seen += n
        if seen >= rank:
            return LATENCY_BOUNDS_MS[index] if index < len(LATENCY_BOUNDS_MS) else float("inf")
    return float("inf")


class RateLimitedWarning:
    """At most one warning per key per `interval` seconds, reporting how many were suppressed."""

    def __init__(self, logger_name: str, event: str, interval: float = 5.0) -> None:
        self._log = get_logger(logger_name)
        self._event = event
        self._interval = interval
        self._next: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()

    def warn(self, key: str, **fields: Any) -> None:
        now = time.monotonic()
        if now < self._next.get(key, 0.0):
            self._suppressed[key] += 1
            return
        self._next[key] = now + self._interval
        suppressed = self._suppressed.pop(key, 0)
        self._log.warning(self._event, reason=key, suppressed=suppressed, **fields)
