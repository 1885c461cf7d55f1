"""The running platform as a Sparkplug B host application, fed by pysparkplug's EdgeNode (code
nobody here wrote) through a real Mosquitto; read back through the REST API with a token."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from plant_harness import bearer, platform_settings_for, token_for
from sparkplug_link import Peer

from plantwire.broker import MosquittoProcess
from plantwire.sparkplug.edge import REBIRTH
from plantwire_platform.service import platform_running

pytestmark = pytest.mark.integration


async def poll(http: aiohttp.ClientSession, path: str, check: Callable[[Any], bool], **params: str) -> Any:
    """GET `path` until `check(body)` holds; the test's timeout bounds it."""
    while True:
        async with http.get(path, params=params) as resp:
            body = await resp.json() if resp.status == 200 else None
        if body is not None and check(body):
            return body
        await asyncio.sleep(0.05)


async def test_tck_id_host_births_data_rebirth_on_seq_gap_and_deaths_from_a_pysparkplug_edge_node(
    mosquitto: MosquittoProcess, tmp_path: Path, start_peer: Callable[..., Peer]
) -> None:
    suffix = uuid.uuid4().hex[:8]
    group, device = f"g{suffix}", f"dev{suffix}"
    settings = platform_settings_for(mosquitto, tmp_path, f"pw-{suffix}")
    settings = settings.model_copy(
        update={
            "sparkplug_host": settings.sparkplug_host.model_copy(update={"enabled": True, "host_id": suffix})
        }
    )
    token = token_for(settings)
    edge = start_peer("edge.py", "127.0.0.1", str(mosquitto.port), group, "edge1", device)
    edge.next("ready")
    async with asyncio.timeout(60), platform_running(settings) as platform:
        async with aiohttp.ClientSession(base_url=platform.url, headers=bearer(token)) as http:
            edge.send("connect")
            edge.next("connect")
            # NBIRTH + DBIRTH: the device, its metrics as tags with types, its birth values as points
            dev = await poll(http, f"/api/devices/{device}", lambda b: b["state"] == "online")
            assert (dev["gateway"], dev["gateway_state"]) == (f"{group}.edge1", "online")
            assert dev["endpoint"] == f"sparkplug://{group}/edge1/{device}"
            tags = await poll(http, f"/api/devices/{device}/tags", lambda b: len(b["tags"]) == 4)
            types = {t["tag"]: t["data_type"] for t in tags["tags"]}
            assert types == {"temp": "Int16", "speed": "Double", "label": "String", "bits": "BooleanArray"}
            latest = await poll(http, "/api/latest", lambda b: len(b["values"]) >= 3, device=device)
            values = {v["tag"]: v["value"] for v in latest["values"]}
            assert (values["temp"], values["speed"], values["label"]) == (-40, 1.5, "a")
            health = await poll(http, "/api/health", lambda b: b["sparkplug"]["devices_online"] == 1)
            spb = health["sparkplug"]
            assert (spb["host_id"], spb["connected"], spb["subscribed"]) == (suffix, True, True)
            assert spb["nodes_online"] == 1 and spb["points_stored"] >= 3 and spb["rebirths_requested"] == 0

            # DDATA by alias
            edge.send("update")
            edge.next("update")
            await poll(http, "/api/latest", lambda b: _value(b, "temp") == -41, device=device)

            # tck-id-operational-behavior-host-reordering-rebirth: a seq gap -> NCMD Rebirth
            edge.send("gap")
            ncmd = await asyncio.to_thread(edge.next, "ncmd")
            assert ncmd["metrics"] == [{"name": REBIRTH, "datatype": "BOOLEAN", "value": True}]
            spb = (await poll(http, "/api/health", lambda b: b["sparkplug"]["rebirths_requested"] == 1))[
                "sparkplug"
            ]
            assert spb["seq_gaps"] == 1 and spb["dropped_messages"] >= 1
            async with http.get("/metrics") as resp:
                metrics = await resp.text()
            assert "plantwire_platform_sparkplug_rebirths_requested_total 1" in metrics
            assert "plantwire_platform_sparkplug_seq_gaps_total 1" in metrics

            # tck-id-operational-behavior-device-ddeath: the device goes offline
            edge.send("ddeath")
            edge.next("ddeath")
            await poll(http, f"/api/devices/{device}", lambda b: b["state"] == "offline")

            # the edge node's Will (NDEATH with the NBIRTH's bdSeq): its gateway goes offline
            edge.kill()
            await poll(http, f"/api/devices/{device}", lambda b: b["gateway_state"] == "offline")
            await poll(http, "/api/health", lambda b: b["sparkplug"]["nodes_online"] == 0)
            assert platform.store.get_device(device) is not None


def _value(body: dict[str, Any], tag: str) -> Any:
    return next((v["value"] for v in body["values"] if v["tag"] == tag), None)
