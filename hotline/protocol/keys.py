"""
Keys: station identities, key files, epoch keys, and signing with purpose labels.

A station's identity is one Ed25519 key (pynacl). Peers are pinned at the key
ceremony by comparing fingerprints aloud, so the fingerprint is printed in short
groups of hex digits. Every signature covers ``label || 0x00 || payload``: the
label says what the bytes are for, so a signature made for one purpose can never
be replayed as another.

Epoch keys are hybrid ML-KEM-768 + X25519 key pairs for HPKE. Each has a
validity window and its public half is signed by the station's identity key;
the private half is erased after the window plus a grace period, which is what
gives forward secrecy at epoch granularity.

Nothing here reads files, clocks or randomness: seeds, salts, nonces, times and
file modes are passed in.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Final, Literal

import msgspec
import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.signing
from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hotline.protocol.exceptions import (
    BadSignature,
    DecodeError,
    InsecureKeyFile,
    InvalidMessage,
    KeyFileError,
    UnknownKey,
    WrongPassphrase,
)
from hotline.protocol.messages import canonical_decode, strict_decode

__all__ = [
    "AUTH_LABEL",
    "ENVELOPE_LABEL",
    "EPOCH_KEY_LABEL",
    "HPKE_INFO_LABEL",
    "STATEMENT_LABEL",
    "EpochKey",
    "EpochKeyPair",
    "Hex32",
    "Hex64",
    "IdentityKey",
    "PublicKey",
    "Signature",
    "Signed",
    "check_key_file_mode",
    "decode_key_file",
    "encode_key_file",
    "epoch_windows",
    "erasable",
    "fingerprint",
    "format_fingerprint",
    "key_file_needs_passphrase",
    "key_file_summary",
    "open_epoch_key",
    "open_epoch_seed",
    "open_signed",
    "parse_public_key",
    "public_key_of_file",
    "seal_epoch_seed",
    "sign",
]

STATEMENT_LABEL: Final = b"hotline/v1/statement"
ENVELOPE_LABEL: Final = b"hotline/v1/envelope"
EPOCH_KEY_LABEL: Final = b"hotline/v1/epoch-key"
AUTH_LABEL: Final = b"hotline/v1/auth"
HPKE_INFO_LABEL: Final = b"hotline/v1/hpke"

ED25519: Final = "ed25519"
PUBLIC_KEY_PREFIX: Final = "ed25519:"

# A fingerprint or hash in JSON: lowercase hex, fixed length.
Hex64 = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}\\Z")]
Hex32 = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{32}\\Z")]

MAX_SIGNATURES: Final = 4


def fingerprint(public_key: bytes) -> bytes:
    """SHA-256 of the raw public key: the identifier pinned at the key ceremony."""
    return hashlib.sha256(public_key).digest()


def format_fingerprint(fp: bytes) -> str:
    """The fingerprint as 16 groups of 4 hex digits, for two people to read aloud and compare."""
    text = fp.hex()
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))


def _labelled(label: bytes, payload: bytes) -> bytes:
    return label + b"\x00" + payload


@dataclass(frozen=True)
class PublicKey:
    """A station's (or the relay's) Ed25519 public identity key."""

    raw: bytes
    _verify_key: nacl.signing.VerifyKey = field(init=False, repr=False, compare=False)
    # Computed once: every statement and envelope checked names its keys by these.
    _fingerprint: bytes = field(init=False, repr=False, compare=False)
    _key_id: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.raw, bytes) or len(self.raw) != 32:
            raise InvalidMessage("an Ed25519 public key is 32 bytes")
        object.__setattr__(self, "_verify_key", nacl.signing.VerifyKey(self.raw))
        object.__setattr__(self, "_fingerprint", fingerprint(self.raw))
        object.__setattr__(self, "_key_id", self._fingerprint.hex())

    @property
    def fingerprint(self) -> bytes:
        return self._fingerprint

    @property
    def key_id(self) -> str:
        """The fingerprint in hex: how statements and envelopes name a station."""
        return self._key_id

    def text(self) -> str:
        """The one-line public key format: ``ed25519:`` and the key in base64."""
        return PUBLIC_KEY_PREFIX + base64.b64encode(self.raw).decode("ascii")

    def verify(self, label: bytes, payload: bytes, signature: bytes) -> None:
        """Raise ``BadSignature`` unless ``signature`` is this key's over ``label`` and ``payload``."""
        if len(signature) != 64:
            raise BadSignature(f"an Ed25519 signature is 64 bytes, got {len(signature)}")
        try:
            self._verify_key.verify(_labelled(label, payload), signature)
        except nacl.exceptions.BadSignatureError:
            raise BadSignature(f"signature does not verify ({label.decode(errors='replace')})") from None


def parse_public_key(text: str) -> PublicKey:
    """Parse the one-line public key format ``ed25519:<base64>``; raise ``DecodeError`` otherwise."""
    text = text.strip()
    if not text.startswith(PUBLIC_KEY_PREFIX):
        raise DecodeError("a public key looks like 'ed25519:' followed by base64")
    try:
        raw = base64.b64decode(text[len(PUBLIC_KEY_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise DecodeError("the public key is not valid base64") from None
    if len(raw) != 32:
        raise DecodeError(f"an Ed25519 public key is 32 bytes, got {len(raw)}")
    return PublicKey(raw)


class IdentityKey:
    """A station's (or the relay's) Ed25519 signing key."""

    __slots__ = ("_signing_key", "public")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise InvalidMessage("an Ed25519 seed is 32 bytes")
        self._signing_key = nacl.signing.SigningKey(seed)
        self.public = PublicKey(bytes(self._signing_key.verify_key))

    def __repr__(self) -> str:
        return f"IdentityKey({format_fingerprint(self.public.fingerprint)[:19]}...)"

    @property
    def seed(self) -> bytes:
        return bytes(self._signing_key)

    @property
    def signing_key(self) -> nacl.signing.SigningKey:
        """The pynacl key, for the C2SP note signatures that carry no hotline label."""
        return self._signing_key

    def sign(self, label: bytes, payload: bytes) -> bytes:
        return self._signing_key.sign(_labelled(label, payload)).signature


# --- Signed payloads ---------------------------------------------------------------------------


class Signature(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One signature over a ``Signed`` payload. ``key`` is the signer's fingerprint in hex."""

    alg: str
    key: Hex64
    sig: bytes


class Signed(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Exact payload bytes and the signatures over them.

    The payload is kept as received and parsed only after a signature verified.
    There is a list so that a post-quantum signature can later stand beside
    Ed25519 without invalidating old evidence.
    """

    payload: bytes
    signatures: Annotated[list[Signature], msgspec.Meta(min_length=1, max_length=MAX_SIGNATURES)]


def sign(key: IdentityKey, label: bytes, payload: bytes) -> Signed:
    return Signed(payload, [Signature(ED25519, key.public.key_id, key.sign(label, payload))])


def open_signed(signed: Signed, label: bytes, signers: Iterable[PublicKey]) -> tuple[PublicKey, bytes]:
    """Verify that one of ``signers`` signed the payload; return that signer and the payload.

    Signatures of other algorithms are skipped (they may come from a later
    version); an Ed25519 signature by a key outside ``signers`` is a stranger's
    and is refused with ``UnknownKey``.
    """
    known = {k.key_id: k for k in signers}
    strangers = []
    for s in signed.signatures:
        if s.alg != ED25519:
            continue
        signer = known.get(s.key)
        if signer is None:
            strangers.append(s.key)
            continue
        signer.verify(label, signed.payload, s.sig)
        return signer, signed.payload
    if strangers:
        raise UnknownKey(f"signed by a key that is not pinned: {strangers[0][:16]}...")
    raise BadSignature("no Ed25519 signature")


# --- Key files -----------------------------------------------------------------------------------

KEY_FILE_KIND: Final = "hotline-identity-key"
# Bounds on what a key file may ask of argon2id, so that a crafted file cannot exhaust memory or time.
MAX_OPSLIMIT: Final = 16
MAX_MEMLIMIT: Final = 1 << 30
DEFAULT_OPSLIMIT: Final = nacl.pwhash.argon2id.OPSLIMIT_MODERATE
DEFAULT_MEMLIMIT: Final = nacl.pwhash.argon2id.MEMLIMIT_MODERATE


class Argon2id(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    opslimit: Annotated[int, msgspec.Meta(ge=1, le=MAX_OPSLIMIT)]
    memlimit: Annotated[int, msgspec.Meta(ge=8192, le=MAX_MEMLIMIT)]
    salt: Annotated[bytes, msgspec.Meta(min_length=16, max_length=16)]
    alg: Literal["argon2id13"] = "argon2id13"


class KeyFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An identity key on disk; ``secret`` is the seed, sealed with secretbox unless ``kdf`` is null."""

    kind: Literal["hotline-identity-key"]
    v: Literal[1]
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    alg: Literal["ed25519"]
    public: Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
    kdf: Argon2id | None
    secret: Annotated[bytes, msgspec.Meta(max_length=128)]


_KEY_FILE_DECODER: Final[msgspec.json.Decoder[KeyFile]] = msgspec.json.Decoder(KeyFile)


def check_key_file_mode(mode: int) -> None:
    """Refuse a private key file that its group or others can read or write (``stat().st_mode``)."""
    if mode & 0o077:
        raise InsecureKeyFile(f"the key file is accessible to others (mode {mode & 0o777:o}): run 'chmod 600' on it")


def encode_key_file(
    key: IdentityKey,
    name: str,
    passphrase: bytes | None,
    salt: bytes = b"",
    nonce: bytes = b"",
    opslimit: int = DEFAULT_OPSLIMIT,
    memlimit: int = DEFAULT_MEMLIMIT,
) -> bytes:
    """The key file bytes: the seed sealed with a key derived from ``passphrase`` (argon2id, secretbox).

    ``passphrase=None`` writes the seed in the clear, for an unattended timer
    that was explicitly allowed to run without one.
    """
    if not 1 <= len(name) <= 64:
        raise InvalidMessage("a key name is 1 to 64 characters")
    if passphrase is None:
        doc = KeyFile(KEY_FILE_KIND, 1, name, ED25519, key.public.raw, None, key.seed)
    else:
        if not passphrase:
            raise InvalidMessage("an empty passphrase protects nothing")
        if len(salt) != nacl.pwhash.argon2id.SALTBYTES or len(nonce) != nacl.secret.SecretBox.NONCE_SIZE:
            raise InvalidMessage("a key file needs a 16-byte salt and a 24-byte nonce, both random")
        if not (1 <= opslimit <= MAX_OPSLIMIT and nacl.pwhash.argon2id.MEMLIMIT_MIN <= memlimit <= MAX_MEMLIMIT):
            raise InvalidMessage(f"argon2id limits allowed: 1 to {MAX_OPSLIMIT} passes, up to {MAX_MEMLIMIT} bytes")
        kdf = Argon2id(opslimit, memlimit, salt)
        box = nacl.secret.SecretBox(_derive(passphrase, kdf))
        sealed = bytes(box.encrypt(key.seed, nonce))
        doc = KeyFile(KEY_FILE_KIND, 1, name, ED25519, key.public.raw, kdf, sealed)
    return msgspec.json.format(msgspec.json.encode(doc)) + b"\n"


def _derive(passphrase: bytes, kdf: Argon2id) -> bytes:
    return nacl.pwhash.argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE, passphrase, kdf.salt, opslimit=kdf.opslimit, memlimit=kdf.memlimit
    )


def key_file_needs_passphrase(data: bytes) -> bool:
    return _parse_key_file(data).kdf is not None


def key_file_summary(data: bytes) -> tuple[str, PublicKey]:
    """The name and public key a key file declares."""
    doc = _parse_key_file(data)
    return doc.name, PublicKey(doc.public)


def public_key_of_file(data: bytes) -> PublicKey:
    """The public key a key file declares (no passphrase needed; not proof that the file holds its seed)."""
    return PublicKey(_parse_key_file(data).public)


def _parse_key_file(data: bytes) -> KeyFile:
    try:
        return strict_decode(_KEY_FILE_DECODER, data, "key file")
    except DecodeError as e:
        raise KeyFileError(f"not a hotline identity key file: {e}") from None


def decode_key_file(data: bytes, passphrase: bytes | None) -> tuple[str, IdentityKey]:
    """Open a key file; return its name and key. Raise ``WrongPassphrase`` or ``KeyFileError``."""
    doc = _parse_key_file(data)
    if doc.kdf is None:
        seed = doc.secret
    else:
        if passphrase is None:
            raise WrongPassphrase("this key file is protected by a passphrase; none was given")
        box = nacl.secret.SecretBox(_derive(passphrase, doc.kdf))
        try:
            seed = bytes(box.decrypt(doc.secret))
        except nacl.exceptions.CryptoError:
            raise WrongPassphrase("the passphrase does not open this key file") from None
    if len(seed) != 32:
        raise KeyFileError("the key file holds a seed of the wrong length")
    key = IdentityKey(seed)
    if not hmac.compare_digest(key.public.raw, doc.public):
        raise KeyFileError("the key file's public key does not match its private key")
    return doc.name, key


# --- Epoch keys ------------------------------------------------------------------------------------

KEM_NAME: Final = "mlkem768-x25519"
MLKEM_SEED_SIZE: Final = 64
X25519_SIZE: Final = 32
MLKEM768_PUBLIC_SIZE: Final = 1184
EPOCH_PUBLIC_SIZE: Final = MLKEM768_PUBLIC_SIZE + X25519_SIZE
EPOCH_SEED_SIZE: Final = MLKEM_SEED_SIZE + X25519_SIZE


def epoch_key_id(public: bytes) -> str:
    """The name an envelope header gives the epoch key it was sealed to: 16 bytes of SHA-256, hex."""
    return hashlib.sha256(public).digest()[:16].hex()


class EpochKey(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The public half of an epoch key and its validity window, as signed by its station."""

    v: Literal[1]
    station: Hex64
    kem: Literal["mlkem768-x25519"]
    public: Annotated[bytes, msgspec.Meta(min_length=EPOCH_PUBLIC_SIZE, max_length=EPOCH_PUBLIC_SIZE)]
    not_before: datetime
    not_after: datetime

    def __post_init__(self) -> None:
        for t in (self.not_before, self.not_after):
            if t.utcoffset() is None or t.utcoffset().total_seconds() != 0:  # type: ignore[union-attr]
                raise InvalidMessage("epoch key times must be UTC")
        if self.not_after <= self.not_before:
            raise InvalidMessage("an epoch key's window must end after it starts")

    @property
    def key_id(self) -> str:
        return epoch_key_id(self.public)

    def valid_at(self, when: datetime) -> bool:
        return self.not_before <= when < self.not_after

    def hpke_public_key(self) -> hpke.MLKEM768X25519PublicKey:
        return _hpke_public(self.public)


@functools.lru_cache(maxsize=64)
def _hpke_public(public: bytes) -> hpke.MLKEM768X25519PublicKey:
    try:
        return hpke.MLKEM768X25519PublicKey(
            mlkem.MLKEM768PublicKey.from_public_bytes(public[:MLKEM768_PUBLIC_SIZE]),
            x25519.X25519PublicKey.from_public_bytes(public[MLKEM768_PUBLIC_SIZE:]),
        )
    except ValueError:
        raise DecodeError("the epoch public key is not a valid ML-KEM-768 + X25519 key") from None


@dataclass(frozen=True)
class EpochKeyPair:
    """A private epoch key: the ML-KEM-768 seed and X25519 scalar, and the window it serves."""

    seed: bytes = field(repr=False)
    not_before: datetime
    not_after: datetime

    def __post_init__(self) -> None:
        if len(self.seed) != EPOCH_SEED_SIZE:
            raise InvalidMessage(f"an epoch key seed is {EPOCH_SEED_SIZE} bytes")

    # Expanding an ML-KEM seed costs more than a decryption, so the expanded key is kept.
    @functools.cached_property
    def _kem(self) -> tuple[mlkem.MLKEM768PrivateKey, x25519.X25519PrivateKey]:
        return (
            mlkem.MLKEM768PrivateKey.from_seed_bytes(self.seed[:MLKEM_SEED_SIZE]),
            x25519.X25519PrivateKey.from_private_bytes(self.seed[MLKEM_SEED_SIZE:]),
        )

    def hpke_private_key(self) -> hpke.MLKEM768X25519PrivateKey:
        return hpke.MLKEM768X25519PrivateKey(*self._kem)

    @functools.cached_property
    def public_bytes(self) -> bytes:
        """ML-KEM-768 encapsulation key (1184 bytes) followed by the X25519 public key (32 bytes)."""
        kem, dh = self._kem
        return kem.public_key().public_bytes_raw() + dh.public_key().public_bytes_raw()

    @property
    def key_id(self) -> str:
        return epoch_key_id(self.public_bytes)

    def public(self, station: PublicKey) -> EpochKey:
        return EpochKey(1, station.key_id, KEM_NAME, self.public_bytes, self.not_before, self.not_after)

    def signed_public(self, identity: IdentityKey) -> Signed:
        """The public half signed by the station's identity key, ready to publish through the relay."""
        return sign(identity, EPOCH_KEY_LABEL, msgspec.json.encode(self.public(identity.public)))


DEFAULT_EPOCH: Final = timedelta(hours=1)
DEFAULT_GRACE: Final = timedelta(days=7)
# Keys published ahead: a peer can seal to a station that has been away for up to two days.
DEFAULT_AHEAD: Final = 48


def epoch_windows(
    now: datetime, length: timedelta = DEFAULT_EPOCH, ahead: int = DEFAULT_AHEAD
) -> list[tuple[datetime, datetime]]:
    """The current epoch and the next ``ahead - 1``, aligned on multiples of ``length`` since the Unix epoch.

    Both stations cut time the same way, so a key is always ready before its
    window opens, however late a station connects.
    """
    step = int(length.total_seconds())
    if now.utcoffset() is None:
        raise InvalidMessage("epoch windows are cut from an aware UTC time")
    if step <= 0 or ahead < 1:
        raise InvalidMessage("an epoch lasts a positive time, and at least the current one is made")
    start = int(now.timestamp()) // step * step
    return [
        (datetime.fromtimestamp(start + i * step, UTC), datetime.fromtimestamp(start + (i + 1) * step, UTC))
        for i in range(ahead)
    ]


def erasable(pairs: Iterable[EpochKeyPair], now: datetime, grace: timedelta = DEFAULT_GRACE) -> list[str]:
    """The epoch keys whose window and grace period have passed: erase them (forward secrecy, DESIGN S5).

    The grace period lets traffic queued at the relay while a station was away
    still be read; after it, what was sealed to the key is unreadable for good.
    """
    return [pair.key_id for pair in pairs if pair.not_after + grace <= now]


EPOCH_STORAGE_LABEL: Final = b"hotline/v1/epoch-key-storage"


def _storage_box(identity: IdentityKey) -> nacl.secret.SecretBox:
    kdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=EPOCH_STORAGE_LABEL)
    return nacl.secret.SecretBox(kdf.derive(identity.seed))


def seal_epoch_seed(identity: IdentityKey, pair: EpochKeyPair, nonce: bytes) -> bytes:
    """An epoch key's seed, encrypted under a key derived from the identity key, for the station's store.

    A copy of the store alone (a backup, say) then reveals no epoch key: it also
    takes the identity key, which the key file protects with its passphrase.
    """
    return bytes(_storage_box(identity).encrypt(pair.seed, nonce))


def open_epoch_seed(identity: IdentityKey, sealed: bytes) -> bytes:
    try:
        return bytes(_storage_box(identity).decrypt(sealed))
    except nacl.exceptions.CryptoError:
        raise KeyFileError("a stored epoch key does not open with this identity key") from None


_EPOCH_KEY_DECODER: Final[msgspec.json.Decoder[EpochKey]] = msgspec.json.Decoder(EpochKey)


def open_epoch_key(signed: Signed, station: PublicKey) -> EpochKey:
    """Verify a published epoch key against its station's pinned identity key and return it."""
    _, payload = open_signed(signed, EPOCH_KEY_LABEL, [station])
    key = canonical_decode(_EPOCH_KEY_DECODER, payload, "epoch key")
    if not hmac.compare_digest(key.station, station.key_id):
        raise UnknownKey("the epoch key names another station than the one that signed it")
    key.hpke_public_key()
    return key
