"""Minting: what the platform and apps call to give a thing an identifier.

`IdentifierRegistry` is the small typed interface apps get (via their AppContext); `LocalRegistry`
implements it over the catalog, builds values from the class's template and adds the URL and
HS_ADMIN values every local handle carries.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from plantwire.logs import get_logger
from plantwire_platform.identifiers.catalog import HandleExists, IdentifierCatalog
from plantwire_platform.identifiers.handle import Handle, HandleValue, admin_value, same_values
from plantwire_platform.identifiers.settings import IdentifierSettings
from plantwire_platform.identifiers.suffixes import SuffixError, device_suffix, gateway_suffix, suffix
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
        return await self._ensure_built(self._build(kind, full_suffix, values, url))

    async def _ensure_built(self, wanted: Handle) -> Handle:
        kind = wanted.suffix.partition(".")[0]
        current = await self.catalog.get(wanted.name)
        if current is not None and same_values(current, wanted):
            return current
        await self.catalog.put(wanted, self._clock(), overwrite=True)
        log.info("identifier_updated" if current else "identifier_minted", handle=wanted.name, kind=kind)
        return wanted

    def _device_handle(self, gateway: str, device: str, meta: Mapping[str, Any]) -> Handle:
        template_keys = {v.key for v in load_template("device").values}
        values = {k: v for k, v in meta.items() if k in template_keys}
        values["gateway"] = gateway
        url = f"{self.settings.public_url.rstrip('/')}/api/devices/{device}"
        return self._build("device", device_suffix(device, meta), values, url)

    def _gateway_handle(self, gateway: str, meta: Mapping[str, Any] | None) -> Handle:
        template_keys = {v.key for v in load_template("gateway").values}
        values = {k: v for k, v in (meta or {}).items() if k in template_keys}
        url = f"{self.settings.public_url.rstrip('/')}/api/gateways"
        return self._build("gateway", gateway_suffix(gateway), values, url)

    async def ensure_device(self, gateway: str, device: str, meta: Mapping[str, Any]) -> Handle:
        """The device's identifier, from what its meta carries (see `suffixes.device_suffix`)."""
        return await self._ensure_built(self._device_handle(gateway, device, meta))

    async def ensure_gateway(self, gateway: str, meta: Mapping[str, Any] | None = None) -> Handle:
        return await self._ensure_built(self._gateway_handle(gateway, meta))

    async def ensure_devices(
        self,
        devices: Sequence[tuple[str, str, Mapping[str, Any]]],
        cursor: tuple[str, int, str] | None = None,
    ) -> int:
        """Ensure the identifiers of many (gateway, device, meta) and of their gateways in one catalog
        transaction, with a follower's `cursor` saved in it; returns how many were written.

        A device whose id leaves no usable suffix is skipped (logged), the others named.
        """
        wanted: dict[str, Handle] = {}
        for gateway, device, meta in devices:
            try:
                gateway_handle = self._gateway_handle(gateway, None)
                wanted[gateway_handle.name] = gateway_handle
                device_handle = self._device_handle(gateway, device, meta)
                wanted[device_handle.name] = device_handle
            except SuffixError as err:
                log.warning("identifier_not_named", device=device, gateway=gateway, error=str(err))
        written = await self.catalog.ensure_many(list(wanted.values()), self._clock(), cursor)
        for handle, created in written:
            kind = handle.suffix.partition(".")[0]
            log.debug("identifier_minted" if created else "identifier_updated", handle=handle.name, kind=kind)
        if written:
            log.info("identifiers_ensured", written=len(written), asked=len(wanted))
        return len(written)

    async def device_identifiers(self, devices: Sequence[str]) -> dict[str, str]:
        """The identifiers the platform named these devices by (`ensure_devices` without model and
        serial), for those that have one."""
        names: dict[str, str] = {}
        for device in devices:
            try:
                names[device] = f"{self.settings.prefix}/{device_suffix(device, {})}"
            except SuffixError:
                continue
        found = await self.catalog.existing(list(names.values()))
        return {d: n for d, n in names.items() if n in found}

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
