"""OPC UA security against a server nobody here wrote: node-opcua, Basic256Sha256 SignAndEncrypt only.

Wrong settings give errors that say what happened (and what to do); the server's certificate lands
in the gateway's `pki/rejected/` until `plantwire gateway pki trust` moves it, after which the
running gateway connects on its own; passwords never appear in statuses, replies or logs.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from gwtest_nodeopcua import NodeServer, node_server
from gwtest_support import Collector, gateway_running, gateway_settings, wait_for

from plantwire import wire
from plantwire.broker import MosquittoProcess, free_port
from plantwire.config import ConfigError
from plantwire_gateway.device_registry import RegistryError, probe
from plantwire_gateway.pki import Pki
from plantwire_gateway.settings import DeviceConfig, load_settings

PASSWORD = "s3cret-Pw!"


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "device.password"
    path.write_text(PASSWORD + "\n")
    return path


@pytest.fixture
async def secure_server(tmp_path: Path, password_file: Path) -> AsyncIterator[NodeServer]:
    args = [
        "--pki",
        str(tmp_path / "server-pki"),
        "--user",
        "operator",
        "--password-file",
        str(password_file),
    ]
    async with node_server("secure_server.js", free_port(), *args) as server:
        yield server


def device(server: NodeServer, **kw: Any) -> DeviceConfig:
    return DeviceConfig(
        id="plc-1", endpoint=server.endpoint, root="ns=1;s=m1", publishing_interval_ms=100, **kw
    )


async def refused(dev: DeviceConfig, pki: Pki) -> RegistryError:
    with pytest.raises(RegistryError) as info:
        async with asyncio.timeout(30):
            await probe(dev, pki)
    return info.value


async def test_wrong_settings_say_what_happened(
    secure_server: NodeServer, password_file: Path, tmp_path: Path
) -> None:
    pki = Pki(tmp_path / "gw")
    err = await refused(device(secure_server), pki)
    assert err.code == "security_rejected"
    assert "Basic256Sha256/SignAndEncrypt" in str(err)  # what the server does offer
    err = await refused(device(secure_server, security_policy="Basic256Sha256", security_mode="Sign"), pki)
    assert err.code == "security_rejected"

    err = await refused(device(secure_server, security_policy="Basic256Sha256"), pki)
    assert err.code == "identity_rejected"
    assert "UserName" in str(err)

    secure = {"security_policy": "Basic256Sha256", "username": "operator", "password_file": password_file}
    err = await refused(device(secure_server, **secure), pki)
    assert err.code == "certificate_untrusted"
    rejected = list(pki.folder("rejected").glob("*.der"))
    assert len(rejected) == 1 and "pki trust" in str(err)
    assert not list(pki.folder("trusted").glob("*.der"))

    pki.move(rejected[0].name, "trusted")
    async with asyncio.timeout(30):
        assert await probe(device(secure_server, **secure), pki) == 2  # Counter, Constant

    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-it\n")
    err = await refused(device(secure_server, **{**secure, "password_file": wrong}), pki)
    assert err.code == "identity_rejected"
    assert "not-it" not in str(err) and PASSWORD not in str(err)


async def test_first_use_trusts_the_first_certificate_only(
    secure_server: NodeServer, password_file: Path, tmp_path: Path
) -> None:
    pki = Pki(tmp_path / "gw")
    secure = {"security_policy": "Basic256Sha256", "username": "operator", "password_file": password_file}
    async with asyncio.timeout(30):
        assert await probe(device(secure_server, trust_server_certificate="first-use", **secure), pki) == 2
    assert len(list(pki.folder("trusted").glob("*.der"))) == 1
    # Another certificate for the same device later (a replaced server, or an impostor) is refused.
    pki.move(next(pki.folder("trusted").glob("*.der")).name, "rejected")
    err = await refused(device(secure_server, trust_server_certificate="first-use", **secure), pki)
    assert err.code == "certificate_untrusted"


async def test_running_gateway_connects_once_the_cli_trusts_the_certificate(
    secure_server: NodeServer,
    password_file: Path,
    tmp_path: Path,
    mosquitto: MosquittoProcess,
    collector: Collector,
    unique_id: str,
) -> None:
    data_dir = tmp_path / "gw"
    dev = device(
        secure_server, security_policy="Basic256Sha256", username="operator", password_file=password_file
    )
    settings = gateway_settings(unique_id, mosquitto, data_dir, [dev])
    async with asyncio.timeout(90), gateway_running(settings) as gateway:

        def status() -> wire.DeviceStatus | None:
            payloads = collector.of("plc-1", "status")
            return wire.decode_device_status(payloads[-1]) if payloads else None

        offline = await wait_for(
            lambda: (s := status()) and s.error and s.error.startswith("certificate_untrusted") and s,
            within=30,
            what="status certificate_untrusted",
        )
        assert offline.state == "offline" and "pki trust" in (offline.error or "")
        thumb = Pki(data_dir).entries()[0].name.rsplit("[", 1)[1][:10]
        cli = [sys.executable, "-m", "plantwire", "gateway", "--data-dir", str(data_dir), "pki"]
        listed = await asyncio.to_thread(
            subprocess.run, [*cli, "list"], capture_output=True, text=True, check=True, timeout=60
        )
        assert "rejected" in listed.stdout and thumb in listed.stdout
        await asyncio.to_thread(
            subprocess.run, [*cli, "trust", thumb], capture_output=True, text=True, check=True, timeout=60
        )
        # The permanent-failure backoff is long, but a change of the trust list wakes it up.
        await wait_for(lambda: (s := status()) and s.state == "online", within=20, what="online after trust")
        await wait_for(
            lambda: {s.tag for s in collector.samples("plc-1")} >= {"Counter", "Constant"},
            within=20,
            what="values from the secure server",
        )
        assert gateway.stats()["devices"]["plc-1"] == "online"
    for _, payload, _ in collector.messages:
        assert PASSWORD.encode() not in payload


def test_credentials_in_the_endpoint_are_refused_without_echoing_them(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('[[devices]]\nid = "plc"\nendpoint = "opc.tcp://admin:Hunter2@127.0.0.1:4840"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    assert "must not carry credentials" in str(info.value) and "Hunter2" not in str(info.value)
    with pytest.raises(ValueError) as err:
        DeviceConfig(id="plc", endpoint="opc.tcp://admin:Hunter2@127.0.0.1:4840")
    assert "Hunter2" not in str(err.value).split("input_value")[0]


def test_security_keys_are_checked_together(tmp_path: Path) -> None:
    base = {"id": "plc", "endpoint": "opc.tcp://127.0.0.1:4840"}
    with pytest.raises(ValueError, match="security_mode needs"):
        DeviceConfig(**base, security_mode="Sign")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="go together"):
        DeviceConfig(**base, user_certificate=tmp_path / "c.der")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="file not found"):
        DeviceConfig(**base, username="u", password_file=tmp_path / "missing")  # type: ignore[arg-type]
    ok = DeviceConfig(**base, security_policy="Aes256_Sha256_RsaPss")  # type: ignore[arg-type]
    assert ok.mode == "SignAndEncrypt"


async def test_x509_user_certificate_logs_in(secure_server: NodeServer, tmp_path: Path) -> None:
    from asyncua.crypto import cert_gen
    from cryptography.x509.oid import ExtendedKeyUsageOID

    key, cert = tmp_path / "user-key.pem", tmp_path / "user-cert.der"
    await cert_gen.setup_self_signed_certificate(
        key, cert, "urn:plantwire:test:user", "localhost", [ExtendedKeyUsageOID.CLIENT_AUTH], {}
    )
    pki = Pki(tmp_path / "gw")
    dev = device(
        secure_server,
        security_policy="Basic256Sha256",
        trust_server_certificate="first-use",
        user_certificate=cert,
        user_private_key=key,
    )
    async with asyncio.timeout(30):
        assert await probe(dev, pki) == 2


def test_attach_takes_every_security_key() -> None:
    from plantwire_gateway.device_registry import ATTACH_KEYS

    interface = {"security_policy", "security_mode", "username", "password_file", "user_certificate",
                 "user_private_key", "trust_server_certificate"}  # fmt: skip
    assert interface <= ATTACH_KEYS


async def test_attach_refuses_credentials_in_the_endpoint(
    mosquitto: MosquittoProcess, tmp_path: Path, unique_id: str
) -> None:
    settings = gateway_settings(unique_id, mosquitto, tmp_path / "gw", [])
    async with asyncio.timeout(30), gateway_running(settings) as gateway:
        registry = await wait_for(lambda: gateway.registry, what="device registry")
        with pytest.raises(RegistryError) as info:
            await registry.attach({"id": "plc", "endpoint": "opc.tcp://op:Hunter2@127.0.0.1:4840"})
    assert info.value.code == "invalid" and "Hunter2" not in str(info.value)
    assert "must not carry credentials" in str(info.value)
