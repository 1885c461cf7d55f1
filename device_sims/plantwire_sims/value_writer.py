"""The simulator's write path into its own address space, cheap enough for tens of thousands of values/s.

Each write is one fresh DataValue per variable, stamped with the tick time as both SourceTimestamp and
ServerTimestamp, handed to the stock monitored-item path (change detection, deadbands, queues,
publishing) without asyncua's per-subscriber copy and per-write node lookup: see `asyncua_internals`.
A subscriber whose monitored item fails on a value is counted and logged; it stops neither the write
nor the other subscribers. With a `RecentHistory`, each written DataValue is also kept for HistoryRead.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from datetime import datetime

from asyncua import Server, ua

from plantwire.logs import get_logger
from plantwire_sims.asyncua_internals import FrozenDataValue, value_attributes, write_and_notify
from plantwire_sims.model import TagSpec, Value
from plantwire_sims.recent_history import RecentHistory
from plantwire_sims.timestamps import datetime_to_us, us_to_datetime

__all__ = ["ValueWriter", "datetime_to_us", "us_to_datetime"]

log = get_logger(__name__)

CALLBACK_ERROR_LOG_INTERVAL_S = 10.0
_GOOD = ua.StatusCode()
_VARIANT_TYPES = {
    "Double": ua.VariantType.Double,
    "UInt32": ua.VariantType.UInt32,
    "String": ua.VariantType.String,
}


class ValueWriter:
    """Writes values of a fixed list of variables, each as one DataValue stamped with the tick time."""

    def __init__(
        self,
        server: Server,
        node_ids: Sequence[ua.NodeId],
        specs: Sequence[TagSpec],
        *,
        machine: str = "",
        history: RecentHistory | None = None,
    ):
        self._attributes = value_attributes(server, node_ids)
        self._vtypes = [_VARIANT_TYPES[spec.vtype] for spec in specs]
        self._machine = machine
        self._history = history
        self._kept = [history.track(node_id) for node_id in node_ids] if history is not None else []
        self.callback_errors = 0
        self._last_error_log = -CALLBACK_ERROR_LOG_INTERVAL_S

    def current(self, index: int) -> ua.DataValue | None:
        """The variable's DataValue as the server holds it now (a client's write included)."""
        return self._attributes[index].value

    def keep(self, index: int, dv: ua.DataValue) -> None:
        """Put a value the server got otherwise (a client's setpoint write) into the history too."""
        if self._history is not None:
            self._history.keep(self._kept[index], dv)

    async def write(self, ts_us: int, changes: Sequence[tuple[int, Value]]) -> None:
        """Write `(variable index, value)` pairs, all with SourceTimestamp = ServerTimestamp = ts_us."""
        stamp = us_to_datetime(ts_us)
        items = self._datavalues(ts_us, stamp, changes)
        await write_and_notify(self._attributes, items, self._callback_failed)

    def _datavalues(
        self, ts_us: int, stamp: datetime, changes: Sequence[tuple[int, Value]]
    ) -> Iterator[tuple[int, ua.DataValue]]:
        """One fresh DataValue per change, made as it is written (and kept in the history, if any)."""
        vtypes = self._vtypes
        history = self._history
        kept = self._kept
        oldest = ts_us - history.window_us if history is not None else ts_us
        for index, value in changes:
            dv = FrozenDataValue(
                ua.Variant(value, vtypes[index]),
                _GOOD,
                SourceTimestamp=stamp,  # type: ignore[arg-type]  # asyncua annotates its datetime subclass
                ServerTimestamp=stamp,  # type: ignore[arg-type]
            )
            if history is not None:
                history.append(kept[index], ts_us, ts_us, value, vtypes[index], oldest)
            yield index, dv

    def _callback_failed(self, handle: int, err: Exception) -> None:
        self.callback_errors += 1
        now = time.monotonic()
        if now - self._last_error_log >= CALLBACK_ERROR_LOG_INTERVAL_S:
            self._last_error_log = now
            log.warning(
                "sim_subscriber_callback_failed",
                machine=self._machine,
                monitored_item_handle=handle,
                error=type(err).__name__,
                detail=str(err)[:200],
                failures=self.callback_errors,
            )
