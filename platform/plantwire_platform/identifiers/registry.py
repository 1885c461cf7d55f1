"""Minting: what the platform and apps call to give a thing an identifier.

`IdentifierRegistry` is the small typed interface apps get (via their AppContext); `LocalRegistry`
implements it over the catalog, builds values from the class's template and adds the URL and
HS_ADMIN values every local handle carries.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Protocol

from plantwire.logs import get_logger
from plantwire_platform.identifiers.catalog import HandleExists, IdentifierCatalog
from plantwire_platform.identifiers.handle import Handle, HandleValue, admin_value
from plantwire_platform.identifiers.settings import IdentifierSettings
from plantwire_platform.identifiers.suffixes import device_suffix, gateway_suffix, suffix
from plantwire_platform.identifiers.templates import URL_INDEX, load_template

log = get_logger("plantwire.identifiers")


class IdentifierRegistry(Protocol):
    """Mint identifiers for things the plant makes (the interface apps see)."""

    async def mint(self, kind: str, suffix: str, values: Mapping[str, Any]) -> Handle:
        """Create `<prefix>/<kind>.<suffix>` with `values` (keys of the kind's template).

        `suffix` is dot-separated components, each escaped by the suffix rule. Raises
        `HandleExists` if that identifier already exists, `TemplateError` for values that do not
        fit the template.
        """
        ...


class LocalRegistry:
    """`IdentifierRegistry` over an `IdentifierCatalog`, plus the platform's own device naming."""

    def __init__(
        self,
        settings: IdentifierSettings,
        catalog: IdentifierCatalog,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self._clock = clock

    def _build(self, kind: str, full_suffix: str, values: Mapping[str, Any], url: str | None) -> Handle:
        now = self._clock()
        s = self.settings
        typed = load_template(kind).build(values, s.value_ttl_s, now)
        target = url or f"{s.public_url.rstrip('/')}/api/handles/{s.prefix}/{full_suffix}"
        base = [
            HandleValue(URL_INDEX, "URL", target, "string", s.value_ttl_s, now),
            admin_value(s.admin_handle, s.admin_index, now),
        ]
        return Handle(s.prefix, full_suffix, tuple(sorted([*base, *typed], key=lambda v: v.index)))

    async def mint(self, kind: str, suffix_: str, values: Mapping[str, Any]) -> Handle:
        handle = self._build(kind, suffix(kind, *suffix_.split(".")), values, None)
        await self.catalog.put(handle, self._clock(), overwrite=False)
        log.info("identifier_minted", handle=handle.name, kind=kind)
        return handle

    async def ensure(self, kind: str, full_suffix: str, values: Mapping[str, Any], url: str | None) -> Handle:
        """Create or update (only if its values changed) the identifier of a thing the platform sees."""
        wanted = self._build(kind, full_suffix, values, url)
        current = await self.catalog.get(wanted.name)
        if current is not None and _same(current, wanted):
            return current
        await self.catalog.put(wanted, self._clock(), overwrite=True)
        log.info("identifier_updated" if current else "identifier_minted", handle=wanted.name, kind=kind)
        return wanted

    async def ensure_device(self, gateway: str, device: str, meta: Mapping[str, Any]) -> Handle:
        """The device's identifier, from what its meta carries (see `suffixes.device_suffix`)."""
        template_keys = {v.key for v in load_template("device").values}
        values = {k: v for k, v in meta.items() if k in template_keys}
        values["gateway"] = gateway
        url = f"{self.settings.public_url.rstrip('/')}/api/devices/{device}"
        return await self.ensure("device", device_suffix(device, meta), values, url)

    async def ensure_gateway(self, gateway: str, meta: Mapping[str, Any] | None = None) -> Handle:
        template_keys = {v.key for v in load_template("gateway").values}
        values = {k: v for k, v in (meta or {}).items() if k in template_keys}
        url = f"{self.settings.public_url.rstrip('/')}/api/gateways"
        return await self.ensure("gateway", gateway_suffix(gateway), values, url)

    async def ensure_admin(self) -> Handle:
        """`<prefix>/ADMIN`: the admin identity named by every HS_ADMIN value (and by Basic auth)."""
        s = self.settings
        now = self._clock()
        handle = Handle(
            s.prefix,
            "ADMIN",
            (
                admin_value(s.admin_handle, s.admin_index, now),
                HandleValue(2, "DESC", "Plantwire prefix administrator", "string", s.value_ttl_s, now),
            ),
        )
        try:
            await self.catalog.put(handle, now, overwrite=False)
        except HandleExists:
            existing = await self.catalog.get(handle.name)
            return existing or handle
        return handle


def _same(a: Handle, b: Handle) -> bool:
    def strip(h: Handle) -> list[HandleValue]:
        return [replace(v, timestamp=0.0) for v in h.values]

    return strip(a) == strip(b)
