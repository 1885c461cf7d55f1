"""A device's state as shown: its gateway's state first.

A gateway that vanishes cannot say that its devices are unreachable: the broker publishes its last
will (`{gateway}/status` = offline) and the devices' own retained statuses still say `online`. So a
device of an offline gateway is shown `offline` since the gateway went offline, with the error
`gateway_offline`; what its own
status said is kept (`DeviceRecord.state` in the store, `reported_state` in the API), and applies
again as soon as the gateway is back online. Nothing is written: the state is derived at read time.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from plantwire_platform.store.model import DeviceRecord

GATEWAY_OFFLINE: Final = "gateway_offline"


def shown(record: DeviceRecord) -> DeviceRecord:
    """The record with the state a reader should see (offline while its gateway is offline)."""
    if record.gateway_state != "offline" or record.state == "offline":
        return record
    since = record.gateway_since if record.gateway_since is not None else record.state_since
    return replace(record, state="offline", state_since=since, error=GATEWAY_OFFLINE)
