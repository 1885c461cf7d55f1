"""Counters the gateway keeps for a /metrics endpoint and for tests.

Plain ints on one object, updated from the event loop (and the outbox thread for the outbox's
own figures); readers take a snapshot with `Gateway.stats()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from plantwire.wire import DeviceState


@dataclass
class GatewayStats:
    values_in: int = 0
    """Samples received from OPC UA subscriptions."""
    batches_appended: int = 0
    """Data messages written to the outbox."""
    batches_out: int = 0
    """Data messages handed to the MQTT client (a resend after a reconnect counts again)."""
    acked: int = 0
    """Data messages the broker acknowledged (PUBACK)."""
    mqtt_connected: bool = False
    mqtt_reconnects: int = 0
    device_reconnects: int = 0
    """OPC UA sessions lost after being online (each one re-browses and re-subscribes)."""
    outage_markers: int = 0
    """Bad-quality null samples written when a device's session was lost (one per tag per outage)."""
    sessions_resumed: int = 0
    """Connections lost and resumed with the same session and subscription (nothing lost)."""
    values_resent: int = 0
    """Current values re-sent at receive time after a re-subscribe (they were older than the marker)."""
    values_backfilled: int = 0
    """Values read from a server's history to fill the gap of a lost session (HistoryRead)."""
    backfill_unsupported: int = 0
    """Tags whose server keeps no history for them (nothing to back-fill from)."""
    device_states: dict[str, DeviceState] = field(default_factory=dict)
