"""The platform process's garbage collector: full collections rare, start-up objects left out.

Measured under ingest load (docs/scaling.md, "Where the ingest CPU goes"): with CPython's default
thresholds (700, 10, 10) the platform ran a full collection about once a second, each 0.15-0.3 s
with the GIL held (every thread stops), ~25% of the process's CPU. Why: a decoded message (a
hundred `wire.Sample` objects) lives for the second or more it waits for its commit and its
acknowledgement, so the young collections promote hundreds of thousands of objects a second into
the oldest generation, and CPython collects the oldest generation again as soon as those promoted
since the last full collection exceed a quarter of the ones it holds. A full collection visits
every container, each entry of the store's and the registry's big caches included.

So, once the platform has started (`settle`): `gc.freeze()` moves everything built at start-up
(modules, classes, settings, the caches as loaded) out of every later collection, and the oldest
generation is collected only after `FULL_AFTER` collections of the middle one instead of 10 (about
a minute at 30,000 values/s, and less often at lighter loads). The young generations keep their
thresholds: their collections stay cheap and frequent, and cyclic garbage is still freed, the
long-lived kind only later; reference counting frees everything else at once, as always.
"""

from __future__ import annotations

import gc
from typing import Final

FULL_AFTER: Final = 1000
"""Collections of the middle generation before the oldest is collected (CPython's default: 10)."""


def settle() -> None:
    """Apply the policy: call once the process has started (from the entry point, not a library)."""
    gen0, gen1, _ = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(gen0, gen1, FULL_AFTER)
