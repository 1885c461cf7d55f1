"""node-opcua servers for the interoperability tests: installs the pinned node-opcua once, runs a script."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

INTEROP = Path(__file__).resolve().parent.parent / "opcua_interop"


def ensure_node_opcua() -> Path:
    """`npm ci` into tests/opcua_interop once (the lock file pins node-opcua); the folder."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail(
            "node and npm are needed for the OPC UA interoperability tests (./dev test installs them)"
        )
    if not (INTEROP / "node_modules" / "node-opcua").is_dir():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=INTEROP,
            check=True,
            capture_output=True,
            timeout=600,
        )
    return INTEROP


@dataclass
class NodeServer:
    port: int
    process: asyncio.subprocess.Process

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}"


@contextlib.asynccontextmanager
async def node_server(script: str, port: int, *args: str) -> AsyncIterator[NodeServer]:
    """Run `node <script> --port PORT ARGS...` until the block ends; waits for its READY line."""
    folder = ensure_node_opcua()
    proc = await asyncio.create_subprocess_exec(
        "node", script, "--port", str(port), *args, cwd=folder,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(60):
            while True:
                line = await proc.stdout.readline()
                if not line:
                    raise RuntimeError(f"{script} exited with {await proc.wait()} before READY")
                if line.startswith(b"READY"):
                    break
        yield NodeServer(port, proc)
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                async with asyncio.timeout(10):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
