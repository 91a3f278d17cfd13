"""TLS handshake to ip:port with a chosen SNI, certificate validated against the trust store."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import time
from functools import lru_cache

from probe.measure import packets
from probe.measure.step import record_failure, recording, since
from probe.records import TLSAttempt


@lru_cache(maxsize=8)
def verifying_context(ca_bundle: str | None = None) -> ssl.SSLContext:
    """System trust store, or only the given CA bundle (the lab, a private deployment)."""
    ctx = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else ssl.create_default_context()
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


@lru_cache(maxsize=1)
def non_verifying_context() -> ssl.SSLContext:
    """For control handshakes and for reading the certificate a failed validation was shown."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def _name(parts) -> str:
    return ", ".join("=".join(kv) for rdn in parts for kv in rdn)


def _fill_cert(rec: TLSAttempt, sslobj: ssl.SSLObject | None) -> None:
    if sslobj is None:
        return
    rec.tls_version = sslobj.version()
    cipher = sslobj.cipher()
    rec.cipher = cipher[0] if cipher else None
    der = sslobj.getpeercert(binary_form=True)
    if der:
        rec.cert_sha256 = hashlib.sha256(der).hexdigest()
        try:
            from cryptography import x509

            cert = x509.load_der_x509_certificate(der)
            rec.cert_subject = cert.subject.rfc4514_string()
            rec.cert_issuer = cert.issuer.rfc4514_string()
            rec.cert_not_after = cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
        except Exception:  # a certificate we cannot parse is still evidence through its hash
            info = sslobj.getpeercert() or {}
            rec.cert_subject = _name(info.get("subject", ())) or None
            rec.cert_issuer = _name(info.get("issuer", ())) or None


class _Session:
    """A TLS client handshake driven over a plain asyncio stream through memory BIOs.

    asyncio's own SSL transport reports a FIN during the handshake as ConnectionResetError, which
    would make a censor that closes cleanly look like one that resets. Driving the handshake here
    keeps the socket's own signal: a RST raises ConnectionResetError from the read, a FIN reads b"".
    """

    def __init__(self, writer: asyncio.StreamWriter, sslobj: ssl.SSLObject):
        self.writer = writer
        self.sslobj = sslobj

    def get_extra_info(self, name: str):
        return self.sslobj if name == "ssl_object" else self.writer.get_extra_info(name)

    def close(self) -> None:
        self.writer.close()


async def _handshake(ip: str, port: int, sni: str, ctx: ssl.SSLContext, timeout: float) -> _Session:
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(ip, port)
        packets.note_socket(writer.get_extra_info("socket"))
        try:
            incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            sslobj = ctx.wrap_bio(incoming, outgoing, server_side=False, server_hostname=sni)
            while True:
                try:
                    sslobj.do_handshake()
                    done = True
                except ssl.SSLWantReadError:
                    done = False
                pending = outgoing.read()
                if pending:
                    writer.write(pending)
                    await writer.drain()
                if done:
                    return _Session(writer, sslobj)
                data = await reader.read(65536)
                if not data:
                    raise EOFError("connection closed during the TLS handshake")
                incoming.write(data)
        except BaseException:
            writer.close()
            raise


async def handshake(
    ip: str,
    port: int,
    sni: str,
    *,
    timeout: float,
    attempt: int,
    t_origin: float,
    ca_bundle: str | None = None,
    control: bool = False,
) -> TLSAttempt:
    """One handshake. ``control=True``: harmless-SNI handshake, no validation, only completion counts."""
    started = time.monotonic()
    rec = TLSAttempt(
        attempt=attempt,
        ip=ip,
        port=port,
        sni=sni,
        t0=since(t_origin, started),
        duration_ms=0.0,
        failure=None,
        control=control,
    )
    ctx = non_verifying_context() if control else verifying_context(ca_bundle)
    with packets.attempt(rec), recording(rec, started):
        try:
            session = await _handshake(ip, port, sni, ctx, timeout)
        except ssl.SSLCertVerificationError as exc:
            # The handshake itself worked but the certificate is not the service's: record what was
            # shown (a censor's MITM certificate is evidence) with a second, non-validating handshake.
            record_failure(rec, exc)
            rec.cert_valid = False
            try:
                w2 = await _handshake(ip, port, sni, non_verifying_context(), timeout)
                _fill_cert(rec, w2.get_extra_info("ssl_object"))
                w2.close()
            except Exception:
                pass
            return rec
        try:
            rec.cert_valid = None if control else True
            _fill_cert(rec, session.get_extra_info("ssl_object"))
        finally:
            session.close()
    return rec
