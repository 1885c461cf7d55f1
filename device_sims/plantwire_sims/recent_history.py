"""A short in-memory history of every variable, for HistoryRead back-fill (`plantwire sim --history S`).

It is an asyncua `HistoryStorageInterface`, so the server's HistoryRead service reads it with
asyncua's semantics (start and end inclusive, NumValuesPerNode, continuation points); the simulator
fills it straight from its write path with the very DataValue it wrote (one deque append per value),
instead of asyncua's per-node internal subscription, which would cost as much as another subscriber.
Values older than the window are dropped as new ones arrive.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta
from typing import Any

from asyncua import ua
from asyncua.server.history import HistoryStorageInterface

MAX_VALUES_PER_RESPONSE = 10_000


class RecentHistory(HistoryStorageInterface):
    """The last `window` of DataValues per node, oldest first."""

    def __init__(self, window: timedelta, max_values_per_response: int = MAX_VALUES_PER_RESPONSE):
        super().__init__(max_values_per_response)
        self.window = window
        self._values: dict[ua.NodeId, deque[ua.DataValue]] = {}

    def track(self, node_id: ua.NodeId) -> deque[ua.DataValue]:
        """Start keeping `node_id`'s values; the returned deque is what `append` takes."""
        return self._values.setdefault(node_id, deque())

    def append(self, values: deque[ua.DataValue], dv: ua.DataValue, oldest: datetime) -> None:
        """Keep `dv` (stamped with a SourceTimestamp) and drop values stamped before `oldest`."""
        values.append(dv)
        while values[0].SourceTimestamp < oldest:  # type: ignore[operator]
            values.popleft()

    async def init(self) -> None:
        return None

    async def new_historized_node(self, node_id: ua.NodeId, period: timedelta | None, count: int = 0) -> None:
        self.track(node_id)

    async def save_node_value(self, node_id: ua.NodeId, datavalue: ua.DataValue) -> None:
        stamp = datavalue.SourceTimestamp
        if stamp is not None:
            self.append(self.track(node_id), datavalue, stamp - self.window)

    async def read_node_history(
        self, node_id: ua.NodeId, start: datetime | None, end: datetime | None, nb_values: int
    ) -> tuple[list[ua.DataValue], datetime | None]:
        values = self._values.get(node_id)
        if not values:
            return [], None
        epoch = ua.get_win_epoch()
        start = start or epoch
        end = end or epoch
        ordered: list[ua.DataValue]
        if start == epoch:  # no start: newest first, from the end time (or the newest) backwards
            ordered = [dv for dv in reversed(values) if end == epoch or _ts(dv) <= end]
        elif end == epoch:
            ordered = [dv for dv in values if _ts(dv) >= start]
        elif start > end:  # a backwards read
            ordered = [dv for dv in reversed(values) if end <= _ts(dv) <= start]
        else:
            ordered = [dv for dv in values if start <= _ts(dv) <= end]
        if nb_values and len(ordered) > nb_values:
            ordered = ordered[:nb_values]
        if len(ordered) > self.max_history_data_response_size:
            cut = self.max_history_data_response_size
            return ordered[:cut], _ts(ordered[cut])
        return ordered, None

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


def _ts(dv: ua.DataValue) -> datetime:
    assert dv.SourceTimestamp is not None
    return dv.SourceTimestamp
