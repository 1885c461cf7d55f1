"""OPC UA application certificates: self-signed, with the ApplicationUri in the SubjectAltName.

OPC UA (Part 6, 6.2.2) wants an application instance certificate whose SubjectAltName holds the
application's ApplicationUri (peers compare it with the one the application announces) plus the
host names or addresses it runs on, and key usages for signing and encryption. Simulators (servers)
and the gateway (a client) both use `make_self_signed`; the certificate is valid for both roles.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Sequence
from pathlib import Path

from asyncua.crypto.cert_gen import dump_private_key_as_pem, generate_private_key
from asyncua.crypto.cert_gen import generate_self_signed_app_certificate as _generate
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

DEFAULT_DAYS = 825


def make_self_signed(
    app_uri: str,
    common_name: str,
    cert_path: Path,
    key_path: Path,
    *,
    hostnames: Sequence[str] = ("localhost",),
    days: int = DEFAULT_DAYS,
) -> None:
    """Write a new RSA-2048 key (PEM, owner-only) and a self-signed certificate (DER) for `app_uri`.

    `hostnames` go into the SubjectAltName as IP addresses or DNS names. Existing files are replaced;
    use `ensure_self_signed` to keep them.
    """
    if not app_uri or not common_name:
        raise ValueError("a certificate needs an application URI and a common name")
    if days < 1:
        raise ValueError(f"days {days} must be at least 1")
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(app_uri)]
    for host in hostnames:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    key = generate_private_key()
    cert = _generate(
        key,
        common_name,
        {"organizationName": "Plantwire"},
        names,
        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        days=days,
    )
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    key_path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as key_file:
        key_file.write(dump_private_key_as_pem(key))
    cert_path.write_bytes(cert.public_bytes(Encoding.DER))


def ensure_self_signed(
    app_uri: str,
    common_name: str,
    cert_path: Path,
    key_path: Path,
    *,
    hostnames: Sequence[str] = ("localhost",),
    days: int = DEFAULT_DAYS,
) -> bool:
    """Make the certificate unless both files exist and it carries `app_uri`; True if it was made."""
    if cert_path.exists() and key_path.exists() and app_uri in certificate_uris(cert_path):
        return False
    make_self_signed(app_uri, common_name, cert_path, key_path, hostnames=hostnames, days=days)
    return True


def certificate_uris(cert_path: Path) -> list[str]:
    """The URIs in a certificate's SubjectAltName (DER or PEM file)."""
    data = cert_path.read_bytes()
    cert = (
        x509.load_pem_x509_certificate(data)
        if data.startswith(b"-----")
        else x509.load_der_x509_certificate(data)
    )
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return list(san.get_values_for_type(x509.UniformResourceIdentifier))
