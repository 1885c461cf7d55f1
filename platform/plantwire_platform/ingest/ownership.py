"""Ingest's view of device ownership: a device belongs to the gateway that first registered it.

`meta`, `status` and `data` of a device from any other gateway id are rejected (acknowledged, not
stored, counted): a forged gateway can no longer re-own `cnc-1` and have the REST writes sent to it.
The store is the authority (`Catalog.claim_device`, atomic, so workers sharing one database agree);
this cache spares a store call per message. An admin's move (`moved`) takes effect at once in this
process; another worker of a shared group learns it from the store at its next refused message of
that device and gateway, at most `RECHECK_S` later (move before the new gateway publishes).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Final

from plantwire_platform.store.model import Catalog

RECHECK_S: Final = 1.0
"""How often a refused (device, gateway) pair asks the store again whether the device moved."""
_MAX_RECHECKS: Final = 10_000


class DeviceOwners:
    """Who owns which device. `allows` runs on the ingest writer thread; `moved` on any thread."""

    def __init__(self, store: Catalog) -> None:
        self._store = store
        self._owners: dict[str, str] = {}
        self._recheck_at: dict[tuple[str, str], float] = {}

    def allows(self, gateway: str, device: str) -> bool:
        """Whether `gateway` owns `device` (claiming it when nobody does); may raise StoreError."""
        owner = self._owners.get(device)
        if owner == gateway:
            return True
        if owner is None:
            owner = self._owners[device] = self._store.claim_device(gateway, device)
            return owner == gateway
        key, now = (device, gateway), time.monotonic()
        if now < self._recheck_at.get(key, 0.0):
            return False
        if len(self._recheck_at) >= _MAX_RECHECKS:
            self._recheck_at.clear()
        self._recheck_at[key] = now + RECHECK_S
        current = self._store.device_owner(device)
        if current is not None:
            self._owners[device] = current
        return current == gateway

    def claim_unknown(self, claims: Iterable[tuple[str, str]]) -> None:
        """Claim, in one store call, the devices of (gateway, device) pairs whose owner is not
        cached yet (a device's first pair claims it); `allows` then answers them from the cache.
        May raise StoreError (nothing is learnt then)."""
        unknown = [(g, d) for g, d in claims if d not in self._owners]
        if unknown:
            self._owners.update(self._store.claim_devices(unknown))

    def moved(self, device: str, gateway: str) -> None:
        """The device now belongs to `gateway` (the store says so already)."""
        self._owners[device] = gateway
        self._recheck_at.pop((device, gateway), None)
