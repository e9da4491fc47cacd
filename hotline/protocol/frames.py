"""
Frames: the JSON messages between a station and the relay, one per WebSocket message.

Every frame is an object whose ``type`` names it. Decoding is strict (unknown
fields, wrong types and values over a limit are refused) and happens before
anything else looks at a frame.

Station to relay: ``hello`` (answers the challenge), ``submit``, ``confirm``,
``cosign``, ``publish``, ``prove``.
Relay to station: ``challenge``, ``welcome``, ``accepted``, ``refused``,
``deliver``, ``checkpoint``, ``cosigned``, ``keys``, ``proof``.

Frames that carry a checkpoint carry a ``Head``: the relay-signed checkpoint
and a consistency proof from the last checkpoint this connection was shown, so
that each station sees one append-only history or notices at once that it
does not.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final, TypeAlias

import msgspec

from hotline.protocol.envelope import Envelope
from hotline.protocol.keys import Hex32, Hex64, Signed
from hotline.protocol.messages import strict_decode

__all__ = [
    "MAX_FRAME",
    "MAX_SUBMIT",
    "Accepted",
    "Challenge",
    "CheckpointFrame",
    "Confirm",
    "Cosign",
    "Cosigned",
    "Deliver",
    "Frame",
    "Head",
    "Hello",
    "Keys",
    "Proof",
    "Prove",
    "Publish",
    "Refusal",
    "Submit",
    "Welcome",
    "decode_relay_frame",
    "decode_station_frame",
    "encode_frame",
]

MAX_FRAME: Final = 64 * 1024
# The largest submission the relay takes: what it delivers adds a checkpoint and an inclusion
# proof to the envelope, and must still fit in one frame.
MAX_SUBMIT: Final = 48 * 1024
MAX_PROOF: Final = 64
MAX_NOTE: Final = 4096
MAX_KEYS: Final = 8

Index = Annotated[int, msgspec.Meta(ge=0, le=2**62)]
Size = Annotated[int, msgspec.Meta(ge=0, le=2**62)]
ProofHashes = Annotated[
    list[Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]], msgspec.Meta(max_length=MAX_PROOF)
]
Note = Annotated[bytes, msgspec.Meta(min_length=1, max_length=MAX_NOTE)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class _Frame(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type"):
    pass


class Head(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A relay-signed checkpoint, and the consistency proof from the last one shown on this connection."""

    checkpoint: Note
    consistency: ProofHashes = []


# --- station to relay ---


class Hello(_Frame, frozen=True, tag="hello"):
    """The answer to the challenge: who we are, a signature over the challenge, what we have seen."""

    station: Hex64
    signature: Annotated[bytes, msgspec.Meta(min_length=64, max_length=64)]
    head: Size = 0
    receive: bool = True


class Submit(_Frame, frozen=True, tag="submit"):
    envelope: Envelope


class Confirm(_Frame, frozen=True, tag="confirm"):
    """The delivery at ``index`` is stored durably: the relay may drop it from our queue."""

    index: Index


class Cosign(_Frame, frozen=True, tag="cosign"):
    """A witness cosignature (C2SP tlog-cosignature) over the checkpoint of ``size``."""

    size: Size
    signature: Annotated[bytes, msgspec.Meta(min_length=76, max_length=76)]


class Publish(_Frame, frozen=True, tag="publish"):
    """Our signed epoch public keys, for the relay to hand to the peer."""

    keys: Annotated[list[Signed], msgspec.Meta(min_length=1, max_length=MAX_KEYS)]


class Prove(_Frame, frozen=True, tag="prove"):
    """Ask for a consistency proof between two sizes (to compare a checkpoint gossiped by the peer)."""

    old: Size
    new: Size


# --- relay to station ---


class Challenge(_Frame, frozen=True, tag="challenge"):
    relay: Hex64
    nonce: Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
    time: Annotated[datetime, msgspec.Meta(tz=True)]


class Welcome(_Frame, frozen=True, tag="welcome"):
    """Authenticated. ``time`` lets the station measure its clock offset to the relay."""

    name: Name
    time: Annotated[datetime, msgspec.Meta(tz=True)]
    head: Head | None = None


class Accepted(_Frame, frozen=True, tag="accepted"):
    """The envelope ``id`` is in the log at ``index``, committed durably, with its inclusion proof."""

    id: Hex32
    index: Index
    head: Head
    inclusion: ProofHashes


class Refusal(_Frame, frozen=True, tag="refused"):
    """A refusal with the error code of ``hotline.protocol.exceptions`` and a message for people."""

    code: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    message: Annotated[str, msgspec.Meta(max_length=500)]
    id: Hex32 | None = None


class Deliver(_Frame, frozen=True, tag="deliver"):
    """An envelope for us at log ``index``; ``prev`` is the index of the one before it for us (-1: none).

    ``remaining`` counts what the relay holds for us after this one: a station
    catching up on a backlog knows how far it has to go.
    """

    index: Index
    prev: Annotated[int, msgspec.Meta(ge=-1, le=2**62)]
    envelope: Envelope
    head: Head
    inclusion: ProofHashes
    remaining: Size = 0


class CheckpointFrame(_Frame, frozen=True, tag="checkpoint"):
    """A new checkpoint to witness: verify its consistency, store it, cosign it."""

    head: Head


class Cosigned(_Frame, frozen=True, tag="cosigned"):
    """A checkpoint with the relay's signature and both stations' cosignatures."""

    checkpoint: Note


class Keys(_Frame, frozen=True, tag="keys"):
    """The peer's signed epoch public keys."""

    station: Hex64
    keys: Annotated[list[Signed], msgspec.Meta(max_length=MAX_KEYS)]


class Proof(_Frame, frozen=True, tag="proof"):
    old: Size
    new: Size
    consistency: ProofHashes


StationFrame: TypeAlias = Hello | Submit | Confirm | Cosign | Publish | Prove
RelayFrame: TypeAlias = Challenge | Welcome | Accepted | Refusal | Deliver | CheckpointFrame | Cosigned | Keys | Proof
Frame: TypeAlias = StationFrame | RelayFrame

_STATION_DECODER: Final[msgspec.json.Decoder[StationFrame]] = msgspec.json.Decoder(StationFrame)
_RELAY_DECODER: Final[msgspec.json.Decoder[RelayFrame]] = msgspec.json.Decoder(RelayFrame)
_ENCODER: Final = msgspec.json.Encoder()


def encode_frame(frame: Frame) -> bytes:
    return _ENCODER.encode(frame)


def decode_station_frame(data: bytes) -> StationFrame:
    """Decode a frame a station sent (the relay's side)."""
    return strict_decode(_STATION_DECODER, data, "frame")


def decode_relay_frame(data: bytes) -> RelayFrame:
    """Decode a frame the relay sent (a station's side)."""
    return strict_decode(_RELAY_DECODER, data, "frame")
