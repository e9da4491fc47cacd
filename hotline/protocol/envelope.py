"""
Statements and envelopes: sign, then encrypt, then sign again for the relay.

A *statement* is what a station asserts: sender, recipient, message id,
sequence number, the hash of its previous statement, the last statement it saw
from the peer, the time, and a body (notice, ack, heartbeat, text). The sender
signs the statement's exact bytes (label ``hotline/v1/statement``), so a third
party can later verify who said what (DESIGN S2); the sequence number and hash
chain make a drop, a replay or a reorder visible (S3).

The signed statement is encrypted with HPKE (RFC 9180, Base mode, ML-KEM-768 +
X25519, HKDF-SHA256, ChaCha20-Poly1305) to the recipient's current epoch key,
with the envelope *header* as HPKE ``info``: the relay sees only the header
(who, which epoch key, message id) and the size (S1). The header also carries
the SHA-256 of the statement, which is a hiding commitment because every
statement holds a fresh 32-byte nonce: an auditor can later match a disclosed
statement to its log entry without any decryption key.

The sender signs the envelope again (label ``hotline/v1/envelope``, over the
hashes of header and ciphertext) so that the relay can refuse forgeries without
decrypting, and the log leaf carries that signature so that the log alone shows
who submitted each entry.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Final, Literal

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke

from hotline.protocol.exceptions import (
    ClockSkew,
    DecodeError,
    DecryptionFailed,
    ExpiredEpochKey,
    InvalidMessage,
    NoEpochKey,
    UnknownEpochKey,
    UnknownKey,
    WrongRecipient,
)
from hotline.protocol.keys import (
    ED25519,
    ENVELOPE_LABEL,
    HPKE_INFO_LABEL,
    MAX_SIGNATURES,
    STATEMENT_LABEL,
    EpochKey,
    EpochKeyPair,
    Hex32,
    Hex64,
    IdentityKey,
    PublicKey,
    Signature,
    Signed,
    open_signed,
    sign,
)
from hotline.protocol.messages import Body, Message, canonical_decode, strict_decode

__all__ = [
    "MAX_STATEMENT",
    "SUITE",
    "ZERO_HASH",
    "Checked",
    "Envelope",
    "Header",
    "Opened",
    "Sealed",
    "Statement",
    "check_envelope",
    "decode_envelope",
    "leaf_input",
    "open_envelope",
    "seal",
]

SUITE: Final = "mlkem768x25519-hkdfsha256-chacha20poly1305"
ZERO_HASH: Final = "0" * 64
MAX_STATEMENT: Final = 20 * 1024
MAX_HEADER: Final = 1024
# A signed statement is base64 inside JSON, then sealed (about 1,136 bytes of HPKE overhead).
MAX_SEALED: Final = 32 * 1024
MAX_SEQ: Final = 2**53
# How far in the future a statement's time may be, by the receiver's clock.
DEFAULT_MAX_SKEW: Final = timedelta(minutes=5)

_HPKE: Final = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)


class Statement(Message, frozen=True):
    """What a station signs: ``prev`` links its own chain, ``peer`` the last statement from the peer."""

    v: Literal[1]
    sender: Hex64
    recipient: Hex64
    id: Hex32
    seq: Annotated[int, msgspec.Meta(ge=1, le=MAX_SEQ)]
    prev: Hex64
    peer: Hex64
    peer_seq: Annotated[int, msgspec.Meta(ge=0, le=MAX_SEQ)]
    created: datetime
    nonce: Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
    body: Body

    def _validate(self) -> None:
        if self.sender == self.recipient:
            raise InvalidMessage("Statement: sender and recipient are the same station")
        if (self.seq == 1) != (self.prev == ZERO_HASH):
            raise InvalidMessage("Statement.prev: the first statement, and only it, links to the zero hash")
        if (self.peer_seq == 0) != (self.peer == ZERO_HASH):
            raise InvalidMessage("Statement.peer: the zero hash stands for 'nothing seen yet', peer_seq 0")


class Header(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The part of an envelope the relay reads. It is the HPKE ``info`` too, so it cannot be swapped.

    ``seq`` is the statement's sequence number: the relay logs each sender's
    envelopes in that order, so that the log and every delivery follow the
    sender's own order. It tells the relay nothing its log does not.
    """

    v: Literal[1]
    suite: Literal["mlkem768x25519-hkdfsha256-chacha20poly1305"]
    id: Hex32
    sender: Hex64
    recipient: Hex64
    seq: Annotated[int, msgspec.Meta(ge=1, le=MAX_SEQ)]
    epoch: Hex32
    statement: Hex64


class Envelope(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What travels through the relay: header bytes, HPKE output (enc || ciphertext), sender's signatures."""

    header: Annotated[bytes, msgspec.Meta(max_length=MAX_HEADER)]
    sealed: Annotated[bytes, msgspec.Meta(max_length=MAX_SEALED)]
    signatures: Annotated[list[Signature], msgspec.Meta(min_length=1, max_length=MAX_SIGNATURES)]


_STATEMENT_DECODER: Final = msgspec.json.Decoder(Statement)
_HEADER_DECODER: Final = msgspec.json.Decoder(Header)
_SIGNED_DECODER: Final = msgspec.json.Decoder(Signed)
_ENVELOPE_DECODER: Final = msgspec.json.Decoder(Envelope)


def _envelope_message(header: bytes, sealed: bytes) -> bytes:
    return hashlib.sha256(header).digest() + hashlib.sha256(sealed).digest()


def leaf_input(header: bytes, sealed: bytes, signature: bytes) -> bytes:
    """The log entry for an envelope: ``u32 len(header) || header || SHA-256(sealed) || signature``.

    It holds everything needed to check the sender's envelope signature and the
    statement commitment, without the ciphertext.
    """
    return struct.pack(">I", len(header)) + header + hashlib.sha256(sealed).digest() + signature


def decode_envelope(data: bytes) -> Envelope:
    return strict_decode(_ENVELOPE_DECODER, data, "envelope")


@dataclass(frozen=True)
class Sealed:
    """A statement sealed for sending: everything the sender keeps as evidence."""

    statement: Statement
    statement_bytes: bytes
    statement_hash: str
    signed_statement: bytes
    header: Header
    envelope: Envelope
    leaf_input: bytes


def seal(identity: IdentityKey, peer: PublicKey, epoch_key: EpochKey, statement: Statement) -> Sealed:
    """Sign the statement, encrypt it to the peer's epoch key, and sign the envelope."""
    if statement.sender != identity.public.key_id:
        raise InvalidMessage("Statement.sender: not this station")
    if statement.recipient != peer.key_id or epoch_key.station != peer.key_id:
        raise InvalidMessage("Statement.recipient: the epoch key and recipient are not the same station")
    if not epoch_key.valid_at(statement.created):
        raise NoEpochKey(
            f"epoch key {epoch_key.key_id} is valid {epoch_key.not_before:%Y-%m-%dT%H:%M:%SZ} to "
            f"{epoch_key.not_after:%Y-%m-%dT%H:%M:%SZ}, not at {statement.created:%Y-%m-%dT%H:%M:%SZ}: "
            "the peer must publish a current epoch key"
        )
    statement_bytes = msgspec.json.encode(statement)
    if len(statement_bytes) > MAX_STATEMENT:
        raise InvalidMessage(f"the statement is {len(statement_bytes)} bytes, over the limit of {MAX_STATEMENT}")
    statement_hash = hashlib.sha256(statement_bytes).hexdigest()
    signed_statement = msgspec.json.encode(sign(identity, STATEMENT_LABEL, statement_bytes))
    header = Header(
        1, SUITE, statement.id, statement.sender, statement.recipient, statement.seq, epoch_key.key_id, statement_hash
    )
    header_bytes = msgspec.json.encode(header)
    sealed = _HPKE.encrypt(signed_statement, epoch_key.hpke_public_key(), info=HPKE_INFO_LABEL + b"\x00" + header_bytes)
    signature = identity.sign(ENVELOPE_LABEL, _envelope_message(header_bytes, sealed))
    envelope = Envelope(header_bytes, sealed, [Signature(ED25519, identity.public.key_id, signature)])
    return Sealed(
        statement,
        statement_bytes,
        statement_hash,
        signed_statement,
        header,
        envelope,
        leaf_input(header_bytes, sealed, signature),
    )


@dataclass(frozen=True)
class Checked:
    """An envelope whose header parsed and whose outer signature verified: what the relay may accept."""

    envelope: Envelope
    header: Header
    sender: PublicKey
    recipient: PublicKey
    leaf_input: bytes


def check_envelope(envelope: Envelope, stations: Mapping[str, PublicKey]) -> Checked:
    """The relay's check, also the first step of opening: header, roster, outer signature.

    ``stations`` maps fingerprints (hex) to the pinned keys of the stations on the line.
    """
    header = canonical_decode(_HEADER_DECODER, envelope.header, "envelope header")
    sender = stations.get(header.sender)
    if sender is None:
        raise UnknownKey("the envelope's sender is not a station on this line")
    recipient = stations.get(header.recipient)
    if recipient is None or header.recipient == header.sender:
        raise WrongRecipient("the envelope is addressed to no other station on this line")
    signer, _ = open_signed(
        Signed(_envelope_message(envelope.header, envelope.sealed), envelope.signatures),
        ENVELOPE_LABEL,
        [sender],
    )
    signature = next(s.sig for s in envelope.signatures if s.alg == ED25519 and s.key == signer.key_id)
    return Checked(envelope, header, sender, recipient, leaf_input(envelope.header, envelope.sealed, signature))


@dataclass(frozen=True)
class Opened:
    """A verified, decrypted statement: its exact bytes (the evidence), its hash and its parsed form."""

    statement: Statement
    statement_bytes: bytes
    statement_hash: str
    signed_statement: bytes
    header: Header
    leaf_input: bytes


def open_envelope(
    envelope: Envelope,
    me: PublicKey,
    peer: PublicKey,
    epoch_keys: Mapping[str, EpochKeyPair],
    now: datetime,
    max_skew: timedelta = DEFAULT_MAX_SKEW,
) -> Opened:
    """Check, decrypt and verify an envelope from ``peer`` to ``me``; raise a named error on any fault.

    Order and completeness (sequence numbers, the hash chain) need the station's
    state and are checked by the station state machine.
    """
    checked = check_envelope(envelope, {me.key_id: me, peer.key_id: peer})
    header = checked.header
    if not hmac.compare_digest(header.recipient, me.key_id):
        raise WrongRecipient("the envelope is addressed to another station")
    pair = epoch_keys.get(header.epoch)
    if pair is None:
        raise UnknownEpochKey(f"sealed to epoch key {header.epoch}, which this station does not hold")
    try:
        signed_bytes = _HPKE.decrypt(
            envelope.sealed, pair.hpke_private_key(), info=HPKE_INFO_LABEL + b"\x00" + envelope.header
        )
    except (InvalidTag, ValueError):
        raise DecryptionFailed("the envelope does not decrypt: its ciphertext or header was altered") from None
    signed = strict_decode(_SIGNED_DECODER, signed_bytes, "signed statement")
    _, statement_bytes = open_signed(signed, STATEMENT_LABEL, [peer])
    statement_hash = hashlib.sha256(statement_bytes).hexdigest()
    if not hmac.compare_digest(statement_hash, header.statement):
        raise DecryptionFailed("the statement does not match the hash its envelope commits to")
    statement = canonical_decode(_STATEMENT_DECODER, statement_bytes, "statement")
    if statement.sender != header.sender or statement.id != header.id or statement.seq != header.seq:
        raise DecodeError("the statement's sender, id or sequence number differs from its envelope header")
    if statement.recipient != me.key_id:
        raise WrongRecipient("the statement is addressed to another station")
    if not pair.not_before <= statement.created < pair.not_after:
        raise ExpiredEpochKey(
            f"sealed at {statement.created:%Y-%m-%dT%H:%M:%SZ} to an epoch key valid "
            f"{pair.not_before:%Y-%m-%dT%H:%M:%SZ} to {pair.not_after:%Y-%m-%dT%H:%M:%SZ}"
        )
    if statement.created - now > max_skew:
        ahead = (statement.created - now).total_seconds()
        raise ClockSkew(
            f"the statement is dated {ahead:.0f}s in the future (at most {max_skew.total_seconds():.0f}s allowed): "
            "check both stations' clocks"
        )
    return Opened(statement, statement_bytes, statement_hash, signed_bytes, header, checked.leaf_input)
