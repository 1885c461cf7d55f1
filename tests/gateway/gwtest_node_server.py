"""node-opcua servers for the interop tests: `npm ci` once, then `node tests/opcua_interop/<script>`."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from plantwire.broker import free_port, wait_for_port

INTEROP_DIR = Path(__file__).resolve().parents[1] / "opcua_interop"
DATA_NAMESPACE = "urn:plantwire:test:data"
DATA_ROOT = f"nsu={DATA_NAMESPACE};s=Machine"
_npm_lock = threading.Lock()


def ensure_node_modules() -> None:
    """Install the pinned node-opcua (package-lock.json) unless it is installed already."""
    with _npm_lock:
        if (INTEROP_DIR / "node_modules" / "node-opcua" / "package.json").exists():
            return
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("the node-opcua interop tests need Node.js and npm (Debian: nodejs npm)")
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=INTEROP_DIR,
            check=True,
            timeout=600,
        )


@dataclass
class NodeServer:
    endpoint: str
    process: subprocess.Popen[str]


@contextlib.contextmanager
def node_server(script: str, *args: str) -> Iterator[NodeServer]:
    """Run `script` (which prints "ready PORT") on a free port; stop it by closing its stdin, then by PID."""
    ensure_node_modules()
    port = free_port()
    proc = subprocess.Popen(
        ["node", str(INTEROP_DIR / script), str(port), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=INTEROP_DIR,
    )
    try:
        assert proc.stdout is not None
        lines = []  # node-opcua may print warnings before the script's "ready"; EOF if it failed
        while (line := proc.stdout.readline()) and line.strip() != f"ready {port}":
            lines.append(line)
        if not line:
            raise RuntimeError(f"{script} did not start (exit {proc.wait(5)}): {''.join(lines)[-500:]}")
        # Keep reading what it prints, so a full pipe never stalls the server.
        threading.Thread(target=proc.stdout.read, name=f"drain-{script}", daemon=True).start()
        wait_for_port("127.0.0.1", port)
        yield NodeServer(f"opc.tcp://127.0.0.1:{port}", proc)
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
