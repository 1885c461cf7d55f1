"""The simulator's write path into its own address space, cheap enough for tens of thousands of values/s.

asyncua's server deep-copies every DataValue once per subscribed monitored item
(`MonitoredItemValues.set_current_datavalue`), because a writer might later mutate it. That copy
dominates the cost once anyone subscribes (FACTS.md). The simulator builds a fresh DataValue for every
write and never touches it again, so the copy buys nothing: `FrozenDataValue` answers deepcopy with
itself. Everything else — change detection, deadbands, monitored-item queues, publishing — is the
stock server path, so subscribers see exactly what a stock write would give them.

The writer also skips the per-write node lookup and type check of `write_attribute_value` by holding
each variable's value attribute; the node's type was fixed when the simulator created it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from asyncua import Server, ua
from asyncua.server.address_space import AttributeValue

from plantwire_sims.model import TagSpec, Value

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_GOOD = ua.StatusCode()
_VARIANT_TYPES = {
    "Double": ua.VariantType.Double,
    "UInt32": ua.VariantType.UInt32,
    "String": ua.VariantType.String,
}


class FrozenDataValue(ua.DataValue):
    """A DataValue its writer never mutates after writing, so copying it is pointless."""

    __slots__ = ()

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenDataValue:
        return self


def us_to_datetime(ts_us: int) -> datetime:
    """Wire time (µs since the epoch) to the aware UTC datetime asyncua encodes; exact to the µs."""
    return EPOCH + timedelta(microseconds=ts_us)


def datetime_to_us(dt: datetime) -> int:
    if dt.tzinfo is None:  # asyncua treats naive datetimes as UTC
        dt = dt.replace(tzinfo=UTC)
    return (dt - EPOCH) // timedelta(microseconds=1)


class ValueWriter:
    """Writes values of a fixed list of variables, each as one DataValue stamped with the tick time."""

    def __init__(self, server: Server, node_ids: Sequence[ua.NodeId], specs: Sequence[TagSpec]):
        aspace = server.iserver.aspace
        self._attributes: list[AttributeValue] = [
            aspace[node_id].attributes[ua.AttributeIds.Value] for node_id in node_ids
        ]
        self._vtypes = [_VARIANT_TYPES[spec.vtype] for spec in specs]

    def current(self, index: int) -> ua.DataValue | None:
        """The variable's DataValue as the server holds it now (a client's write included)."""
        return self._attributes[index].value

    async def write(self, ts_us: int, changes: Sequence[tuple[int, Value]]) -> None:
        """Write `(variable index, value)` pairs, all with SourceTimestamp = ServerTimestamp = ts_us."""
        stamp = us_to_datetime(ts_us)
        attributes = self._attributes
        vtypes = self._vtypes
        for index, value in changes:
            dv = FrozenDataValue(
                ua.Variant(value, vtypes[index]),
                _GOOD,
                SourceTimestamp=stamp,  # type: ignore[arg-type]  # asyncua annotates its datetime subclass
                ServerTimestamp=stamp,  # type: ignore[arg-type]
            )
            attribute = attributes[index]
            attribute.value = dv
            if attribute.datachange_callbacks:
                # A copy: a client may delete its monitored item while a callback awaits.
                for handle, callback in list(attribute.datachange_callbacks.items()):
                    try:
                        await callback(handle, dv)
                    except KeyError:  # the monitored item went away between the copy and the call
                        continue
