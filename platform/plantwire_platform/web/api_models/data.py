"""Models of the reading routes: health, devices, tags, latest values and series.

The series query's model is `query_params.SeriesParams`, next to the parsers it calls.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import ConfigDict, Field

from plantwire_platform.store.device_query import DEFAULT_LIMIT, MAX_LIMIT
from plantwire_platform.store.model import Agg
from plantwire_platform.web.api_models.common import AnyJson, Count, Strict, Text, Time, TimeOrNull


class LatestQuery(Strict):
    device: Text = Field(description="Device id (see /api/devices).", examples=["press-1"])


DeviceState = Literal["online", "connecting", "offline", "unknown"]
MAX_OFFSET: Final = 10**9


class DeviceListQuery(Strict):
    """A page of the devices, ordered by id; the filters given must all match."""

    gateway: Text | None = Field(None, description="Only this gateway's devices.", examples=["line-a"])
    state: DeviceState | None = Field(None, description="Only devices in this state.")
    q: Text | None = Field(
        None, description="Only devices whose id contains this text (case-insensitive).", examples=["press"]
    )
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description="Devices to skip (the page's start).")
    limit: int = Field(
        DEFAULT_LIMIT, ge=0, le=MAX_LIMIT, description="Most devices to return (0: only the total)."
    )


# --- responses -----------------------------------------------------------------------------------


class IngestFigures(Strict):
    """Ingest and runtime figures (connected, counters, whether ingest's threads are alive)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    connected: bool
    writer_alive: bool
    reader_alive: bool


class SparkplugHostFigures(Strict):
    """The Sparkplug B host's session and counters (present while `sparkplug_host.enabled`)."""

    host_id: str = Field(examples=["plantwire"])
    connected: bool
    subscribed: bool = Field(description="Subscribed to spBv1.0/# and its STATE birth published.")
    nodes_online: Count = Field(description="Edge nodes online (NBIRTH seen, no NDEATH since).")
    devices_online: Count
    messages: Count
    points_stored: Count
    duplicates: Count
    rebirths_requested: Count = Field(
        description="Rebirth NCMDs sent (seq gap, data before birth, unknown alias)."
    )
    seq_gaps: Count
    dropped_messages: Count = Field(description="Data not stored until the node's rebirth.")
    stale_ndeaths: Count = Field(description="NDEATHs of an older session (bdSeq mismatch), ignored.")
    bad_payloads: Count
    refused: dict[str, Count] = Field(
        description="Refused before the store, by reason: ids, nodes, devices, errors."
    )
    ownership_rejected: dict[str, Count] = Field(description="Of devices another gateway owns, by kind.")
    store_errors: Count


class Health(Strict):
    status: Literal["ok", "degraded"] = Field(description="degraded: no MQTT, or ingest stopped.")
    version: str = Field(examples=["0.1.0"])
    points: Count = Field(description="Points stored.")
    ingest: IngestFigures
    sparkplug: SparkplugHostFigures | None = Field(None, description="Only while the Sparkplug host runs.")


class Device(Strict):
    id: str = Field(examples=["press-1"])
    gateway: str = Field(examples=["line-a"])
    endpoint: str | None = Field(examples=["opc.tcp://10.0.0.5:4840"])
    state: DeviceState = Field(
        description="The device's state as the platform sees it: `offline` while its gateway is offline "
        "(error `gateway_offline`), else what the device's own status says."
    )
    reported_state: DeviceState = Field(
        description="What the device's own (retained) status last said; applies again when its gateway "
        "is back online."
    )
    state_since: TimeOrNull
    error: str | None = Field(
        description="Why the device is not online: the gateway's reason (e.g. `certificate_untrusted`, "
        "`unreachable`), or `gateway_offline`.",
        examples=["gateway_offline"],
    )
    gateway_state: Literal["online", "offline", "unknown"]
    tag_count: Count
    first_seen: Time
    last_data: TimeOrNull = Field(description="Source time of the newest stored point.")
    last_seq: Count = Field(description="Highest data sequence number.")
    identifier: str | None = Field(
        examples=["0.TEST/device.press-1"],
        description="The device's resolvable identifier (see /api/handles); null until it is named.",
    )


class DeviceList(Strict):
    """One page of the devices matching the filters, ordered by id; `total` counts all pages."""

    devices: list[Device]
    total: Count = Field(description="Devices matching the filters, on all pages.")
    offset: Count = Field(description="The page's start, as asked.")
    limit: Count = Field(description="The page's size, as asked.")


class Tag(Strict):
    tag: str = Field(examples=["temperature"])
    node_id: str | None = Field(examples=["ns=2;s=Press.Temperature"])
    data_type: str | None = Field(examples=["Double"])
    unit: str | None = Field(examples=["degC"])
    description: str | None
    writable: bool
    range: Annotated[list[float | None], Field(min_length=2, max_length=2)] | None = Field(
        description="[low, high] engineering range, or null when unknown.", examples=[[0, 250]]
    )
    derived_by: str | None = Field(
        description="App computing this derived series; null for a device's own tag.", examples=["oee"]
    )
    value_rank: int = Field(
        ge=-1,
        description="-1 for a scalar, else the array's number of dimensions (its points are JSON arrays).",
        examples=[-1, 1],
    )
    dims: list[Annotated[int, Field(ge=0)]] | None = Field(
        description="Array dimensions (OPC UA ArrayDimensions; 0 = any length); null for a scalar.",
        examples=[[3]],
    )
    enum: dict[str, str] | None = Field(
        description="An enumeration's names by value (the points carry the integer value); null otherwise.",
        examples=[{"0": "Idle", "1": "Running", "2": "Fault"}],
    )
    locale: str | None = Field(description="A LocalizedText tag's locale, as browsed.", examples=["de-DE"])


class TagList(Strict):
    device: str
    tags: list[Tag]


class LatestValue(Strict):
    tag: str
    ts: Time
    value: AnyJson
    status: Count = Field(description="OPC UA status code (uint32).")
    quality: Literal["good", "uncertain", "bad"] = Field(
        description="From the top two bits of the status code: 00 good, 01 uncertain, 1x bad."
    )
    unit: str | None


class Latest(Strict):
    device: str
    values: list[LatestValue]


class Point(Strict):
    ts: Time
    value: AnyJson
    status: Count


class RawSeries(Strict):
    """Raw points with start <= ts < end, oldest first."""

    device: str
    tag: str
    unit: str | None
    start: Time
    end: Time
    points: list[Point]
    truncated: bool = Field(description="More points exist in the window than limit.")


class Bucket(Strict):
    start: Time
    value: AnyJson = Field(
        description="The aggregate; null when no numeric value fell in. Arrays and structures aggregate "
        "element by element; a UInt64 above 2^63-1 is its exact decimal string (docs/wire.md)."
    )
    count: int = Field(ge=1)
    skipped: Count = Field(
        description="Points left out of an element-wise avg/min/max: arrays or structures of another "
        "shape than the bucket's newest one."
    )


class BucketSeries(Strict):
    """One aggregate per bucket of `every`, aligned to multiples of `every` since the epoch, oldest
    first; empty buckets are left out."""

    device: str
    tag: str
    unit: str | None
    start: Time
    end: Time
    every: str = Field(examples=["1m"])
    agg: Agg
    buckets: list[Bucket]


class OpenApiDocument(Strict):
    """The OpenAPI 3.1 document (this one)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    openapi: str = Field(pattern=r"^3\.1\.")
    info: dict[str, Any]
    paths: dict[str, Any]
