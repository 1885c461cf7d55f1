"""Live points inside the platform: what was just committed, fanned out to subscribers.

The ingest writer thread calls `publish_committed` after each commit; the bus crosses into the
event loop once per commit (not per point) and hands each subscriber the points that match its
device/tag patterns. Every subscriber has its own bounded queue: a slow subscriber (a web page,
an app) loses its own oldest points, counted in `dropped`, and never slows ingest or anyone else.

A committed batch is one device's: the bus asks each subscription about the device once (cached)
and builds a `LivePoint` only for a sample some subscription takes, so the built-in apps' narrow
patterns (`pump-*:Condition/VibrationRMS`) cost nothing per value of the devices they do not name.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from plantwire.wire import JsonValue
from plantwire_platform.store.model import IncomingBatch


@dataclass(frozen=True, slots=True)
class LivePoint:
    device: str
    tag: str
    ts: int
    value: JsonValue
    status: int
    derived_by: str | None = None
    """The app that computed this point, or None for a value from a device."""


@dataclass(eq=False)
class Subscription:
    """Points matching `device` and `tag` (fnmatch patterns), in commit order."""

    device: str = "*"
    tag: str = "*"
    maxsize: int = 10_000
    dropped: int = 0
    _buffer: deque[LivePoint] = field(init=False, repr=False)
    _ready: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    _devices: dict[str, bool] = field(default_factory=dict, repr=False)
    _tags: dict[str, bool] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._buffer = deque(maxlen=self.maxsize)

    def matches(self, device: str, tag: str) -> bool:
        return self.matches_device(device) and self.matches_tag(tag)

    def matches_device(self, device: str) -> bool:
        return _cached_match(self._devices, device, self.device)

    def matches_tag(self, tag: str) -> bool:
        return _cached_match(self._tags, tag, self.tag)

    def _offer(self, points: list[LivePoint]) -> None:
        # The deque's maxlen discards the oldest points; count what it discards.
        self.dropped += max(0, len(self._buffer) + len(points) - self.maxsize)
        self._buffer.extend(points)
        self._ready.set()

    def take(self) -> list[LivePoint]:
        """Everything waiting now (possibly nothing), without blocking."""
        points = list(self._buffer)
        self._buffer.clear()
        self._ready.clear()
        return points

    async def next_batch(self) -> list[LivePoint]:
        """Wait for at least one point, then return all that are waiting."""
        while not self._buffer:
            await self._ready.wait()
        return self.take()

    def __aiter__(self) -> AsyncIterator[list[LivePoint]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[list[LivePoint]]:
        while True:
            yield await self.next_batch()


def _cached_match(cache: dict[str, bool], name: str, pattern: str) -> bool:
    hit = cache.get(name)
    if hit is None:
        if len(cache) > 100_000:
            cache.clear()
        hit = cache[name] = fnmatchcase(name, pattern)
    return hit


class LiveBus:
    """Fan-out of committed points to in-process subscribers (web streams, apps)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._subscriptions: list[Subscription] = []
        self.published = 0

    def publish_committed(self, batches: Sequence[IncomingBatch]) -> None:
        """Called from the ingest writer thread after a commit."""
        if self._subscriptions:
            self._loop.call_soon_threadsafe(self._fanout_batches, batches)

    def _fanout_batches(self, batches: Sequence[IncomingBatch]) -> None:
        """`publish` of the batches' points, built only where a subscription takes them."""
        self.published += sum(len(b.batch.samples) for b in batches)
        taken: dict[Subscription, list[LivePoint]] = {}
        for b in batches:
            device = b.device
            subs = [sub for sub in self._subscriptions if sub.matches_device(device)]
            if not subs:
                continue
            if len(subs) == 1 and subs[0].tag == "*":  # one subscriber of everything (a web page)
                taken.setdefault(subs[0], []).extend(
                    LivePoint(device, s.tag, s.ts, s.value, s.status) for s in b.batch.samples
                )
                continue
            for s in b.batch.samples:
                point = None
                for sub in subs:
                    if sub.matches_tag(s.tag):
                        if point is None:
                            point = LivePoint(device, s.tag, s.ts, s.value, s.status)
                        taken.setdefault(sub, []).append(point)
        for sub, points in taken.items():
            sub._offer(points)

    def publish(self, points: Sequence[LivePoint]) -> None:
        """Hand points to every matching subscriber (in the event loop's thread)."""
        self.published += len(points)
        for sub in self._subscriptions:
            mine = [p for p in points if sub.matches(p.device, p.tag)]
            if mine:
                sub._offer(mine)

    @contextlib.contextmanager
    def subscribe(self, device: str = "*", tag: str = "*", maxsize: int = 10_000) -> Iterator[Subscription]:
        sub = Subscription(device, tag, maxsize)
        self._subscriptions.append(sub)
        try:
            yield sub
        finally:
            self._subscriptions.remove(sub)

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    def subscriptions(self) -> list[Subscription]:
        """The current subscriptions (a copy), e.g. for their `dropped` counts in /metrics."""
        return list(self._subscriptions)
