"""The README's "Attach a simulated machine" block works as written, against a live `plantwire demo`.

The block's commands run in a shell exactly as the README has them, with the `plantwire` command on
PATH, PLANTWIRE_PLATFORM_URL pointing at the demo and curl. Only the two ports change, because other
test runs share this machine: the demo's API listens on a free port instead of 8080 (the curl lines
name `localhost:8080`) and the extra pump on a free port instead of 4850. Each command must succeed
and say what the README's comment on it claims; a command the test does not know fails it, so a
changed README block needs a changed test.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from test_demo import Output

from plantwire.broker import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
README_API = "localhost:8080"
README_SIM_PORT = "4850"
README_DATA_DIR = "var/demo/"
TOKEN_CURL = 'curl -H "Authorization: Bearer $PLANTWIRE_TOKEN" '
DEVICE, GATEWAY, SIM_ROOT = "pump-9", "gw1", "ns=2;s=pump-1"


def attach_blocks() -> list[str]:
    section = README.split("## Attach a simulated machine", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    assert len(blocks) == 2, "README: 'Attach a simulated machine' needs the token block, then the commands"
    return blocks


def token_line() -> str:
    """The README's way to take the demo's token, before the attach block."""
    (line,) = attach_blocks()[0].strip().splitlines()
    return line


def attach_block() -> list[str]:
    """The shell commands of the README's attach section, continuation lines joined."""
    commands: list[str] = []
    pending = ""
    for line in attach_blocks()[1].splitlines():
        pending += line + "\n"
        if not line.rstrip().endswith("\\"):
            commands.append(pending.strip())
            pending = ""
    return commands


@dataclass
class Shell:
    """Runs README commands in bash with the demo's ports put in place of the README's."""

    api_port: int
    sim_port: int
    env: dict[str, str]
    data_dir: Path

    def text(self, command: str) -> str:
        return (
            command.replace(README_API, f"127.0.0.1:{self.api_port}")
            .replace(README_SIM_PORT, str(self.sim_port))
            .replace(README_DATA_DIR, f"{self.data_dir}/")
        )

    async def run(self, command: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(
            subprocess.run,
            ["bash", "-c", self.text(command)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def start(self, command: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            ["bash", "-c", "exec " + self.text(command)],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


async def _wait_for(proc: subprocess.Popen[str], out: Output, err: Output, marker: str) -> None:
    while marker not in out.text:
        assert proc.poll() is None, f"exited early with {proc.returncode}:\n{out.text}\n{err.text}"
        await asyncio.sleep(0.1)


async def _stop(proc: subprocess.Popen[str]) -> None:
    """Ctrl-C, as a user stops it; killed if it has not stopped after 40 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    async with asyncio.timeout(60):
        try:
            await asyncio.to_thread(proc.wait, 40)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait, 10)


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[int]:
    """A demo plant as `./dev demo` runs it, on free ports; its API port."""
    http_port = free_port()
    proc = subprocess.Popen(  # noqa: ASYNC220 - its pipes are read by threads, see Output
        [sys.executable, "-m", "plantwire", "demo", "--http-port", str(http_port),
         "--mqtt-port", str(free_port()), "--sim-port", str(free_port()),
         "--data-dir", str(tmp_path / "demo")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    out, err = Output(proc.stdout), Output(proc.stderr)
    try:
        async with asyncio.timeout(90):
            await _wait_for(proc, out, err, "Ctrl-C stops everything")
        yield http_port
    finally:
        await _stop(proc)
    assert proc.returncode == 0, err.join()


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    try:
        return json.loads(result.stdout)
    except ValueError:
        pytest.fail(f"not JSON: {result.stdout!r} {result.stderr!r}")


def check_attach(result: subprocess.CompletedProcess[str], shell: Shell) -> None:
    expected = rf"attached {DEVICE} to {GATEWAY}: (\d+) tags below {re.escape(SIM_ROOT)} from "
    match = re.search(expected + re.escape(f"opc.tcp://127.0.0.1:{shell.sim_port}"), result.stdout)
    assert match and int(match.group(1)) > 0, result.stdout


def check_devices(result: subprocess.CompletedProcess[str], shell: Shell) -> None:
    rows = [line.split() for line in result.stdout.splitlines()]
    assert rows[0][:3] == ["GATEWAY", "DEVICE", "STATE"]
    assert [GATEWAY, "(online)", DEVICE, "online"] in [row[:4] for row in rows], result.stdout
    assert "1 gateway (1 online), 6 devices (6 online)" in result.stdout


def check_device(result: subprocess.CompletedProcess[str], shell: Shell) -> None:
    device = _json(result)
    assert (device["id"], device["gateway"], device["state"]) == (DEVICE, GATEWAY, "online")
    assert device["tag_count"] > 0


def check_series(result: subprocess.CompletedProcess[str], shell: Shell) -> None:
    series = _json(result)
    assert (series["device"], series["tag"], series["unit"]) == (DEVICE, "Hydraulics/Flow", "m3/h")
    assert series["points"] and all(isinstance(p["value"], float) for p in series["points"])


def check_write(result: subprocess.CompletedProcess[str], shell: Shell) -> None:
    answer = _json(result)
    assert (answer["status_name"], answer["tag"], answer["requested"]) == ("Good", "Motor/SpeedSetpoint", 60)
    assert answer["value"] == 60 and answer["rtt_ms"] > 0, answer  # read back, with the round trip


def check_call(result: subprocess.CompletedProcess[str], shell: Shell) -> None:
    answer = _json(result)
    assert (answer["status_name"], answer["method"], answer["device"]) == ("Good", "Reset", DEVICE)


def check_audit(result: subprocess.CompletedProcess[str], shell: Shell) -> None:
    entries = [e for e in _json(result)["entries"] if e["device"] == DEVICE]
    done = {(e["action"], e["user"], e["outcome"]) for e in entries}
    # The audit names the token (the demo's admin token), whatever a client claims.
    assert {
        ("attach", "demo-admin", "ok"),
        ("write", "demo-admin", "ok"),
        ("call", "demo-admin", "ok"),
    } <= done
    assert all(e["ts"] and e["http_status"] for e in entries)


def check_detach(result: subprocess.CompletedProcess[str], shell: Shell) -> None:
    assert f"detached {DEVICE} from {GATEWAY}" in result.stdout


Check = Callable[[subprocess.CompletedProcess[str], Shell], None]
CHECKS: list[tuple[str, Check]] = [
    (r"plantwire attach opc\.tcp://127\.0\.0\.1:4850 --id pump-9\b", check_attach),
    (r"plantwire devices\b", check_devices),
    (re.escape(TOKEN_CURL) + r"localhost:8080/api/devices/pump-9\s", check_device),
    (re.escape(TOKEN_CURL) + r"'localhost:8080/api/series\?device=pump-9&tag=Hydraulics/Flow&", check_series),
    (re.escape(TOKEN_CURL) + r"localhost:8080/api/devices/pump-9/write \\\n\s+--json ", check_write),
    (re.escape(TOKEN_CURL) + r"localhost:8080/api/devices/pump-9/call \\\n\s+--json ", check_call),
    (re.escape(TOKEN_CURL) + r"localhost:8080/api/audit\b", check_audit),
    (r"plantwire detach pump-9\b", check_detach),
]
# What the platform knows arrives over MQTT after the attach answered: a device's state, then its data.
RETRIED = {check_devices, check_device, check_series}


def check_for(command: str) -> Check:
    found = [check for pattern, check in CHECKS if re.match(pattern, command)]
    assert len(found) == 1, f"README command without a check in {__name__}: {command!r}"
    return found[0]


def test_the_readme_block_is_the_one_this_test_checks() -> None:
    commands = attach_block()
    assert commands[0].startswith(f"plantwire sim --profile pump --port {README_SIM_PORT} ")
    assert "another terminal" in commands[0]
    assert [check_for(c) for c in commands[1:]] == [check for _, check in CHECKS]


async def test_attach_a_simulated_machine_as_the_readme_says(demo: int, tmp_path: Path) -> None:
    curl = shutil.which("curl")
    assert curl, "curl is not installed (apt-get install curl)"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PLANTWIRE_PLATFORM_URL": f"http://127.0.0.1:{demo}",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    env.pop("PLANTWIRE_TOKEN", None)
    shell = Shell(api_port=demo, sim_port=free_port(), env=env, data_dir=tmp_path / "demo")
    # The README's token line, run as written; what it exports is the terminal's from then on.
    assert token_line() == f"export PLANTWIRE_TOKEN=$(cat {README_DATA_DIR}admin.token)"
    taken = await shell.run(token_line() + ' && printf %s "$PLANTWIRE_TOKEN"')
    assert taken.returncode == 0 and taken.stdout, taken.stderr
    env["PLANTWIRE_TOKEN"] = taken.stdout
    sim_command, *commands = attach_block()
    assert all(README_API not in shell.text(c) for c in commands)

    sim = shell.start(sim_command)  # "another terminal"
    assert sim.stdout is not None and sim.stderr is not None
    sim_out, sim_err = Output(sim.stdout), Output(sim.stderr)
    try:
        async with asyncio.timeout(60):
            await _wait_for(sim, sim_out, sim_err, f"opc.tcp://127.0.0.1:{shell.sim_port}")
        assert f"root {SIM_ROOT}" in sim_out.text  # what attach will find without --root
        for command in commands:
            check = check_for(command)
            async with asyncio.timeout(120):
                while True:
                    result = await shell.run(command)
                    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
                    try:
                        check(result, shell)
                        break
                    except AssertionError:
                        if check not in RETRIED:
                            raise
                    await asyncio.sleep(0.5)
    finally:
        await _stop(sim)
    assert "Traceback" not in sim_err.join()
