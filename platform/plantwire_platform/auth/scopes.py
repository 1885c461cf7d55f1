"""The three scopes of the API, ordered: admin includes operate, operate includes read.

- ``read``: GET endpoints and the live stream.
- ``operate``: write tags, call methods, acknowledge alarms (what an operator does to machines).
- ``admin``: attach/detach devices, the apps' lifecycle, tokens (what changes the platform itself).
"""

from __future__ import annotations

import enum
from typing import Final


class Scope(enum.StrEnum):
    READ = "read"
    OPERATE = "operate"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, needed: Scope) -> bool:
        """Whether an identity holding this scope may use a route that needs `needed`."""
        return _RANK[self] >= _RANK[needed]


_RANK: Final[dict[Scope, int]] = {Scope.READ: 0, Scope.OPERATE: 1, Scope.ADMIN: 2}
SCOPE_NAMES: Final = tuple(s.value for s in Scope)


class UnknownScope(ValueError):
    """A scope name that is not read, operate or admin."""


def parse_scope(text: str) -> Scope:
    try:
        return Scope(text)
    except ValueError:
        raise UnknownScope(f"unknown scope {text!r}; use one of {', '.join(SCOPE_NAMES)}") from None
