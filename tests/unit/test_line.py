"""Two stations and a relay joined in memory: the whole protocol, and every attack S3 and S4 name."""

from __future__ import annotations

import copy
from datetime import timedelta

import msgspec
import pytest

from hotline.protocol import checkpoint as notes
from hotline.protocol import merkle
from hotline.protocol.envelope import Envelope, Statement, seal
from hotline.protocol.exceptions import (
    BadSignature,
    ChainBroken,
    CheckpointError,
    DroppedMessage,
    DuplicateMessage,
    ExpiredEpochKey,
    NoEpochKey,
    RemoteProtocolError,
    ReorderedMessage,
    ReplayedMessage,
    SplitView,
    UnknownKey,
    UnprovenCheckpoint,
    WrongRecipient,
)
from hotline.protocol.frames import (
    Challenge,
    Deliver,
    Hello,
    Proof,
    Submit,
    decode_relay_frame,
    encode_frame,
)
from hotline.protocol.keys import AUTH_LABEL, EpochKey, EpochKeyPair, IdentityKey
from hotline.protocol.messages import Ack, FreeText, Readback
from hotline.protocol.relay import Appended, Relay, auth_payload
from hotline.protocol.station import (
    PROOF_PATIENCE,
    AckReceived,
    Anomaly,
    DeliveryRejected,
    HeartbeatAnswered,
    Logged,
    MessageAccepted,
    MessageReceived,
    MessageSent,
    Station,
    WitnessCosigned,
)

from .line import ORIGIN, T0, Line, notice


def deliveries(frames: list[bytes]) -> list[Deliver]:
    return [f for f in map(decode_relay_frame, frames) if isinstance(f, Deliver)]


def is_deliver(frame: bytes) -> bool:
    return frame.startswith(b'{"type":"deliver"')


def test_notice_is_accepted_delivered_received_and_read_understood():
    line = Line()
    line.connect()
    a, b = line.sides["a"], line.sides["b"]
    sent = line.a.send(notice(precedence="FLASH"), line.now)
    line.run()

    # The relay logged it and said so with a proof that verifies against its signed checkpoint.
    [accepted] = [e for e in a.of(MessageAccepted) if e.message_id == sent.statement.id]
    cp, _ = notes.open_checkpoint(accepted.checkpoint, ORIGIN, ORIGIN, line.relay_key.public.raw)
    merkle.verify_inclusion(merkle.leaf_hash(sent.leaf_input), accepted.index, cp.size, accepted.inclusion, cp.root)

    # B holds the exact statement A signed, and answered RECEIVED by itself.
    [received] = b.of(MessageReceived)
    assert received.opened.statement_bytes == sent.statement_bytes
    assert received.opened.statement.body == sent.statement.body
    [receipt] = a.of(AckReceived)
    assert receipt.level == "RECEIVED"
    assert receipt.answers == sent.statement_hash
    assert line.a.overdue(line.now + timedelta(minutes=11))  # RECEIVED alone does not close a FLASH notice

    # A duty officer at B reads it and reads back the area and window.
    body = sent.statement.body
    readback = Readback(area=body.area, window=body.window)
    line.b.send(
        Ack(
            answers=sent.statement_hash,
            level="READ_UNDERSTOOD",
            ref=body.ref,
            readback=readback,
            officer="OOW-2",
        ),
        line.now,
    )
    line.run()
    assert [e.level for e in a.of(AckReceived)] == ["RECEIVED", "READ_UNDERSTOOD"]
    assert line.a.overdue(line.now + timedelta(days=2)) == []

    # Every message is in a checkpoint that the relay signed and both stations cosigned.
    for side in (a, b):
        logged = side.of(Logged)[-1]
        assert logged.size == line.relay.size == 3
        note = notes.parse_note(logged.checkpoint)
        notes.verify_cosignature(note, "station-a", a.identity.public.raw)
        notes.verify_cosignature(note, "station-b", b.identity.public.raw)


def test_overdue_notice_escalates_by_precedence():
    line = Line()
    line.connect()
    line.a.send(notice("TUR-2026-000002", precedence="IMMEDIATE"), line.now)
    line.run()
    assert line.a.overdue(line.now + timedelta(minutes=29)) == []
    [(_, late, due)] = line.a.overdue(line.now + timedelta(minutes=30))
    assert late.ref == "TUR-2026-000002"
    assert due == T0 + timedelta(minutes=30)


def test_heartbeat_round_trip_gossips_checkpoints():
    line = Line()
    line.connect()
    line.a.send(notice(), line.now)
    line.run()
    line.tick(0.25)
    line.a.heartbeat(line.now)
    line.run()
    [answered] = line.sides["a"].of(HeartbeatAnswered)
    assert answered.round_trip == timedelta(0)  # the in-memory line moves frames without the clock moving
    assert line.sides["a"].errors == line.sides["b"].errors == []


def test_free_text_is_acknowledged_received():
    line = Line()
    line.connect()
    sent = line.b.send(FreeText(lang="ru", body="Проверка связи."), line.now)
    line.run()
    [receipt] = line.sides["b"].of(AckReceived)
    assert receipt.answers == sent.statement_hash
    assert receipt.ack.ref is None


def test_recipient_offline_gets_everything_in_order_when_it_connects():
    line = Line()
    line.connect()
    line.disconnect("b")
    sent = [line.a.send(notice(f"TUR-2026-{i:06d}"), line.now) for i in range(1, 21)]
    line.run()
    assert len(line.sides["a"].of(MessageAccepted)) == 20
    line.connect("b")
    got = [e.opened.statement.id for e in line.sides["b"].of(MessageReceived)]
    assert got == [s.statement.id for s in sent]
    assert len(line.sides["a"].of(AckReceived)) == 20


def test_submission_is_resent_with_the_same_id_after_a_lost_connection():
    line = Line()
    line.connect()
    line.disconnect("a")
    sent = line.a.send(notice(), line.now)  # stored in the outbox, not yet submitted
    line.run()
    assert line.relay.size == 0
    line.connect("a")
    accepted = line.sides["a"].of(MessageAccepted)
    assert [e.message_id for e in accepted] == [sent.statement.id]
    # A resubmission of the very same envelope is answered with the same index, and logged once.
    conn = line.sides["a"].connection
    conn.receive_frame(encode_frame(Submit(sent.envelope)), line.now)
    line.run()
    assert line.relay.size == 2  # the notice and B's RECEIVED, nothing twice
    assert len([e for e in line.relay_events if isinstance(e, Appended)]) == 2


# --- S3: order and completeness ------------------------------------------------------------------


def test_duplicate_delivery_is_refused_and_confirmed_again():
    line = Line()
    line.connect()
    b = line.sides["b"]
    b.inbound = lambda frame: [frame, frame] if is_deliver(frame) else [frame]
    line.raise_errors = False
    line.a.send(notice(), line.now)
    line.run()
    assert [type(e) for e in b.errors] == [DuplicateMessage]
    assert len(b.of(MessageReceived)) == 1


def test_replay_of_an_old_message_at_a_new_index_is_detected():
    line = Line()
    line.connect()
    sent = line.a.send(notice(), line.now)
    line.run()
    # The relay forgets the id and logs A's old envelope again, as a replaying relay would.
    del line.relay.ids[sent.statement.id]
    line.relay.last_seq[line.a.me.key_id] = 0
    line.sides["a"].connection.receive_frame(encode_frame(Submit(sent.envelope)), line.now)
    line.raise_errors = False
    line.run()
    assert [type(e) for e in line.sides["b"].errors] == [ReplayedMessage]
    assert len(line.sides["b"].of(MessageReceived)) == 1


def test_reordered_delivery_is_detected():
    line = Line()
    line.connect()
    line.disconnect("b")
    line.a.send(notice("TUR-2026-000001"), line.now)
    line.a.send(notice("TUR-2026-000002"), line.now)
    line.run()
    held: list[bytes] = []

    def swap(frame: bytes) -> list[bytes]:
        if is_deliver(frame) and not held:
            held.append(frame)
            return []
        return [frame, *held] if is_deliver(frame) else [frame]

    line.sides["b"].inbound = swap
    line.raise_errors = False
    line.connect("b")
    assert isinstance(line.sides["b"].errors[0], ReorderedMessage)
    # Nothing was taken in out of order: the first notice was then accepted in its turn.
    assert [e.opened.statement.seq for e in line.sides["b"].of(MessageReceived)][:1] == [1]


def test_dropped_message_is_detected_even_when_the_relay_hides_it():
    line = Line()
    line.connect()
    line.disconnect("b")
    first = line.a.send(notice("TUR-2026-000001"), line.now)
    line.a.send(notice("TUR-2026-000002"), line.now)
    line.run()
    # The relay drops the first notice and rewrites the queue so that the second looks like the next.
    queue = line.relay.queues[line.b.me.key_id]
    dropped = line.relay.ids[first.statement.id]
    second = queue[dropped + 1]
    second.prev = queue.pop(dropped).prev
    line.raise_errors = False
    line.connect("b")
    assert isinstance(line.sides["b"].errors[0], DroppedMessage)
    assert "statement 1 from the peer never arrived" in str(line.sides["b"].errors[0])
    assert line.sides["b"].of(MessageReceived) == []


def test_a_second_statement_with_the_same_sequence_number_breaks_the_chain():
    line = Line(seed=3)
    line.connect()
    first = line.a.send(notice("TUR-2026-000001"), line.now)
    line.run()
    # A (or someone with its key) signs another statement 1: the relay delivers it at a new index.
    forged = Statement(
        **{
            **msgspec.structs.asdict(first.statement),
            "id": "ab" * 16,
            "body": FreeText(lang="en", body="other"),
        }
    )
    peer_key = next(iter(line.a.peer_keys.values()))
    sealed = seal(line.sides["a"].identity, line.b.me, peer_key, forged)
    line.relay.last_seq[line.a.me.key_id] = 0  # the relay takes it, as one that lies would
    line.sides["a"].connection.receive_frame(encode_frame(Submit(sealed.envelope)), line.now)
    line.raise_errors = False
    line.run()
    assert [type(e) for e in line.sides["b"].errors] == [ChainBroken]


# --- who may speak ---------------------------------------------------------------------------------


def _tamper(frame: bytes, change) -> bytes:
    deliver = decode_relay_frame(frame)
    assert isinstance(deliver, Deliver)
    return encode_frame(msgspec.structs.replace(deliver, envelope=change(deliver.envelope)))


def test_forged_envelope_signature_is_refused_by_the_station():
    line = Line()
    line.connect()

    def forge(envelope: Envelope) -> Envelope:
        sig = envelope.signatures[0]
        bad = bytes([sig.sig[0] ^ 1]) + sig.sig[1:]
        return msgspec.structs.replace(envelope, signatures=[msgspec.structs.replace(sig, sig=bad)])

    line.sides["b"].inbound = lambda f: [_tamper(f, forge)] if is_deliver(f) else [f]
    line.raise_errors = False
    line.a.send(notice(), line.now)
    line.run()
    assert isinstance(line.sides["b"].errors[0], BadSignature)
    assert line.sides["b"].of(MessageReceived) == []


def test_forged_submission_is_refused_by_the_relay_and_leaves_no_trace():
    line = Line()
    line.connect()
    sent = line.a.send(notice(), line.now)
    sig = sent.envelope.signatures[0]
    forged = msgspec.structs.replace(sent.envelope, signatures=[msgspec.structs.replace(sig, sig=bytes(64))])
    line.a.unaccepted.clear()
    line.a.data_to_send()
    line.sides["a"].connection.receive_frame(encode_frame(Submit(forged)), line.now)
    line.raise_errors = False
    line.run()
    assert line.relay.size == 0
    assert [e.code for e in line.relay_events if type(e).__name__ == "Refused"] == ["bad-signature"]


def test_envelope_from_a_stranger_is_refused():
    line = Line()
    line.connect()
    stranger = IdentityKey(b"s" * 32)

    def from_stranger(envelope: Envelope) -> Envelope:
        header = envelope.header.replace(line.a.me.key_id.encode(), stranger.public.key_id.encode())
        return msgspec.structs.replace(envelope, header=header)

    line.sides["b"].inbound = lambda f: [_tamper(f, from_stranger)] if is_deliver(f) else [f]
    line.raise_errors = False
    line.a.send(notice(), line.now)
    line.run()
    assert isinstance(line.sides["b"].errors[0], UnknownKey)


def test_stranger_cannot_authenticate_to_the_relay():
    line = Line()
    stranger = IdentityKey(b"s" * 32)
    conn = line.relay.connect(line.now)
    challenge = decode_relay_frame(conn.data_to_send()[0])
    signature = stranger.sign(AUTH_LABEL, auth_payload(line.relay_key.public, challenge.nonce, stranger.public))
    conn.receive_frame(encode_frame(Hello(stranger.public.key_id, signature)), line.now)
    [refusal] = map(decode_relay_frame, conn.data_to_send())
    assert refusal.code == "unknown-key"
    assert conn.closing


def test_envelope_addressed_to_another_station_is_refused():
    line = Line()
    line.connect()
    own = line.b.send(FreeText(lang="en", body="to A"), line.now)

    def redirect(envelope: Envelope) -> Envelope:
        return own.envelope  # the relay hands B its own envelope for A

    line.sides["b"].inbound = lambda f: [_tamper(f, redirect)] if is_deliver(f) else [f]
    line.raise_errors = False
    line.a.send(notice(), line.now)
    line.run()
    assert isinstance(line.sides["b"].errors[0], WrongRecipient)


def test_expired_epoch_key_is_refused():
    line = Line()
    line.connect()
    # A's copy of B's epoch key claims a longer window than B signed (a stale or doctored key).
    real = next(iter(line.a.peer_keys.values()))
    stale = EpochKey(
        v=1,
        station=real.station,
        kem=real.kem,
        public=real.public,
        not_before=real.not_before,
        not_after=real.not_after + timedelta(days=1),
    )
    line.tick(3 * 3600)
    with pytest.raises(NoEpochKey):
        line.a.send(notice(), line.now)  # the genuine key has expired: A refuses to use it
    line.a.peer_keys = {stale.key_id: stale}
    line.raise_errors = False
    line.a.send(notice(), line.now)
    line.run()
    assert isinstance(line.sides["b"].errors[0], ExpiredEpochKey)


# --- S4: one history for both ----------------------------------------------------------------------


def _inject(relay: Relay, identity: IdentityKey, envelope: Envelope, now) -> None:
    """Submit an envelope to a relay as the station it comes from (the lying relay's own doing)."""
    conn = relay.connect(now)
    challenge = decode_relay_frame(conn.data_to_send()[0])
    sig = identity.sign(AUTH_LABEL, auth_payload(relay.key.public, challenge.nonce, identity.public))
    conn.receive_frame(encode_frame(Hello(identity.public.key_id, sig, receive=False)), now)
    conn.receive_frame(encode_frame(Submit(envelope)), now)
    relay.events()
    relay.durable(relay.size)
    relay.disconnect(conn)


def test_relay_showing_the_stations_different_logs_is_caught_by_a_heartbeat():
    line = Line()
    line.connect()
    line.a.send(notice(), line.now)
    line.run()
    size = line.relay.size
    assert size == 2
    # The relay forks: a second face with the same key and the same history so far, shown to B only.
    leaves = [(e.leaf_input, e.message_id, e.recipient) for e in line.relay_events if isinstance(e, Appended)]
    fork = Relay(line.relay_key, ORIGIN, list(line.relay.stations.values()), line.relay.random)
    fork.restore(leaves, [], {k: line.relay.published(k) for k in line.relay.stations}, None)
    assert fork.tree.root() == line.relay.tree.root(size)
    line.disconnect("b")
    line.connect("b", relay=fork)
    # A's next notice goes into the real log; B sends something only the fork logs.
    line.b.send(FreeText(lang="en", body="only in the fork"), line.now)
    line.run()
    second = line.a.send(notice("TUR-2026-000009"), line.now)
    line.run()
    # The fork forwards what A sends to B, as it must to hide the split.
    _inject(fork, line.sides["a"].identity, second.envelope, line.now)
    line.run()
    assert line.sides["b"].errors == []
    assert fork.tree.root(3) != line.relay.tree.root(3)
    beat = line.a.heartbeat(line.now)
    line.run()
    _inject(fork, line.sides["a"].identity, beat.envelope, line.now)
    line.raise_errors = False
    line.run()
    [error] = line.sides["b"].errors
    assert isinstance(error, SplitView)
    first, second = error.evidence
    cp1, _ = notes.open_checkpoint(first, ORIGIN, ORIGIN, line.relay_key.public.raw)
    cp2, _ = notes.open_checkpoint(second, ORIGIN, ORIGIN, line.relay_key.public.raw)
    assert cp1.size == cp2.size  # two relay-signed checkpoints of one size and two roots: portable proof
    assert cp1.root != cp2.root


def test_relay_rolling_back_is_caught_by_the_witness():
    line = Line()
    line.connect()
    line.a.send(notice(), line.now)
    line.run()
    leaves = [(e.leaf_input, e.message_id, e.recipient) for e in line.relay_events if isinstance(e, Appended)]
    shorter = Relay(line.relay_key, ORIGIN, list(line.relay.stations.values()), line.relay.random)
    shorter.restore(leaves[:1], [], {k: line.relay.published(k) for k in line.relay.stations}, None)
    line.disconnect("a")
    line.raise_errors = False
    line.connect("a", relay=shorter)
    assert isinstance(line.sides["a"].errors[0], SplitView)
    assert "rolled back" in str(line.sides["a"].errors[0])


def test_witness_cosigns_only_what_extends_its_history():
    line = Line()
    line.connect()
    line.a.send(notice(), line.now)
    line.run()
    cosigned = line.sides["b"].of(WitnessCosigned)
    assert [c.size for c in cosigned] == sorted(c.size for c in cosigned)
    assert cosigned[-1].size == line.relay.size


def test_outbox_events_carry_the_state_to_store():
    line = Line()
    line.connect()
    sent = line.a.send(notice(), line.now)
    [event] = [e for e in line.a.events() if isinstance(e, MessageSent)]
    assert event.sealed is sent
    assert line.a.state.next_seq == 2
    assert line.a.state.last_hash == sent.statement_hash


def test_gossip_of_another_size_is_checked_with_a_consistency_proof():
    line = Line()
    line.connect()
    line.a.send(notice("TUR-2026-000001"), line.now)
    line.run()
    beat = line.a.heartbeat(line.now)  # gossips A's checkpoint of the log as it is now
    gossiped = beat.statement.body.checkpoint
    line.run()
    line.b.send(FreeText(lang="en", body="more"), line.now)
    line.a.send(notice("TUR-2026-000002"), line.now)
    line.run()
    # B forgets the roots it saw (as after a restart) and is shown the older checkpoint again.
    line.b._seen.clear()
    line.b._compare(gossiped, logged=False)
    assert line.b._comparisons
    line.run()
    assert line.b._comparisons == {}
    assert line.sides["b"].errors == []


def _asked_and_withheld() -> tuple[Line, bytes, list[bytes]]:
    """B is shown a checkpoint A gossiped, older than what B holds and forgotten by it (as after a restart), and
    asks the relay for a proof; the relay's proofs to B are dropped on the way (a relay that does not answer
    ``prove``). The line, the gossiped checkpoint, and the proofs withheld."""
    line = Line()
    line.connect()
    line.a.send(notice("TUR-2026-000001"), line.now)
    line.run()
    gossiped = line.a.heartbeat(line.now).statement.body.checkpoint
    line.run()
    line.b.send(FreeText(lang="en", body="more"), line.now)
    line.a.send(notice("TUR-2026-000002"), line.now)
    line.run()
    line.b._seen.clear()
    withheld: list[bytes] = []

    def inbound(frame: bytes) -> list[bytes]:
        if isinstance(decode_relay_frame(frame), Proof):
            withheld.append(frame)
            return []
        return [frame]

    line.sides["b"].inbound = inbound
    line.b._compare(gossiped, logged=False)
    line.run()
    return line, gossiped, withheld


def test_a_proof_the_relay_withholds_is_reported_once_after_the_patience_and_carries_both_checkpoints():
    line, gossiped, withheld = _asked_and_withheld()
    assert withheld, "B asked for a proof, and the relay's answer was dropped"
    [(old, new)] = line.b._comparisons
    assert line.b.check_proofs(line.now) == 0  # the waiting starts
    line.tick(PROOF_PATIENCE.total_seconds())
    assert line.b.check_proofs(line.now) == 0  # not over the patience yet
    line.tick(1)
    assert line.b.check_proofs(line.now) == 1
    [anomaly] = [e for e in line.b.events() if isinstance(e, Anomaly)]
    assert isinstance(anomaly.error, UnprovenCheckpoint)
    assert anomaly.error.code == "unproven"
    assert f"has not proven in 31s that the checkpoint of {old} entries gossiped by the peer and ours of {new} " in (
        str(anomaly.error)
    )
    assert anomaly.error.evidence[0] == gossiped
    assert notes.Checkpoint.parse(notes.parse_note(anomaly.error.evidence[1]).text).size == new
    line.tick(60)
    assert line.b.check_proofs(line.now) == 0  # once


def test_the_time_a_proof_has_been_waited_for_adds_up_over_connections_and_not_over_outages():
    line, _, _ = _asked_and_withheld()
    line.b.check_proofs(line.now)
    line.tick(20)
    line.b.check_proofs(line.now)
    line.disconnect("b")
    line.tick(600)  # an outage is not the relay's silence
    line.connect("b")  # asked again on the new connection, still withheld
    assert line.b._comparisons
    line.b.check_proofs(line.now)
    line.tick(10)
    assert line.b.check_proofs(line.now) == 0  # 20 s + 10 s
    line.tick(1)
    assert line.b.check_proofs(line.now) == 1


def test_a_proof_that_comes_clears_the_wait():
    line, _, withheld = _asked_and_withheld()
    line.b.check_proofs(line.now)
    line.sides["b"].inbound = lambda frame: [frame]
    line._feed(line.sides["b"], withheld[0])  # late, but it comes
    assert line.b._comparisons == {}
    line.tick(120)
    assert line.b.check_proofs(line.now) == 0
    assert line.sides["b"].errors == []


def test_gossip_that_no_proof_can_join_is_a_split_view():
    line = Line()
    line.connect()
    line.a.send(notice(), line.now)
    line.run()
    leaves = [(e.leaf_input, e.message_id, e.recipient) for e in line.relay_events if isinstance(e, Appended)]
    fork = Relay(line.relay_key, ORIGIN, list(line.relay.stations.values()), line.relay.random)
    fork.restore(leaves[:1], [], {k: line.relay.published(k) for k in line.relay.stations}, None)
    # B's next two messages reach only the fork.
    hidden = [line.b.send(FreeText(lang="en", body=text), line.now) for text in ("one", "two")]
    line.b.unaccepted.clear()
    line.b.data_to_send()
    fork.last_seq[line.b.me.key_id] = 1  # B's RECEIVED of the notice, which the fork dropped
    for sealed in hidden:
        _inject(fork, line.sides["b"].identity, sealed.envelope, line.now)
    forked_note = fork.checkpoints[fork.durable_size]
    assert fork.durable_size == 3
    assert line.relay.size == 2
    line.raise_errors = False
    line.a._compare(forked_note, logged=False)
    line.run()
    [error] = line.sides["a"].errors
    assert isinstance(error, SplitView)


def test_cosigned_checkpoint_is_verified_before_it_counts():
    line = Line()
    line.connect()
    line.a.send(notice(), line.now)
    line.run()
    logged = line.sides["a"].of(Logged)[-1]
    note = notes.parse_note(logged.checkpoint)
    # Drop B's cosignature: the checkpoint no longer counts as logged.
    mine = tuple(s for s in note.signatures if s.name != "station-b")

    with pytest.raises(CheckpointError):
        line.a._cosigned(notes.Note(note.text, mine).encode())


def test_frames_before_authentication_are_refused_by_the_station():

    line = Line()
    with pytest.raises(RemoteProtocolError, match="before authentication"):
        line.a.receive_frame(encode_frame(Proof(old=1, new=2, consistency=[])), line.now)


def test_station_refuses_a_relay_with_another_key():

    line = Line()
    impostor = IdentityKey(b"r" * 32)
    with pytest.raises(UnknownKey):
        line.a.receive_frame(encode_frame(Challenge(impostor.public.key_id, bytes(32), line.now)), line.now)


def test_acks_wait_for_the_peers_epoch_key():
    line = Line()
    line.connect()
    line.tick(2 * 3600 + 1)  # both stations' epoch keys have expired
    with pytest.raises(NoEpochKey):
        line.a.send(notice(), line.now)
    # B gets a message sealed before expiry (queued at the relay), answers once A publishes a new key.
    assert line.b.pending_acks == []


def test_restored_station_resumes_from_its_stored_state():

    line = Line()
    line.connect()
    line.a.send(notice(), line.now)
    line.run()
    state = copy.deepcopy(line.b.state)
    # A new process of station B starts from what the store kept.
    pair = line.epoch["b"]
    restarted = Station(line.b.config, state, {pair.key_id: pair}, line.b.random)
    assert restarted.state.peer_seq == 1
    assert restarted._head is not None


# --- a resilient station: a fault is recorded and the line goes on -----------------------------------------


def test_resilient_station_keeps_an_unreadable_delivery_as_evidence_and_moves_on():
    line = Line()
    line.b.resilient = True
    line.connect()

    def forge_first(frame: bytes, seen=[]) -> list[bytes]:  # noqa: B006 - state across calls
        if is_deliver(frame) and not seen:
            seen.append(frame)
            return [_tamper(frame, lambda e: msgspec.structs.replace(e, sealed=e.sealed[:-1] + b"\x00"))]
        return [frame]

    line.sides["b"].inbound = forge_first
    line.raise_errors = False
    line.a.send(notice("TUR-2026-000001"), line.now)
    line.a.send(notice("TUR-2026-000002"), line.now)
    line.run()
    b = line.sides["b"]
    [rejected] = b.of(DeliveryRejected)
    assert rejected.code == "bad-signature"
    # The first is never shown; the second is taken in after the gap, which is recorded.
    assert [e.opened.statement.body.ref for e in b.of(MessageReceived)] == ["TUR-2026-000002"]
    [anomaly] = b.of(Anomaly)
    assert isinstance(anomaly.error, DroppedMessage)
    assert line.relay.queues[line.b.me.key_id] == {}  # both confirmed: the queue moved on


def test_deferred_answers_go_out_when_asked():
    line = Line()
    line.b.defer_answers = True
    line.connect()
    sent = line.a.send(notice(), line.now)
    beat = line.a.heartbeat(line.now)
    line.run()
    assert line.sides["a"].of(AckReceived) == []
    assert len(line.b.pending_acks) == 2
    assert line.b.answer_owed(line.now, limit=1) == 1
    line.run()
    assert [e.answers for e in line.sides["a"].of(AckReceived)] == [sent.statement_hash]
    assert line.b.answer_owed(line.now) == 1
    line.run()
    assert [e.probe for e in line.sides["a"].of(HeartbeatAnswered)] == [beat.statement.body.probe]


def test_answers_wait_for_an_epoch_key_and_go_out_when_one_arrives():
    line = Line()
    line.connect()
    line.b.peer_keys.clear()  # B holds no epoch key of A's (it has not heard from A yet)
    line.a.send(notice(), line.now)
    line.run()
    assert len(line.sides["b"].of(MessageReceived)) == 1
    assert len(line.b.pending_acks) == 1
    assert line.sides["a"].of(AckReceived) == []
    # A publishes a new epoch key; the relay hands it to B, which answers at once.
    fresh = EpochKeyPair(bytes(range(96)), T0 - timedelta(minutes=5), T0 + timedelta(hours=1))
    line.a.epoch_keys[fresh.key_id] = fresh
    line.a.publish([fresh.signed_public(line.sides["a"].identity)])
    line.run()
    assert line.b.pending_acks == []
    assert len(line.sides["a"].of(AckReceived)) == 1


def test_resubmit_sends_again_what_waited_too_long_for_an_answer():
    line = Line()
    line.connect()
    sent = line.a.send(notice(), line.now)
    line.a.data_to_send()  # lost on the way
    assert line.a.resubmit(line.now, timedelta(seconds=10)) == 0
    line.tick(11)
    assert line.a.resubmit(line.now, timedelta(seconds=10)) == 1
    line.run()
    assert [e.message_id for e in line.sides["a"].of(MessageAccepted)] == [sent.statement.id]


def test_deliveries_say_how_many_remain():
    line = Line()
    line.connect()
    line.disconnect("b")
    for i in range(1, 4):
        line.a.send(notice(f"TUR-2026-{i:06d}"), line.now)
    line.run()
    seen: list[int] = []

    def count(frame: bytes) -> list[bytes]:
        if is_deliver(frame):
            seen.append(decode_relay_frame(frame).remaining)
        return [frame]

    line.sides["b"].inbound = count
    line.connect("b")
    assert seen[:3] == [2, 1, 0]
    assert line.b.backlog == 0


def test_witnesses_asked_on_demand_cosign_the_newest_checkpoint():
    line = Line()
    line.relay.witness_every_commit = False
    line.connect()
    line.a.send(notice(), line.now)
    line.run()
    assert line.sides["a"].of(WitnessCosigned) == []
    line.relay.ask_witnesses()
    line.run()
    assert [e.size for e in line.sides["a"].of(WitnessCosigned)] == [line.relay.durable_size]
    assert line.sides["a"].of(Logged)[-1].size == line.relay.durable_size


def test_resilient_station_confirms_a_replayed_copy_and_takes_what_follows_it():
    line = Line()
    line.b.resilient = True
    line.connect()
    sent = line.a.send(notice("TUR-2026-000001"), line.now)
    line.run()
    del line.relay.ids[sent.statement.id]
    line.relay.last_seq[line.a.me.key_id] = 0
    line.sides["a"].connection.receive_frame(encode_frame(Submit(sent.envelope)), line.now)
    line.raise_errors = False
    line.run()
    line.a.send(notice("TUR-2026-000002"), line.now)
    line.run()
    b = line.sides["b"]
    # The replay is refused and recorded once; the next notice follows the replayed copy, with no other fault.
    assert [type(e) for e in b.errors] == [ReplayedMessage]
    assert [e.opened.statement.body.ref for e in b.of(MessageReceived)] == ["TUR-2026-000001", "TUR-2026-000002"]
    assert line.relay.queues[line.b.me.key_id] == {}
