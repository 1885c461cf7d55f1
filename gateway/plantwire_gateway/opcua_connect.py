"""Connecting to one OPC UA server with the device's security and identity, and errors that say why not.

Every connection (the streaming session, the attach check, commands) is built here, so all of them
use the same application instance certificate, trust list, user identity and timeouts. Before the
secure channel is opened the server's endpoints are read over a None channel (discovery, which every
server allows): a missing policy/mode or user-token type is reported at once with what the server
does offer, and the server certificate is checked against the gateway's trust list.

Failures become one `ConnectFailure(code, message, permanent)`:

    security_rejected      the server does not offer this policy/mode (or refused it)
    certificate_untrusted  either side does not trust the other's certificate
    identity_rejected      user name/password or user certificate refused, or required
    too_many_operations    the server is out of sessions/subscriptions/operations
    unreachable            network or server down (transient: reconnect fast)

Permanent ones retry slowly (minutes); nothing a server says is ever logged with a password.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from asyncua import Client, ua
from asyncua.crypto import security_policies as sp
from asyncua.ua import uaerrors

from .pki import Pki, application_uri, thumbprint
from .settings import DeviceConfig, password_env_name

SECURITY_POLICIES: Final[dict[str, type[sp.SecurityPolicy]]] = {
    "Basic256Sha256": sp.SecurityPolicyBasic256Sha256,
    "Aes128_Sha256_RsaOaep": sp.SecurityPolicyAes128Sha256RsaOaep,
    "Aes256_Sha256_RsaPss": sp.SecurityPolicyAes256Sha256RsaPss,
}
_MODES: Final = {
    "None": ua.MessageSecurityMode.None_,
    "Sign": ua.MessageSecurityMode.Sign,
    "SignAndEncrypt": ua.MessageSecurityMode.SignAndEncrypt,
}
PERMANENT: Final = frozenset({"security_rejected", "certificate_untrusted", "identity_rejected"})

_SECURITY = (uaerrors.BadSecurityModeRejected, uaerrors.BadSecurityPolicyRejected)
_CERT = (
    uaerrors.BadCertificateUntrusted,
    uaerrors.BadSecurityChecksFailed,
    uaerrors.BadCertificateInvalid,
    uaerrors.BadCertificateUriInvalid,
    uaerrors.BadCertificateHostNameInvalid,
    uaerrors.BadCertificateTimeInvalid,
    uaerrors.BadCertificateRevoked,
    uaerrors.BadCertificateUseNotAllowed,
)
_IDENTITY = (
    uaerrors.BadIdentityTokenInvalid,
    uaerrors.BadIdentityTokenRejected,
    uaerrors.BadUserAccessDenied,
)
_BUSY = (
    uaerrors.BadTooManyOperations,
    uaerrors.BadTooManySessions,
    uaerrors.BadTooManySubscriptions,
    uaerrors.BadTooManyMonitoredItems,
    uaerrors.BadTooManyPublishRequests,
)


class ConnectFailure(Exception):
    """Why a device cannot be connected; `code` is a reply code, `permanent` means retry slowly."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.permanent = code in PERMANENT

    def __str__(self) -> str:
        return f"{self.code}: {self.args[0]}"


def classify(err: BaseException, device: DeviceConfig, pki: Pki) -> ConnectFailure:
    """A library error from connecting or browsing as a ConnectFailure (never echoing credentials)."""
    if isinstance(err, ConnectFailure):
        return err
    name = type(err).__name__
    if isinstance(err, _SECURITY):
        return ConnectFailure(
            "security_rejected",
            f"the server refused security {device.security_policy}/{device.mode} ({name}); "
            "set security_policy and security_mode to one the server offers",
        )
    if isinstance(err, _CERT):
        return ConnectFailure(
            "certificate_untrusted",
            f"the server does not trust the gateway's certificate ({name}); add {pki.own_cert} "
            "to the server's trusted certificates (on many PLCs: accept it in the server's trust list)",
        )
    if isinstance(err, _IDENTITY):
        who = (
            "anonymous access" if device.username is None and device.user_certificate is None else "the user"
        )
        return ConnectFailure(
            "identity_rejected", f"the server refused {who} ({name}); check username/password"
        )
    if isinstance(err, _BUSY):
        return ConnectFailure("too_many_operations", f"the server is at a limit ({name})")
    reason = name if isinstance(err, ua.UaStatusCodeError) or not str(err) else f"{name}: {err}"
    return ConnectFailure("unreachable", f"cannot connect to {device.endpoint}: {reason}")


def read_password(device: DeviceConfig) -> str:
    """The device's password from `password_file` (first line) or its environment variable."""
    if device.password_file is not None:
        try:
            return device.password_file.read_text(encoding="utf-8").splitlines()[0]
        except (OSError, IndexError, UnicodeDecodeError):
            raise ConnectFailure(
                "identity_rejected", f"cannot read password_file {device.password_file}"
            ) from None
    env = password_env_name(device.id)
    value = os.environ.get(env)
    if value is None:
        raise ConnectFailure("identity_rejected", f"username is set but neither password_file nor {env} is")
    return value


def _matching_endpoint(
    endpoints: list[ua.EndpointDescription], device: DeviceConfig
) -> ua.EndpointDescription:
    policy_uri = (
        SECURITY_POLICIES[device.security_policy].URI
        if device.security_policy != "None"
        else (sp.SecurityPolicyNone.URI)
    )
    mode = _MODES[device.mode]
    for ep in endpoints:
        if ep.SecurityPolicyUri == policy_uri and ep.SecurityMode == mode:
            return ep
    offered = sorted(
        {f"{ep.SecurityPolicyUri.rsplit('#', 1)[-1]}/{ep.SecurityMode.name.rstrip('_')}" for ep in endpoints}
    )
    raise ConnectFailure(
        "security_rejected",
        f"the server does not offer {device.security_policy}/{device.mode}; it offers {', '.join(offered)}: "
        "set security_policy and security_mode to one of these",
    )


def _check_identity(ep: ua.EndpointDescription, device: DeviceConfig) -> None:
    kinds = {t.TokenType for t in ep.UserIdentityTokens or []}
    wanted = (
        ua.UserTokenType.UserName
        if device.username is not None
        else ua.UserTokenType.Certificate
        if device.user_certificate is not None
        else ua.UserTokenType.Anonymous
    )
    if wanted not in kinds:
        names = ", ".join(sorted(k.name for k in kinds)) or "none"
        hint = (
            "set username and password_file"
            if wanted == ua.UserTokenType.Anonymous
            else "use another identity"
        )
        raise ConnectFailure(
            "identity_rejected", f"the server does not accept {wanted.name} users (it takes {names}); {hint}"
        )


def check_server_certificate(der: bytes, device: DeviceConfig, pki: Pki) -> None:
    """Trusted, trusted on first use, or put into `rejected/` with what to do.

    first-use pins the first certificate a device presents (`pki/first-use/<device>`); a later,
    different certificate of that device is refused like any untrusted one.
    """
    if pki.is_trusted(der):
        return
    pin = pki.root / "first-use" / device.id
    if device.trust_server_certificate == "first-use" and not pin.exists():
        pin.parent.mkdir(parents=True, exist_ok=True)
        pin.write_text(thumbprint(der), encoding="utf-8")
        pki.store(der, "trusted")
        return
    path = pki.store(der, "rejected")
    raise ConnectFailure(
        "certificate_untrusted",
        f"the server certificate {path.name} is not trusted; check it, then run "
        f"`plantwire gateway --data-dir {pki.root.parent} pki trust {thumbprint(der)[:12]}` "
        f"(or move it from {pki.folder('rejected')} "
        f"to {pki.folder('trusted')})",
    )


@dataclass(frozen=True, slots=True)
class Timeouts:
    request: float
    watchdog: float


def timeouts(device: DeviceConfig) -> Timeouts:
    """A connection silent for `stall_timeout_s` counts as lost; a shorter stall is waited out."""
    return Timeouts(request=device.stall_timeout_s, watchdog=device.stall_timeout_s / 2)


async def make_client(
    device: DeviceConfig, pki: Pki, purpose: str, session_state: Path | None = None
) -> Client:
    """A configured, not yet connected client. Raises ConnectFailure."""
    t = timeouts(device)
    client = Client(device.endpoint, timeout=t.request, watchdog_intervall=t.watchdog)
    client.name = client.description = f"Plantwire gateway{purpose}"
    client.application_uri = application_uri()
    client.product_uri = "urn:plantwire:gateway"
    client.session_timeout = round(device.session_timeout_s * 1000)
    client.session_state_path = session_state
    try:
        endpoints = await client.connect_and_get_server_endpoints()
    except (OSError, TimeoutError, ua.UaError, ConnectionError) as err:
        client.disconnect_socket()
        raise classify(err, device, pki) from err
    ep = _matching_endpoint(endpoints, device)
    _check_identity(ep, device)
    if device.security_policy != "None":
        der = bytes(ep.ServerCertificate or b"")
        check_server_certificate(der, device, pki)
        cert, key = await pki.ensure_own(client.application_uri)
        await client.set_security(
            SECURITY_POLICIES[device.security_policy],
            cert,
            key,
            server_certificate=der,
            mode=_MODES[device.mode],
        )
    if device.username is not None:
        client.set_user(device.username)
        client.set_password(read_password(device))
    elif device.user_certificate is not None and device.user_private_key is not None:
        await client.load_client_certificate(str(device.user_certificate))
        await client.load_private_key(device.user_private_key)
    return client
