"""The relay state machine alone: authentication, refusals with their codes, delivery window, witnesses."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest

from hotline.protocol import checkpoint as notes
from hotline.protocol.envelope import seal
from hotline.protocol.exceptions import InvalidMessage, LocalProtocolError
from hotline.protocol.frames import (
    Accepted,
    Confirm,
    Cosign,
    Deliver,
    Hello,
    Keys,
    Prove,
    Publish,
    Refusal,
    Submit,
    decode_relay_frame,
    encode_frame,
)
from hotline.protocol.keys import AUTH_LABEL, EpochKeyPair, IdentityKey, epoch_windows, erasable
from hotline.protocol.messages import FreeText
from hotline.protocol.relay import (
    KEPT_CHECKPOINTS,
    MAX_PUBLISHED,
    Appended,
    Dequeued,
    Refused,
    Relay,
    StationEntry,
    auth_payload,
)
from hotline.protocol.station import MessageAccepted, MessageReceived

from .line import ORIGIN, T0, Line, notice


def frames(conn) -> list:
    return [decode_relay_frame(f) for f in conn.data_to_send()]


def authenticated(line: Line, name: str, receive: bool = True):
    identity = line.sides[name].identity
    conn = line.relay.connect(line.now)
    [challenge] = frames(conn)
    sig = identity.sign(AUTH_LABEL, auth_payload(line.relay_key.public, challenge.nonce, identity.public))
    conn.receive_frame(encode_frame(Hello(identity.public.key_id, sig, receive=receive)), line.now)
    return conn


def refusals(line: Line) -> list[str]:
    return [e.code for e in line.relay.events() if isinstance(e, Refused)]


def test_roster_is_two_distinct_stations():
    key = IdentityKey(b"k" * 32)
    one = StationEntry("a", IdentityKey(b"a" * 32).public)
    with pytest.raises(LocalProtocolError):
        Relay(key, ORIGIN, [one], bytes)
    with pytest.raises(LocalProtocolError):
        Relay(key, ORIGIN, [one, one], bytes)


def test_nothing_but_hello_before_authentication():
    line = Line()
    conn = line.relay.connect(line.now)
    frames(conn)
    conn.receive_frame(encode_frame(Confirm(index=0)), line.now)
    [refusal] = frames(conn)
    assert isinstance(refusal, Refusal)
    assert refusal.code == "auth-failed"
    assert conn.closing
    assert refusals(line) == ["auth-failed"]


def test_wrong_challenge_signature_is_refused():
    line = Line()
    conn = line.relay.connect(line.now)
    frames(conn)
    identity = line.sides["a"].identity
    sig = identity.sign(AUTH_LABEL, auth_payload(line.relay_key.public, bytes(32), identity.public))
    conn.receive_frame(encode_frame(Hello(identity.public.key_id, sig)), line.now)
    [refusal] = frames(conn)
    assert refusal.code == "bad-signature"
    assert conn.closing


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"[]",
        b'{"type":"submit"}',
        b'{"type":"nope"}',
        b'{"type":"confirm","index":-1}',
        b"\xff" * 10,
    ],
)
def test_malformed_frames_are_refused_without_a_crash(data):
    line = Line()
    conn = authenticated(line, "a")
    frames(conn)
    conn.receive_frame(data, line.now)
    [refusal] = frames(conn)
    assert refusal.code == "malformed"
    assert not conn.closing  # an authenticated station is told, not cut off


def test_second_hello_is_refused():
    line = Line()
    conn = authenticated(line, "a")
    frames(conn)
    conn.receive_frame(encode_frame(Hello(line.a.me.key_id, bytes(64))), line.now)
    [refusal] = frames(conn)
    assert refusal.code == "state"


def test_envelope_submitted_by_the_other_station_is_refused():
    line = Line()
    line.connect()
    sent = line.a.send(notice(), line.now)
    line.a.data_to_send()
    line.a.unaccepted.clear()
    conn = authenticated(line, "b")
    frames(conn)
    conn.receive_frame(encode_frame(Submit(sent.envelope)), line.now)
    assert [f.code for f in frames(conn)] == ["wrong-sender"]
    assert line.relay.size == 0


def test_another_envelope_under_a_logged_id_is_a_replay():
    line = Line()
    line.connect()
    sent = line.a.send(notice(), line.now)
    line.run()
    # A validly signed envelope that reuses a logged id with other content.
    statement = msgspec.structs.replace(sent.statement, body=FreeText(lang="en", body="other"))
    peer_key = next(iter(line.a.peer_keys.values()))
    other = seal(line.sides["a"].identity, line.b.me, peer_key, statement)
    conn = line.sides["a"].connection
    frames(conn)
    conn.receive_frame(encode_frame(Submit(other.envelope)), line.now)
    assert [f.code for f in frames(conn)] == ["replay"]
    assert line.relay.size == 2  # the notice and its RECEIVED; nothing of the replay
    assert refusals(line) == ["replay"]


def test_resubmission_before_the_store_commits_is_answered_once_committed():
    line = Line()
    line.connect()
    sent = line.a.send(notice(), line.now)
    conn = line.sides["a"].connection
    for frame in line.a.data_to_send():
        conn.receive_frame(frame, line.now)
    conn.receive_frame(encode_frame(Submit(sent.envelope)), line.now)  # again, still uncommitted
    assert [type(f) for f in frames(conn)] == []
    assert [type(e) for e in line.relay.events()].count(Appended) == 1
    line.relay.durable(line.relay.size)
    accepted = [f for f in frames(conn) if isinstance(f, Accepted)]
    assert [f.index for f in accepted] == [0, 0]


def test_connection_says_whether_a_delivery_waits_so_the_server_can_send_it_first():
    line = Line()
    line.connect()
    sent = line.a.send(notice(), line.now)
    a, b = line.sides["a"].connection, line.sides["b"].connection
    for frame in line.a.data_to_send():
        a.receive_frame(frame, line.now)
    line.relay.durable(line.relay.size)
    assert b.delivering
    assert not a.delivering
    to_a = [type(f) for f in frames(a)]
    assert Accepted in to_a
    assert Deliver not in to_a
    assert [f.envelope for f in frames(b) if isinstance(f, Deliver)] == [sent.envelope]
    assert not b.delivering
    assert not b.pending_output


def test_durable_must_move_forward_within_what_was_staged():
    line = Line()
    with pytest.raises(LocalProtocolError):
        line.relay.durable(1)


def test_delivery_window_holds_back_until_confirmed():
    line = Line()
    line.relay.window = 3
    line.connect()
    line.disconnect("b")
    for i in range(5):
        line.a.send(FreeText(lang="en", body=f"message {i}"), line.now)
    line.run()
    conn = authenticated(line, "b")
    delivered = [f for f in frames(conn) if isinstance(f, Deliver)]
    assert [d.index for d in delivered] == [0, 1, 2]
    conn.receive_frame(encode_frame(Confirm(index=0)), line.now)
    assert [d.index for d in frames(conn) if isinstance(d, Deliver)] == [3]
    assert [e for e in line.relay.events() if isinstance(e, Dequeued)] == [Dequeued(line.b.me.key_id, 0)]
    conn.receive_frame(encode_frame(Confirm(index=0)), line.now)  # confirming twice is harmless
    assert frames(conn) == []


def test_cosignature_must_verify_and_name_a_recent_checkpoint():
    line = Line()
    line.connect()
    line.a.send(notice(), line.now)
    line.run()
    conn = line.sides["a"].connection
    conn.receive_frame(encode_frame(Cosign(size=99, signature=bytes(76))), line.now)
    conn.receive_frame(encode_frame(Cosign(size=line.relay.durable_size, signature=bytes(76))), line.now)
    assert [f.code for f in frames(conn)] == ["malformed", "bad-checkpoint"]
    note = notes.parse_note(line.relay.checkpoints[line.relay.durable_size])
    forged = notes.cosign(note, "station-a", IdentityKey(b"x" * 32).signing_key, 1)
    conn.receive_frame(encode_frame(Cosign(line.relay.durable_size, forged.key_id + forged.signature)), line.now)
    assert [f.code for f in frames(conn)] == ["bad-checkpoint"]


def test_epoch_keys_must_be_signed_by_their_station():
    line = Line()
    conn = authenticated(line, "a")
    frames(conn)
    pair = EpochKeyPair(bytes(96), T0, T0.replace(hour=13))
    signed_by_b = pair.signed_public(line.sides["b"].identity)
    conn.receive_frame(encode_frame(Publish([signed_by_b])), line.now)
    assert [f.code for f in frames(conn)] == ["unknown-key"]
    assert line.relay.epoch_keys[line.a.me.key_id] == {}


def test_prove_refuses_nonsense_and_answers_past_the_log_with_an_empty_proof():
    line = Line()
    line.connect()
    line.a.send(notice(), line.now)
    line.run()
    conn = line.sides["a"].connection
    conn.receive_frame(encode_frame(Prove(old=0, new=1)), line.now)
    conn.receive_frame(encode_frame(Prove(old=2, new=1)), line.now)
    conn.receive_frame(encode_frame(Prove(old=1, new=50)), line.now)
    conn.receive_frame(encode_frame(Prove(old=1, new=2)), line.now)
    out = frames(conn)
    assert [getattr(f, "code", None) for f in out[:2]] == ["malformed", "malformed"]
    assert out[2].consistency == []
    assert len(out[3].consistency) == 1


def test_restore_rebuilds_the_log_and_queues():
    line = Line()
    line.connect()
    line.disconnect("b")
    line.a.send(notice(), line.now)
    line.run()
    appended = [e for e in line.relay_events if isinstance(e, Appended)]
    restarted = Relay(line.relay_key, ORIGIN, list(line.relay.stations.values()), line.relay.random)
    restarted.restore(
        [(e.leaf_input, e.message_id, e.recipient) for e in appended],
        [(e.recipient, e.index, e.prev, e.envelope) for e in appended],
        {k: line.relay.published(k) for k in line.relay.stations},
        None,
    )
    assert restarted.tree.root() == line.relay.tree.root()
    assert restarted.checkpoints.keys() == {line.relay.durable_size}
    line.connect("b", relay=restarted)
    assert len(line.sides["b"].errors) == 0
    assert line.sides["b"].of(type(line.sides["b"].stored[0]))  # B authenticated with the restarted relay


def _pairs(count: int, start=T0):
    return [
        EpochKeyPair(bytes([i]) * 96, start + timedelta(hours=i), start + timedelta(hours=i + 1)) for i in range(count)
    ]


def test_epoch_keys_accumulate_in_chunks_and_expire():
    line = Line()
    b = authenticated(line, "b")
    frames(b)
    a = authenticated(line, "a")
    frames(a)
    identity = line.sides["a"].identity
    signed = [p.signed_public(identity) for p in _pairs(12)]
    a.receive_frame(encode_frame(Publish(signed[:8])), line.now)
    a.receive_frame(encode_frame(Publish(signed[8:])), line.now)
    a.receive_frame(encode_frame(Publish(signed[:2])), line.now)  # again: nothing new to forward
    assert len(line.relay.published(line.a.me.key_id)) == 12
    forwarded = [f for f in frames(b) if isinstance(f, Keys)]
    assert [len(f.keys) for f in forwarded] == [8, 4]
    # Two hours later the first two have expired and are forgotten at the next publication.
    later = line.now + timedelta(hours=2)
    a.receive_frame(encode_frame(Publish(signed[11:])), later)
    assert len(line.relay.published(line.a.me.key_id)) == 10
    # A station connecting now gets them all, eight to a frame.
    c = authenticated(line, "b")
    assert [len(f.keys) for f in frames(c) if isinstance(f, Keys)] == [8, 2]


def test_epoch_keys_kept_per_station_are_capped():
    line = Line()
    a = authenticated(line, "a")
    frames(a)
    identity = line.sides["a"].identity
    signed = [p.signed_public(identity) for p in _pairs(MAX_PUBLISHED + 4)]
    for start in range(0, len(signed), 8):
        a.receive_frame(encode_frame(Publish(signed[start : start + 8])), line.now)
    kept = line.relay.published(line.a.me.key_id)
    assert len(kept) == MAX_PUBLISHED
    assert kept[0] == signed[0]  # the soonest are kept


def test_epoch_windows_are_aligned_and_expired_keys_are_erasable():
    windows = epoch_windows(T0 + timedelta(minutes=30), timedelta(hours=1), 3)
    assert windows[0] == (T0, T0 + timedelta(hours=1))
    assert windows[-1][1] == T0 + timedelta(hours=3)
    with pytest.raises(InvalidMessage):
        epoch_windows(T0, timedelta(0))
    pairs = _pairs(3)
    assert erasable(pairs, T0 + timedelta(hours=1, days=7)) == [pairs[0].key_id]
    assert erasable(pairs, T0 + timedelta(days=6)) == []


def test_each_senders_statements_are_logged_in_their_own_order():
    line = Line()
    line.connect()
    first = line.a.send(notice("TUR-2026-000001"), line.now)
    second = line.a.send(notice("TUR-2026-000002"), line.now)
    line.a.data_to_send()  # neither reaches the relay as sent
    conn = line.sides["a"].connection
    conn.receive_frame(encode_frame(Submit(second.envelope)), line.now)
    assert [f.code for f in frames(conn)] == ["out-of-order"]
    assert line.relay.size == 0
    conn.receive_frame(encode_frame(Submit(first.envelope)), line.now)
    conn.receive_frame(encode_frame(Submit(second.envelope)), line.now)
    line.relay.durable(line.relay.size)
    assert [f.index for f in frames(conn) if isinstance(f, Accepted)] == [0, 1]


def test_a_station_resubmits_in_order_after_a_refusal_for_now():
    line = Line()
    line.connect()
    sent = [line.a.send(notice(f"TUR-2026-{i:06d}"), line.now) for i in range(1, 4)]
    frames_out = line.a.data_to_send()
    conn = line.sides["a"].connection
    # The submissions reach the relay in reverse: the later two are refused for now.
    for frame in reversed(frames_out):
        conn.receive_frame(frame, line.now)
    line.raise_errors = False
    line.run()
    # The station kept them and submitted them again after the first: the log follows its order.
    accepted = [e.message_id for e in line.sides["a"].of(MessageAccepted)]
    assert accepted == [s.statement.id for s in sent]
    assert line.sides["a"].errors == []  # flow control, not a fault
    assert [e.opened.statement.seq for e in line.sides["b"].of(MessageReceived)] == [1, 2, 3]


def test_both_stations_are_asked_for_the_same_checkpoint_so_it_can_count_as_logged():
    line = Line()
    line.relay.witness_every_commit = False
    line.connect()
    for i in range(1, 4):
        line.a.send(notice(f"TUR-2026-{i:06d}"), line.now)
    line.run()
    line.relay.ask_witnesses(line.now)
    size = line.relay.witness_size
    # B answers, A does not yet: nobody is asked again, whatever is logged meanwhile.
    a_conn = line.sides["a"].connection
    line.sides["a"].connection = None
    line.run()
    line.b.send(FreeText(lang="en", body="more"), line.now)
    line.run()
    line.relay.ask_witnesses(line.now)
    assert line.relay.witness_size == size
    line.sides["a"].connection = a_conn
    line.run()
    cosigned = {e.size for e in line.relay_events if type(e).__name__ == "Cosignature" and e.cosigned}
    assert size in cosigned


def test_a_silent_witness_is_passed_over_after_a_while():
    line = Line()
    line.relay.witness_every_commit = False
    line.connect()
    line.a.send(notice(), line.now)
    line.run()
    line.sides["a"].connection.witness_pending = True  # as if A never answered
    line.relay.witness_asked_at = line.now
    line.b.send(FreeText(lang="en", body="more"), line.now)
    line.run()
    before = line.relay.witness_size
    line.relay.ask_witnesses(line.now)
    assert line.relay.witness_size == before
    line.relay.ask_witnesses(line.now + timedelta(seconds=11))
    assert line.relay.witness_size == line.relay.durable_size > before


def test_a_witness_passed_over_as_slow_may_still_answer_late_and_is_not_piled_with_questions():
    line = Line()
    line.relay.witness_every_commit = False
    line.connect()
    line.a.send(notice(), line.now)
    line.run()
    line.relay.ask_witnesses(line.now)
    asked = line.relay.witness_size
    # A's link stalls (its frames wait in the connection) while B goes on and the relay signs many checkpoints.
    a_conn = line.sides["a"].connection
    line.sides["a"].connection = None
    line.run()
    later = line.now + timedelta(seconds=11)
    for i in range(KEPT_CHECKPOINTS + 5):
        line.b.send(FreeText(lang="en", body=f"more {i}"), later)
        line.run()
        line.relay.ask_witnesses(later)
    assert (a_conn.witness_owed, a_conn.witness_size) == (True, asked)  # passed over, not asked again
    assert asked in line.relay.checkpoints  # kept for its late answer
    # The link comes back: A's late cosignature is taken, then A is asked for the newest and the pair cosign it.
    line.sides["a"].connection = a_conn
    line.run()
    assert line.sides["a"].errors == []
    assert not a_conn.witness_owed
    line.relay.ask_witnesses(later + timedelta(seconds=11))
    line.run()
    cosigned = {e.size for e in line.relay_events if type(e).__name__ == "Cosignature" and e.cosigned}
    assert line.relay.durable_size in cosigned
