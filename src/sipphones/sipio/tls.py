"""TLS client contexts for SIP over TLS: verification on unless explicitly turned off.

``ssl.create_default_context`` gives certificate-chain and host-name verification; the CA bundle
is the system's unless ``ca_file`` names another one (a private PBX CA). Contexts are built once
per option set and shared by every connection, which matters with thousands of phones.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from functools import lru_cache

from sipphones.sip.config import Target

from .errors import TlsError


@dataclass(frozen=True)
class TlsOptions:
    """``ca_file``: PEM bundle of trusted CAs (None: the system store).
    ``verify``: False disables certificate and host-name checks (for lab PBXs only)."""

    ca_file: str | None = None
    verify: bool = True
    minimum_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2


@lru_cache(maxsize=32)
def client_context(options: TlsOptions) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=options.ca_file)
    ctx.minimum_version = options.minimum_version
    if not options.verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def verify_name(target: Target) -> str:
    """The name the server certificate must match, also sent as SNI (RFC 5922 §4: the host the
    phone was configured with; for an IP literal the address itself, matched against an IP SAN)."""
    return target.server_name or target.host


def classify_tls_error(target: Target, exc: BaseException) -> TlsError:
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = exc.verify_message or exc.reason or "certificate verification failed"
        return TlsError(target, f"certificate verification failed: {reason}", reason=reason)
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or exc.__class__.__name__
        return TlsError(target, f"TLS handshake failed: {reason}", reason=reason)
    return TlsError(target, f"TLS handshake failed: {exc}")
