"""Capped, jittered exponential backoff for the reconnect loops (MQTT and OPC UA sessions).

Jitter keeps many gateways (or many devices of one gateway) from retrying in lockstep after a
shared outage; the cap keeps recovery quick once the other side is back.
"""

from __future__ import annotations

import random


class Backoff:
    """Delays of base, 2*base, 4*base ... up to `cap`, each drawn uniformly from [d/2, d]."""

    def __init__(self, cap: float, base: float = 0.1) -> None:
        self.cap = cap
        self.base = min(base, cap)
        self._attempt = 0

    def next(self) -> float:
        ceiling = min(self.cap, self.base * 2**self._attempt)
        self._attempt = min(self._attempt + 1, 32)
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self._attempt = 0
