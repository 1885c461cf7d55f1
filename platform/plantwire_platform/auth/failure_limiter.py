"""Failed authentication attempts per client address, limited with a token bucket.

Each address may fail `burst` times; the bucket refills at one attempt per `refill_s`. An address
with an empty bucket gets 429 with Retry-After for every further *failed* attempt, counted, and a
single warning when it runs out (so an attacker cannot flood the log either).

A valid credential always passes, even from a limited address. On the demo every local process,
the operator's browser included, is 127.0.0.1: a lock-out by address would let any local process
lock the operator out. This costs no protection: a token has 256 random bits, so no rate of
guessing finds one; the limiter exists to bound the work and the log volume an attacker causes and
to make the attempt visible.

Memory is bounded: at most `max_addresses` buckets, the least recently failed dropped first.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from plantwire.logs import get_logger
from plantwire_platform.auth.auth_stats import AuthStats, FailureReason

log = get_logger(__name__)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float
    warned: bool = False


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to answer a failed attempt: 401, or 429 with Retry-After when the address is limited."""

    limited: bool
    retry_after_s: int = 0


class FailureLimiter:
    def __init__(
        self,
        burst: int,
        refill_s: float,
        max_addresses: int,
        stats: AuthStats,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._burst = float(burst)
        self._refill_s = refill_s
        self._max = max_addresses
        self._stats = stats
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def _bucket(self, address: str, now: float) -> _Bucket:
        bucket = self._buckets.get(address)
        if bucket is None:
            bucket = self._buckets[address] = _Bucket(self._burst, now)
            while len(self._buckets) > self._max:
                _, dropped = self._buckets.popitem(last=False)
                if dropped.tokens < 1:
                    self._stats.limited_addresses -= 1
        else:
            self._buckets.move_to_end(address)
            gained = (now - bucket.updated) / self._refill_s
            was_limited = bucket.tokens < 1
            bucket.tokens = min(self._burst, bucket.tokens + gained)
            bucket.updated = now
            if was_limited and bucket.tokens >= 1:
                self._stats.limited_addresses -= 1
                bucket.warned = False
        return bucket

    def failed(self, address: str, reason: FailureReason, path: str) -> Verdict:
        """Count one failed attempt from `address`; say whether it is now limited."""
        self._stats.auth_failures_total[reason] += 1
        now = self._clock()
        bucket = self._bucket(address, now)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            if bucket.tokens < 1:
                self._stats.limited_addresses += 1
            log.info("auth_failed", remote=address, reason=reason, path=path)
            return Verdict(limited=False)
        self._stats.refused_total["rate_limited"] += 1
        if not bucket.warned:
            bucket.warned = True
            log.warning("auth_rate_limited", remote=address, refill_s=self._refill_s)
        retry = max(1, math.ceil((1 - bucket.tokens) * self._refill_s))
        return Verdict(limited=True, retry_after_s=retry)
