"""`plantwire attach`, `plantwire devices` and `plantwire detach` against a running platform and gateway."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from cmdtest_plant import running_plant
from plant_harness import until

from plantwire.broker import MosquittoProcess
from plantwire.cli import build_parser

pytestmark = pytest.mark.integration


async def test_attach_list_detach_from_the_command_line(
    mosquitto: MosquittoProcess, tmp_path: Path, unique_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pump = f"{unique_id}-p9"
    async with asyncio.timeout(90), running_plant(mosquitto, tmp_path, unique_id, {pump: "pump"}) as plant:
        machine = plant.machines[pump]
        await plant.start_gateway([])
        url = plant.platform.url

        async def gateway_online() -> bool:
            _, body = await plant.request("GET", "/api/gateways")
            return any(g["id"] == unique_id and g["state"] == "online" for g in body["gateways"])

        await until(gateway_online)

        def run_cli(argv: list[str]) -> int:
            # Not `main()`: it would point the process's logging at pytest's captured stderr.
            args = build_parser().parse_args(argv)
            return int(args._module.run(args))

        async def cli(*argv: str) -> int:
            return await asyncio.to_thread(run_cli, [*argv, "--platform", url, "--token", plant.token])

        assert await cli("attach", "http://127.0.0.1:4850", "--gateway", unique_id) == 1
        assert "opc.tcp" in capsys.readouterr().err

        code = await cli(
            "attach", machine.endpoint, "--gateway", unique_id, "--id", pump, "--root", machine.root_node_id
        )
        out = capsys.readouterr()
        assert code == 0, out.err
        assert f"attached {pump} to {unique_id}: {len(machine.tags)} tags" in out.out

        async def streams() -> bool:
            return "Motor/Current" in await plant.latest(pump)

        await until(streams)
        assert await cli("devices") == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0].split()[:3] == ["GATEWAY", "DEVICE", "STATE"]
        row = next(line.split() for line in lines if pump in line)
        assert row[:4] == [unique_id, "(online)", pump, "online"]

        assert await cli("detach", pump) == 0
        assert f"detached {pump} from {unique_id}" in capsys.readouterr().out
        assert await cli("detach", pump) == 1
        assert "not attached" in capsys.readouterr().err
