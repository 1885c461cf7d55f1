"""Ingest's figures: the typed `IngestStats` snapshot, a latency histogram, rate-limited warnings."""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from plantwire.logs import get_logger
from plantwire.metrics_text import FINE_SECONDS_BOUNDS, Labels, MetricsText

# Upper bounds of the latency buckets, in ms: ten per decade, so a percentile is at most ~25% high.
LATENCY_BOUNDS_MS: Final[tuple[float, ...]] = tuple(round(b * 1000, 3) for b in FINE_SECONDS_BOUNDS)
_BOUNDS_US: Final = tuple(round(b * 1_000_000) for b in FINE_SECONDS_BOUNDS)


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Source timestamp to store commit, per point since start (or the last reset)."""

    count: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    late: int = 0
    """Points older than the last bucket (backfill after an outage, a wrong device clock); they rank
    as the last bucket's bound, so no value can drive a percentile to infinity."""


@dataclass(frozen=True, slots=True)
class IngestStats:
    """A snapshot of ingest's counters and state (`MqttIngest.stats()`), read by health and metrics."""

    connected: bool = False
    subscribed: bool = False
    messages: int = 0
    points_stored: int = 0
    duplicates: int = 0
    seq_gaps: int = 0
    decode_errors: dict[str, int] = field(default_factory=dict)
    """Rejected messages by reason (topic, json, oversized, schema)."""
    ownership_rejected: dict[str, int] = field(default_factory=dict)
    """Messages of a device from a gateway that does not own it, by kind (data, meta, status)."""
    values_rejected: dict[str, int] = field(default_factory=dict)
    """Values outside the time window, by reason (future, before_2000); their message's others are stored."""
    seq_jumps: int = 0
    """Data messages whose seq jumped beyond `ingest.max_seq_jump` (not counted as gaps)."""
    store_errors: int = 0
    store_failing: bool = False
    queue_depth: int = 0
    queue_max: int = 0
    reconnects: int = 0
    commits: int = 0
    """Commits of data messages."""
    registrations: int = 0
    """Meta and status messages applied to the catalog."""
    registration_commits: int = 0
    """Commits of meta and status messages (many share one)."""
    last_commit_ms: float | None = None
    latency: LatencySummary = LatencySummary()
    writer_alive: bool = True
    reader_alive: bool = True

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class LatencyHistogram:
    """Fixed buckets of (commit time - source time); percentiles are bucket upper bounds.

    Updated once per commit from the writer thread and read from any thread, hence the lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = [0] * (len(_BOUNDS_US) + 1)
        self._total = 0
        self._sum_us = 0

    def add(self, commit_us: int, source_ts: Iterable[int]) -> None:
        local: Counter[int] = Counter()
        # Samples of one commit share few timestamps (every tag of a message is sampled at once):
        # count them per timestamp first (C speed), then find each timestamp's bucket once.
        sum_us = 0
        for ts, n in Counter(source_ts).items():
            local[bisect_left(_BOUNDS_US, commit_us - ts)] += n
            sum_us += (commit_us - ts) * n
        with self._lock:
            for index, n in local.items():
                self._counts[index] += n
                self._total += n
            self._sum_us += sum_us

    def reset(self) -> None:
        with self._lock:
            self._counts = [0] * (len(_BOUNDS_US) + 1)
            self._total = 0
            self._sum_us = 0

    def write(self, out: MetricsText, name: str, help_text: str, labels: Labels | None = None) -> None:
        """The buckets as a Prometheus histogram (seconds): unlike the quantiles, these add up
        across workers and over any time window (`rate()` of the buckets, or two scrapes' difference)."""
        with self._lock:
            counts, sum_us = list(self._counts), self._sum_us
        out.histogram(name, help_text, FINE_SECONDS_BOUNDS, counts, sum_us / 1e6, labels)

    def summary(self) -> LatencySummary:
        """Count and p50/p95/p99 in ms (None when empty).

        Points past the last bucket (`late`) rank as the last bucket's bound, never infinity: one
        value stamped years ago must not turn a latency figure into +Inf.
        """
        with self._lock:
            counts, total = list(self._counts), self._total
        late = counts[-1]
        p50, p95, p99 = (_percentile(counts, total, q) for q in (0.50, 0.95, 0.99))
        return LatencySummary(total, p50, p95, p99, late)


def _percentile(counts: list[int], total: int, q: float) -> float | None:
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index, n in enumerate(counts):
        seen += n
        if seen >= rank:
            return LATENCY_BOUNDS_MS[min(index, len(LATENCY_BOUNDS_MS) - 1)]
    return LATENCY_BOUNDS_MS[-1]


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
