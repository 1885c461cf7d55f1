"""Resolution: local handles from the catalog; any other prefix relayed to the upstream resolver.

Upstream answers are cached for the smallest ttl of their values (capped by settings), "not found"
for a short negative ttl, both in one bounded LRU. Upstream failures raise `UpstreamError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

import aiohttp

from plantwire.logs import get_logger
from plantwire_platform.identifiers.catalog import IdentifierCatalog
from plantwire_platform.identifiers.handle import Handle, split_handle
from plantwire_platform.identifiers.settings import IdentifierSettings
from plantwire_platform.identifiers.ttl_cache import TtlLru

log = get_logger("plantwire.identifiers")
Source = Literal["local", "upstream", "cache"]
RELAY_HEADER = "X-Plantwire-Relayed"
"""Sent on relayed requests; a platform receiving it never relays again (no loops between nodes)."""


class UpstreamError(Exception):
    """The upstream resolver is not configured, unreachable, or answered something unusable."""


class NotResponsible(Exception):
    """A relayed request for a prefix that is not ours: answered 'not here' instead of relaying again."""


@dataclass(slots=True)
class Resolution:
    name: str
    source: Source
    handle: Handle | None = None
    relayed: list[dict[str, Any]] = field(default_factory=list)
    """Values exactly as the upstream resolver sent them (non-local prefixes)."""

    def values_json(
        self, granted: str | None, types: frozenset[str], indices: frozenset[int]
    ) -> list[dict[str, Any]]:
        if self.handle is not None:
            return [v.as_json() for v in self.handle.visible(granted, types, indices)]
        if not (types or indices):
            return list(self.relayed)
        return [v for v in self.relayed if v.get("type") in types or v.get("index") in indices]


@dataclass(slots=True)
class ResolverCounters:
    local: int = 0
    upstream: int = 0
    cache_hits: int = 0
    negative_hits: int = 0
    upstream_errors: int = 0


class Resolver:
    """Use as `async with Resolver(settings, catalog) as r`: owns the upstream HTTP session."""

    def __init__(self, settings: IdentifierSettings, catalog: IdentifierCatalog) -> None:
        self.settings = settings
        self.catalog = catalog
        self.counters = ResolverCounters()
        self._cache: TtlLru[Resolution | None] = TtlLru(settings.upstream.cache_size)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Resolver:
        timeout = aiohttp.ClientTimeout(total=self.settings.upstream.timeout_s)
        self._session = aiohttp.ClientSession(timeout=timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    def is_local(self, prefix: str) -> bool:
        return prefix == self.settings.prefix

    async def resolve(self, name: str, relay: bool = True) -> Resolution | None:
        """The handle `name` (prefix/suffix), or None if it does not exist. Raises HandleSyntaxError.

        With `relay` False (the request was itself relayed) another prefix raises NotResponsible.
        """
        prefix, _ = split_handle(name)
        if self.is_local(prefix):
            self.counters.local += 1
            handle = await self.catalog.get(name)
            return None if handle is None else Resolution(name, "local", handle)
        if not relay:
            raise NotResponsible(prefix)
        hit, cached = self._cache.get(name)
        if hit:
            if cached is None:
                self.counters.negative_hits += 1
                return None
            self.counters.cache_hits += 1
            return Resolution(name, "cache", None, cached.relayed)
        return await self._from_upstream(name)

    async def _from_upstream(self, name: str) -> Resolution | None:
        up = self.settings.upstream
        if up.url is None or self._session is None:
            raise UpstreamError("no upstream resolver is configured for prefixes other than the local one")
        url = f"{up.url.rstrip('/')}/api/handles/{quote(name, safe='/')}"
        self.counters.upstream += 1
        try:
            async with self._session.get(
                url, headers={"Accept": "application/json", RELAY_HEADER: "1"}
            ) as resp:
                status = resp.status
                body = await resp.json(content_type=None) if status in (200, 404) else None
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            self.counters.upstream_errors += 1
            log.warning("upstream_resolve_failed", handle=name, error=type(err).__name__)
            raise UpstreamError(f"the upstream resolver failed: {type(err).__name__}") from err
        if status == 404 or (isinstance(body, dict) and body.get("responseCode") == 100):
            self._cache.put(name, None, up.negative_ttl_s)
            return None
        values = body.get("values") if isinstance(body, dict) else None
        if status != 200 or not isinstance(values, list):
            self.counters.upstream_errors += 1
            log.warning("upstream_resolve_bad_answer", handle=name, status=status)
            raise UpstreamError(f"the upstream resolver answered HTTP {status}")
        result = Resolution(name, "upstream", None, [v for v in values if isinstance(v, dict)])
        ttls = [v["ttl"] for v in result.relayed if isinstance(v.get("ttl"), int)]
        self._cache.put(name, result, min([up.max_cache_ttl_s, *ttls]))
        return result
