"""What the Sparkplug host reports to /api/health and /metrics: one snapshot, read off its counters."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class SparkplugHostStatus:
    host_id: str
    connected: bool
    subscribed: bool
    nodes_online: int
    devices_online: int
    messages: int
    points_stored: int
    duplicates: int
    rebirths_requested: int
    seq_gaps: int
    dropped_messages: int
    """Data refused until a rebirth (after a gap, before a birth, an unknown alias)."""
    stale_ndeaths: int
    """NDEATHs whose bdSeq did not match the session (ignored)."""
    bad_payloads: int
    refused: dict[str, int] = field(default_factory=dict)
    """Messages refused before the store, by reason: ids, nodes, devices (limits), errors."""
    ownership_rejected: dict[str, int] = field(default_factory=dict)
    store_errors: int = 0

    def as_json(self) -> dict[str, Any]:
        return asdict(self)
