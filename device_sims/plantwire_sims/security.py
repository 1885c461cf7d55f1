"""A simulated machine's OPC UA security: endpoints per policy and mode, its certificate, users, trust.

By default a machine offers one endpoint without security and lets anyone in, as before. Options:
- `policies`: endpoints like ``Basic256Sha256:SignAndEncrypt`` (the None endpoint stays unless
  `secure_only`); each machine gets a self-signed certificate in `cert_dir`, made on first start, with
  ApplicationUri ``urn:plantwire:sim:<machine>`` in its SubjectAltName.
- `trusted_dir`: only client certificates found there may open a secure channel.
- `users`: user name -> password; anonymous logins are then refused and wrong passwords too.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asyncua import Server, ua
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
from pydantic import SecretStr

from plantwire.logs import get_logger
from plantwire.opcua_certs import ensure_self_signed
from plantwire_sims.address_space import SimError

log = get_logger(__name__)

POLICIES = ("None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss")
MODES = ("Sign", "SignAndEncrypt")
_TYPE_PREFIX = {
    "Basic256Sha256": "Basic256Sha256",
    "Aes128_Sha256_RsaOaep": "Aes128Sha256RsaOaep",
    "Aes256_Sha256_RsaPss": "Aes256Sha256RsaPss",
}


def parse_policy(text: str) -> ua.SecurityPolicyType:
    """``None`` or ``POLICY:MODE`` (e.g. ``Basic256Sha256:SignAndEncrypt``) to asyncua's type."""
    if text == "None":
        return ua.SecurityPolicyType.NoSecurity
    policy, _, mode = text.partition(":")
    if policy not in _TYPE_PREFIX or mode not in MODES:
        raise SimError(
            f"security {text!r} is not None or POLICY:MODE with POLICY one of "
            f"{', '.join(POLICIES[1:])} and MODE one of {', '.join(MODES)}"
        )
    return ua.SecurityPolicyType[f"{_TYPE_PREFIX[policy]}_{mode}"]


@dataclass(frozen=True)
class SimSecurity:
    policies: tuple[str, ...] = ()
    secure_only: bool = False
    cert_dir: Path | None = None
    trusted_dir: Path | None = None
    users: Mapping[str, SecretStr] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for text in self.policies:
            parse_policy(text)
        secure = [p for p in self.policies if p != "None"]
        if self.secure_only and not secure:
            raise SimError("--secure-only needs at least one --security POLICY:MODE")
        if secure and self.cert_dir is None:
            raise SimError("--security with a policy other than None needs --cert-dir")
        if self.trusted_dir is not None and not secure:
            raise SimError("--trusted-certs needs at least one --security POLICY:MODE")

    def policy_types(self) -> list[ua.SecurityPolicyType]:
        types = [parse_policy(text) for text in self.policies]
        if not self.secure_only and ua.SecurityPolicyType.NoSecurity not in types:
            types.insert(0, ua.SecurityPolicyType.NoSecurity)
        if self.secure_only:
            types = [t for t in types if t != ua.SecurityPolicyType.NoSecurity]
        return types


class SimUsers:
    """asyncua user manager: who may activate a session.

    With `users`, only those names with their passwords (anonymous refused). With `secure_only`, no
    session on a channel without security: asyncua 2.1.0 still opens a None channel when no None
    endpoint is offered (discovery needs one), and would let a session through it; the channel's peer
    certificate, which asyncua passes here, is empty exactly on such a channel.
    """

    def __init__(self, machine: str, users: Mapping[str, SecretStr], secure_only: bool):
        self._machine = machine
        self._users = {name: secret.get_secret_value().encode() for name, secret in users.items()}
        self._secure_only = secure_only
        self.refused = 0

    def get_user(
        self, iserver: Any, username: str | None = None, password: str | None = None, certificate: Any = None
    ) -> User | None:
        if self._secure_only and not certificate:
            self.refused += 1
            log.warning("sim_insecure_session_refused", machine=self._machine, refused=self.refused)
            return None
        if not self._users:
            return User(role=UserRole.User)
        expected = self._users.get(username or "")
        given = (password or "").encode()
        if expected is not None and hmac.compare_digest(expected, given):
            return User(role=UserRole.User, name=username)
        self.refused += 1
        log.warning(
            "sim_login_refused", machine=self._machine, user=username or "(anonymous)", refused=self.refused
        )
        return None


def app_uri(machine: str) -> str:
    return f"urn:plantwire:sim:{machine}"


async def apply_security(server: Server, security: SimSecurity, machine: str, host: str) -> None:
    """Set endpoints, certificate, trust and users on a server that is initialised but not started."""
    await server.set_application_uri(app_uri(machine))
    server.set_security_policy(security.policy_types())
    if security.cert_dir is not None:
        cert, key = security.cert_dir / f"{machine}.der", security.cert_dir / f"{machine}.key.pem"
        hostnames = sorted({host, "localhost", "127.0.0.1"})
        if ensure_self_signed(app_uri(machine), f"Plantwire sim {machine}", cert, key, hostnames=hostnames):
            log.info("sim_certificate_made", machine=machine, path=str(cert))
        await server.load_certificate(str(cert))
        await server.load_private_key(str(key))
    if security.trusted_dir is not None:
        store = TrustStore([security.trusted_dir], [])
        try:
            await store.load()
        except (ValueError, OSError) as err:  # a key or other file that is no certificate
            raise SimError(
                f"--trusted-certs {security.trusted_dir}: a file is not a certificate ({err})"
            ) from err
        server.set_certificate_validator(
            CertificateValidator(
                CertificateValidatorOptions.TRUSTED_VALIDATION | CertificateValidatorOptions.PEER_CLIENT,
                store,
            )
        )
    if security.users or security.secure_only:
        users = SimUsers(machine, security.users, security.secure_only)
        server.iserver.set_user_manager(users)  # type: ignore[arg-type]
    if security.users:
        server.set_identity_tokens([ua.UserNameIdentityToken])


def read_users(specs: list[str], users_file: Path | None) -> dict[str, SecretStr]:
    """`NAME:PASSWORD_FILE` items and a file of `NAME:PASSWORD` lines (# comments) to name -> secret."""
    users: dict[str, SecretStr] = {}
    for spec in specs:
        name, sep, path = spec.partition(":")
        if not name or not sep or not path:
            raise SimError(f"--user {name or spec!r}: expected NAME:PASSWORD_FILE")
        try:
            password = Path(path).read_text().rstrip("\r\n")
        except OSError as err:
            raise SimError(f"--user {name}: cannot read the password file {path}: {err.strerror}") from err
        if not password:
            raise SimError(f"--user {name}: the password file {path} is empty")
        users[name] = SecretStr(password)
    if users_file is not None:
        try:
            lines = users_file.read_text().splitlines()
        except OSError as err:
            raise SimError(f"--users-file {users_file}: {err.strerror}") from err
        for number, line in enumerate(lines, start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            name, sep, password = line.partition(":")
            if not name or not sep or not password:
                raise SimError(f"--users-file {users_file} line {number}: expected NAME:PASSWORD")
            users[name.strip()] = SecretStr(password)
    return users
