"""The command room's settings: where attach may reach (`commands`), how the audit is bounded and
kept (`audit`). Part of the platform's one settings object (`settings.PlatformSettings`)."""

from __future__ import annotations

import ipaddress
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_ATTACH_NETWORKS: Final[tuple[str, ...]] = (
    "127.0.0.0/8", "::1/128",  # loopback
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",  # RFC 1918 private
    "fc00::/7",  # IPv6 unique local (ULA)
)  # fmt: skip
"""Where attach may reach by default: the plant's own networks, never the internet. Link-local
(169.254.0.0/16, fe80::/10) is left out on purpose: 169.254.169.254 is a cloud's metadata service,
the classic target of a request forgery; add a link-local range explicitly where machines use it."""


class CommandSettings(BaseModel):
    """What commands may do: where attach may make a gateway connect (docs/security.md)."""

    model_config = ConfigDict(extra="forbid")

    attach_allowed_networks: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ATTACH_NETWORKS),
        description="Networks (CIDR) an attach endpoint's host must be in; hostnames are resolved",
    )

    @field_validator("attach_allowed_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for net in value:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError as err:
                raise ValueError(f"{net!r} is not a network (e.g. 10.0.0.0/8 or 192.168.1.5/32)") from err
        return value


class AuditSettings(BaseModel):
    """How big an audit entry may be and how long entries are kept."""

    model_config = ConfigDict(extra="forbid")

    max_field_bytes: int = Field(
        default=4096, ge=256, description="Longest request value or message kept; longer ones are truncated"
    )
    max_rows: int = Field(default=100_000, ge=100, description="Newest entries kept; older ones are deleted")
    max_age_days: float = Field(default=365.0, gt=0, description="Entries older than this are deleted")
    prune_interval_s: float = Field(default=600.0, gt=0, description="How often retention is enforced")
