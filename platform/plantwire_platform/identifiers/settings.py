"""`IdentifierSettings`: the one typed settings object of the identifier room.

Nested into the platform's settings as `identifiers` (env `PLANTWIRE_IDENTIFIERS__...`).
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

DEFAULT_PREFIX = "0.TEST"
"""A prefix that is local by construction: `0.` prefixes are reserved to the Global Handle Registry
itself (0.NA, 0.TYPE, ...) and never allocated to an organisation, so identifiers minted under it
can never collide with or be mistaken for real ones (10.x DOI, 20.500.x, 21.x ePIC, 88.x China's
industrial internet). Set your own allocated prefix (e.g. 88.123.99) before syncing upstream."""


class UpstreamSettings(BaseModel):
    """A recursive resolver or second-level node answering the Handle.Net REST shape."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, description="Base URL; GET <url>/api/handles/<handle>")
    timeout_s: float = Field(default=3.0, gt=0)
    cache_size: int = Field(default=10_000, ge=1, description="Upstream answers kept (LRU)")
    max_cache_ttl_s: int = Field(default=3_600, ge=0, description="Cap on the values' own ttl")
    negative_ttl_s: int = Field(default=30, ge=0, description="How long a 'not found' is remembered")


class SyncSettings(BaseModel):
    """The second-level node's management API (POST /identity/token, POST /identityv2/data)."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = None
    username: str = ""
    password: SecretStr = SecretStr("")
    retries: int = Field(default=4, ge=0)
    backoff_s: float = Field(default=0.5, ge=0)
    timeout_s: float = Field(default=10.0, gt=0)


class IdentifierSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prefix: str = DEFAULT_PREFIX
    public_url: str = Field(
        default="http://127.0.0.1:8080", description="Base of the URL values (dashboard pages)"
    )
    value_ttl_s: int = Field(default=86_400, ge=0, description="ttl written into minted values")
    hot_cache_size: int = Field(default=50_000, ge=1, description="Local handles kept in memory")
    admin_index: int = Field(default=300, ge=1, description="Index of the admin identity <prefix>/ADMIN")
    upstream: UpstreamSettings = Field(default_factory=UpstreamSettings)
    sync: SyncSettings = Field(default_factory=SyncSettings)

    @field_validator("prefix")
    @classmethod
    def _prefix_shape(cls, v: str) -> str:
        if not re.fullmatch(r"[0-9A-Za-z][0-9A-Za-z.\-_]*", v):
            raise ValueError("a prefix is letters, digits and dots (e.g. 88.123.99), without '/'")
        return v

    @property
    def admin_handle(self) -> str:
        """The handle whose HS_ADMIN identity owns every local handle: `<prefix>/ADMIN`."""
        return f"{self.prefix}/ADMIN"
