"""The size of a page of `GET /api/gateways`: gateways per page, devices listed per gateway.

At a hundred thousand devices the gateway list is bounded like the device list: at most
`MAX_GATEWAY_PAGE` gateways, each with its `device_count` and at most `MAX_GATEWAY_PAGE` of its
devices (first by id); the rest of a gateway's devices are paged by `GET /api/devices?gateway=`.
The defaults keep a plant of up to 100 gateways of up to 100 devices each on one page, as before.
"""

from __future__ import annotations

from typing import Final

GATEWAY_PAGE: Final = 100
"""Gateways per page unless asked."""
GATEWAY_DEVICES: Final = 100
"""Devices listed per gateway unless asked."""
MAX_GATEWAY_PAGE: Final = 1000
"""Most gateways per page, and most devices listed per gateway."""
