"""Seeds make runs repeatable; run_machines and the CLI start, record and stop machines cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import orjson
from sim_client import wait_for

from plantwire.broker import free_port
from plantwire_sims.machine import SimMachine, run_machines

# asyncua builds its standard address space in ~0.5 s on an idle core but ~10 s per server on a loaded
# machine; these tests start several servers in a row, so their overall guard allows for that.
STARTUP_BUDGET_S = 120


def values_by_tag(machine: SimMachine) -> dict[str, list[object]]:
    out: dict[str, list[object]] = {}
    for tag, _, value in machine.produced:
        out.setdefault(tag, []).append(value)
    return out


async def test_same_seed_same_values_other_seed_other_values() -> None:
    async with asyncio.timeout(STARTUP_BUDGET_S):
        machines = [
            SimMachine("pump", name, free_port(), rate_hz=50, seed=seed, extra_tags=3, record=True)
            for name, seed in (("pump-a", 7), ("pump-b", 7), ("pump-c", 8))
        ]
        async with machines[0], machines[1], machines[2]:
            await wait_for(lambda: all(m.ticks >= 40 for m in machines), within=10)
            for m in machines:
                m.pause()
    a, b, c = (values_by_tag(m) for m in machines)
    for tag in machines[0].tags:
        n = min(len(a[tag]), len(b[tag]))
        assert n > 0 and a[tag][:n] == b[tag][:n], tag
    assert (
        a["Hydraulics/DischargePressure"][:20] != c["Hydraulics/DischargePressure"][:20]
    )  # noisy from tick 1


async def test_run_machines_records_every_machine_to_one_file(tmp_path: Path) -> None:
    record = tmp_path / "values.jsonl"
    port = free_port()
    ready: list[SimMachine] = []
    async with asyncio.timeout(STARTUP_BUDGET_S):
        await run_machines(
            "meter", 2, port, rate_hz=20, seed=3, record_file=record, duration=1.0, on_ready=ready.extend
        )
    assert [(m.name, m.port, m.seed) for m in ready] == [("meter-1", port, 4), ("meter-2", port + 1, 5)]
    lines = [orjson.loads(line) for line in record.read_bytes().splitlines()]
    for m in ready:
        rows = [(r["tag"], r["ts"], r["v"]) for r in lines if r["device"] == m.name]
        assert len(rows) == m.values_written > 0  # flushed at stop: nothing written is missing
        energy = [v for tag, _, v in rows if tag == "Energy/Total"]
        assert len(energy) > 5 and energy == sorted(energy)


async def run_cli(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "plantwire_sims.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PLANTWIRE_LOG_FORMAT": "json"},
    )


async def test_cli_prints_endpoints_and_stops_cleanly_on_sigint() -> None:
    port = free_port()
    async with asyncio.timeout(STARTUP_BUDGET_S):
        proc = await run_cli("--profile", "pump", "--count", "2", "--port", str(port), "--rate", "10")
        assert proc.stdout is not None
        first = (await proc.stdout.readline()).decode()
        second = (await proc.stdout.readline()).decode()
        assert first.split() == ["pump-1", "pump", f"opc.tcp://127.0.0.1:{port}", "root", "ns=2;s=pump-1"]
        assert second.split()[0] == "pump-2" and f":{port + 1}" in second
        proc.send_signal(signal.SIGINT)
        _, stderr = await proc.communicate()
    assert proc.returncode == 0, stderr.decode()
    assert b"Traceback" not in stderr
    assert b"sim_stopped" in stderr


async def test_cli_rejects_bad_arguments_with_a_clear_message() -> None:
    async with asyncio.timeout(STARTUP_BUDGET_S):
        for args, expected in (
            (("--port", "70000"), b"--port 70000"),
            (("--count", "0"), b"--count must be at least 1"),
            (("--rate", "0"), b"--rate must be above 0"),
            (("--name", "bad name!"), b"machine id 'bad name!' is not valid"),
        ):
            proc = await run_cli(*args)
            _, stderr = await proc.communicate()
            assert proc.returncode != 0, args
            assert expected in stderr, stderr.decode()
            assert b"Traceback" not in stderr


async def test_cli_reports_a_port_in_use() -> None:
    port = free_port()
    async with asyncio.timeout(STARTUP_BUDGET_S), SimMachine("meter", "meter-1", port):
        proc = await run_cli("--profile", "meter", "--port", str(port), "--duration", "1")
        _, stderr = await proc.communicate()
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}".encode() in stderr
    assert b"Traceback" not in stderr
