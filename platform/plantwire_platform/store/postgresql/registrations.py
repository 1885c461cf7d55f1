"""Meta and status messages into PostgreSQL: many messages, one transaction, five statements.

Applying messages one by one costs a few round trips and a commit each; a platform that starts
against a broker holding the retained meta and status of 100,000 devices would spend minutes on
that before data flows. So a batch is first folded into what it leaves behind, which is the same
as applying its messages in order:

- a gateway's row: its last status (every field is replaced);
- a device's row: the gateway and endpoint of its last message (meta and status both set them),
  `root` of its last meta, state, since and error of its last status (untouched when the batch has
  none of that kind: a status-only batch keeps the root);
- a tag's row: the last meta of its device that names it (tags not named are kept, never deleted).

Then one multi-row statement per table (`unnest` of column arrays). Rows go in key order, and
every writer of these tables locks devices before series in that order, so workers of a shared
group that apply the same retained messages at once take turns instead of deadlocking.

Commits do not wait for the WAL flush (`synchronous_commit = off`, registry writes only: 2-3x more
of them per second). A server crash may lose the last ~0.6 s of them; gateways send meta and status
again (retained) whenever a device (re)connects, and both are idempotent upserts. Points always
commit synchronously.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import asyncpg

from plantwire.wire import DeviceMeta, DeviceStatus, GatewayStatus, TagInfo, now_us
from plantwire_platform.store.model import Registration
from plantwire_platform.store.value_types_schema import meta_columns

_RELAXED_COMMIT: Final = "SET LOCAL synchronous_commit = off"
_GATEWAYS: Final = """
INSERT INTO gateways (id, state, since, version)
SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[])
ON CONFLICT (id) DO UPDATE SET state = excluded.state, since = excluded.since, version = excluded.version
"""
_ENSURE_DEVICES: Final = """
INSERT INTO devices (id, gateway, first_seen)
SELECT id, gateway, $3 FROM unnest($1::text[], $2::text[]) AS u(id, gateway)
ON CONFLICT (id) DO UPDATE SET gateway = excluded.gateway
"""
_UPDATE_DEVICES: Final = """
UPDATE devices d SET
    endpoint = u.endpoint,
    root = CASE WHEN u.has_meta THEN u.root ELSE d.root END,
    state = CASE WHEN u.has_status THEN u.state ELSE d.state END,
    state_since = CASE WHEN u.has_status THEN u.since ELSE d.state_since END,
    error = CASE WHEN u.has_status THEN u.error ELSE d.error END
FROM unnest($1::text[], $2::text[], $3::boolean[], $4::text[], $5::boolean[], $6::text[],
            $7::bigint[], $8::text[]) AS u(id, endpoint, has_meta, root, has_status, state, since, error)
WHERE d.id = u.id
"""
_SERIES: Final = """
INSERT INTO series
  (device, tag, node_id, data_type, unit, description, writable, low, high, dims, enum_names, locale)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::boolean[], $8::float8[], $9::float8[], $10::text[], $11::text[], $12::text[])
ON CONFLICT (device, tag) DO UPDATE SET
  node_id = excluded.node_id, data_type = excluded.data_type, unit = excluded.unit,
  description = excluded.description, writable = excluded.writable,
  low = excluded.low, high = excluded.high,
  dims = excluded.dims, enum_names = excluded.enum_names, locale = excluded.locale
"""


@dataclass(slots=True)
class _Device:
    """What a batch leaves in one device's row."""

    gateway: str
    endpoint: str | None = None
    meta: DeviceMeta | None = None
    status: DeviceStatus | None = None


@dataclass(slots=True)
class Folded:
    """A batch of registrations as the rows it leaves behind (see the module doc)."""

    gateways: dict[str, GatewayStatus] = field(default_factory=dict)
    devices: dict[str, _Device] = field(default_factory=dict)
    tags: dict[tuple[str, str], TagInfo] = field(default_factory=dict)


def fold(registrations: Sequence[Registration]) -> Folded:
    out = Folded()
    for r in registrations:
        body = r.body
        if isinstance(body, GatewayStatus):
            out.gateways[r.gateway] = body
            continue
        assert r.device is not None  # Registration checks it
        device = out.devices.get(r.device)
        if device is None:
            device = out.devices[r.device] = _Device(r.gateway)
        device.gateway = r.gateway
        device.endpoint = body.endpoint
        if isinstance(body, DeviceMeta):
            device.meta = body
            for t in body.tags:
                out.tags[(r.device, t.tag)] = t
        else:
            device.status = body
    return out


async def apply(pool: asyncpg.Pool, registrations: Sequence[Registration]) -> None:
    """Apply the batch in one transaction (all or nothing)."""
    if not registrations:
        return
    f = fold(registrations)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(_RELAXED_COMMIT)
        if f.devices:
            ids = sorted(f.devices)
            rows = [f.devices[i] for i in ids]
            await conn.execute(_ENSURE_DEVICES, ids, [d.gateway for d in rows], now_us())
            await conn.execute(_UPDATE_DEVICES, *_device_columns(ids, rows))
        if f.tags:
            await conn.execute(_SERIES, *_tag_columns(f.tags))
        if f.gateways:
            names = sorted(f.gateways)
            statuses = [f.gateways[g] for g in names]
            await conn.execute(
                _GATEWAYS,
                names,
                [s.state for s in statuses],
                [s.since for s in statuses],
                [s.version for s in statuses],
            )


def _device_columns(ids: list[str], rows: list[_Device]) -> tuple[list[object], ...]:
    metas = [d.meta for d in rows]
    statuses = [d.status for d in rows]
    return (
        list(ids),
        [d.endpoint for d in rows],
        [m is not None for m in metas],
        [m.root if m is not None else None for m in metas],
        [s is not None for s in statuses],
        [s.state if s is not None else None for s in statuses],
        [s.since if s is not None else None for s in statuses],
        [s.error if s is not None else None for s in statuses],
    )


def _tag_columns(tags: dict[tuple[str, str], TagInfo]) -> tuple[list[object], ...]:
    keys = sorted(tags)
    infos = [tags[k] for k in keys]
    dims, names, locales = zip(*(meta_columns(t) for t in infos), strict=True)
    return (
        [d for d, _ in keys], [t for _, t in keys],
        [t.node_id for t in infos], [t.data_type for t in infos], [t.unit for t in infos],
        [t.description for t in infos], [t.writable for t in infos],
        [t.low for t in infos], [t.high for t in infos],
        list(dims), list(names), list(locales),
    )  # fmt: skip
