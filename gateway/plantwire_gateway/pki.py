"""The gateway's OPC UA certificate store: its own application instance certificate and a trust list.

Layout below `<data_dir>/pki/`, the way other OPC UA clients keep theirs::

    own/cert.der            the gateway's application instance certificate (made on first start)
    private/key.pem         its private key (mode 0600)
    trusted/<name>.der      server certificates the gateway accepts
    rejected/<name>.der     server certificates it has seen and refused, waiting for a decision

A certificate's file name is `<common name>[<SHA-1 thumbprint>].der`; `plantwire gateway pki` moves
files between `rejected/` and `trusted/`. The certificate code lives in this one module so it can be
shared with the simulators' certificate helper later.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PKI_DIR: Final = "pki"
_SAFE = re.compile(r"[^A-Za-z0-9_.\-]+")

Folder = Literal["trusted", "rejected"]


class PkiError(Exception):
    """A certificate that cannot be found, read or moved."""


def application_uri(host: str | None = None) -> str:
    """The gateway's ApplicationUri; it is also the URI SubjectAltName of its certificate."""
    return f"urn:{host or socket.gethostname()}:plantwire:gateway"


def thumbprint(der: bytes) -> str:
    return hashlib.sha1(der, usedforsecurity=False).hexdigest()


def to_der(data: bytes) -> bytes:
    """A certificate given as DER or PEM, as DER; raises PkiError when it is neither."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data).public_bytes(Encoding.DER)
        x509.load_der_x509_certificate(data)
        return data
    except ValueError as err:
        raise PkiError(f"not an X.509 certificate: {err}") from None


def cert_name(der: bytes) -> str:
    """`<common name>[<thumbprint>].der`, safe as a file name."""
    try:
        cert = x509.load_der_x509_certificate(der)
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        common = str(names[0].value) if names else "certificate"
    except ValueError:
        common = "unreadable"
    return f"{_SAFE.sub('_', common)[:64]}[{thumbprint(der)}].der"


@dataclass(frozen=True, slots=True)
class CertEntry:
    folder: Folder
    name: str
    subject: str
    not_after: str


class Pki:
    """One gateway's certificate folders (created on first use)."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / PKI_DIR
        self.own_cert = self.root / "own" / "cert.der"
        self.own_key = self.root / "private" / "key.pem"

    def folder(self, name: Folder) -> Path:
        return self.root / name

    async def ensure_own(self, app_uri: str, host: str | None = None) -> tuple[Path, Path]:
        """The application instance certificate and key, made (or renewed when invalid) as needed."""
        from asyncua.crypto import cert_gen  # asyncua's generator: RSA 2048, SHA-256, URI + DNS SANs

        for sub in ("own", "private", "trusted", "rejected"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        await cert_gen.setup_self_signed_certificate(
            self.own_key,
            self.own_cert,
            app_uri,
            host or socket.gethostname(),
            [ExtendedKeyUsageOID.CLIENT_AUTH],
            {"organizationName": "Plantwire"},
        )
        os.chmod(self.own_key, 0o600)
        return self.own_cert, self.own_key

    def is_trusted(self, der: bytes) -> bool:
        return (self.folder("trusted") / cert_name(der)).is_file()

    def store(self, der: bytes, folder: Folder) -> Path:
        """Write a certificate into `folder` (atomically); its path."""
        target = self.folder(folder) / cert_name(der)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(der)
        os.replace(tmp, target)
        return target

    def trust_changed_at(self) -> float:
        """mtime of the trusted folder: a retry loop wakes up early when someone trusts a certificate."""
        try:
            return self.folder("trusted").stat().st_mtime
        except FileNotFoundError:
            return 0.0

    def entries(self) -> list[CertEntry]:
        out = []
        for folder in ("trusted", "rejected"):
            for path in sorted(self.folder(folder).glob("*.der")):  # type: ignore[arg-type]
                try:
                    cert = x509.load_der_x509_certificate(path.read_bytes())
                    subject, until = cert.subject.rfc4514_string(), cert.not_valid_after_utc.isoformat()
                except (OSError, ValueError):
                    subject, until = "(unreadable)", ""
                out.append(CertEntry(folder, path.name, subject, until))  # type: ignore[arg-type]
        return out

    def find(self, key: str, folder: Folder) -> Path:
        """A certificate in `folder` by file name, thumbprint or a unique prefix of either."""
        key = key.lower().removesuffix(".der")
        matches = [
            p
            for p in self.folder(folder).glob("*.der")
            if p.name.lower().startswith(key) or p.stem.lower().rsplit("[", 1)[-1].startswith(key)
        ]
        if len(matches) != 1:
            what = "no certificate" if not matches else f"{len(matches)} certificates"
            raise PkiError(f"{what} in {self.folder(folder)} match {key!r}")
        return matches[0]

    def move(self, key: str, to: Folder) -> Path:
        """Trust a rejected certificate or reject a trusted one; the new path."""
        source = self.find(key, "rejected" if to == "trusted" else "trusted")
        target = self.folder(to) / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
        os.utime(self.folder(to))
        return target

    def add(self, path: Path, to: Folder) -> Path:
        """Put a certificate file (DER or PEM) from elsewhere into `to`."""
        try:
            der = to_der(path.read_bytes())
        except OSError as err:
            raise PkiError(f"{path}: cannot read: {err.strerror}") from None
        other = self.folder("rejected" if to == "trusted" else "trusted") / cert_name(der)
        other.unlink(missing_ok=True)
        return self.store(der, to)
