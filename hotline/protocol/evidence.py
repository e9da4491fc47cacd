"""
Evidence bundles: what a station discloses of the log, and the offline check a third party runs on it.

A bundle (format ``hotline-evidence/v1``, one JSON object, protocol.md section 23) holds:

- ``checkpoint``: a checkpoint of the log, signed by the relay and cosigned by both stations (C2SP signed note);
- ``leaf_hashes``: the RFC 6962 leaf hash of every entry of the log up to that checkpoint, in log order;
- ``entries``: the disclosed entries, each with its log index, its leaf input exactly as logged (the envelope's
  header, the SHA-256 of its ciphertext, the sender's envelope signature), the sender's signed statement, and
  an inclusion proof to the checkpoint;
- ``keys``: the public keys of the two stations and the relay, by name, for the reader's information only;
- ``exporter`` and ``signature``: the station that discloses the bundle, and its Ed25519 signature (label
  ``hotline/v1/evidence``) over the bundle's canonical JSON with an empty signature, so that no entry can be
  taken out of it or put into it by whoever passes it on.

``verify_bundle`` needs nothing but the bundle's bytes and the three public keys, given by whoever checks:
it never trusts the keys the bundle names. It checks, and raises ``VerificationError`` naming the first fault:
the relay's signature and both cosignatures of the checkpoint; that the leaf hashes make the checkpoint's root;
for each disclosed entry, that its leaf input hashes to the leaf hash at its index and is included by its proof,
that the envelope signature is its sender's, that the signed statement is the sender's and is the one the header
commits to (by SHA-256), with the same sender, recipient, id and sequence number. Undisclosed entries stay leaf
hashes: their content is not revealed, yet the root, and so the place of every disclosed entry, is proven.

What a verified bundle establishes: each disclosed statement was signed by its sender with the time it states,
was logged at its index in the one history both stations cosigned, after every entry before that index. The
times are the signers' own clocks, each signed; the log order is the relay's, cosigned by both.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Final, Literal

import msgspec

from hotline.protocol import checkpoint as notes
from hotline.protocol import merkle
from hotline.protocol.envelope import Header, Statement
from hotline.protocol.exceptions import HotlineError, VerificationError
from hotline.protocol.keys import (
    ENVELOPE_LABEL,
    STATEMENT_LABEL,
    IdentityKey,
    PublicKey,
    Signed,
    format_fingerprint,
    open_signed,
)
from hotline.protocol.messages import DEFAULT_DEADLINES, Ack, Notice, canonical_decode, strict_decode
from hotline.protocol.relay import log_origin
from hotline.protocol.station import deadline

__all__ = [
    "EVIDENCE_LABEL",
    "FORMAT",
    "Bundle",
    "BundleEntry",
    "BundleKey",
    "Verified",
    "check_leaf",
    "parse_leaf",
    "seal_bundle",
    "verify_bundle",
]

FORMAT: Final = "hotline-evidence/v1"
EVIDENCE_LABEL: Final = b"hotline/v1/evidence"
MAX_BUNDLE: Final = 256 * 1024 * 1024
MAX_LOG: Final = 1 << 24
MAX_ENTRIES: Final = 1 << 20


Hash32 = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]


class BundleKey(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(max_length=64)]
    role: Literal["station", "relay"]
    key: Annotated[str, msgspec.Meta(max_length=200)]  # "ed25519:..." as in .pub files
    fingerprint: Annotated[str, msgspec.Meta(max_length=200)]


class BundleEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    index: Annotated[int, msgspec.Meta(ge=0, lt=MAX_LOG)]
    leaf_input: Annotated[bytes, msgspec.Meta(max_length=256 * 1024)]
    signed_statement: Annotated[bytes, msgspec.Meta(max_length=256 * 1024)]
    inclusion: Annotated[list[Hash32], msgspec.Meta(max_length=64)]


class Bundle(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    format: Literal["hotline-evidence/v1"]
    exporter: Annotated[str, msgspec.Meta(max_length=64)]
    keys: Annotated[list[BundleKey], msgspec.Meta(max_length=3)]
    checkpoint: Annotated[bytes, msgspec.Meta(max_length=64 * 1024)]
    leaf_hashes: Annotated[list[Hash32], msgspec.Meta(max_length=MAX_LOG)]
    entries: Annotated[list[BundleEntry], msgspec.Meta(max_length=MAX_ENTRIES)]
    signature: Annotated[bytes, msgspec.Meta(max_length=64)] = b""


def signed_part(bundle: Bundle) -> bytes:
    """What the exporting station signs: the bundle's canonical JSON with an empty signature."""
    return msgspec.json.encode(msgspec.structs.replace(bundle, signature=b""))


def seal_bundle(bundle: Bundle, exporter: IdentityKey) -> bytes:
    """The bundle's bytes, signed by the station that discloses it (so nothing can be taken out or put in)."""
    signature = exporter.sign(EVIDENCE_LABEL, signed_part(bundle))
    return msgspec.json.encode(msgspec.structs.replace(bundle, signature=signature))


_BUNDLE: Final = msgspec.json.Decoder(Bundle)
_HEADER: Final = msgspec.json.Decoder(Header)
_STATEMENT: Final = msgspec.json.Decoder(Statement)
_SIGNED: Final = msgspec.json.Decoder(Signed)


def parse_leaf(leaf: bytes) -> tuple[bytes, bytes, bytes]:
    """Split a leaf input into header, SHA-256 of the sealed bytes, and the envelope signature."""
    if len(leaf) < 4:
        raise VerificationError("a leaf input is shorter than its length prefix")
    (n,) = struct.unpack(">I", leaf[:4])
    if len(leaf) != 4 + n + 32 + 64:
        raise VerificationError("a leaf input has the wrong length for its header")
    return leaf[4 : 4 + n], leaf[4 + n : 4 + n + 32], leaf[4 + n + 32 :]


def check_leaf(leaf: bytes, keys: dict[str, PublicKey]) -> Header:
    """The leaf's header is canonical, its sender is known, and the sender's envelope signature holds."""
    header_bytes, sealed_hash, signature = parse_leaf(leaf)
    header = canonical_decode(_HEADER, header_bytes, "envelope header")
    sender = keys.get(header.sender)
    if sender is None:
        raise VerificationError("the leaf's sender is not a station of this line")
    sender.verify(ENVELOPE_LABEL, hashlib.sha256(header_bytes).digest() + sealed_hash, signature)
    return header


@dataclass(frozen=True)
class Disclosed:
    """One verified entry: where it is in the log, who signed it, and what it says."""

    index: int
    sender: str
    recipient: str
    statement: Statement
    statement_hash: str


@dataclass(frozen=True)
class Verified:
    """What a bundle proves: the cosigned log size, and the disclosed statements in log order."""

    size: int
    root: bytes
    entries: list[Disclosed]

    def timeline(self, deadlines: Mapping[str, int] = DEFAULT_DEADLINES) -> list[str]:
        """Each notice, then its acknowledgements: signed times, lead time before its window, deadline kept.

        An acknowledgement counts only when its notice's recipient signed it and it is logged after the notice.
        Times are what each signer's clock said, and signed: a time earlier than that of an entry logged before
        it is flagged, since the log order shows it cannot be right.
        """
        answers: dict[str, list[Disclosed]] = {}
        for e in self.entries:
            if isinstance(e.statement.body, Ack):
                answers.setdefault(e.statement.body.answers, []).append(e)
        latest: dict[int, datetime] = {}  # the latest signed time among the entries logged before each index
        seen: datetime | None = None
        for e in self.entries:
            if seen is not None:
                latest[e.index] = seen
            seen = max(seen, e.statement.created) if seen is not None else e.statement.created
        lines = []
        for e in self.entries:
            notice = e.statement.body
            if not isinstance(notice, Notice):
                continue
            created = e.statement.created
            lead = ""
            if notice.window is not None:
                lead = f", window {notice.window.start:%Y-%m-%d %H:%MZ} to {notice.window.end:%Y-%m-%d %H:%MZ}"
                lead += f" ({_span(notice.window.start - created)} after it was signed)"
            refers = f" (refers to {notice.refers_to})" if notice.refers_to else ""
            lines.append(
                f"verified  [log {e.index}] {created:%Y-%m-%d %H:%M:%SZ}  {e.sender} signed {notice.action} notice "
                f"{notice.ref}{refers}, {notice.precedence}, to {e.recipient}{lead}{_clock(e, latest)}"
            )
            try:
                due: datetime | None = deadline(notice.precedence, created, deadlines)
            except OverflowError:
                due = None
            counted = 0
            for a in answers.get(e.statement_hash, []):
                ack = a.statement.body
                assert isinstance(ack, Ack)
                at = a.statement.created
                if a.sender != e.recipient or a.index < e.index:
                    why = "not signed by the notice's recipient" if a.sender != e.recipient else "logged before it"
                    lines.append(f"NOT COUNTED [log {a.index}] {a.sender} signed {ack.level} of {notice.ref}: {why}")
                    continue
                counted += 1
                kept = ""
                if ack.level != "RECEIVED" and due is not None:
                    kept = " (within the deadline, by its signed time)" if at <= due else " (AFTER the deadline)"
                comment = f": {_printable(ack.comment)}" if ack.comment else ""
                lines.append(
                    f"verified  [log {a.index}] {at:%Y-%m-%d %H:%M:%SZ}  {a.sender} signed {ack.level}, "
                    f"{_span(at - created)} after the notice{kept}{_clock(a, latest)}{comment}"
                )
            if not counted:
                lines.append(f"          no acknowledgement of {notice.ref} is disclosed")
        return lines


def _clock(entry: Disclosed, latest: dict[int, datetime]) -> str:
    before = latest.get(entry.index)
    if before is not None and entry.statement.created < before:
        return " [ITS SIGNED TIME IS BEFORE THAT OF AN ENTRY LOGGED EARLIER: that clock is wrong]"
    return ""


def _printable(text: str) -> str:
    """Free text from a statement, on one line: control characters (newlines, terminal escapes) shown escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    if seconds >= 3600:
        return f"{sign}{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{sign}{seconds // 60}m{seconds % 60:02d}s"


def verify_bundle(data: bytes, stations: dict[str, PublicKey], relay: PublicKey) -> Verified:
    """Check a bundle with the public keys given (two stations by name, and the relay); raise on any fault."""
    if len(data) > MAX_BUNDLE:
        raise VerificationError(f"the bundle is {len(data)} bytes, over the limit of {MAX_BUNDLE}")
    if len(stations) != 2:
        raise VerificationError("give the public keys of both stations")
    try:
        # Canonical JSON only: every byte of a bundle means something, so any change to one is refused.
        bundle = canonical_decode(_BUNDLE, data, "evidence bundle")
    except HotlineError as e:
        raise VerificationError(f"not a {FORMAT} bundle: {e}") from None
    # The keys the bundle names are for the reader; one that differs from the key given is refused first, so that
    # the reason names it.
    for named in bundle.keys:
        given = relay if named.role == "relay" else stations.get(named.name)
        if given is None or given.text() != named.key or format_fingerprint(given.fingerprint) != named.fingerprint:
            raise VerificationError(f"the bundle names another key for {named.name} than the one given")
    exporter = stations.get(bundle.exporter)
    if exporter is None:
        raise VerificationError(f"exported by {bundle.exporter!r}, which is not one of the stations given")
    try:
        exporter.verify(EVIDENCE_LABEL, signed_part(bundle), bundle.signature)
    except HotlineError as e:
        raise VerificationError(
            f"the bundle is not as {bundle.exporter} exported it (an entry added, removed or changed): {e}"
        ) from None
    origin = log_origin(relay)
    try:
        cp, note = notes.open_checkpoint(bundle.checkpoint, origin, origin, relay.raw)
    except HotlineError as e:
        raise VerificationError(f"checkpoint: {e}") from None
    for name, key in sorted(stations.items()):
        try:
            notes.verify_cosignature(note, name, key.raw)
        except HotlineError as e:
            raise VerificationError(f"checkpoint: not cosigned by {name}: {e}") from None
    if len(bundle.leaf_hashes) != cp.size:
        raise VerificationError(f"the bundle holds {len(bundle.leaf_hashes)} leaf hashes for a log of {cp.size}")
    if not bundle.entries:
        raise VerificationError("the bundle discloses no entry")
    try:
        computed = merkle.root(bundle.leaf_hashes)
    except (HotlineError, ValueError) as e:
        raise VerificationError(f"leaf hashes: {e}") from None
    if computed != cp.root:
        raise VerificationError(
            "the leaf hashes do not make the checkpoint's root: an entry was added, removed or changed"
        )
    by_id = {key.key_id: (name, key) for name, key in stations.items()}
    keys = {key_id: key for key_id, (_, key) in by_id.items()}
    disclosed = []
    last = -1
    for entry in bundle.entries:
        where = f"entry at log index {entry.index}"
        if entry.index <= last:
            raise VerificationError(f"{where}: entries are not in log order")
        last = entry.index
        if entry.index >= cp.size:
            raise VerificationError(f"{where}: beyond the checkpoint's {cp.size} entries")
        try:
            leaf = merkle.leaf_hash(entry.leaf_input)
            if leaf != bundle.leaf_hashes[entry.index]:
                raise VerificationError("its leaf input is not the entry logged at that index")
            merkle.verify_inclusion(leaf, entry.index, cp.size, entry.inclusion, cp.root)
            header = check_leaf(entry.leaf_input, keys)
            sender_name, sender = by_id[header.sender]
            recipient = by_id.get(header.recipient)
            if recipient is None or recipient[1] is sender:
                raise VerificationError("it is not addressed to the other station")
            signed = strict_decode(_SIGNED, entry.signed_statement, "signed statement")
            _, payload = open_signed(signed, STATEMENT_LABEL, [sender])
            statement_hash = hashlib.sha256(payload).hexdigest()
            if statement_hash != header.statement:
                raise VerificationError("its statement is not the one its envelope commits to")
            statement = canonical_decode(_STATEMENT, payload, "statement")
            if (statement.sender, statement.recipient, statement.id, statement.seq) != (
                header.sender,
                header.recipient,
                header.id,
                header.seq,
            ):
                raise VerificationError(
                    "its statement's sender, recipient, id or sequence number differs from its header"
                )
        except HotlineError as e:
            raise VerificationError(f"{where}: {e}") from None
        disclosed.append(Disclosed(entry.index, sender_name, recipient[0], statement, statement_hash))
    return Verified(cp.size, cp.root, disclosed)
