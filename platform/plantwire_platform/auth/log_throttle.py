"""At most one log line per key and interval, so that an attacker cannot flood the log."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class LogThrottle:
    def __init__(
        self, interval_s: float = 60.0, max_keys: int = 1000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._interval = interval_s
        self._max = max_keys
        self._clock = clock
        self._last: OrderedDict[str, float] = OrderedDict()
        self.suppressed = 0

    def allow(self, key: str) -> bool:
        """True when `key` was not logged within the interval (then it counts as logged now)."""
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self._interval:
            self.suppressed += 1
            return False
        self._last[key] = now
        self._last.move_to_end(key)
        while len(self._last) > self._max:
            self._last.popitem(last=False)
        return True
