"""
The relay as a state machine: frames in, frames and events out, no I/O.

One ``Relay`` holds what all connections share: the roster of stations, the
Merkle log, a queue per recipient, the published epoch keys and the latest
checkpoint with its cosignatures. ``Relay.connect()`` makes a ``Connection``
for each WebSocket; the I/O layer feeds it with ``receive_frame()`` and sends
what ``data_to_send()`` returns.

The durability contract, which is what makes "accepted" mean "survives a
crash" (DESIGN S7):

1. Drain ``Relay.events()`` and write them to the store in order (group commit:
   one transaction may hold the events of many connections).
2. When the log entries below size N are committed, call ``Relay.durable(N)``.
   Only then are the submissions answered ``accepted``, the entries queued for
   delivery and a checkpoint covering them signed. Nothing the relay has not
   committed is ever shown to anyone. Pass ``Relay.size`` as read when the
   events were drained, since more may have been staged while the store wrote.
3. Then flush every connection's ``data_to_send()``.

A refusal leaves no trace but a ``Refused`` event, which the I/O layer counts.
"""

from __future__ import annotations

import hmac
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, TypeAlias

import msgspec

from hotline.protocol import checkpoint as notes
from hotline.protocol import merkle
from hotline.protocol.envelope import Checked, Envelope, check_envelope
from hotline.protocol.exceptions import (
    AuthenticationFailed,
    DecodeError,
    HotlineError,
    LocalProtocolError,
    OutOfOrder,
    ReplayedMessage,
    StateError,
    UnknownKey,
    WrongSender,
)
from hotline.protocol.frames import (
    MAX_KEYS,
    MAX_SUBMIT,
    Accepted,
    Challenge,
    CheckpointFrame,
    Confirm,
    Cosign,
    Cosigned,
    Deliver,
    Head,
    Hello,
    Keys,
    Proof,
    Prove,
    Publish,
    Refusal,
    RelayFrame,
    Submit,
    Welcome,
    decode_station_frame,
    encode_frame,
)
from hotline.protocol.keys import AUTH_LABEL, EpochKey, Hex32, IdentityKey, PublicKey, Signed, open_epoch_key
from hotline.protocol.messages import strict_decode

__all__ = [
    "Appended",
    "CheckpointSigned",
    "Connection",
    "Cosignature",
    "Dequeued",
    "EpochKeysPublished",
    "Refused",
    "Relay",
    "RelayEvent",
    "StationEntry",
    "auth_payload",
    "log_origin",
]

# How many deliveries may wait for confirmation on one connection before the relay holds back more.
DEFAULT_WINDOW: Final = 256
# How long the relay waits for a station's cosignature before asking the others again without it.
WITNESS_PATIENCE: Final = timedelta(seconds=10)
# Epoch keys kept per station: two days of hourly keys and some to spare.
MAX_PUBLISHED: Final = 96
# Signed checkpoints kept so that a cosignature of a slightly older one can still be checked.
KEPT_CHECKPOINTS: Final = 64


@dataclass(frozen=True)
class StationEntry:
    """A station on the line: its name (also its witness name) and its pinned identity key."""

    name: str
    key: PublicKey


# --- Events: what the I/O layer must store --------------------------------------------------------


@dataclass(frozen=True)
class Appended:
    """A new log entry, to store durably before ``Relay.durable()`` covers it."""

    index: int
    leaf_input: bytes
    envelope: Envelope
    sender: str
    recipient: str
    message_id: str
    prev: int


@dataclass(frozen=True)
class Dequeued:
    """The recipient confirmed the delivery at ``index``: drop it from its queue."""

    recipient: str
    index: int


@dataclass(frozen=True)
class CheckpointSigned:
    size: int
    note: bytes


@dataclass(frozen=True)
class Cosignature:
    """A verified witness cosignature, and the fully cosigned note once every station has cosigned."""

    size: int
    station: str
    signature: bytes
    cosigned: bytes | None


@dataclass(frozen=True)
class EpochKeysPublished:
    station: str
    keys: tuple[Signed, ...]


@dataclass(frozen=True)
class Refused:
    """Counted in the metrics; nothing else is kept of a refused input."""

    code: str
    station: str | None


RelayEvent: TypeAlias = Appended | Dequeued | CheckpointSigned | Cosignature | EpochKeysPublished | Refused


def log_origin(relay: PublicKey) -> str:
    """The origin line of the relay's checkpoints, which is also the name its signature goes by.

    It follows from the relay's key, so a station that pinned the key knows the
    origin without being told, and two relays can never share one.
    """
    return f"hotline/relay/{relay.key_id[:32]}"


def auth_payload(relay: PublicKey, nonce: bytes, station: PublicKey) -> bytes:
    """What a station signs to answer the challenge: it binds the relay, the nonce and itself."""
    return relay.fingerprint + nonce + station.fingerprint


@dataclass
class _Queued:
    index: int
    prev: int
    envelope: Envelope
    recipient: str


@dataclass
class _Pending:
    """A submission staged in the log, waiting for the store to commit it."""

    connection: Connection
    message_id: str
    index: int


class Relay:
    """The state every connection shares."""

    def __init__(
        self,
        key: IdentityKey,
        origin: str,
        stations: Sequence[StationEntry],
        random: Callable[[int], bytes],
        window: int = DEFAULT_WINDOW,
    ) -> None:
        if len(stations) != 2 or stations[0].key == stations[1].key:
            raise LocalProtocolError("a line joins exactly two stations with different keys")
        self.key = key
        self.origin = origin
        self.stations = {s.key.key_id: s for s in stations}
        self.random = random
        self.window = window
        # Ask for cosignatures after every commit (simple, and what the in-memory tests use), or only
        # when the I/O layer calls ask_witnesses(), on a timer: under load, one per commit is waste.
        self.witness_every_commit = True
        self.witness_size = 0
        self.witness_asked_at: datetime | None = None
        self.tree = merkle.Tree()
        self.durable_size = 0
        self.ids: dict[str, int] = {}
        self.queues: dict[str, dict[int, _Queued]] = {k: {} for k in self.stations}
        self.last_enqueued: dict[str, int] = dict.fromkeys(self.stations, -1)
        # The sequence number of each sender's last logged statement: the next must follow it.
        self.last_seq: dict[str, int] = dict.fromkeys(self.stations, 0)
        self.epoch_keys: dict[str, dict[str, tuple[Signed, EpochKey]]] = {k: {} for k in self.stations}
        self.checkpoints: dict[int, bytes] = {}
        self.cosignatures: dict[int, dict[str, notes.NoteSignature]] = {}
        self.cosigned: bytes | None = None
        # The authenticated connections only: what the relay does for all of them (deliver, ask to witness)
        # must not cost a pass over a flood of connections that never authenticate.
        self.connections: list[Connection] = []
        self._staged: list[_Queued] = []
        self._pending: list[_Pending] = []
        self._events: list[RelayEvent] = []

    # --- restoring from the store ---

    def restore(
        self,
        leaves: Iterable[tuple[bytes, str, str]],
        queued: Iterable[tuple[str, int, int, Envelope]],
        epoch_keys: dict[str, tuple[Signed, ...]],
        cosigned: bytes | None,
    ) -> None:
        """Load committed state: log leaves (leaf input, message id, recipient) and undelivered entries."""
        for leaf, message_id, recipient in leaves:
            index = self.tree.append(merkle.leaf_hash(leaf))
            self.ids[message_id] = index
            self.last_enqueued[recipient] = index
            header = _leaf_header(leaf)
            self.last_seq[header.sender] = max(self.last_seq.get(header.sender, 0), header.seq)
        self.durable_size = self.tree.size
        for recipient, index, prev, envelope in queued:
            self.queues[recipient][index] = _Queued(index, prev, envelope, recipient)
        for station, signed_keys in epoch_keys.items():
            entry = self.stations[station]
            self.epoch_keys[station] = {
                key.key_id: (signed, key) for signed in signed_keys for key in [open_epoch_key(signed, entry.key)]
            }
        self.cosigned = cosigned
        if self.durable_size:
            self._sign_checkpoint()

    # --- the I/O layer's side ---

    def connect(self, now: datetime) -> Connection:
        """A new connection; it joins ``connections`` once its station has authenticated."""
        return Connection(self, now)

    def events(self) -> list[RelayEvent]:
        """Everything to store, in order; drained by this call."""
        events, self._events = self._events, []
        return events

    @property
    def size(self) -> int:
        """The log's size including staged entries: pass it to ``durable()`` once they are committed."""
        return self.tree.size

    def durable(self, size: int) -> None:
        """The store has committed the log up to ``size``: answer, queue, sign a checkpoint, deliver."""
        if not self.durable_size <= size <= self.tree.size:
            raise LocalProtocolError(f"durable({size}) outside {self.durable_size}..{self.tree.size}")
        if size == self.durable_size:
            return
        while self._staged and self._staged[0].index < size:
            entry = self._staged.pop(0)
            self.queues[entry.recipient][entry.index] = entry
        self.durable_size = size
        self._sign_checkpoint()
        ready = [p for p in self._pending if p.index < size]
        self._pending = [p for p in self._pending if p.index >= size]
        for p in ready:
            p.connection.answer_accepted(p.message_id, p.index)
        if self.witness_every_commit:
            self.ask_witnesses()
        for connection in self.connections:
            if connection.station is not None:
                connection.pump()

    def ask_witnesses(self, now: datetime | None = None) -> None:
        """Ask every connected station to cosign one and the same checkpoint, the newest.

        One request at a time: while a station has not answered, nobody is asked
        again, so that both cosign the same size and it can count as logged. A
        station that stays silent longer than ``WITNESS_PATIENCE`` (when ``now``
        is given) is passed over: the others are asked again without it, and it
        is asked again once it has answered; its checkpoint is kept until then.
        """
        asked = [c for c in self.connections if c.witness_pending]
        since = self.witness_asked_at
        if asked and now is not None and since is not None and now - since > WITNESS_PATIENCE:
            for connection in asked:
                connection.witness_pending = False
            asked = []
        if asked or self.durable_size <= self.witness_size:
            return
        self.witness_size = self.durable_size
        self.witness_asked_at = now
        for connection in self.connections:
            # A slow link is not piled with questions it cannot answer in time.
            if connection.station is not None and not connection.witness_owed:
                connection.ask_to_cosign()

    def _sign_checkpoint(self) -> None:
        size = self.durable_size
        cp = notes.Checkpoint(self.origin, size, self.tree.root(size))
        note = notes.sign_checkpoint(cp, self.origin, self.key.signing_key)
        self.checkpoints[size] = note
        # Keep the checkpoints a witness was asked to cosign and has not answered yet, whatever their age: one
        # per connection at most.
        asked = {c.witness_size for c in self.connections if c.witness_owed}
        for old in sorted(self.checkpoints)[:-KEPT_CHECKPOINTS]:
            if old not in asked:
                del self.checkpoints[old]
                self.cosignatures.pop(old, None)
        self._events.append(CheckpointSigned(size, note))

    def disconnect(self, connection: Connection) -> None:
        if connection in self.connections:
            self.connections.remove(connection)
        self._pending = [p for p in self._pending if p.connection is not connection]

    def published(self, station: str) -> tuple[Signed, ...]:
        """A station's current epoch keys as it signed them, soonest first."""
        entries = sorted(self.epoch_keys[station].values(), key=lambda entry: entry[1].not_before)
        return tuple(signed for signed, _ in entries)

    def peer_of(self, station: str) -> str:
        return next(k for k in self.stations if k != station)

    def head(self, old_size: int) -> Head:
        """The current checkpoint with a consistency proof from ``old_size`` (when that proves anything)."""
        size = self.durable_size
        proof = self.tree.consistency_proof(old_size, size) if 0 < old_size < size else []
        return Head(self.checkpoints[size], proof)


class Connection:
    """One station's WebSocket connection to the relay, as a sans-I/O state machine."""

    def __init__(self, relay: Relay, now: datetime) -> None:
        self.relay = relay
        self.nonce = relay.random(32)
        self.station: str | None = None
        self.receive = False
        self.head_size = 0
        self.witness_size = 0
        # Pending: the relay waits for this answer before asking anyone again. Owed: asked and not answered, even
        # if passed over as too slow, so that the checkpoint stays here for a late answer over a slow link.
        self.witness_pending = False
        self.witness_owed = False
        self.closing = False
        self._sent: set[int] = set()
        self._out: list[bytes] = []
        self._delivering = False
        self._send(Challenge(relay.key.public.key_id, self.nonce, now))

    # --- the I/O layer's side ---

    def data_to_send(self) -> list[bytes]:
        out, self._out = self._out, []
        self._delivering = False
        return out

    @property
    def pending_output(self) -> bool:
        """Whether frames wait in ``data_to_send()``."""
        return bool(self._out)

    @property
    def delivering(self) -> bool:
        """Whether a delivery waits in ``data_to_send()`` (the I/O layer may send such frames first)."""
        return self._delivering

    def receive_frame(self, data: bytes, now: datetime) -> None:
        """Handle one frame. Never raises for bad input: it answers with a refusal and counts it."""
        try:
            frame = decode_station_frame(data)
            if self.station is None:
                if not isinstance(frame, Hello):
                    raise AuthenticationFailed("authenticate first: answer the challenge with a hello")
                self._hello(frame, now)
            elif isinstance(frame, Submit):
                if len(data) > MAX_SUBMIT:
                    raise DecodeError(f"a submission of {len(data)} bytes is over the limit of {MAX_SUBMIT}")
                self._submit(frame.envelope)
            elif isinstance(frame, Confirm):
                self._confirm(frame.index)
            elif isinstance(frame, Cosign):
                self._cosign(frame)
            elif isinstance(frame, Publish):
                self._publish(frame.keys, now)
            elif isinstance(frame, Prove):
                self._prove(frame)
            else:
                raise StateError("already authenticated")
        except HotlineError as e:
            self.refuse(e, None)

    def refuse(self, error: HotlineError, message_id: str | None) -> None:
        self.relay._events.append(Refused(error.code, self.station))
        self._send(Refusal(error.code, str(error)[:500], message_id))
        if self.station is None:
            self.closing = True

    # --- frames ---

    def _send(self, frame: RelayFrame) -> None:
        self._out.append(encode_frame(frame))
        if isinstance(frame, Deliver):
            self._delivering = True

    def _hello(self, hello: Hello, now: datetime) -> None:
        relay = self.relay
        entry = relay.stations.get(hello.station)
        if entry is None:
            raise UnknownKey("this key is not on the relay's roster")
        entry.key.verify(AUTH_LABEL, auth_payload(relay.key.public, self.nonce, entry.key), hello.signature)
        self.station = hello.station
        self.receive = hello.receive
        if self not in relay.connections:
            relay.connections.append(self)
        self.head_size = hello.head
        head = relay.head(self.head_size) if relay.durable_size else None
        if head is not None:
            self.head_size = relay.durable_size
        self._send(Welcome(entry.name, now, head))
        peer = relay.peer_of(hello.station)
        self._send_keys(peer, relay.published(peer))
        if relay.cosigned is not None:
            self._send(Cosigned(relay.cosigned))
        self.pump()

    def _submit(self, envelope: Envelope) -> None:
        relay = self.relay
        try:
            checked = check_envelope(envelope, {k: s.key for k, s in relay.stations.items()})
        except HotlineError as e:
            self.refuse(e, _claimed_id(envelope))
            return
        message_id = checked.header.id
        if not hmac.compare_digest(checked.header.sender, self.station or ""):
            self.refuse(WrongSender("the envelope's sender is not the station on this connection"), message_id)
            return
        existing = relay.ids.get(message_id)
        if existing is not None:
            self._resubmitted(checked, existing)
            return
        expected = relay.last_seq[checked.header.sender] + 1
        if checked.header.seq != expected:
            self.refuse(
                OutOfOrder(f"statement {checked.header.seq} submitted before {expected}: submit {expected} first"),
                message_id,
            )
            return
        relay.last_seq[checked.header.sender] = checked.header.seq
        index = relay.tree.append(merkle.leaf_hash(checked.leaf_input))
        relay.ids[message_id] = index
        recipient = checked.header.recipient
        prev = relay.last_enqueued[recipient]
        relay.last_enqueued[recipient] = index
        relay._staged.append(_Queued(index, prev, envelope, recipient))
        relay._pending.append(_Pending(self, message_id, index))
        relay._events.append(
            Appended(index, checked.leaf_input, envelope, checked.header.sender, recipient, message_id, prev)
        )

    def _resubmitted(self, checked: Checked, index: int) -> None:
        """The same id again: the same envelope is answered as before; another one is a replay."""
        relay = self.relay
        message_id = checked.header.id
        if not hmac.compare_digest(relay.tree.leaf_hash(index), merkle.leaf_hash(checked.leaf_input)):
            self.refuse(ReplayedMessage("another envelope with this id is already in the log"), message_id)
        elif index < relay.durable_size:
            self.answer_accepted(message_id, index)
        else:
            relay._pending.append(_Pending(self, message_id, index))

    def answer_accepted(self, message_id: str, index: int) -> None:
        relay = self.relay
        head = self._head()
        self._send(Accepted(message_id, index, head, relay.tree.inclusion_proof(index, relay.durable_size)))

    def _head(self) -> Head:
        head = self.relay.head(self.head_size)
        self.head_size = self.relay.durable_size
        return head

    def ask_to_cosign(self) -> None:
        """Ask this station to witness the current checkpoint (``Relay.ask_witnesses`` decides when)."""
        self.witness_size = self.relay.durable_size
        self.witness_pending = True
        self.witness_owed = True
        self._send(CheckpointFrame(self._head()))

    def pump(self) -> None:
        """Deliver queued entries in log order, keeping at most ``window`` unconfirmed."""
        if self.station is None or not self.receive:
            return
        relay = self.relay
        queue = relay.queues[self.station]
        for position, (index, item) in enumerate(queue.items()):
            if len(self._sent) >= relay.window:
                break
            if index in self._sent:
                continue
            self._sent.add(index)
            head = self._head()
            proof = relay.tree.inclusion_proof(index, relay.durable_size)
            self._send(Deliver(index, item.prev, item.envelope, head, proof, len(queue) - position - 1))

    def _confirm(self, index: int) -> None:
        relay = self.relay
        assert self.station is not None
        queue = relay.queues[self.station]
        if queue.pop(index, None) is not None:
            relay._events.append(Dequeued(self.station, index))
        for connection in relay.connections:
            if connection.station == self.station:
                connection._sent.discard(index)
                connection.pump()

    def _cosign(self, frame: Cosign) -> None:
        self.witness_pending = False
        self.witness_owed = False
        try:
            self._check_cosignature(frame)
        finally:
            if self.relay.witness_every_commit:
                self.relay.ask_witnesses()

    def _check_cosignature(self, frame: Cosign) -> None:
        relay = self.relay
        assert self.station is not None
        note_bytes = relay.checkpoints.get(frame.size)
        if note_bytes is None:
            raise DecodeError(f"no recent checkpoint of size {frame.size} to cosign")
        entry = relay.stations[self.station]
        note = notes.parse_note(note_bytes)
        signature = notes.NoteSignature(entry.name, frame.signature[:4], frame.signature[4:])
        notes.verify_cosignature(notes.add_signatures(note, signature), entry.name, entry.key.raw)
        cosigs = relay.cosignatures.setdefault(frame.size, {})
        cosigs[self.station] = signature
        cosigned = None
        if len(cosigs) == len(relay.stations) and (
            relay.cosigned is None or notes.Checkpoint.parse(notes.parse_note(relay.cosigned).text).size < frame.size
        ):
            cosigned = notes.add_signatures(note, *(cosigs[k] for k in sorted(cosigs))).encode()
            relay.cosigned = cosigned
            for connection in relay.connections:
                if connection.station is not None:
                    connection._send(Cosigned(cosigned))
        relay._events.append(Cosignature(frame.size, self.station, frame.signature, cosigned))

    def _publish(self, keys: list[Signed], now: datetime) -> None:
        """Add a station's epoch keys to those it published before; forget the expired ones."""
        relay = self.relay
        assert self.station is not None
        station = relay.stations[self.station]
        opened = [(signed, open_epoch_key(signed, station.key)) for signed in keys]
        known = relay.epoch_keys[self.station]
        fresh = [(signed, key) for signed, key in opened if key.not_after > now and key.key_id not in known]
        known.update((key.key_id, (signed, key)) for signed, key in fresh)
        for key_id in [k for k, (_, key) in known.items() if key.not_after <= now]:
            del known[key_id]
        if len(known) > MAX_PUBLISHED:
            # Keep the keys needed soonest; a station publishes the later ones again when it reconnects.
            keep = sorted(known.items(), key=lambda item: item[1][1].not_before)[:MAX_PUBLISHED]
            relay.epoch_keys[self.station] = known = dict(keep)
        relay._events.append(EpochKeysPublished(self.station, relay.published(self.station)))
        added = [signed for signed, key in fresh if key.key_id in known]
        peer = relay.peer_of(self.station)
        for connection in relay.connections:
            if connection.station == peer and added:
                connection._send_keys(self.station, tuple(added))

    def _send_keys(self, station: str, keys: tuple[Signed, ...]) -> None:
        for start in range(0, max(len(keys), 1), MAX_KEYS):
            self._send(Keys(station, list(keys[start : start + MAX_KEYS])))

    def _prove(self, frame: Prove) -> None:
        relay = self.relay
        if not 0 < frame.old <= frame.new:
            raise DecodeError(f"no consistency proof goes from {frame.old} to {frame.new}")
        # A size past our log cannot be proved: the answer is an empty proof, which the station
        # refuses, rather than a refusal it could not tie to its question.
        proof = relay.tree.consistency_proof(frame.old, frame.new) if frame.new <= relay.durable_size else []
        self._send(Proof(frame.old, frame.new, proof))


def _claimed_id(envelope: Envelope) -> str | None:
    """The id a refused envelope's header claims, if it parses: the sender can then match the refusal."""
    try:
        return strict_decode(_HEADER_IDS, envelope.header, "envelope header").id
    except HotlineError:
        return None


class _HeaderId(msgspec.Struct, frozen=True):
    id: Hex32


_HEADER_IDS: Final[msgspec.json.Decoder[_HeaderId]] = msgspec.json.Decoder(_HeaderId)


def _leaf_header(leaf: bytes) -> _HeaderSeq:
    """The sender and sequence number of a stored log entry (its leaf input starts with the header)."""
    (n,) = struct.unpack(">I", leaf[:4])
    return msgspec.json.decode(leaf[4 : 4 + n], type=_HeaderSeq)


class _HeaderSeq(msgspec.Struct, frozen=True):
    sender: str
    seq: int
