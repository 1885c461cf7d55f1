"""Counters of refused requests, by reason, for /metrics and the tests."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Final, Literal

from plantwire.metrics_text import MetricsText

FailureReason = Literal[
    "missing_credentials", "malformed_credentials", "unknown_token", "unknown_session", "bad_login_link"
]
"""Why an identity could not be established (answered 401, or 429 once rate-limited)."""
RefusalReason = Literal["insufficient_scope", "origin_not_allowed", "unsupported_media_type", "rate_limited"]
"""Why a request was refused although (or before) its identity was known."""

FAILURE_REASONS: Final[tuple[FailureReason, ...]] = (
    "missing_credentials",
    "malformed_credentials",
    "unknown_token",
    "unknown_session",
    "bad_login_link",
)
REFUSAL_REASONS: Final[tuple[RefusalReason, ...]] = (
    "insufficient_scope",
    "origin_not_allowed",
    "unsupported_media_type",
    "rate_limited",
)


@dataclass
class AuthStats:
    auth_failures_total: Counter[FailureReason] = field(default_factory=Counter)
    refused_total: Counter[RefusalReason] = field(default_factory=Counter)
    limited_addresses: int = 0
    """Addresses currently out of failed attempts."""

    def render(self, out: MetricsText) -> None:
        for reason in FAILURE_REASONS:
            out.counter(
                "auth_failures_total",
                "Requests whose identity could not be established, by reason.",
                self.auth_failures_total[reason],
                {"reason": reason},
            )
        for refusal in REFUSAL_REASONS:
            out.counter(
                "auth_refused_total",
                "Requests refused by the auth middleware, by reason.",
                self.refused_total[refusal],
                {"reason": refusal},
            )
        out.gauge(
            "auth_limited_addresses", "Client addresses out of failed attempts.", self.limited_addresses
        )
