"""Properties that hold for everything the network or a file can bring (issue 4, item 4).

Every decoder of untrusted bytes returns a valid value (one that encodes back to
the same value, or to the same bytes where the form is canonical) or raises a
``HotlineError``, nothing else, and never hangs. The relay's ``receive_frame``
never raises: it refuses, and a refusal moves none of its state. A station's
``receive_frame`` raises only ``RemoteProtocolError``, in every state, and one that
raises has moved nothing but its head (to a checkpoint the relay signed).

The examples come from ``strategies.py``; ``harness.py`` has the settings
profiles (a seeded sample by default, ``HOTLINE_FUZZ_EXAMPLES=N`` for a long run),
the watchdog, the counters and the snapshots of state.
"""

from __future__ import annotations

import functools
import hashlib
import json
import struct
from datetime import timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hotline.protocol import checkpoint as notes
from hotline.protocol import merkle
from hotline.protocol.envelope import _HPKE as HPKE  # the suite itself, to seal what a hostile peer signs
from hotline.protocol.envelope import SUITE, Envelope, Header, Statement, check_envelope, decode_envelope, open_envelope
from hotline.protocol.exceptions import (
    DecodeError,
    DuplicateMessage,
    HotlineError,
    KeyFileError,
    ProofError,
    RemoteProtocolError,
)
from hotline.protocol.frames import (
    Confirm,
    Deliver,
    Hello,
    Refusal,
    Submit,
    decode_relay_frame,
    decode_station_frame,
    encode_frame,
)
from hotline.protocol.keys import (
    AUTH_LABEL,
    ENVELOPE_LABEL,
    HPKE_INFO_LABEL,
    STATEMENT_LABEL,
    EpochKey,
    KeyFile,
    Signature,
    Signed,
    decode_key_file,
    epoch_key_id,
    key_file_needs_passphrase,
    key_file_summary,
    open_epoch_key,
    parse_public_key,
    public_key_of_file,
    sign,
)
from hotline.protocol.messages import canonical_decode, decode_body, strict_decode
from hotline.protocol.relay import Refused as RelayRefused
from hotline.protocol.relay import auth_payload
from hotline.protocol.station import DeliveryRejected, HeadAdvanced, Station, SubmissionRefused
from hotline.store.verify import check_leaf, parse_leaf

from ..unit import strategies as valid
from ..unit.line import T0
from . import strategies as fz
from .corpus import ORIGIN, SCENARIOS, corpus, fresh_line, fresh_station, next_statement_fields, relay_made, scenario
from .harness import COUNTS, FUZZ, changed, relay_state, station_state, tolerate, watchdog

NOW = T0 + timedelta(minutes=1)
_STATEMENT = msgspec.json.Decoder(Statement)
_HEADER = msgspec.json.Decoder(Header)
_EPOCH_KEY = msgspec.json.Decoder(EpochKey)
_SIGNED = msgspec.json.Decoder(Signed)


def call(what: str, f: Any, *args: Any, allowed: type[BaseException] = HotlineError) -> Any:
    """``f(*args)`` under the watchdog: its value, or None when it raised an ``allowed`` error.

    Anything else fails the property, unless it is a known bug (``harness.known_bug``).
    """
    try:
        with watchdog():
            return f(*args)
    except allowed:
        return None
    except Exception as e:
        if tolerate(e):
            return None
        raise AssertionError(f"{what} raised {type(e).__name__}, not a {allowed.__name__}: {e}") from e


# --- frames ----------------------------------------------------------------------------------------


@FUZZ
@given(fz.station_frames())
def test_station_frames_decode_or_refuse(data: bytes) -> None:
    COUNTS["station frames decoded"] += 1
    frame = call("decode_station_frame", decode_station_frame, data, allowed=DecodeError)
    if frame is not None:
        assert decode_station_frame(encode_frame(frame)) == frame


@FUZZ
@given(fz.relay_frames())
def test_relay_frames_decode_or_refuse(data: bytes) -> None:
    COUNTS["relay frames decoded"] += 1
    frame = call("decode_relay_frame", decode_relay_frame, data, allowed=DecodeError)
    if frame is not None:
        assert decode_relay_frame(encode_frame(frame)) == frame


@FUZZ
@given(
    st.sampled_from(fz.STATION_KINDS + fz.RELAY_KINDS).flatmap(
        lambda kind: st.tuples(st.just(kind), fz.frames_of(kind))
    )
)
def test_each_frame_type_with_one_field_mutated(case: tuple[str, bytes]) -> None:
    """Each of the 15 frame types, valid or with one field changed: a frame of that type, or ``DecodeError``."""
    COUNTS["frames of each type, one field mutated"] += 1
    kind, data = case
    decoder = decode_station_frame if kind in fz.STATION_KINDS else decode_relay_frame
    frame = call(decoder.__name__, decoder, data, allowed=DecodeError)
    if frame is not None:
        assert decoder(encode_frame(frame)) == frame


# --- envelopes, statements, bodies, keys ----------------------------------------------------------------


@FUZZ
@given(fz.envelopes())
def test_envelopes_decode_and_check(data: bytes) -> None:
    """What the relay does with a submission: decode, then header, roster and signature; the leaf agrees."""
    COUNTS["envelopes checked"] += 1
    envelope = call("decode_envelope", decode_envelope, data, allowed=DecodeError)
    if envelope is None:
        return
    assert decode_envelope(msgspec.json.encode(envelope)) == envelope
    keys = corpus().keys
    checked = call("check_envelope", check_envelope, envelope, keys, allowed=RemoteProtocolError)
    if checked is None:
        return
    assert checked.header == _HEADER.decode(envelope.header)
    assert parse_leaf(checked.leaf_input)[0] == envelope.header
    # The relay's check and the log's check agree on every entry the relay accepts.
    assert check_leaf(checked.leaf_input, keys) == checked.header


@FUZZ
@given(fz.envelopes(), st.sampled_from(["a", "b"]))
def test_envelopes_open(data: bytes, me: str) -> None:
    """What a station does with a delivered envelope: every one of the 15 checks, or a named refusal."""
    COUNTS["envelopes opened"] += 1
    envelope = call("decode_envelope", decode_envelope, data, allowed=DecodeError)
    if envelope is None:
        return
    c = corpus()
    peer = "b" if me == "a" else "a"
    pair = c.epoch_pairs[me]
    args = (envelope, c.identities[me].public, c.identities[peer].public, {pair.key_id: pair}, NOW)
    opened = call("open_envelope", open_envelope, *args, allowed=RemoteProtocolError)
    if opened is not None:
        assert hashlib.sha256(opened.statement_bytes).hexdigest() == opened.statement_hash == opened.header.statement
        assert msgspec.json.encode(opened.statement) == opened.statement_bytes


@FUZZ
@given(fz.bodies())
def test_bodies_decode(data: bytes) -> None:
    COUNTS["bodies decoded"] += 1
    body = call("decode_body", decode_body, data, allowed=DecodeError)
    if body is not None:
        assert decode_body(msgspec.json.encode(body)) == body


@pytest.mark.parametrize(
    ("what", "decoder", "strategy"),
    [
        ("statement", _STATEMENT, fz.statements),
        ("envelope header", _HEADER, fz.headers),
        ("epoch key", _EPOCH_KEY, fz.epoch_key_payloads),
    ],
)
@FUZZ
@given(data=st.data())
def test_signed_json_is_canonical_or_refused(what: str, decoder: Any, strategy: Any, data: st.DataObject) -> None:
    """The three signed documents: exactly the bytes our encoder makes, or ``DecodeError``."""
    COUNTS[f"{what}s decoded (canonical)"] += 1
    raw = data.draw(strategy())
    value = call("canonical_decode", canonical_decode, decoder, raw, what, allowed=DecodeError)
    if value is not None:
        assert msgspec.json.encode(value) == raw


@FUZZ
@given(fz.signed_epoch_keys())
def test_epoch_keys_open(case: tuple[bytes, str]) -> None:
    COUNTS["epoch keys opened"] += 1
    data, name = case
    signed = call("decode Signed", strict_decode, _SIGNED, data, "epoch key", allowed=DecodeError)
    if signed is None:
        return
    station = corpus().identities[name].public
    key = call("open_epoch_key", open_epoch_key, signed, station, allowed=RemoteProtocolError)
    if key is not None:
        assert key.station == station.key_id
        assert key.not_before < key.not_after
        assert key.key_id == epoch_key_id(key.public)


def _cheap_kdf(data: bytes) -> bool:
    """Whether a passphrase can be tried on this file quickly (a crafted one may ask for 1 GiB and 16 passes)."""
    try:
        doc = msgspec.json.decode(data, type=KeyFile)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return True
    return doc.kdf is None or (doc.kdf.opslimit <= 2 and doc.kdf.memlimit <= 65536)


@FUZZ
@given(fz.key_files(), st.sampled_from([None, b"", b"correct horse battery staple", b"wrong"]))
def test_key_files(data: bytes, passphrase: bytes | None) -> None:
    """A key file opens to a key that matches its public half, or raises ``KeyFileError``."""
    COUNTS["key files read"] += 1
    for f in (key_file_needs_passphrase, key_file_summary, public_key_of_file):
        call(f.__name__, f, data, allowed=KeyFileError)
    if passphrase is not None and not _cheap_kdf(data):
        passphrase = None
    opened = call("decode_key_file", decode_key_file, data, passphrase, allowed=KeyFileError)
    if opened is not None:
        name, key = opened
        assert 1 <= len(name) <= 64
        assert key.public == public_key_of_file(data)


@FUZZ
@given(fz.public_key_lines(), fz.vkeys())
def test_public_keys_and_verifier_keys(line: str, vkey: str) -> None:
    COUNTS["public key lines and verifier keys parsed"] += 1
    key = call("parse_public_key", parse_public_key, line, allowed=DecodeError)
    if key is not None:
        assert len(key.raw) == 32
        assert line.strip().startswith("ed25519:")
    parsed = call("parse_vkey", notes.parse_vkey, vkey, allowed=DecodeError)
    if parsed is not None:
        name, sig_type, public = parsed
        _, kid, key = vkey.split("+", 2)
        assert notes.vkey(name, public, sig_type) == f"{name}+{kid.lower()}+{key}"  # the key ID in either case


# --- notes, checkpoints, cosignatures ------------------------------------------------------------------


def _check_note(data: bytes) -> None:
    relay = corpus().relay_identity
    assert relay is not None
    note = call("parse_note", notes.parse_note, data, allowed=DecodeError)
    if note is not None:
        assert note.encode() == data  # one spelling for every note
        cp = call("Checkpoint.parse", notes.Checkpoint.parse, note.text, allowed=DecodeError)
        if cp is not None:
            assert cp.body() == note.text
        for name, identity in corpus().identities.items():
            raw = identity.public.raw
            stamp = call(
                "verify_cosignature",
                notes.verify_cosignature,
                note,
                f"station-{name}",
                raw,
                allowed=RemoteProtocolError,
            )
            if stamp is not None:
                assert 0 <= stamp < 2**63
    opened = call(
        "open_checkpoint", notes.open_checkpoint, data, ORIGIN, ORIGIN, relay.public.raw, allowed=RemoteProtocolError
    )
    if opened is not None:
        cp, note = opened
        assert cp.origin == ORIGIN
        assert 0 <= cp.size < 2**63


@FUZZ
@given(fz.notes_())
def test_notes_checkpoints_and_cosignatures(data: bytes) -> None:
    COUNTS["notes parsed and verified"] += 1
    _check_note(data)


@FUZZ
@given(fz.relay_signed_notes())
def test_relay_signed_notes(data: bytes) -> None:
    """Notes a hostile relay signed over crafted texts: past the signature, every check still holds."""
    COUNTS["relay-signed crafted notes"] += 1
    _check_note(data)


# --- Merkle proofs ------------------------------------------------------------------------------------


@FUZZ
@given(
    leaf=st.binary(min_size=32, max_size=32) | fz.any_objects(),
    index=fz.big_sizes(0) | fz.any_objects(),
    size=fz.big_sizes(0) | fz.any_objects(),
    proof=fz.proofs() | fz.any_objects(),
    roots=st.tuples(st.binary(min_size=32, max_size=32) | fz.any_objects(), st.binary(min_size=32, max_size=32)),
)
def test_merkle_crafted_proofs(leaf: Any, index: Any, size: Any, proof: Any, roots: tuple[Any, Any]) -> None:
    """Crafted proofs, sizes up to 2**63 and beyond, values of the wrong type: ``ProofError`` or nothing."""
    COUNTS["crafted Merkle proofs"] += 2
    call("verify_inclusion", merkle.verify_inclusion, leaf, index, size, proof, roots[0], allowed=ProofError)
    call("verify_consistency", merkle.verify_consistency, index, size, *roots, proof, allowed=ProofError)


def _flipped(h: bytes, bit: int) -> bytes:
    return bytes([h[0] ^ (1 << (bit % 8)), *h[1:]])


@FUZZ
@given(fz.inclusion_cases(), st.data())
def test_merkle_inclusion_at_any_size(case: fz.InclusionCase, data: st.DataObject) -> None:
    """A correct proof at up to 2**63 - 1 leaves verifies; one flipped bit or another index does not."""
    COUNTS["Merkle inclusion proofs (reference)"] += 1
    with watchdog():
        merkle.verify_inclusion(case.leaf, case.index, case.size, case.proof, case.root)
    what = data.draw(st.sampled_from(["leaf", "root", "proof", "index"]))
    leaf, index, proof, root = case.leaf, case.index, list(case.proof), case.root
    bit = data.draw(st.integers(0, 7))
    if what == "leaf":
        leaf = _flipped(leaf, bit)
    elif what == "root":
        root = _flipped(root, bit)
    elif what == "proof" and proof:
        i = data.draw(st.integers(0, len(proof) - 1))
        proof[i] = _flipped(proof[i], bit)
    elif case.size == 1:
        index = 1
    else:
        index = data.draw(st.integers(0, case.size - 1).filter(lambda i: i != case.index) | st.just(case.size))
    with pytest.raises(ProofError), watchdog():
        merkle.verify_inclusion(leaf, index, case.size, proof, root)


@FUZZ
@given(fz.consistency_cases(), st.data())
def test_merkle_consistency_at_any_size(case: fz.ConsistencyCase, data: st.DataObject) -> None:
    """A correct consistency proof at up to 2**63 - 1 leaves verifies; one flipped bit anywhere does not."""
    COUNTS["Merkle consistency proofs (reference)"] += 1
    with watchdog():
        merkle.verify_consistency(case.old_size, case.new_size, case.old_root, case.new_root, case.proof)
    proof, old_root, new_root = list(case.proof), case.old_root, case.new_root
    bit = data.draw(st.integers(0, 7))
    what = data.draw(st.sampled_from(["old", "new", "proof", "extra", "drop"]))
    if what == "old":
        old_root = _flipped(old_root, bit)
    elif what == "new":
        new_root = _flipped(new_root, bit)
    elif what == "proof" and proof:
        i = data.draw(st.integers(0, len(proof) - 1))
        proof[i] = _flipped(proof[i], bit)
    elif what == "drop" and proof:
        proof.pop(data.draw(st.integers(0, len(proof) - 1)))
    else:
        proof.append(bytes(32))
    with pytest.raises(ProofError), watchdog():
        merkle.verify_consistency(case.old_size, case.new_size, old_root, new_root, proof)


# --- log entries --------------------------------------------------------------------------------------


@FUZZ
@given(fz.leaves())
def test_log_entries(leaf: bytes) -> None:
    """``hotline log verify`` on a stored entry: split exactly, header canonical, signature by a station."""
    COUNTS["log entries verified"] += 1
    parts = call("parse_leaf", parse_leaf, leaf)
    if parts is None:
        return
    header_bytes, sealed_hash, signature = parts
    assert struct.pack(">I", len(header_bytes)) + header_bytes + sealed_hash + signature == leaf
    header = call("check_leaf", check_leaf, leaf, corpus().keys)
    if header is not None:
        assert msgspec.json.encode(header) == header_bytes


# --- the relay ----------------------------------------------------------------------------------------


def feed_relay(relay: Any, conn: Any, data: bytes, now: Any) -> None:
    """Feed one frame to a relay connection; it must not raise, and a refusal must move nothing."""
    connections = list(dict.fromkeys([*relay.connections, conn]))
    for c in connections:
        c.data_to_send()
    relay.events()
    before = relay_state(relay)
    station = conn.station
    try:
        with watchdog():
            conn.receive_frame(data, now)
    except Exception as e:
        if tolerate(e):
            return
        raise AssertionError(f"the relay's receive_frame raised {type(e).__name__}: {e}") from e
    events = relay.events()
    out = {id(c): [decode_relay_frame(f) for f in c.data_to_send()] for c in connections}
    refused = [e for e in events if isinstance(e, RelayRefused)]
    if not refused:
        return
    COUNTS["relay refusals"] += 1
    assert events == refused[:1], f"a refusal and more: {events}"
    moved = changed(before, relay_state(relay))
    assert not moved, f"the relay refused ({refused[0].code}) but moved {sorted(moved)}"
    assert conn.station == station
    assert conn.closing or station is not None
    [refusal] = [f for f in out[id(conn)] if isinstance(f, Refusal)]
    assert refusal.code == refused[0].code
    assert all(not frames for key, frames in out.items() if key != id(conn))


@functools.cache
def _station_frames_for(name: str) -> Any:
    s = scenario(name)
    extra = [f for frames in s.pending.values() for f in frames]
    return fz.station_frames(extra)


@FUZZ
@given(st.sampled_from(SCENARIOS), st.sampled_from(["newcomer", "a", "b"]), st.data())
def test_relay_never_raises_and_refusals_move_nothing(name: str, who: str, data: st.DataObject) -> None:
    COUNTS["relay receive_frame"] += 1
    s = scenario(name)
    line, newcomer = fresh_line(s)
    conn = line.sides[who].connection if who != "newcomer" else None
    conn = conn or newcomer or line.sides["a"].connection
    assert conn is not None
    if conn.station is None and data.draw(st.booleans()):
        # A hello that answers this very challenge, as sent or with one field changed.
        side = line.sides[data.draw(st.sampled_from(["a", "b"]))]
        signature = side.identity.sign(
            AUTH_LABEL, auth_payload(line.relay_key.public, conn.nonce, side.identity.public)
        )
        good = encode_frame(Hello(side.identity.public.key_id, signature, data.draw(st.sampled_from([0, 3, 2**62]))))
        frame = data.draw(st.just(good) | fz.one_field_mutated(good))
    elif conn.station is not None and data.draw(st.integers(0, 2)) == 0:
        # The authenticated station itself turned hostile: it signs what it sends with its own key.
        who_is = {side.identity.public.key_id: n for n, side in line.sides.items()}[conn.station]
        relay = line.relay
        checkpoints = sorted(relay.checkpoints.items())
        frame = data.draw(fz.station_signed_frames(who_is, relay.last_seq[conn.station], checkpoints))
    else:
        frame = data.draw(_station_frames_for(name))
    feed_relay(line.relay, conn, frame, line.now)


# --- the stations -------------------------------------------------------------------------------------


def feed_station(station: Station, data: bytes, now: Any) -> None:
    """Feed one frame to a station: it returns, or raises a ``RemoteProtocolError`` having moved nothing."""
    station.events()
    station.data_to_send()
    before = station_state(station)
    try:
        decoded = decode_relay_frame(data)
    except DecodeError:
        decoded = None
    error: RemoteProtocolError | None = None
    try:
        with watchdog():
            station.receive_frame(data, now)
    except RemoteProtocolError as e:
        error = e
    except Exception as e:
        if tolerate(e):
            return
        raise AssertionError(f"a station's receive_frame raised {type(e).__name__}: {e}") from e
    if error is None:
        for frame in station.data_to_send():
            decode_station_frame(frame)
        return
    if tolerate(error):
        return
    COUNTS["station refusals"] += 1
    after = station_state(station)
    events = station.events()
    out = [decode_station_frame(f) for f in station.data_to_send()]
    allowed = {"head"}
    if isinstance(decoded, Refusal):
        allowed |= {"unaccepted", "in_flight"}  # the relay refusing a submission of ours
    if station.resilient and isinstance(decoded, Deliver):
        allowed |= {"peer_index"}  # a resilient station records the delivery and moves on (9.4)
    what = f"{type(error).__name__} ({error})"
    moved = changed(before, after)
    assert moved <= allowed, f"{what} raised after moving {sorted(moved - allowed)}"
    kinds = HeadAdvanced | SubmissionRefused | DeliveryRejected
    assert all(isinstance(ev, kinds) for ev in events), f"{what} raised after {events}"
    if "head" in moved:
        [advanced] = [ev for ev in events if isinstance(ev, HeadAdvanced)]
        assert advanced.checkpoint == after["head"]
    for frame in out:
        assert isinstance(frame, Confirm), f"{what} raised after sending {frame}"
        assert isinstance(error, DuplicateMessage) or station.resilient


@functools.cache
def _relay_frames_for(name: str, who: str) -> Any:
    """Any relay frame; the ones queued for this station in this state; what a hostile relay can sign for it."""
    options = [fz.relay_frames(), fz.peer_signed_keys("b" if who == "a" else "a")]
    for pool in (scenario(name).pending.get(who, []), relay_made(name, who)):
        if pool:
            options.append(fz.mutated(pool))
    return st.one_of(*options)


@FUZZ
@given(st.sampled_from(SCENARIOS), st.sampled_from(["a", "b"]), st.data())
def test_station_raises_only_remote_errors_and_moves_nothing(name: str, who: str, data: st.DataObject) -> None:
    COUNTS["station receive_frame"] += 1
    station = fresh_station(scenario(name), who)
    frame = data.draw(_relay_frames_for(name, who))
    feed_station(station, frame, scenario(name).line.now)


@FUZZ
@given(st.sampled_from(SCENARIOS), st.sampled_from(["a", "b"]), fz.relay_signed_heads())
def test_station_against_a_relay_that_signs_anything(name: str, who: str, frame: bytes) -> None:
    """Checkpoints the relay really signed, over crafted sizes, roots, origins and signature lines."""
    COUNTS["station receive_frame, relay-signed heads"] += 1
    station = fresh_station(scenario(name), who)
    feed_station(station, frame, scenario(name).line.now)


# --- a hostile peer -------------------------------------------------------------------------------------

hex32 = st.binary(min_size=16, max_size=16).map(bytes.hex)
some_bodies = st.one_of(valid.bodies, st.deferred(lambda: st.sampled_from(corpus().bodies).map(decode_body)))


def _header_for(statement: bytes, base: dict[str, Any], follow: bool) -> bytes:
    """The header a sender writes for ``statement``: its id and seq when they parse (``follow``), else the base's."""
    fields = dict(base)
    try:
        doc = json.loads(statement)
    except (ValueError, RecursionError):
        doc = None
    if follow and isinstance(doc, dict):
        if isinstance(doc.get("id"), str):
            fields["id"] = doc["id"]
        if type(doc.get("seq")) is int:
            fields["seq"] = doc["seq"]
    fields["statement"] = hashlib.sha256(statement).hexdigest()
    return json.dumps(fields, separators=(",", ":")).encode()


@FUZZ
@given(st.sampled_from(["idle", "mid"]), st.sampled_from(["ab", "ba"]), some_bodies, st.data())
def test_hostile_peer_statements(name: str, direction: str, body: Any, data: st.DataObject) -> None:
    """Statements the peer really signed and sealed, with any content, through the relay to the station."""
    COUNTS["hostile peer statements"] += 1
    line, _ = fresh_line(scenario(name))
    sender, recipient = line.sides[direction[0]], line.sides[direction[1]]
    fields = next_statement_fields(line, direction[0])
    statement = Statement(
        v=1, id=data.draw(hex32), nonce=data.draw(st.binary(min_size=32, max_size=32)), body=body, **fields
    )  # type: ignore[arg-type]
    base = msgspec.json.encode(statement)
    raw = data.draw(st.one_of(st.just(base), fz.one_field_mutated(base), fz.json_mutations(base)))
    epoch_pair = line.epoch[direction[1]]
    header_fields = {
        "v": 1,
        "suite": SUITE,
        "id": statement.id,
        "sender": fields["sender"],
        "recipient": fields["recipient"],
        "seq": fields["seq"],
        "epoch": epoch_pair.key_id,
    }
    header = _header_for(raw, header_fields, follow=data.draw(st.booleans()))
    signed = msgspec.json.encode(sign(sender.identity, STATEMENT_LABEL, raw))
    public = epoch_pair.public(recipient.identity.public)
    sealed = HPKE.encrypt(signed, public.hpke_public_key(), info=HPKE_INFO_LABEL + b"\x00" + header)
    message = hashlib.sha256(header).digest() + hashlib.sha256(sealed).digest()
    signature = Signature("ed25519", sender.identity.public.key_id, sender.identity.sign(ENVELOPE_LABEL, message))
    frame = encode_frame(Submit(Envelope(header, sealed, [signature])))
    assert sender.connection is not None
    assert recipient.connection is not None
    # What the recipient has not received yet (the "mid" state) arrives first, as it would.
    for pending in scenario(name).pending.get(direction[1], []):
        recipient.station.receive_frame(pending, line.now)
    feed_relay(line.relay, sender.connection, frame, line.now)
    line.relay.events()
    line.relay.durable(line.relay.size)
    for delivered in recipient.connection.data_to_send():
        feed_station(recipient.station, delivered, line.now)
