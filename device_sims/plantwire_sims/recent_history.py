"""A short in-memory history of every variable, for HistoryRead back-fill (`plantwire sim --history S`).

It is an asyncua `HistoryStorageInterface`, so the server's HistoryRead service reads it with
asyncua's semantics (start and end inclusive, NumValuesPerNode, continuation points); the simulator
fills it straight from its write path with each value it wrote (one deque append per value),
instead of asyncua's per-node internal subscription, which would cost as much as another subscriber.
Values older than the window are dropped as new ones arrive.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta
from typing import Any

from asyncua import ua
from asyncua.server.history import HistoryStorageInterface

from plantwire_sims.timestamps import datetime_to_us, us_to_datetime

MAX_VALUES_PER_RESPONSE = 10_000

Sample = tuple[int, int, Any, int]
"""(SourceTimestamp µs, ServerTimestamp µs, value, VariantType number): a tuple of atoms, which the
garbage collector stops tracking, so keeping minutes of values does not slow every collection down
as keeping the DataValues themselves would (measured: twice the cost per written value)."""


class RecentHistory(HistoryStorageInterface):
    """The last `window` of values per node, oldest first, given back as the DataValues written."""

    def __init__(self, window: timedelta, max_values_per_response: int = MAX_VALUES_PER_RESPONSE):
        super().__init__(max_values_per_response)
        self.window = window
        self.window_us = window // timedelta(microseconds=1)
        self._values: dict[ua.NodeId, deque[Sample]] = {}

    def track(self, node_id: ua.NodeId) -> deque[Sample]:
        """Start keeping `node_id`'s values; the returned deque is what `append` takes."""
        return self._values.setdefault(node_id, deque())

    def append(
        self, values: deque[Sample], source_us: int, server_us: int, value: Any, vtype: int, oldest_us: int
    ) -> None:
        """Keep one value and drop those stamped before `oldest_us`."""
        values.append((source_us, server_us, value, vtype))
        while values[0][0] < oldest_us:
            values.popleft()

    def keep(self, values: deque[Sample], dv: ua.DataValue) -> None:
        """Keep a DataValue the server got otherwise (a client's write)."""
        if dv.SourceTimestamp is None or dv.Value is None:
            return
        source_us = datetime_to_us(dv.SourceTimestamp)
        server_us = datetime_to_us(dv.ServerTimestamp) if dv.ServerTimestamp is not None else source_us
        self.append(
            values,
            source_us,
            server_us,
            dv.Value.Value,
            dv.Value.VariantType.value,
            source_us - self.window_us,
        )

    async def init(self) -> None:
        return None

    async def new_historized_node(self, node_id: ua.NodeId, period: timedelta | None, count: int = 0) -> None:
        self.track(node_id)

    async def save_node_value(self, node_id: ua.NodeId, datavalue: ua.DataValue) -> None:
        self.keep(self.track(node_id), datavalue)

    async def read_node_history(
        self, node_id: ua.NodeId, start: datetime | None, end: datetime | None, nb_values: int
    ) -> tuple[list[ua.DataValue], datetime | None]:
        values = self._values.get(node_id)
        if not values:
            return [], None
        epoch = ua.get_win_epoch()
        start = start or epoch
        end = end or epoch
        lo = datetime_to_us(start) if start != epoch else None
        hi = datetime_to_us(end) if end != epoch else None
        ordered: list[Sample]
        if lo is None:  # no start: newest first, from the end time (or the newest) backwards
            ordered = [s for s in reversed(values) if hi is None or s[0] <= hi]
        elif hi is None:
            ordered = [s for s in values if s[0] >= lo]
        elif lo > hi:  # a backwards read
            ordered = [s for s in reversed(values) if hi <= s[0] <= lo]
        else:
            ordered = [s for s in values if lo <= s[0] <= hi]
        if nb_values and len(ordered) > nb_values:
            ordered = ordered[:nb_values]
        cont = None
        if len(ordered) > self.max_history_data_response_size:
            cont = us_to_datetime(ordered[self.max_history_data_response_size][0])
            ordered = ordered[: self.max_history_data_response_size]
        return [_datavalue(sample) for sample in ordered], cont

    async def new_historized_event(
        self, source_id: ua.NodeId, evtypes: list[Any], period: timedelta | None, count: int = 0
    ) -> None:
        raise ua.UaStatusCodeError(ua.StatusCodes.BadHistoryOperationUnsupported)

    async def save_event(self, event: Any) -> None:
        return None

    async def read_event_history(
        self,
        source_id: ua.NodeId,
        start: datetime | None,
        end: datetime | None,
        nb_values: int,
        evfilter: Any,
    ) -> tuple[list[Any], datetime | None]:
        return [], None

    async def stop(self) -> None:
        self._values.clear()


def _datavalue(sample: Sample) -> ua.DataValue:
    source_us, server_us, value, vtype = sample
    return ua.DataValue(
        ua.Variant(value, ua.VariantType(vtype)),
        ua.StatusCode(),
        SourceTimestamp=us_to_datetime(source_us),  # type: ignore[arg-type]
        ServerTimestamp=us_to_datetime(server_us),  # type: ignore[arg-type]
    )
