"""
Signed notes, log checkpoints and witness cosignatures, as specified by C2SP.

* https://c2sp.org/signed-note: a UTF-8 text ending in a newline, a blank line,
  then one or more lines ``— <key name> <base64(key ID || signature)>``.
  Ed25519 signatures (type 0x01) sign the note text, final newline included.
* https://c2sp.org/tlog-checkpoint: the note text of a log's tree head: origin,
  decimal tree size, base64 root hash, then optional extension lines.
* https://c2sp.org/tlog-cosignature: a witness's timestamped Ed25519 signature
  (type 0x04) over ``cosignature/v1\\ntime <t>\\n`` followed by the checkpoint
  note text; the signature value is ``u64 timestamp || 64-byte signature``.

Everything here is pure: no I/O, no clock (timestamps are passed in), and no
randomness beyond Ed25519, which is deterministic. Every parse has limits.

Errors: input that is not well formed or is over a limit raises ``DecodeError``;
a note with no line from the expected key (same name and key ID) raises
``CheckpointError``, as does a checkpoint for another origin; a line from the
expected key whose signature does not verify raises ``BadSignature``. A value
built locally that breaks these rules raises ``InvalidMessage``. Nothing
answers a failed check with ``False``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from hotline.protocol.exceptions import (
    BadSignature,
    CheckpointError,
    DecodeError,
    InvalidMessage,
)

__all__ = [
    "COSIGNATURE_V1",
    "ED25519",
    "MAX_NAME_LENGTH",
    "MAX_NOTE_SIZE",
    "MAX_SIGNATURES",
    "Checkpoint",
    "Note",
    "NoteSignature",
    "add_signatures",
    "cosign",
    "key_id",
    "open_checkpoint",
    "parse_note",
    "parse_vkey",
    "sign_checkpoint",
    "sign_note",
    "verify_cosignature",
    "verify_note",
    "vkey",
]

ED25519 = 0x01
"""Signature type of a plain Ed25519 note signature (c2sp.org/signed-note)."""

COSIGNATURE_V1 = 0x04
"""Signature type of a timestamped Ed25519 cosignature (c2sp.org/tlog-cosignature)."""

MAX_NOTE_SIZE = 16 * 1024
"""Largest encoded note (text, blank line and signature lines) accepted or produced, in bytes."""

MAX_SIGNATURES = 16
"""Most signature lines in one note; the spec requires accepting at least 16."""

MAX_NAME_LENGTH = 255
"""Longest key name or checkpoint origin, in UTF-8 bytes."""

_SIG_PREFIX = "\u2014 "  # em dash, space
_KEY_ID_SIZE = 4
_ED25519_KEY_SIZE = 32
_ED25519_SIG_SIZE = 64
_TIMESTAMP_SIZE = 8
_ROOT_SIZE = 32
_MAX_U63 = 2**63
_COSIGNATURE_SIZE = _TIMESTAMP_SIZE + _ED25519_SIG_SIZE
_COSIGNATURE_HEADER = "cosignature/v1\n"
_SUPPORTED_VKEY_TYPES = frozenset({ED25519, COSIGNATURE_V1})
_SIZE_RE = re.compile(r"0|[1-9][0-9]{0,18}")
_KEY_ID_HEX_RE = re.compile(r"[0-9a-fA-F]{8}")
_CONTROL_RE = re.compile(r"[\x00-\x09\x0b-\x1f]")  # ASCII controls other than newline


# -- small checks shared by parsing and building -------------------------------------------------


def _name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid key name, or None when it is."""
    if not name:
        return "key name is empty"
    if len(name.encode("utf-8")) > MAX_NAME_LENGTH:
        return f"key name is longer than {MAX_NAME_LENGTH} bytes"
    # Printable ASCII without space or '+' is the usual case, checked at C speed; the rest char by char.
    if not (name.isascii() and name.isprintable() and " " not in name and "+" not in name) and (
        "+" in name or any(ch.isspace() or ch < " " for ch in name)
    ):
        return f"key name {name!r} contains a space, a '+' or a control character"
    return None


def _check_name(name: str) -> None:
    problem = _name_problem(name)
    if problem is not None:
        raise InvalidMessage(problem)


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: str, what: str) -> bytes:
    """Strict standard base64: alphabet, padding, and canonical (the unused bits are zero)."""
    try:
        data = base64.b64decode(text, validate=True)
    except ValueError as exc:  # binascii.Error, or non-ASCII input
        raise DecodeError(f"{what} is not valid base64") from exc
    if _b64encode(data) != text:
        raise DecodeError(f"{what} is not canonical base64")
    return data


def _check_ed25519_key(public_key: bytes) -> None:
    if len(public_key) != _ED25519_KEY_SIZE:
        raise InvalidMessage(f"an Ed25519 public key is {_ED25519_KEY_SIZE} bytes, not {len(public_key)}")


# -- key IDs and verifier keys --------------------------------------------------------------------


def key_id(name: str, sig_type: int, public_key: bytes) -> bytes:
    """The 4-byte key ID: SHA-256(name || 0x0A || sig_type || public_key)[:4]."""
    _check_name(name)
    if not 0 <= sig_type <= 0xFF:
        raise InvalidMessage(f"signature type {sig_type} is not a byte")
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([sig_type]) + public_key).digest()
    return digest[:_KEY_ID_SIZE]


def vkey(name: str, public_key: bytes, sig_type: int = ED25519) -> str:
    """The verifier key text ``<name>+<8 hex key ID>+<base64(sig_type || public_key)>``."""
    if sig_type not in _SUPPORTED_VKEY_TYPES:
        raise InvalidMessage(f"signature type {sig_type:#04x} is not supported")
    _check_ed25519_key(public_key)
    kid = key_id(name, sig_type, public_key)
    return f"{name}+{kid.hex()}+{_b64encode(bytes([sig_type]) + public_key)}"


def parse_vkey(text: str) -> tuple[str, int, bytes]:
    """Parse a verifier key into (name, signature type, public key).

    Only Ed25519 keys (types 0x01 and 0x04) are accepted, and the key ID in the
    text must be the one computed from the name and key.
    """
    if len(text) > MAX_NAME_LENGTH + 128:
        raise DecodeError("verifier key is too long")
    parts = text.split("+", 2)
    if len(parts) != 3:
        raise DecodeError("verifier key is not <name>+<key id>+<key>")
    name, kid_hex, key_b64 = parts
    problem = _name_problem(name)
    if problem is not None:
        raise DecodeError(f"verifier key: {problem}")
    if not _KEY_ID_HEX_RE.fullmatch(kid_hex):
        raise DecodeError("verifier key ID is not 8 hex digits")
    raw = _b64decode(key_b64, "verifier key")
    if len(raw) != 1 + _ED25519_KEY_SIZE or raw[0] not in _SUPPORTED_VKEY_TYPES:
        raise DecodeError("verifier key is not an Ed25519 key of type 0x01 or 0x04")
    sig_type, public_key = raw[0], raw[1:]
    if not hmac.compare_digest(bytes.fromhex(kid_hex), key_id(name, sig_type, public_key)):
        raise DecodeError("verifier key ID does not match its name and key")
    return name, sig_type, public_key


# -- signed notes -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: the key's name, its 4-byte key ID and the signature bytes after the ID."""

    name: str
    key_id: bytes
    signature: bytes

    def __post_init__(self) -> None:
        _check_name(self.name)
        if len(self.key_id) != _KEY_ID_SIZE:
            raise InvalidMessage(f"a key ID is {_KEY_ID_SIZE} bytes, not {len(self.key_id)}")
        if not self.signature:
            raise InvalidMessage("signature is empty")

    def line(self) -> str:
        """The signature line, newline included."""
        return f"{_SIG_PREFIX}{self.name} {_b64encode(self.key_id + self.signature)}\n"


@dataclass(frozen=True)
class Note:
    """A note text (ending in a newline) and its signature lines, in order.

    Creating one checks every rule the parser checks, so anything built here
    encodes to bytes that :func:`parse_note` accepts.
    """

    text: str
    signatures: tuple[NoteSignature, ...]

    def __post_init__(self) -> None:
        _check_text(self.text)
        if not self.signatures:
            raise InvalidMessage("a signed note needs at least one signature")
        if len(self.signatures) > MAX_SIGNATURES:
            raise InvalidMessage(f"more than {MAX_SIGNATURES} signatures")
        seen: set[tuple[str, bytes]] = set()
        for sig in self.signatures:
            ident = (sig.name, sig.key_id)
            if ident in seen:
                raise InvalidMessage(f"two signature lines from the same key {sig.name}")
            seen.add(ident)
        if len(self.encode()) > MAX_NOTE_SIZE:
            raise InvalidMessage(f"note is larger than {MAX_NOTE_SIZE} bytes")

    def encode(self) -> bytes:
        """The signed note: text, blank line, signature lines."""
        return (self.text + "\n" + "".join(sig.line() for sig in self.signatures)).encode("utf-8")


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise InvalidMessage("note text must end in a newline")
    if _CONTROL_RE.search(text):
        raise InvalidMessage("note text contains a control character")
    if len(text.encode("utf-8")) > MAX_NOTE_SIZE:
        raise InvalidMessage(f"note text is larger than {MAX_NOTE_SIZE} bytes")


def parse_note(data: bytes) -> Note:
    """Parse a signed note strictly; verifies nothing (see :func:`verify_note`).

    The text is separated from the signatures by the last blank line. Raises
    ``DecodeError`` for anything malformed or over a limit: larger than
    ``MAX_NOTE_SIZE``, not UTF-8, a control character other than newline, no
    final newline, no signatures, more than ``MAX_SIGNATURES`` lines, a bad
    signature line, or two lines with the same key name and key ID.
    """
    if len(data) > MAX_NOTE_SIZE:
        raise DecodeError(f"note is larger than {MAX_NOTE_SIZE} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError("note is not valid UTF-8") from exc
    if _CONTROL_RE.search(text):
        raise DecodeError("note contains a control character")
    if not text.endswith("\n"):
        raise DecodeError("note does not end in a newline")
    split = text.rfind("\n\n")
    if split < 0:
        raise DecodeError("note has no blank line before its signatures")
    body, block = text[: split + 1], text[split + 2 :]
    if not block:
        raise DecodeError("note has no signatures")
    # The block ends in a newline and, coming after the last blank line, holds no empty line.
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise DecodeError(f"note has more than {MAX_SIGNATURES} signatures")
    signatures = tuple(_parse_signature_line(line) for line in lines)
    try:
        return Note(body, signatures)
    except InvalidMessage as exc:
        raise DecodeError(str(exc)) from exc


def _parse_signature_line(line: str) -> NoteSignature:
    if not line.startswith(_SIG_PREFIX):
        raise DecodeError("signature line does not start with an em dash and a space")
    name, space, encoded = line[len(_SIG_PREFIX) :].partition(" ")
    if not space:
        raise DecodeError("signature line has no space between name and signature")
    problem = _name_problem(name)
    if problem is not None:
        raise DecodeError(f"signature line: {problem}")
    raw = _b64decode(encoded, "signature")
    if len(raw) <= _KEY_ID_SIZE:
        raise DecodeError("signature is too short")
    return NoteSignature(name, raw[:_KEY_ID_SIZE], raw[_KEY_ID_SIZE:])


def sign_note(text: str, name: str, key: SigningKey) -> NoteSignature:
    """An Ed25519 (type 0x01) signature over ``text``, which must end in a newline."""
    _check_text(text)
    kid = key_id(name, ED25519, key.verify_key.encode())
    return NoteSignature(name, kid, key.sign(text.encode("utf-8")).signature)


def _signature_from(note: Note, name: str, kid: bytes) -> NoteSignature:
    """The line from the key (name, kid); lines sharing only the name or only the ID are ignored."""
    for sig in note.signatures:
        if sig.name == name and hmac.compare_digest(sig.key_id, kid):
            return sig  # Note guarantees at most one line per (name, key ID)
    raise CheckpointError(f"not signed by {name}")


def _ed25519_verify(public_key: bytes, message: bytes, signature: bytes, name: str) -> None:
    if len(signature) != _ED25519_SIG_SIZE:
        raise BadSignature(f"signature by {name} is not {_ED25519_SIG_SIZE} bytes")
    try:
        VerifyKey(public_key).verify(message, signature)
    except BadSignatureError as exc:
        raise BadSignature(f"signature by {name} does not verify") from exc


def verify_note(note: Note, name: str, public_key: bytes) -> None:
    """Check the note carries a valid Ed25519 (type 0x01) signature by the key (name, public_key).

    Raises ``CheckpointError`` when no line has this name and key ID, and
    ``BadSignature`` when that line does not verify. Returns nothing on success.
    """
    _check_ed25519_key(public_key)
    sig = _signature_from(note, name, key_id(name, ED25519, public_key))
    _ed25519_verify(public_key, note.text.encode("utf-8"), sig.signature, name)


def add_signatures(note: Note, *sigs: NoteSignature) -> Note:
    """The note with ``sigs`` appended after its existing lines (so the log's stays first).

    A line identical to one already present is skipped; a different signature
    from a key (name and key ID) already present raises ``InvalidMessage``.
    """
    merged = list(note.signatures)
    for sig in sigs:
        same_key = [old for old in merged if old.name == sig.name and old.key_id == sig.key_id]
        if not same_key:
            merged.append(sig)
        elif same_key[0].signature != sig.signature:
            raise InvalidMessage(f"the note already has another signature from {sig.name}")
    return Note(note.text, tuple(merged))


# -- checkpoints ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A log's signed tree head: origin, tree size, RFC 6962 root hash, and opaque extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin:
            raise InvalidMessage("checkpoint origin is empty")
        if len(self.origin.encode("utf-8")) > MAX_NAME_LENGTH:
            raise InvalidMessage(f"checkpoint origin is longer than {MAX_NAME_LENGTH} bytes")
        if not 0 <= self.size < _MAX_U63:
            raise InvalidMessage("checkpoint tree size is out of range")
        if len(self.root) != _ROOT_SIZE:
            raise InvalidMessage(f"checkpoint root hash is {len(self.root)} bytes, not {_ROOT_SIZE}")
        for line in (self.origin, *self.extensions):
            if not line:
                raise InvalidMessage("checkpoint extension line is empty")
            if any(ch < " " for ch in line):
                raise InvalidMessage("checkpoint line contains a newline or a control character")

    def body(self) -> str:
        """The note text: origin, size, base64 root and extension lines, each ending in a newline."""
        lines = (self.origin, str(self.size), _b64encode(self.root), *self.extensions)
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse a checkpoint note text strictly (``DecodeError`` if malformed); verifies nothing."""
        if not text.endswith("\n"):
            raise DecodeError("checkpoint does not end in a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise DecodeError("checkpoint has fewer than three lines")
        origin, size, root, *extensions = lines
        if not _SIZE_RE.fullmatch(size):
            raise DecodeError("checkpoint tree size is not a decimal without leading zeros")
        root_hash = _b64decode(root, "checkpoint root hash")
        try:
            return cls(origin, int(size), root_hash, tuple(extensions))
        except InvalidMessage as exc:
            raise DecodeError(str(exc)) from exc


def sign_checkpoint(cp: Checkpoint, name: str, key: SigningKey) -> bytes:
    """The encoded signed note of ``cp``, signed by the log key (name, key)."""
    body = cp.body()
    return Note(body, (sign_note(body, name, key),)).encode()


def open_checkpoint(data: bytes, origin: str, log_name: str, log_public_key: bytes) -> tuple[Checkpoint, Note]:
    """Parse a signed checkpoint, verify the log's signature, and check it is for ``origin``.

    The signature is checked before the text is interpreted. Other signature
    lines (cosignatures, unknown keys) are kept in the returned note, unverified.
    """
    note = parse_note(data)
    verify_note(note, log_name, log_public_key)
    cp = Checkpoint.parse(note.text)
    if cp.origin != origin:
        raise CheckpointError(f"checkpoint is for origin {cp.origin!r}, not {origin!r}")
    return cp, note


# -- cosignatures ---------------------------------------------------------------------------------


def _cosigned_message(timestamp: int, text: str) -> bytes:
    return f"{_COSIGNATURE_HEADER}time {timestamp}\n{text}".encode()


def cosign(note: Note, witness_name: str, key: SigningKey, timestamp: int) -> NoteSignature:
    """A v1 Ed25519 cosignature (type 0x04) of the checkpoint in ``note`` at POSIX time ``timestamp``.

    Only the note text is signed, never its signature lines. The caller must
    have opened the checkpoint and checked its consistency first.
    """
    if not 0 <= timestamp < _MAX_U63:
        raise InvalidMessage("cosignature timestamp is out of range")
    try:
        Checkpoint.parse(note.text)
    except DecodeError as exc:
        raise InvalidMessage(f"refusing to cosign a note that is not a checkpoint: {exc}") from exc
    kid = key_id(witness_name, COSIGNATURE_V1, key.verify_key.encode())
    signature = key.sign(_cosigned_message(timestamp, note.text)).signature
    return NoteSignature(witness_name, kid, timestamp.to_bytes(_TIMESTAMP_SIZE, "big") + signature)


def verify_cosignature(note: Note, witness_name: str, public_key: bytes) -> int:
    """Verify the v1 cosignature by the witness (name, public_key) and return its timestamp.

    Raises ``CheckpointError`` when no line has this name and key ID (or its
    timestamp is 2**63 or later), and ``BadSignature`` when it does not verify.
    """
    _check_ed25519_key(public_key)
    sig = _signature_from(note, witness_name, key_id(witness_name, COSIGNATURE_V1, public_key))
    if len(sig.signature) != _COSIGNATURE_SIZE:
        raise BadSignature(f"cosignature by {witness_name} is not {_COSIGNATURE_SIZE} bytes")
    timestamp = int.from_bytes(sig.signature[:_TIMESTAMP_SIZE], "big")
    if timestamp >= _MAX_U63:
        raise CheckpointError(f"cosignature by {witness_name} has a timestamp past 2**63 - 1")
    message = _cosigned_message(timestamp, note.text)
    _ed25519_verify(public_key, message, sig.signature[_TIMESTAMP_SIZE:], witness_name)
    return timestamp
