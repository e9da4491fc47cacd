"""
A station as a state machine: frames from the relay in, frames and events out, no I/O.

The station seals what its duty officers send, opens what the peer sent, checks
order and completeness (sequence numbers, the hash chain and the relay's own
delivery order), acknowledges automatically what arrived (RECEIVED), answers
heartbeats, and witnesses the relay's log: it follows one append-only history
of checkpoints, cosigns them, and compares the checkpoints the peer gossips in
heartbeats with its own, so that a relay which shows the two stations different
histories is caught (DESIGN S4).

The durability contract (DESIGN section 6): drain ``events()`` and store them
durably *before* sending ``data_to_send()``. That orders every promise the
right way round: the outbox is written before a submission, a received message
before its confirmation, the witness state before a cosignature.

Methods that find a fault raise a named ``RemoteProtocolError`` and leave the
state as it was, apart from frames that must still go out (a duplicate is
confirmed again, so that the relay stops sending it).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, TypeAlias

from hotline.protocol import checkpoint as notes
from hotline.protocol import merkle
from hotline.protocol.envelope import (
    DEFAULT_MAX_SKEW,
    ZERO_HASH,
    Envelope,
    Opened,
    Sealed,
    Statement,
    open_envelope,
    seal,
)
from hotline.protocol.exceptions import (
    ChainBroken,
    DecodeError,
    DroppedMessage,
    DuplicateMessage,
    EpochKeyError,
    NoEpochKey,
    ProofError,
    Refused,
    RemoteProtocolError,
    ReorderedMessage,
    ReplayedMessage,
    SplitView,
    UnknownKey,
    UnprovenCheckpoint,
    VerificationError,
    WrongRecipient,
    error_for_code,
)
from hotline.protocol.frames import (
    MAX_KEYS,
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
    StationFrame,
    Submit,
    Welcome,
    decode_relay_frame,
    encode_frame,
)
from hotline.protocol.keys import (
    AUTH_LABEL,
    EpochKey,
    EpochKeyPair,
    IdentityKey,
    PublicKey,
    Signed,
    open_epoch_key,
)
from hotline.protocol.messages import (
    DEFAULT_DEADLINES,
    Ack,
    AckLevel,
    Body,
    FreeText,
    Heartbeat,
    HeartbeatReply,
    Notice,
)
from hotline.protocol.relay import StationEntry, auth_payload

__all__ = [
    "AckReceived",
    "Anomaly",
    "Authenticated",
    "DeliveryRejected",
    "HeadAdvanced",
    "HeartbeatAnswered",
    "Logged",
    "MessageAccepted",
    "MessageReceived",
    "MessageSent",
    "PeerKeys",
    "Station",
    "StationConfig",
    "StationEvent",
    "StationState",
    "SubmissionRefused",
    "WitnessCosigned",
    "deadline",
]

# Statements remembered from the peer, to tell a harmless redelivery from a replay.
RECENT: Final = 1024
# Submissions awaiting the relay's answer on one connection: more wait their turn (flow control).
SUBMIT_WINDOW: Final = 128
# Refusals that say "not now" rather than "never": the message stays in the outbox and goes again.
TRANSIENT: Final = frozenset({"out-of-order"})
# Checkpoint roots remembered by size, to compare gossiped and cosigned checkpoints without a proof.
SEEN: Final = 256
# How far ahead the peer's epoch keys must reach, at least, for the line to be healthy.
KEY_HORIZON: Final = timedelta(hours=1)
# How long the relay has to prove that a checkpoint from elsewhere and ours are one history (``check_proofs``).
PROOF_PATIENCE: Final = timedelta(seconds=30)
# Checkpoints waiting for a proof whose waiting time is kept (across connections).
UNPROVEN_KEPT: Final = 64
# Checkpoint notes whose relay signature was verified (by their exact bytes).
VERIFIED: Final = 64


def deadline(precedence: str, created: datetime, deadlines: Mapping[str, int] = DEFAULT_DEADLINES) -> datetime:
    """When an acknowledgement of a notice of this precedence is due."""
    return created + timedelta(seconds=deadlines[precedence])


@dataclass(frozen=True)
class StationConfig:
    identity: IdentityKey
    name: str
    peer: StationEntry
    relay_key: PublicKey
    origin: str
    deadlines: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_DEADLINES))
    max_skew: timedelta = DEFAULT_MAX_SKEW


@dataclass
class StationState:
    """What a station must remember between runs (the store keeps it)."""

    next_seq: int = 1
    last_hash: str = ZERO_HASH
    peer_seq: int = 0
    peer_hash: str = ZERO_HASH
    peer_index: int = -1
    head: bytes | None = None
    cosigned: bytes | None = None
    logged: bytes | None = None
    recent: dict[int, tuple[str, int]] = field(default_factory=dict)


# --- Events: what the I/O layer stores, then shows ------------------------------------------------


@dataclass(frozen=True)
class Authenticated:
    name: str
    clock_offset: timedelta


@dataclass(frozen=True)
class MessageSent:
    """A sealed message: store it in the outbox before it is submitted."""

    sealed: Sealed


@dataclass(frozen=True)
class MessageAccepted:
    """The relay logged our message: its index, the checkpoint and the inclusion proof (evidence)."""

    message_id: str
    statement_hash: str
    index: int
    checkpoint: bytes
    inclusion: list[bytes]


@dataclass(frozen=True)
class SubmissionRefused:
    message_id: str
    code: str
    message: str


@dataclass(frozen=True)
class MessageReceived:
    """A verified message from the peer: store it before confirming."""

    index: int
    opened: Opened
    envelope: Envelope
    checkpoint: bytes
    inclusion: list[bytes]


@dataclass(frozen=True)
class DeliveryRejected:
    """A delivery that can never be read (forged, tampered, sealed to a key we no longer hold).

    A resilient station keeps it as evidence, confirms it so the queue moves on, and shows nothing.
    """

    index: int
    envelope: Envelope
    code: str
    reason: str


@dataclass(frozen=True)
class Anomaly:
    """A fault detected and recorded, after which a resilient station carries on (a gap in the chain)."""

    error: RemoteProtocolError


@dataclass(frozen=True)
class AckReceived:
    """The peer acknowledged one of our statements."""

    answers: str
    level: AckLevel
    ack: Ack
    statement_hash: str


@dataclass(frozen=True)
class HeartbeatAnswered:
    probe: str
    round_trip: timedelta


@dataclass(frozen=True)
class HeadAdvanced:
    """A newer checkpoint that extends the last one we verified (of size ``previous``, 0 if none).

    With the consistency proof, the chain of heads a station stores shows on its
    own that the relay's log only grew.
    """

    checkpoint: bytes
    size: int
    previous: int
    consistency: list[bytes]


@dataclass(frozen=True)
class WitnessCosigned:
    """We cosigned this checkpoint: store it (our witness state) before the cosignature goes out."""

    checkpoint: bytes
    size: int


@dataclass(frozen=True)
class Logged:
    """A checkpoint signed by the relay and cosigned by both stations: everything below ``size`` is logged."""

    checkpoint: bytes
    size: int


@dataclass(frozen=True)
class PeerKeys:
    """The peer's epoch keys as it signed them, each with what they say once verified."""

    keys: tuple[tuple[Signed, EpochKey], ...]


StationEvent: TypeAlias = (
    Anomaly
    | DeliveryRejected
    | Authenticated
    | MessageSent
    | MessageAccepted
    | SubmissionRefused
    | MessageReceived
    | AckReceived
    | HeartbeatAnswered
    | HeadAdvanced
    | WitnessCosigned
    | Logged
    | PeerKeys
)


@dataclass
class _Comparison:
    """A checkpoint from elsewhere (gossip, or a cosigned one) waiting for a consistency proof with ours."""

    checkpoint: notes.Checkpoint
    note: bytes
    logged: bool
    ours: notes.Checkpoint
    our_note: bytes
    # When ``check_proofs`` first saw it waiting on this connection.
    seen_at: datetime | None = None


class Station:
    """One station's protocol state. Several connections over time; one at a time."""

    def __init__(
        self,
        config: StationConfig,
        state: StationState,
        epoch_keys: Mapping[str, EpochKeyPair],
        random: Callable[[int], bytes],
    ) -> None:
        self.config = config
        self.state = state
        self.epoch_keys = dict(epoch_keys)
        self.peer_keys: dict[str, EpochKey] = {}
        self.random = random
        self.me = config.identity.public
        self.authenticated = False
        # Whether the relay should deliver to this connection (a one-shot sender need not receive).
        self.receive = True
        self.unaccepted: dict[str, Sealed] = {}
        self.in_flight: dict[str, datetime] = {}
        # After a fault is recorded, keep the line moving rather than stop at it (see _deliver).
        self.resilient = False
        # Keep RECEIVED and heartbeat replies for answer_owed() instead of sealing them as each message
        # is taken in: a station catching up on a backlog stores it first and answers right after.
        self.defer_answers = False
        # What the relay said it still holds for us after the last delivery.
        self.backlog = 0
        self.open_notices: dict[str, tuple[Notice, datetime, AckLevel | None]] = {}
        self.heartbeats: dict[str, datetime] = {}
        self.pending_acks: list[Ack | HeartbeatReply] = []
        self.published: list[Signed] = []
        self._head: notes.Checkpoint | None = None
        self._head_note: bytes | None = None
        self._first_delivery = True
        self.connected = False
        self._short_keys_reported = False
        # Newer checkpoints of other processes, to compare with this connection's once it is welcomed.
        self._compare_later: list[bytes] = []
        # How long each checkpoint from elsewhere waited for the relay's proof on earlier connections (time
        # connected only: an outage is not the relay's silence), the last check, and those already reported.
        self._waited: dict[bytes, timedelta] = {}
        self._checked_at: datetime | None = None
        self._reported_unproven: dict[bytes, None] = {}
        self._verified: dict[bytes, notes.Checkpoint] = {}
        self._seen: dict[int, tuple[bytes, bytes]] = {}
        self._comparisons: dict[tuple[int, int], _Comparison] = {}
        self._events: list[StationEvent] = []
        self._out: list[bytes] = []
        self.resume(state)

    def resume(self, state: StationState, owed: list[Ack | HeartbeatReply] | None = None) -> None:
        """Continue from a state read back from the store (another process may have moved it on).

        The newest checkpoint any process of this station verified is in the store.
        Before a connection, this station starts from it. During one, it keeps the
        chain of checkpoints this connection was shown (the relay proves each new
        one from the last it showed here), and checks the newer one like a
        checkpoint from elsewhere: the relay must prove the two are one history.
        """
        note = state.head
        if note is not None and note != self._head_note:
            if not self.connected:
                self._head = self._open_checkpoint(note)
                self._head_note = note
                self._remember(self._head, note)
            elif self.authenticated:
                self._compare(note, logged=False)
            else:
                self._compare_later.append(note)
        state.head = self._head_note
        self.state = state
        if owed is not None:
            self.pending_acks = list(owed)

    # --- the I/O layer's side ---

    def events(self) -> list[StationEvent]:
        events, self._events = self._events, []
        return events

    def data_to_send(self) -> list[bytes]:
        out, self._out = self._out, []
        return out

    def connection_made(self) -> None:
        self.connected = True
        self._short_keys_reported = False
        self.authenticated = False
        self._first_delivery = True

    def connection_lost(self) -> None:
        self.connected = False
        self.authenticated = False
        # What the relay has not proven yet is asked again on the next connection, and the time it waited on
        # this one is kept: cutting the connection when asked does not make a relay's silence unseen.
        for c in self._comparisons.values():
            if c.seen_at is not None and self._checked_at is not None and self._checked_at > c.seen_at:
                self._waited[c.note] = self._waited.get(c.note, timedelta()) + (self._checked_at - c.seen_at)
        self._compare_later = [c.note for c in self._comparisons.values()]
        self.backlog = 0
        self.in_flight.clear()
        self._comparisons.clear()

    def receive_frame(self, data: bytes, now: datetime) -> None:
        frame = decode_relay_frame(data)
        if isinstance(frame, Challenge):
            self._challenge(frame)
        elif not self.authenticated and not isinstance(frame, Welcome | Refusal):
            raise RemoteProtocolError(f"the relay sent {type(frame).__name__} before authentication")
        elif isinstance(frame, Welcome):
            self._welcome(frame, now)
        elif isinstance(frame, Accepted):
            self._accepted(frame, now)
        elif isinstance(frame, Deliver):
            self._deliver(frame, now)
        elif isinstance(frame, CheckpointFrame):
            self._witness(frame.head, now)
        elif isinstance(frame, Cosigned):
            self._cosigned(frame.checkpoint)
        elif isinstance(frame, Keys):
            self._keys(frame, now)
        elif isinstance(frame, Proof):
            self._proof(frame)
        else:
            self._refused(frame)

    # --- commands ---

    def send(self, body: Body, now: datetime) -> Sealed:
        """Seal a message to the peer; it goes out once the ``MessageSent`` event is stored."""
        epoch_key = self._peer_key(now)
        state = self.state
        statement = Statement(
            v=1,
            sender=self.me.key_id,
            recipient=self.config.peer.key.key_id,
            id=self.random(16).hex(),
            seq=state.next_seq,
            prev=state.last_hash,
            peer=state.peer_hash,
            peer_seq=state.peer_seq,
            created=now,
            nonce=self.random(32),
            body=body,
        )
        sealed = seal(self.config.identity, self.config.peer.key, epoch_key, statement)
        state.next_seq += 1
        state.last_hash = sealed.statement_hash
        self.unaccepted[statement.id] = sealed
        if isinstance(body, Notice):
            self.open_notices[sealed.statement_hash] = (body, now, None)
        elif isinstance(body, Heartbeat):
            self.heartbeats[body.probe] = now
        self._events.append(MessageSent(sealed))
        self._submit_waiting(now)
        return sealed

    def _submit_waiting(self, now: datetime) -> None:
        """Submit unaccepted messages, oldest first, while the window has room."""
        if not self.authenticated:
            return
        room = SUBMIT_WINDOW - len(self.in_flight)
        if room <= 0:
            return
        # The outbox is kept in sequence order, and the oldest are the ones in flight.
        for sealed in self.unaccepted.values():
            if room <= 0:
                break
            if sealed.statement.id not in self.in_flight:
                self.in_flight[sealed.statement.id] = now
                self._send(Submit(sealed.envelope))
                room -= 1

    def heartbeat(self, now: datetime) -> Sealed:
        """An end-to-end test that also gossips our latest cosigned checkpoint."""
        return self.send(Heartbeat(probe=self.random(16).hex(), checkpoint=self._gossip()), now)

    def publish(self, keys: list[Signed]) -> None:
        """Publish our signed epoch public keys now, and again at every connection (the relay may be new)."""
        self.published = list(keys)
        if self.authenticated:
            self._send_published()

    def _send_published(self) -> None:
        for start in range(0, len(self.published), MAX_KEYS):
            self._send(Publish(self.published[start : start + MAX_KEYS]))

    def resubmit(self, now: datetime, after: timedelta) -> int:
        """Submit again, with the same ids, what has waited longer than ``after`` for the relay's answer."""
        if not self.authenticated:
            return 0
        stale = [i for i, at in self.in_flight.items() if now - at >= after or i not in self.unaccepted]
        for message_id in stale:
            del self.in_flight[message_id]
        self._submit_waiting(now)
        return len(stale)

    def check_proofs(self, now: datetime, patience: timedelta = PROOF_PATIENCE) -> int:
        """Report, once each, the comparisons the relay has left unproven for longer than ``patience``.

        Called now and then by the I/O layer while connected: a relay that forked the log can
        answer a ``prove`` with nothing, and silence must not pass for agreement. The time a
        comparison waits adds up over connections (measured from the first check that saw it on
        each). Each becomes an ``Anomaly`` (``UnprovenCheckpoint``); returns how many were reported.
        """
        self._checked_at = now
        reported = 0
        for comparison in self._comparisons.values():
            note = comparison.note
            if comparison.seen_at is None:
                comparison.seen_at = now
            waited = self._waited.get(note, timedelta()) + (now - comparison.seen_at)
            if waited <= patience or note in self._reported_unproven:
                continue
            self._reported_unproven[note] = None
            source = "cosigned by both stations" if comparison.logged else "gossiped by the peer"
            error = UnprovenCheckpoint(
                f"the relay has not proven in {waited.total_seconds():.0f}s that the checkpoint of "
                f"{comparison.checkpoint.size} entries {source} and ours of {comparison.ours.size} are one "
                "history: it may be hiding a fork of the log",
                (note, comparison.our_note),
            )
            self._events.append(Anomaly(error))
            reported += 1
        while len(self._waited) > UNPROVEN_KEPT:
            del self._waited[next(iter(self._waited))]
        while len(self._reported_unproven) > UNPROVEN_KEPT:
            del self._reported_unproven[next(iter(self._reported_unproven))]
        return reported

    def overdue(self, now: datetime) -> list[tuple[str, Notice, datetime]]:
        """Our notices past their acknowledgement deadline without READ_UNDERSTOOD, CONFLICT or UNABLE."""
        late = []
        for statement_hash, (notice, created, _) in self.open_notices.items():
            due = deadline(notice.precedence, created, self.config.deadlines)
            if due <= now:
                late.append((statement_hash, notice, due))
        return late

    # --- frames ---

    def _send(self, frame: StationFrame) -> None:
        self._out.append(encode_frame(frame))

    def _challenge(self, frame: Challenge) -> None:
        relay = self.config.relay_key
        if not hmac.compare_digest(frame.relay, relay.key_id):
            raise UnknownKey("the relay's key is not the pinned one: check --relay-key")
        signature = self.config.identity.sign(AUTH_LABEL, auth_payload(relay, frame.nonce, self.me))
        size = self._head.size if self._head is not None else 0
        self._send(Hello(self.me.key_id, signature, size, self.receive))

    def _welcome(self, frame: Welcome, now: datetime) -> None:
        if frame.head is not None:
            self._advance(frame.head)
        self.authenticated = True
        self._events.append(Authenticated(frame.name, frame.time - now))
        later, self._compare_later = self._compare_later, []
        for note in later:
            self._compare(note, logged=False)
        self._send_published()
        self.in_flight.clear()
        self._submit_waiting(now)

    def _accepted(self, frame: Accepted, now: datetime) -> None:
        cp = self._advance(frame.head)
        sealed = self.unaccepted.get(frame.id)
        if sealed is None:
            return
        merkle.verify_inclusion(merkle.leaf_hash(sealed.leaf_input), frame.index, cp.size, frame.inclusion, cp.root)
        del self.unaccepted[frame.id]
        self.in_flight.pop(frame.id, None)
        self._events.append(
            MessageAccepted(frame.id, sealed.statement_hash, frame.index, frame.head.checkpoint, frame.inclusion)
        )
        self._submit_waiting(now)

    def _refused(self, frame: Refusal) -> None:
        if frame.id is not None:
            self.in_flight.pop(frame.id, None)
            if frame.code in TRANSIENT:
                # Flow control, not a fault: it goes again in its turn.
                return
            if frame.id in self.unaccepted:
                del self.unaccepted[frame.id]
                self._events.append(SubmissionRefused(frame.id, frame.code, frame.message))
        error = error_for_code(frame.code)
        raise Refused(f"the relay refused: {frame.message} ({frame.code}, {error.__name__})", frame.code)

    def _deliver(self, frame: Deliver, now: datetime) -> None:
        self.backlog = frame.remaining
        cp = self._advance(frame.head)
        try:
            opened = open_envelope(
                frame.envelope, self.me, self.config.peer.key, self.epoch_keys, now, self.config.max_skew
            )
            merkle.verify_inclusion(merkle.leaf_hash(opened.leaf_input), frame.index, cp.size, frame.inclusion, cp.root)
        except (VerificationError, DecodeError, UnknownKey, WrongRecipient, EpochKeyError) as e:
            # It can never be read: a resilient station keeps it as evidence, confirms it so that the
            # queue moves on, and shows nothing of it. The sender's next statement then shows a gap.
            if self.resilient:
                self.state.peer_index = max(self.state.peer_index, frame.index)
                self._events.append(DeliveryRejected(frame.index, frame.envelope, e.code, str(e)))
                self._send(Confirm(frame.index))
            raise
        self._check_order(opened.statement, opened.statement_hash, frame)
        self._check_gossip(opened.statement.body)
        state = self.state
        state.peer_seq = opened.statement.seq
        state.peer_hash = opened.statement_hash
        state.peer_index = frame.index
        state.recent[opened.statement.seq] = (opened.statement_hash, frame.index)
        state.recent.pop(opened.statement.seq - RECENT, None)
        self._events.append(
            MessageReceived(frame.index, opened, frame.envelope, frame.head.checkpoint, frame.inclusion)
        )
        self._send(Confirm(frame.index))
        self._react(opened, now)

    def _check_order(self, statement: Statement, statement_hash: str, frame: Deliver) -> None:
        state = self.state
        seq = statement.seq
        if seq <= state.peer_seq:
            known = state.recent.get(seq)
            if known is not None and hmac.compare_digest(known[0], statement_hash):
                if known[1] == frame.index:
                    self._send(Confirm(frame.index))
                    raise DuplicateMessage(f"statement {seq} from the peer again (index {frame.index})")
                if self.resilient:
                    # We hold it already: the relay may drop this copy, and what follows it comes after it.
                    self.state.peer_index = max(self.state.peer_index, frame.index)
                    self._send(Confirm(frame.index))
                raise ReplayedMessage(
                    f"statement {seq} from the peer, received at index {known[1]}, presented again at {frame.index}"
                )
            if known is not None:
                raise ChainBroken(f"the peer signed two different statements with sequence number {seq}")
            raise ReplayedMessage(f"an old statement ({seq}) from the peer presented again; we are at {state.peer_seq}")
        first, self._first_delivery = self._first_delivery, False
        if frame.prev != state.peer_index:
            if not (self.resilient and first and frame.prev > state.peer_index):
                raise ReorderedMessage(
                    f"index {frame.index} came before index {frame.prev}, which the relay holds for us "
                    f"(the last we have is {state.peer_index})"
                )
            # The first delivery of a connection comes from the head of our queue: an earlier entry the
            # relay names but does not deliver is one it no longer holds. Recorded; the line goes on.
            self._events.append(
                Anomaly(
                    DroppedMessage(
                        f"the relay names an entry for us at index {frame.prev} that it did not deliver; "
                        f"the last we have is {state.peer_index}"
                    )
                )
            )
            if seq != state.peer_seq + 1:
                return
        if seq != state.peer_seq + 1:
            missing = f"{state.peer_seq + 1}" + (f" to {seq - 1}" if seq - 1 > state.peer_seq + 1 else "")
            gap = DroppedMessage(f"statement {missing} from the peer never arrived; this one is {seq}")
            if not self.resilient:
                raise gap
            # Recorded, and the line goes on: what follows a gap cannot link to what is missing.
            self._events.append(Anomaly(gap))
            return
        if not hmac.compare_digest(statement.prev, state.peer_hash):
            raise ChainBroken(f"statement {seq} does not link to the peer's statement {seq - 1}")

    def _check_gossip(self, body: Body) -> None:
        """Compare the checkpoint a heartbeat gossips with ours, before the heartbeat is taken in.

        A strict station refuses the heartbeat when the gossip is bad or shows a
        fork; a resilient one records the fault and takes it in (it is the peer's
        genuine statement: the fault is in the relay, or in what the peer saw).
        """
        gossip = body.checkpoint if isinstance(body, Heartbeat | HeartbeatReply) else None
        if gossip is None:
            return
        try:
            self._compare(gossip, logged=False)
        except RemoteProtocolError as e:
            if not self.resilient:
                raise
            self._events.append(Anomaly(e))

    def _react(self, opened: Opened, now: datetime) -> None:
        """What a verified, stored message makes the station do by itself."""
        body = opened.statement.body
        if isinstance(body, Notice | FreeText):
            ref = body.ref if isinstance(body, Notice) else None
            self._acknowledge(Ack(answers=opened.statement_hash, level="RECEIVED", ref=ref), now)
        elif isinstance(body, Heartbeat):
            reply = HeartbeatReply(answers=opened.statement_hash, probe=body.probe, checkpoint=self._gossip())
            self._acknowledge(reply, now)
        elif isinstance(body, HeartbeatReply):
            sent = self.heartbeats.pop(body.probe, None)
            if sent is not None:
                self._events.append(HeartbeatAnswered(body.probe, now - sent))
        else:
            self._acked(body, opened.statement_hash)

    def _acknowledge(self, body: Ack | HeartbeatReply, now: datetime) -> None:
        """Answer now, or later if answers are deferred or the peer has no current epoch key."""
        if self.defer_answers:
            self.pending_acks.append(body)
            return
        try:
            self.send(body, now)
        except NoEpochKey:
            self.pending_acks.append(body)

    def answer_owed(self, now: datetime, limit: int = 1024) -> int:
        """Seal up to ``limit`` of the answers owed (RECEIVED, heartbeat replies), oldest first."""
        owed, self.pending_acks = self.pending_acks[:limit], self.pending_acks[limit:]
        sent = 0
        for i, body in enumerate(owed):
            try:
                self.send(body, now)
            except NoEpochKey:
                self.pending_acks[:0] = owed[i:]
                break
            sent += 1
        return sent

    def _acked(self, ack: Ack, statement_hash: str) -> None:
        entry = self.open_notices.get(ack.answers)
        if entry is not None:
            notice, created, _ = entry
            if ack.level == "RECEIVED":
                self.open_notices[ack.answers] = (notice, created, ack.level)
            else:
                del self.open_notices[ack.answers]
        self._events.append(AckReceived(ack.answers, ack.level, ack, statement_hash))

    def _keys(self, frame: Keys, now: datetime) -> None:
        """The peer's epoch keys, signed by its pinned key: add them to those we hold, drop the expired."""
        if frame.station != self.config.peer.key.key_id:
            raise UnknownKey("the relay sent epoch keys of a station that is not our peer")
        opened = [(signed, open_epoch_key(signed, self.config.peer.key)) for signed in frame.keys]
        for _, key in opened:
            self.peer_keys[key.key_id] = key
        for key_id in [k for k, key in self.peer_keys.items() if key.not_after <= now]:
            del self.peer_keys[key_id]
        self._events.append(PeerKeys(tuple(opened)))
        horizon = max((key.not_after for key in self.peer_keys.values()), default=None)
        if horizon is not None and horizon < now + KEY_HORIZON and not self._short_keys_reported:
            # A peer publishes its keys well ahead (two days by default): holding less than this means
            # the relay withholds them, and soon nothing can be sealed to the peer.
            self._short_keys_reported = True
            self._events.append(
                Anomaly(
                    EpochKeyError(
                        f"no epoch key of {self.config.peer.name} beyond {horizon:%Y-%m-%dT%H:%MZ} has reached this "
                        "station; it publishes them well ahead, so the relay withholds them"
                    )
                )
            )
        if not self.defer_answers:
            self.answer_owed(now)

    def _peer_key(self, now: datetime) -> EpochKey:
        valid = [k for k in self.peer_keys.values() if k.valid_at(now)]
        if not valid:
            raise NoEpochKey(
                "the peer station has no epoch key valid now; it publishes them when it connects to the relay"
            )
        return max(valid, key=lambda k: k.not_before)

    # --- the witness ---

    def _open_checkpoint(self, note: bytes) -> notes.Checkpoint:
        """Verify the relay's signature on a checkpoint; the same bytes come on many frames, so remember them."""
        cp = self._verified.get(note)
        if cp is None:
            origin = self.config.origin
            cp, _ = notes.open_checkpoint(note, origin, origin, self.config.relay_key.raw)
            self._verified[note] = cp
            if len(self._verified) > VERIFIED:
                del self._verified[next(iter(self._verified))]
        return cp

    def _advance(self, head: Head) -> notes.Checkpoint:
        """Follow the relay's history: a new checkpoint must extend the last one we verified."""
        cp = self._open_checkpoint(head.checkpoint)
        current = self._head
        if current is not None:
            evidence = (self._head_note or b"", head.checkpoint)
            if cp.size < current.size:
                raise SplitView(
                    f"the relay showed a log of {cp.size} entries after one of {current.size}: it rolled back",
                    evidence,
                )
            if cp.size == current.size:
                if not hmac.compare_digest(cp.root, current.root):
                    raise SplitView(f"two different logs of {cp.size} entries, both signed by the relay", evidence)
                return cp
            try:
                merkle.verify_consistency(current.size, cp.size, current.root, cp.root, head.consistency)
            except ProofError:
                raise SplitView(
                    f"the relay's log of {cp.size} entries does not extend the one of {current.size} we saw",
                    evidence,
                ) from None
        self._head = cp
        self._head_note = self.state.head = head.checkpoint
        self._remember(cp, head.checkpoint)
        previous = current.size if current is not None else 0
        self._events.append(HeadAdvanced(head.checkpoint, cp.size, previous, list(head.consistency)))
        return cp

    def _remember(self, cp: notes.Checkpoint, note: bytes) -> None:
        self._seen[cp.size] = (cp.root, note)
        if len(self._seen) > SEEN:
            # Sizes arrive growing, so the first remembered is (nearly always) the smallest.
            del self._seen[next(iter(self._seen))]

    def _witness(self, head: Head, now: datetime) -> None:
        """Cosign the relay's new checkpoint once it is shown to extend our history."""
        cp = self._advance(head)
        note = notes.parse_note(head.checkpoint)
        # Only the relay's own line is kept: its signature covers the text, not any other line the note
        # may carry on its way, which could otherwise clash with ours.
        origin, relay_key = self.config.origin, self.config.relay_key.raw
        relay_line = notes.key_id(origin, notes.ED25519, relay_key)
        signed = notes.Note(note.text, tuple(s for s in note.signatures if (s.name, s.key_id) == (origin, relay_line)))
        signature = notes.cosign(signed, self.config.name, self.config.identity.signing_key, int(now.timestamp()))
        self.state.cosigned = notes.add_signatures(signed, signature).encode()
        self._events.append(WitnessCosigned(self.state.cosigned, cp.size))
        self._send(Cosign(cp.size, signature.key_id + signature.signature))

    def _gossip(self) -> bytes | None:
        # The newest checkpoint we cosigned, not the newest both cosigned: a relay that forks
        # keeps the stations from cosigning the same checkpoint again, so only our own is fresh.
        return self.state.cosigned

    def _cosigned(self, data: bytes) -> None:
        """A checkpoint with every cosignature: verify them all, then compare it with our history."""
        note = notes.parse_note(data)
        notes.verify_cosignature(note, self.config.name, self.me.raw)
        notes.verify_cosignature(note, self.config.peer.name, self.config.peer.key.raw)
        self._compare(data, logged=True)

    def _compare(self, data: bytes, logged: bool) -> None:
        """Check a checkpoint from elsewhere against ours; ask the relay for a proof when sizes differ."""
        cp = self._open_checkpoint(data)
        if cp.size == 0 or self._head is None:
            return
        known = self._seen.get(cp.size)
        if known is not None:
            root, ours = known
            if not hmac.compare_digest(root, cp.root):
                raise SplitView(
                    f"the peer's checkpoint of {cp.size} entries differs from ours: the relay forked the log",
                    (data, ours),
                )
            self._waited.pop(data, None)
            if logged:
                self._logged(data, cp)
            return
        old, new = sorted((cp.size, self._head.size))
        self._comparisons[(old, new)] = _Comparison(cp, data, logged, self._head, self._head_note or b"")
        self._send(Prove(old, new))

    def _proof(self, frame: Proof) -> None:
        """The relay's answer to a comparison: the two checkpoints asked about must be one history.

        Our head may have moved on since we asked; the one we asked with is part of
        the history this connection verified, so the answer still settles it.
        """
        comparison = self._comparisons.pop((frame.old, frame.new), None)
        if comparison is None:
            return
        cp, ours = comparison.checkpoint, comparison.ours
        old, new = (cp, ours) if cp.size <= ours.size else (ours, cp)
        try:
            merkle.verify_consistency(old.size, new.size, old.root, new.root, frame.consistency)
        except ProofError:
            raise SplitView(
                f"the checkpoints of {old.size} and {new.size} entries are not one history: the relay forked the log",
                (comparison.note, comparison.our_note),
            ) from None
        self._waited.pop(comparison.note, None)
        self._remember(cp, comparison.note)
        if comparison.logged:
            self._logged(comparison.note, cp)

    def _logged(self, data: bytes, cp: notes.Checkpoint) -> None:
        if self.state.logged is not None and self._open_checkpoint(self.state.logged).size >= cp.size:
            return
        self.state.logged = data
        self._events.append(Logged(data, cp.size))
