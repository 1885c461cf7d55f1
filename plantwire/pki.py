"""A small private PKI for MQTT over TLS: one CA, a server certificate for the broker, client certificates.

`plantwire pki init DIR --hostname mosquitto` writes, in DIR:
  ca.crt / ca.key             the CA (keep ca.key offline once the certificates are made)
  server.crt / server.key     for Mosquitto (`cafile`, `certfile`, `keyfile`)
  <client>.crt / <client>.key one per client (`tls_cert_file`, `tls_key_file`), default platform, gateway
Keys are ECDSA P-256, written with mode 0600. The server certificate names every --hostname plus
localhost, 127.0.0.1 and ::1 (for a broker reached on the same machine).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from plantwire.broker_auth import write_private

LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
DEFAULT_CLIENTS = ("platform", "gateway")


class PkiError(Exception):
    """The PKI cannot be written (e.g. a CA is already there)."""


@dataclass(frozen=True, slots=True)
class Pki:
    directory: Path

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def server_cert(self) -> Path:
        return self.directory / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.directory / "server.key"

    def client_cert(self, name: str) -> Path:
        return self.directory / f"{name}.crt"

    def client_key(self, name: str) -> Path:
        return self.directory / f"{name}.key"


def init_pki(
    directory: Path,
    hostnames: Sequence[str],
    clients: Sequence[str] = DEFAULT_CLIENTS,
    days: int = 825,
) -> Pki:
    """Create the CA, the server certificate and the client certificates; refuse to replace a CA."""
    pki = Pki(directory)
    if pki.ca_file.exists():
        raise PkiError(f"{pki.ca_file} exists; use another directory or remove the old PKI first")
    for name in clients:
        if not name or "/" in name or name in ("ca", "server"):
            raise PkiError(f"client name {name!r} is not usable as a file name")
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Plantwire MQTT CA")])
    ca_cert = (
        _builder(ca_name, ca_name, ca_key.public_key(), days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(directory / "ca.key", ca_key)
    names = list(dict.fromkeys([*hostnames, *LOCAL_NAMES]))
    _issue(pki.server_cert, pki.server_key, names[0], ca_cert, ca_key, days, san=names, server=True)
    for name in clients:
        _issue(pki.client_cert(name), pki.client_key(name), name, ca_cert, ca_key, days, san=(), server=False)
    pki.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    return pki


def _issue(
    cert_path: Path,
    key_path: Path,
    common_name: str,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    days: int,
    *,
    san: Sequence[str],
    server: bool,
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        _builder(subject, ca_cert.subject, key.public_key(), days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName([_general_name(n) for n in san]), False)
    cert = builder.sign(ca_key, hashes.SHA256())
    _write_key(key_path, key)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey, days: int
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
    )


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=not ca,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_private(path, pem.decode())
