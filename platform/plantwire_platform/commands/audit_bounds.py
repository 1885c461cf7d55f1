"""An audit entry stays small whatever the request was: each request value and the message are cut
at `max_field_bytes` (UTF-8) with a marker saying how much was left out.

A refused 900 KB write used to become a 921 KB audit row; the audit must record that something was
tried, by whom and how it ended, not keep an attacker's payload. Values are measured as the JSON
the store keeps, so a deep list counts as much as a long string.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final

import orjson

from plantwire_platform.store.model import AuditEntry

MARKER: Final = "…[truncated: {n} bytes, {kept} kept]"


def cut(text: str, max_bytes: int) -> str:
    """`text` if it fits in `max_bytes` of UTF-8, else its head and the marker (within the cap)."""
    raw = text.encode()
    if len(raw) <= max_bytes:
        return text
    marker_room = len(MARKER.format(n=len(raw), kept=max_bytes).encode())
    kept = max(max_bytes - marker_room, 0)
    head = raw[:kept].decode(errors="ignore")
    return head + MARKER.format(n=len(raw), kept=len(head.encode()))


def _bounded_value(value: Any, max_bytes: int) -> Any:
    if isinstance(value, str):
        return cut(value, max_bytes)
    encoded = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    if len(encoded) <= max_bytes:
        return value
    return cut(encoded.decode(), max_bytes)  # kept as its JSON text's head: readable, not rebuilt


def bounded(entry: AuditEntry, max_bytes: int) -> AuditEntry:
    """The entry with every request value and the message within `max_bytes`."""
    request = {cut(str(k), max_bytes): _bounded_value(v, max_bytes) for k, v in entry.request.items()}
    message = None if entry.message is None else cut(entry.message, max_bytes)
    return dataclasses.replace(entry, request=request, message=message)
