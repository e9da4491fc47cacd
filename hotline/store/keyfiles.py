"""
Key files on disk: written with mode 0600 and never over an existing file; refused when others can read them.

The formats are in ``keys/README.md``; the bytes are made and checked by
``hotline.protocol.keys``, this module only moves them to and from files.
"""

from __future__ import annotations

import os
from pathlib import Path

from hotline.protocol.exceptions import DecodeError, KeyFileError
from hotline.protocol.keys import (
    IdentityKey,
    PublicKey,
    check_key_file_mode,
    decode_key_file,
    encode_key_file,
    key_file_needs_passphrase,
    key_file_summary,
    parse_public_key,
    public_key_of_file,
)

__all__ = ["describe_key_file", "load_identity", "load_public_key", "needs_passphrase", "write_identity"]

MAX_KEY_FILE = 64 * 1024


def _read(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_KEY_FILE + 1)
    except FileNotFoundError:
        raise KeyFileError(f"{path}: no such file") from None
    except OSError as e:
        raise KeyFileError(f"{path}: {e.strerror}") from None
    if len(data) > MAX_KEY_FILE:
        raise KeyFileError(f"{path}: too large to be a key file")
    return data


def write_identity(directory: Path, name: str, key: IdentityKey, passphrase: bytes | None) -> tuple[Path, Path]:
    """Write ``NAME.key`` (private, 0600) and ``NAME.pub`` (the public key line); never overwrite."""
    directory.mkdir(parents=True, exist_ok=True)
    private = directory / f"{name}.key"
    public = directory / f"{name}.pub"
    for path in (private, public):
        if path.exists():
            raise KeyFileError(f"{path} already exists: choose another name or move it away first")
    data = encode_key_file(key, name, passphrase, salt=os.urandom(16), nonce=os.urandom(24))
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    public.write_text(key.public.text() + "\n", encoding="ascii")
    return private, public


def describe_key_file(path: Path) -> tuple[str, PublicKey]:
    """A private key file's name and public key, without its passphrase."""
    return key_file_summary(_read(path))


def needs_passphrase(path: Path) -> bool:
    return key_file_needs_passphrase(_read(path))


def load_identity(path: Path, passphrase: bytes | None) -> tuple[str, IdentityKey]:
    """Open a private key file, refusing one that its group or others can read."""
    data = _read(path)
    check_key_file_mode(path.stat().st_mode)
    return decode_key_file(data, passphrase)


def load_public_key(text_or_path: str) -> PublicKey:
    """A public key given as the key line itself, a ``.pub`` file, or a private key file (its public half)."""
    if text_or_path.startswith("ed25519:"):
        return parse_public_key(text_or_path)
    path = Path(text_or_path)
    data = _read(path)
    try:
        return parse_public_key(data.decode("ascii"))
    except (DecodeError, UnicodeDecodeError):
        return public_key_of_file(data)
