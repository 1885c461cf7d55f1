"""Wording shared by the command-line tools' output."""

from __future__ import annotations


def plural(count: int, noun: str, plural_noun: str | None = None) -> str:
    """`1 gateway`, `2 gateways`, `0 devices`."""
    return f"{count} {noun if count == 1 else (plural_noun or noun + 's')}"
