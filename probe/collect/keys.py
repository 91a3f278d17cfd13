"""The vantage's Ed25519 key, made once at consent. Its public key is the vantage's only identity at the
collector: no address, no name. The private key stays in the config directory (0600)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from probe.config import config_dir

KEY_FILE = "vantage_ed25519.pem"


def key_path() -> Path:
    return config_dir() / KEY_FILE


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_id(pub: Ed25519PublicKey) -> str:
    """The public key as text (base64url of the 32 raw bytes): what manifests and allow-lists carry."""
    return b64url(pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def parse_public_id(text: str) -> Ed25519PublicKey:
    """Raises ValueError on anything that is not a 32-byte Ed25519 public key."""
    try:
        raw = unb64url(text.strip())
    except (ValueError, TypeError) as exc:
        raise ValueError("not base64url") from exc
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key has 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def load_key(path: Path | None = None) -> Ed25519PrivateKey | None:
    path = path or key_path()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 private key")
    return key


def ensure_key(path: Path | None = None) -> Ed25519PrivateKey:
    """The vantage key, created (atomically, 0600 in a 0700 directory) if there is none yet."""
    path = path or key_path()
    existing = load_key(path)
    if existing is not None:
        return existing
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
        fh.flush()
        os.fsync(fh.fileno())
    try:
        os.link(tmp, path)  # never replaces a key another process made meanwhile
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    return load_key(path)  # type: ignore[return-value]
