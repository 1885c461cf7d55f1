"""The platform clients (`attach`, `detach`, `devices`): where they find the platform, the token they
send, and one clear line with exit code 1 or 2 for everything that can go wrong.

The platform does not check tokens yet, so what the commands send is seen by a small recording HTTP
server on loopback; the attach root is found on a real simulated machine. The README's block against
a whole live demo is tests/integration/test_readme.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from plantwire.broker import free_port, wait_for_port
from plantwire.cli import build_parser
from plantwire.cli_text import plural
from plantwire.platform_client import (
    DEFAULT_PLATFORM,
    PLATFORM_URL_ENV,
    TOKEN_ENV,
    PlatformCallError,
    PlatformClient,
    PlatformSetupError,
    platform_url,
)
from plantwire_sims.machine import SimMachine

TOKEN = "pw-s3cret-T0ken"
GATEWAYS = {
    "gateways": [
        {
            "id": "gw1",
            "state": "online",
            "devices": [
                {
                    "id": "cnc-1",
                    "state": "online",
                    "tag_count": 11,
                    "endpoint": "opc.tcp://h:1",
                    "error": None,
                }
            ],
        }
    ]
}


@dataclass
class Recorder:
    """An HTTP server on loopback that answers like the platform and keeps what it was sent."""

    url: str = ""
    requests: list[tuple[str, str, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    redirect_to: str | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body: dict[str, Any] = await request.json() if request.can_read_body else {}
        self.requests.append((request.method, request.path, dict(request.headers), body))
        if self.redirect_to is not None:
            raise web.HTTPFound(self.redirect_to + request.path)
        if request.path == "/api/gateways":
            return web.json_response(GATEWAYS)
        if request.method == "POST" and request.path == "/api/gateways/gw1/devices":
            root = body.get("root", "")
            return web.json_response(
                {"device": body["id"], "endpoint": body["endpoint"], "root": root, "tags": 1}, status=201
            )
        if request.path == "/api/forbidden":
            return web.json_response({"error": {"code": "forbidden", "message": "token refused"}}, status=403)
        return web.Response(text="<html>not a platform</html>", status=404)

    @property
    def authorizations(self) -> list[str | None]:
        return [headers.get("Authorization") for _, _, headers, _ in self.requests]


@contextlib.asynccontextmanager
async def recorder(redirect_to: str | None = None) -> AsyncIterator[Recorder]:
    rec = Recorder(redirect_to=redirect_to)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", rec.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    rec.url = f"http://127.0.0.1:{port}"
    try:
        yield rec
    finally:
        await runner.cleanup()


@pytest.fixture
async def platform() -> AsyncIterator[Recorder]:
    async with asyncio.timeout(10), recorder() as rec:
        yield rec


@pytest.fixture(autouse=True)
def no_platform_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PLATFORM_URL_ENV, raising=False)
    monkeypatch.delenv(TOKEN_ENV, raising=False)


async def cli(*argv: str) -> int:
    """A command as `plantwire` runs it (not `main()`: that would aim logging at pytest's capture)."""

    def run() -> int:
        args = build_parser().parse_args(list(argv))
        return int(args._module.run(args))

    async with asyncio.timeout(60):
        return await asyncio.to_thread(run)


def test_the_platform_comes_from_the_flag_then_the_environment_then_the_default() -> None:
    env = {PLATFORM_URL_ENV: "http://platform.local:9000/"}
    assert platform_url(None, {}) == DEFAULT_PLATFORM
    assert platform_url(None, env) == "http://platform.local:9000"
    assert platform_url("https://10.0.0.5:8443", env) == "https://10.0.0.5:8443"
    for bad in ("localhost:8080", "ftp://h", "http://", "http://h:99999", "http://h:x"):
        with pytest.raises(PlatformSetupError, match="is not a platform URL"):
            platform_url(bad, {})
    for secret in ("http://me:hunter2@h:8080", "http://h:8080/?token=hunter2", "http://h/#hunter2"):
        with pytest.raises(PlatformSetupError, match="not accepted") as err:
            platform_url(None, {PLATFORM_URL_ENV: secret})
        assert "hunter2" not in str(err.value) and PLATFORM_URL_ENV in str(err.value)


async def test_a_token_goes_out_as_a_bearer_header_and_is_never_printed(
    platform: Recorder, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await cli("devices", "--platform", platform.url) == 0
    assert await cli("devices", "--platform", platform.url, "--token", TOKEN) == 0
    monkeypatch.setenv(TOKEN_ENV, "from-the-environment")
    monkeypatch.setenv(PLATFORM_URL_ENV, platform.url)
    assert await cli("devices") == 0
    assert await cli("devices", "--token", TOKEN) == 0  # the flag wins
    assert platform.authorizations == [
        None,
        f"Bearer {TOKEN}",
        "Bearer from-the-environment",
        f"Bearer {TOKEN}",
    ]
    out = capsys.readouterr()
    assert TOKEN not in out.out + out.err and "from-the-environment" not in out.out + out.err


async def test_a_redirect_does_not_carry_the_token_to_another_host(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with asyncio.timeout(30), recorder() as target, recorder(redirect_to=target.url) as first:
        assert await cli("devices", "--platform", first.url, "--token", TOKEN) == 0
        assert first.authorizations == [f"Bearer {TOKEN}"]
        assert target.authorizations == [None] and target.requests[0][1] == "/api/gateways"
    assert "gw1 (online)" in capsys.readouterr().out


async def test_devices_lists_the_table_and_counts_in_words(
    platform: Recorder, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await cli("devices", "--platform", platform.url) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["GATEWAY", "DEVICE", "STATE", "TAGS", "ENDPOINT", "ERROR"]
    assert lines[1].split() == ["gw1", "(online)", "cnc-1", "online", "11", "opc.tcp://h:1"]
    assert lines[-1] == "1 gateway (1 online), 1 device (1 online)"
    assert [plural(n, "gateway") for n in (0, 1, 2)] == ["0 gateways", "1 gateway", "2 gateways"]


async def test_failures_are_one_line_with_exit_code_1_or_2(
    platform: Recorder, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    cases = [
        (["devices", "--platform", nobody], 1, f"cannot reach the platform at {nobody}"),
        (["detach", "pump-9", "--platform", platform.url], 1, "is it the platform's URL?"),
        (["devices", "--platform", "localhost:8080"], 2, "'localhost:8080' is not a platform URL"),
        (["devices", "--platform", platform.url, "--token", "two\nlines " + TOKEN], 2, "--token: the token"),
    ]
    for argv, code, message in cases:
        assert await cli(*argv) == code, argv
        out = capsys.readouterr()
        assert out.out == "" and out.err.count("\n") == 1 and message in out.err, out.err
        assert out.err.startswith(f"plantwire {argv[0]}: ") and TOKEN not in out.err
    monkeypatch.setenv(PLATFORM_URL_ENV, "nonsense")
    assert await cli("attach", "opc.tcp://127.0.0.1:1", "--root", "i=85", "--gateway", "gw1") == 2
    assert f"{PLATFORM_URL_ENV} 'nonsense' is not a platform URL" in capsys.readouterr().err


async def test_an_api_error_is_the_apis_own_message(
    platform: Recorder, capsys: pytest.CaptureFixture[str]
) -> None:
    client = PlatformClient(platform.url, token=None)
    with pytest.raises(PlatformCallError, match=r"^token refused \(HTTP 403 forbidden\)$"):
        await asyncio.to_thread(client.call, "GET", "/api/forbidden")


async def test_attach_without_root_uses_the_machines_only_object(
    platform: Recorder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with asyncio.timeout(60), SimMachine("pump", "pump-1", free_port(), rate_hz=2, seed=1) as machine:
        assert await cli("attach", machine.endpoint, "--id", "pump-9", "--platform", platform.url) == 0
        assert f"attached pump-9 to gw1: 1 tag below {machine.root_node_id}" in capsys.readouterr().out
        given = ["attach", machine.endpoint, "--id", "p", "--root", "Other", "--platform", platform.url]
        assert await cli(*given) == 0
    bodies = [body for method, _, _, body in platform.requests if method == "POST"]
    assert bodies == [
        {"endpoint": machine.endpoint, "id": "pump-9", "root": machine.root_node_id},
        {"endpoint": machine.endpoint, "id": "p", "root": "Other"},
    ]
    # Nothing listens there now: no default root, said once; the gateway decides.
    assert await cli("attach", machine.endpoint, "--id", "q", "--platform", platform.url) == 0
    assert "no default root (cannot browse it from here" in capsys.readouterr().err
    assert "root" not in platform.requests[-1][3]


def test_the_command_finds_the_platform_in_the_environment(tmp_path: Path) -> None:
    """`plantwire devices` as a newcomer runs it: PLANTWIRE_PLATFORM_URL set, nothing else."""
    script = (
        "import sys\n"
        "from aiohttp import web\n"
        "async def gateways(request):\n"
        "    return web.json_response({'gateways': []})\n"
        "app = web.Application()\n"
        "app.router.add_get('/api/gateways', gateways)\n"
        "web.run_app(app, host='127.0.0.1', port=int(sys.argv[1]), print=lambda *a: None)\n"
    )
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", script, str(port)])
    try:
        devices = [sys.executable, "-m", "plantwire", "devices"]
        env = {**os.environ, PLATFORM_URL_ENV: f"http://127.0.0.1:{port}"}
        env.pop(TOKEN_ENV, None)
        wait_for_port("127.0.0.1", port, timeout=30)
        done = subprocess.run(devices, env=env, capture_output=True, text=True, timeout=60)
        assert (done.returncode, done.stdout, done.stderr) == (0, "no gateway has reported yet\n", "")
        env[PLATFORM_URL_ENV] = f"http://127.0.0.1:{free_port()}"
        done = subprocess.run(devices, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 1 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_a_missing_extra_is_one_line_naming_it(tmp_path: Path) -> None:
    """`plantwire demo` with no Mosquitto and no amqtt (as after `pip install plantwire`)."""
    script = (
        "import sys\n"
        "class NoAmqtt:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'amqtt' or name.startswith('amqtt.'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, NoAmqtt())\n"
        "from plantwire.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    argv = ["demo", "--broker", "embedded", "--data-dir", str(tmp_path), "--http-port", str(free_port())]
    done = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines() == [
        "plantwire demo: the demo's embedded MQTT broker needs the Python package 'amqtt', which is not "
        "installed: pip install 'plantwire[demo]' (./dev installs every extra)"
    ]


async def test_devices_pages_through_a_real_platform_with_more_devices_than_a_page(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A gateway with more devices than `/api/gateways` lists: the rest come from `/api/devices` pages."""
    from plantwire.wire import DeviceStatus, GatewayStatus
    from plantwire_platform.ingest.stats import IngestStats
    from plantwire_platform.store.sqlite import SqliteStore
    from plantwire_platform.web.app import create_app
    from plantwire_platform.web.runtime import PlatformRuntime

    store = SqliteStore.open(tmp_path / "store.sqlite")
    store.apply_gateway_status("big", GatewayStatus("online", 1, "0.1.0"))
    for i in range(1234):
        state = "offline" if i == 7 else "online"
        error = "detached" if i == 7 else None
        store.apply_device_status("big", f"d-{i:04d}", DeviceStatus(state, 1, None, error))
    store.apply_device_status("small", "s-1", DeviceStatus("connecting", 1, "opc.tcp://h:1", None))
    runner = web.AppRunner(create_app(PlatformRuntime(store, IngestStats)))
    try:
        async with asyncio.timeout(60):
            await runner.setup()
            port = free_port()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            assert await cli("devices", "--platform", f"http://127.0.0.1:{port}") == 0
    finally:
        await runner.cleanup()
        store.close()
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in lines[1:-2]]
    assert [r[2] for r in rows] == [f"d-{i:04d}" for i in range(1234)] + ["s-1"]
    assert rows[7][3] == "detached" and rows[8][3] == "online"
    assert rows[-1][:4] == ["small", "(unknown)", "s-1", "connecting"]
    assert lines[-1] == "2 gateways (1 online), 1235 devices (1233 online)"
