"""Secure endpoints, client trust and user logins of a simulated machine, against real asyncua clients."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from asyncua import Client, ua
from pydantic import SecretStr
from sim_client import node

from plantwire.opcua_certs import certificate_uris, make_self_signed
from plantwire_sims.address_space import SimError
from plantwire_sims.machine import SimMachine
from plantwire_sims.security import SimSecurity, read_users

POLICY = "Basic256Sha256:SignAndEncrypt"


def client_identity(folder: Path, name: str, key_folder: Path | None = None) -> tuple[str, Path, Path]:
    uri = f"urn:plantwire:test:{name}"
    cert, key = folder / f"{name}.der", (key_folder or folder) / f"{name}.key.pem"
    make_self_signed(uri, name, cert, key, hostnames=["localhost"], days=2)
    return uri, cert, key


async def secure_client(endpoint: str, identity: tuple[str, Path, Path]) -> Client:
    uri, cert, key = identity
    client = Client(endpoint, timeout=10)
    client.application_uri = uri
    await client.set_security_string(f"Basic256Sha256,SignAndEncrypt,{cert},{key}")
    return client


async def test_secure_only_endpoint_refuses_none_and_untrusted_accepts_trusted(
    tmp_path: Path, port: int
) -> None:
    trusted_dir = tmp_path / "trusted"
    trusted_dir.mkdir()
    trusted = client_identity(trusted_dir, "gateway", tmp_path)  # its certificate is in the trusted folder
    stranger = client_identity(tmp_path, "stranger")
    security = SimSecurity((POLICY,), secure_only=True, cert_dir=tmp_path / "pki", trusted_dir=trusted_dir)
    async with asyncio.timeout(60), SimMachine("pump", "pump-1", port, security=security) as machine:
        server_cert = tmp_path / "pki" / "pump-1.der"
        assert certificate_uris(server_cert) == ["urn:plantwire:sim:pump-1"]
        endpoints = await Client(machine.endpoint, timeout=10).connect_and_get_server_endpoints()
        assert {(e.SecurityPolicyUri.rsplit("#", 1)[1], e.SecurityMode) for e in endpoints} == {
            ("Basic256Sha256", ua.MessageSecurityMode.SignAndEncrypt)
        }

        # The server itself refuses a session over a None channel, whatever the client makes of the
        # endpoints (asyncua opens such a channel for discovery even when no None endpoint is offered).
        plain = Client(machine.endpoint, timeout=5)
        await plain.connect_socket()
        try:
            await plain.send_hello()
            await plain.open_secure_channel()
            plain.security_policy.Mode = ua.MessageSecurityMode.SignAndEncrypt  # to get past find_endpoint
            plain.security_policy.URI = "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256"
            with pytest.raises(ua.UaStatusCodeError) as refused:
                await plain.create_session()
                await plain.activate_session()
            assert refused.value.code == ua.StatusCodes.BadUserAccessDenied
            with pytest.raises(ua.UaStatusCodeError):
                await plain.get_node(node(machine, "Hydraulics/Flow")).read_value()
        finally:
            plain.disconnect_socket()
        with pytest.raises(ua.UaError, match="No matching endpoints"):
            async with Client(machine.endpoint, timeout=5):
                pass

        with pytest.raises((ua.UaError, ConnectionError, TimeoutError)):
            async with await secure_client(machine.endpoint, stranger) as untrusted:
                await untrusted.get_node(node(machine, "Hydraulics/Flow")).read_value()

        async with await secure_client(machine.endpoint, trusted) as client:
            state = await client.get_node(node(machine, "Status/State")).read_value()
            assert state == "RUNNING"

    # The certificate is kept for the next start, not made anew.
    before = server_cert.read_bytes()
    async with asyncio.timeout(30), SimMachine("pump", "pump-1", port, security=security):
        pass
    assert server_cert.read_bytes() == before


async def test_user_login_right_password_wrong_password_and_anonymous(tmp_path: Path, port: int) -> None:
    password_file = tmp_path / "operator.pw"
    password_file.write_text("s3cret-Pa55\n")
    users = read_users([f"operator:{password_file}"], None)
    assert users["operator"].get_secret_value() == "s3cret-Pa55"
    security = SimSecurity((POLICY,), cert_dir=tmp_path / "pki", users=users)
    async with asyncio.timeout(60), SimMachine("cnc", "cnc-1", port, security=security) as machine:
        identity = client_identity(tmp_path, "gateway")

        client = await secure_client(machine.endpoint, identity)
        client.set_user("operator")
        client.set_password("s3cret-Pa55")
        async with client:
            assert await client.get_node(node(machine, "Status/State")).read_value() == "RUNNING"

        wrong = await secure_client(machine.endpoint, identity)
        wrong.set_user("operator")
        wrong.set_password("guess")
        with pytest.raises(ua.UaStatusCodeError) as refused:
            async with wrong:
                pass
        assert refused.value.code in (
            ua.StatusCodes.BadUserAccessDenied,
            ua.StatusCodes.BadIdentityTokenRejected,
        )

        with pytest.raises(ua.UaStatusCodeError) as anonymous:
            async with Client(machine.endpoint, timeout=10):
                pass
        assert anonymous.value.code in (
            ua.StatusCodes.BadIdentityTokenInvalid,
            ua.StatusCodes.BadIdentityTokenRejected,
            ua.StatusCodes.BadUserAccessDenied,
        )


def test_bad_security_settings_are_refused_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(SimError, match="POLICY:MODE"):
        SimSecurity(("Basic256Sha256:Encrypt",), cert_dir=tmp_path)
    with pytest.raises(SimError, match="--secure-only needs"):
        SimSecurity(("None",), secure_only=True)
    with pytest.raises(SimError, match="needs --cert-dir"):
        SimSecurity((POLICY,))
    with pytest.raises(SimError, match="NAME:PASSWORD_FILE"):
        read_users(["operator"], None)
    users_file = tmp_path / "users"
    users_file.write_text("# plant users\nalice:pw one\n\nbob:x:y\n")
    assert {k: v.get_secret_value() for k, v in read_users([], users_file).items()} == {
        "alice": "pw one",
        "bob": "x:y",
    }
    assert "pw one" not in repr(SecretStr("pw one"))
