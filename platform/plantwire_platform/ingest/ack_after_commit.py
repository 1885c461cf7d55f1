"""One writer thread that acknowledges MQTT messages only after their store writes committed.

Both ingests (wire v1 in `mqtt_ingest`, Sparkplug B in `sparkplug_ingest`) share it:

- paho's network thread `offer`s each message's decoded value into a bounded queue; a full queue
  blocks it (paho stops reading, the broker holds the rest: the backpressure);
- the writer thread groups consecutive values of one kind into one commit: data values
  (`points(value)` is not None) up to `max_points` points, registrations (meta and status:
  `registration_rows(value)` is not None) up to `max_registration_rows` rows or `max_registrations`
  messages, either for at most
  `commit_interval_s`. A value of the other kind commits the group before it first, and a value of
  neither kind (Sparkplug births) commits alone after it, so everything is stored in arrival order;
- `commit(values)` writes them (its store calls go through `retry`, which retries a failing store
  with backoff until it succeeds or shutdown gives up); True: every message of the group is
  acknowledged, on the connection that delivered it; False: none is (the broker delivers them again);
- `stop()` lets the writer commit and acknowledge what was taken; a writer that does not finish in
  time (a store that keeps failing, a write that hangs) is abandoned: whatever it had not committed
  stays unacknowledged, so the broker delivers it again to the next session.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Generic, Literal, TypeVar

import paho.mqtt.client as mqtt

from plantwire.logs import get_logger
from plantwire.metrics_text import FINE_SECONDS_BOUNDS, Histogram
from plantwire_platform.store.model import StoreError

log = get_logger(__name__)

T = TypeVar("T")

PUT_POLL_S: Final = 0.1
RETRY_FIRST_S: Final = 0.1
RETRY_MAX_S: Final = 5.0
SHUTDOWN_TIMEOUT_S: Final = 30.0


@dataclass(frozen=True, slots=True)
class Delivery(Generic[T]):
    value: T
    mid: int
    qos: int
    generation: int
    """Which connection delivered it; an ack is only valid on that same connection."""
    received: float
    """`time.monotonic()` when it was offered: its wait for the commit is measured from here."""


_STOP: Final = object()
Kind = Literal["data", "registration"]


def _never(value: object) -> int | None:
    return None


class AckAfterCommitWriter(Generic[T]):
    """The queue, the writer thread, its retries, acknowledgements and shutdown (see module doc)."""

    def __init__(
        self,
        *,
        name: str,
        client: mqtt.Client,
        queue_max: int,
        commit_interval_s: float,
        max_points: int,
        points: Callable[[T], int | None],
        commit: Callable[[list[T]], bool],
        registration_rows: Callable[[T], int | None] = _never,
        max_registration_rows: int = 1,
        max_registrations: int | None = None,
        shutdown_timeout_s: float = SHUTDOWN_TIMEOUT_S,
    ) -> None:
        self._name = name
        self._client = client
        self._queue: queue.Queue[Delivery[T] | object] = queue.Queue(maxsize=queue_max)
        self._interval = commit_interval_s
        self._max_points = max_points
        self._points = points
        self._registration_rows = registration_rows
        self._limits: dict[Kind, int] = {"data": max_points, "registration": max_registration_rows}
        self._max_messages: dict[Kind, int | None] = {"data": None, "registration": max_registrations}
        self._commit = commit
        self._shutdown_timeout = shutdown_timeout_s
        self._stopping = threading.Event()
        self._abandon = threading.Event()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self.generation = 0
        """The current connection's number; the paho thread bumps it with `connected()`."""
        # Counters: written by the writer thread only, read by anyone.
        self.store_errors = 0
        self.store_failing = False
        self.crashed = False
        self.receive_to_commit = Histogram(FINE_SECONDS_BOUNDS)
        """Per data message: offered (received from the broker, decoded) to committed. The
        platform's own share of the latency: queueing, grouping, the commit itself."""

    # --- any thread ------------------------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    @property
    def capacity(self) -> int:
        return self._queue.maxsize

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop taking messages; commit and acknowledge what was taken; give up on a stuck writer."""
        self._stopping.set()
        while self._thread.is_alive():
            try:
                self._queue.put(_STOP, timeout=PUT_POLL_S)
                break
            except queue.Full:
                continue
        self._thread.join(self._shutdown_timeout)
        if self._thread.is_alive():
            log.error("ingest_writer_stuck", writer=self._name, waited_s=self._shutdown_timeout)
            self._abandon.set()  # its messages stay unacknowledged: the broker delivers them again
            self._thread.join(self._shutdown_timeout)

    # --- paho's thread ---------------------------------------------------------------------------

    def connected(self) -> None:
        """A new connection: acks of messages delivered by the previous one are void from now on."""
        self.generation += 1

    def offer(self, value: T, mid: int, qos: int) -> bool:
        """Queue a message's value (blocking while the queue is full); False once stopping."""
        item = Delivery(value, mid, qos, self.generation, time.monotonic())
        while not self._stopping.is_set():
            try:
                self._queue.put(item, timeout=PUT_POLL_S)
                return True
            except queue.Full:
                continue
        return False  # not acknowledged: the broker delivers it again to our next session

    # --- the writer thread -----------------------------------------------------------------------

    def retry(self, what: str, write: Callable[[], object]) -> bool:
        """Run a store write until it succeeds (True) or shutdown abandons it (False)."""
        delay = RETRY_FIRST_S
        while True:
            if self._abandon.is_set():
                return False
            try:
                write()
                self.store_failing = False
                return True
            except StoreError as err:
                self.store_errors += 1
                self.store_failing = True
                log.error("store_write_failed", operation=what, error=str(err), retry_in_s=delay)
            if self._abandon.wait(delay):
                return False
            delay = min(delay * 2, RETRY_MAX_S)

    def _main(self) -> None:
        try:
            self._loop()
        except BaseException:
            self.crashed = True  # /readyz and /api/health say so from now on
            log.exception("ingest_writer_crashed", writer=self._name)

    def _kind(self, value: T) -> tuple[Kind | None, int]:
        """Which group the value joins, with its weight (points or rows); None: it commits alone."""
        n = self._points(value)
        if n is not None:
            return "data", n
        n = self._registration_rows(value)
        if n is not None:
            return "registration", n
        return None, 0

    def _loop(self) -> None:
        group: list[Delivery[T]] = []
        group_kind: Kind | None = None
        weight = 0
        deadline = 0.0
        while True:
            timeout = max(deadline - time.monotonic(), 0.0) if group else None
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                self._flush(group, group_kind)
                group, weight = [], 0
                continue
            if item is _STOP:
                self._flush(group, group_kind)
                return
            assert isinstance(item, Delivery)
            kind, n = self._kind(item.value)
            if group and kind != group_kind:
                self._flush(group, group_kind)  # a change of kind: what came before commits first
                group, weight = [], 0
            if kind is None:
                self._flush([item], None)
                continue
            if not group:
                deadline = time.monotonic() + self._interval
                group_kind = kind
            group.append(item)
            weight += n
            full = weight >= self._limits[kind] or len(group) == self._max_messages[kind]
            if full or time.monotonic() >= deadline:
                self._flush(group, group_kind)
                group, weight = [], 0

    def _flush(self, group: list[Delivery[T]], kind: Kind | None) -> None:
        if not group or self._abandon.is_set():
            return
        if not self._commit([d.value for d in group]):
            return  # abandoned: left unacknowledged
        if kind == "data":
            committed = time.monotonic()
            for d in group:
                self.receive_to_commit.observe(committed - d.received)
        generation = self.generation
        for d in group:
            # An ack belongs to the connection that delivered the message; after a reconnect the
            # broker delivers it again (and the store ignores the copy), so a stale ack is skipped.
            if d.generation == generation and d.qos > 0:
                self._client.ack(d.mid, d.qos)
