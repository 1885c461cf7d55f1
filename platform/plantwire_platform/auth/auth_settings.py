"""The auth settings: one pydantic model the platform's settings nest as ``auth`` (PLANTWIRE_AUTH__*)."""

from __future__ import annotations

import ipaddress
from typing import Final
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

LOOPBACK_NAMES: Final = ("127.0.0.1", "localhost", "[::1]")


def _origin(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise ValueError(f"{text!r} is not an origin: write scheme://host[:port], e.g. https://plant.example")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"{text!r} is not an origin: no path, query, fragment or user")
    return f"{parts.scheme}://{parts.netloc.lower()}"


class AuthSettings(BaseModel):
    """Who may use the API, from where, and how failures are limited."""

    model_config = ConfigDict(extra="forbid")

    metrics_public: bool = Field(
        default=False, description="Serve /metrics without a token (for a scraper on a trusted network)"
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed to send state-changing requests and open the stream; "
        "empty: the platform's own address (and localhost when it listens on loopback)",
    )
    session_ttl_s: float = Field(default=8 * 3600, gt=0, description="Lifetime of a dashboard session")
    max_sessions: int = Field(default=1000, ge=1, description="Open sessions at most; the oldest go first")
    login_link_ttl_s: float = Field(default=300, gt=0, description="Lifetime of a one-time login link")
    failure_burst: int = Field(default=10, ge=1, description="Failed attempts per address before 429")
    failure_refill_s: float = Field(
        default=6.0, gt=0, description="One more failed attempt allowed per this many seconds"
    )
    failure_max_addresses: int = Field(
        default=10_000, ge=1, description="Addresses whose failures are remembered (least recent dropped)"
    )

    @field_validator("allowed_origins")
    @classmethod
    def _check_origins(cls, value: list[str]) -> list[str]:
        return [_origin(v) for v in value]

    def origins(self, http_host: str, http_port: int) -> frozenset[str]:
        """The allowed origins: the configured ones, else those of the platform's own address."""
        if self.allowed_origins:
            return frozenset(self.allowed_origins)
        return own_origins(http_host, http_port)


def own_origins(host: str, port: int) -> frozenset[str]:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if host == "localhost" or (address is not None and (address.is_loopback or address.is_unspecified)):
        names: tuple[str, ...] = LOOPBACK_NAMES
    elif address is not None and address.version == 6:
        names = (f"[{host}]",)
    else:
        names = (host.lower(),)
    origins = {f"{scheme}://{name}:{port}" for name in names for scheme in ("http", "https")}
    default = {80: "http", 443: "https"}.get(port)
    if default is not None:  # browsers leave a scheme's default port out of the Origin
        origins |= {f"{default}://{name}" for name in names}
    return frozenset(origins)
