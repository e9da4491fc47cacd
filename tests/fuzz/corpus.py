"""Real protocol values to mutate, and the line in the states the state machines are fuzzed in.

Everything is made once per process by hotline's own code, from fixed seeds and a
fixed clock: a relay and two stations (``tests/unit/line.py``) exchange a notice,
a read-back acknowledgement, free text and heartbeats both ways; every frame that
crosses is recorded, and the line is kept, untouched, in each state a fuzzed frame
is fed in (``SCENARIOS``). ``fresh()`` hands out a deep copy, so every example starts
from the same state and fails (or passes) the same way when Hypothesis replays it.

HPKE encryption draws its own randomness, so ciphertexts (and the envelope
signatures, leaves, roots and checkpoints computed from them) differ from one
process to the next; everything else is reproducible.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field

import msgspec

from hotline.protocol import checkpoint as notes
from hotline.protocol import merkle
from hotline.protocol.envelope import Envelope, Header
from hotline.protocol.frames import (
    Deliver,
    Head,
    Hello,
    Prove,
    Refusal,
    Submit,
    decode_relay_frame,
    decode_station_frame,
    encode_frame,
)
from hotline.protocol.keys import EpochKeyPair, IdentityKey, PublicKey, encode_key_file
from hotline.protocol.messages import Ack, FreeText, Readback
from hotline.protocol.relay import Appended, Connection, StationEntry
from hotline.protocol.station import MessageSent, Station

from ..unit.line import ORIGIN, Line, notice

__all__ = ["ORIGIN", "SCENARIOS", "Corpus", "Scenario", "corpus", "fresh_line", "scenario"]

SEED = 20261126
PASSPHRASE = b"correct horse battery staple"


@dataclass
class Scenario:
    """A line in one state, kept pristine; ``fresh_line`` copies it for each example."""

    name: str
    line: Line
    # Frames the relay has queued for each station and the station has not received yet.
    pending: dict[str, list[bytes]] = field(default_factory=dict)
    # The unauthenticated relay connection of this state, if any (a station that just connected).
    newcomer: Connection | None = None
    # Every entry of the relay's log (committed or staged), as the relay's events told the store.
    appended: list[Appended] = field(default_factory=list)


@dataclass
class Corpus:
    """Valid values of every kind that the network or a file brings, by kind."""

    station_frames: dict[str, list[bytes]] = field(default_factory=dict)
    relay_frames: dict[str, list[bytes]] = field(default_factory=dict)
    envelopes: list[bytes] = field(default_factory=list)
    headers: list[bytes] = field(default_factory=list)
    statements: list[bytes] = field(default_factory=list)
    signed_statements: list[bytes] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    epoch_key_payloads: list[bytes] = field(default_factory=list)
    epoch_keys: list[bytes] = field(default_factory=list)
    checkpoints: list[bytes] = field(default_factory=list)
    cosigned: list[bytes] = field(default_factory=list)
    key_files: list[bytes] = field(default_factory=list)
    public_keys: list[str] = field(default_factory=list)
    vkeys: list[str] = field(default_factory=list)
    leaves: list[bytes] = field(default_factory=list)
    identities: dict[str, IdentityKey] = field(default_factory=dict)
    epoch_pairs: dict[str, EpochKeyPair] = field(default_factory=dict)
    relay_identity: IdentityKey | None = None

    def add_station_frame(self, data: bytes) -> None:
        kind = type(decode_station_frame(data)).__name__
        frames = self.station_frames.setdefault(kind, [])
        if data not in frames:
            frames.append(data)

    def add_relay_frame(self, data: bytes) -> None:
        kind = type(decode_relay_frame(data)).__name__
        frames = self.relay_frames.setdefault(kind, [])
        if data not in frames:
            frames.append(data)

    @property
    def keys(self) -> dict[str, PublicKey]:
        """The two stations' pinned keys, by fingerprint, as the relay and ``log verify`` hold them."""
        return {k.public.key_id: k.public for k in self.identities.values()}


def _pristine(line: Line) -> Line:
    """Drop what the tests never look at (the records of what was stored), so that copies are cheap."""
    line.relay_events = []
    for side in line.sides.values():
        side.stored = []
    return line


def _shared(line: Line) -> dict[int, object]:
    """The deepcopy memo of what is immutable and costly (or impossible) to copy: keys and configurations."""
    memo: dict[int, object] = {}
    keep: list[object] = [line.relay_key, line.relay.key]
    keep += list(line.relay.stations.values())
    keep += list(line.epoch.values())
    for side in line.sides.values():
        keep += [side.identity, side.station.config, *side.station.epoch_keys.values()]
    for obj in keep:
        memo[id(obj)] = obj
    return memo


def fresh_line(s: Scenario) -> tuple[Line, Connection | None]:
    """A deep copy of the scenario's line (and of its newcomer connection): the examples never share state."""
    memo = _shared(s.line)
    line, newcomer = copy.deepcopy((s.line, s.newcomer), memo)
    return line, newcomer


def fresh_station(s: Scenario, name: str) -> Station:
    """A deep copy of one station of the scenario, cheaper than the whole line."""
    return copy.deepcopy(s.line.sides[name].station, _shared(s.line))


def _record(line: Line, c: Corpus) -> None:
    """Record every frame that crosses the line, both ways."""
    for side in line.sides.values():

        def inbound(frame: bytes) -> list[bytes]:
            c.add_relay_frame(frame)
            return [frame]

        side.inbound = inbound
        station = side.station
        original = station.data_to_send

        def data_to_send(original=original) -> list[bytes]:  # type: ignore[no-untyped-def]
            out = original()
            for frame in out:
                c.add_station_frame(frame)
            return out

        station.data_to_send = data_to_send  # type: ignore[method-assign]


def _unrecord(line: Line) -> None:
    for side in line.sides.values():
        side.inbound = lambda frame: [frame]
        del side.station.data_to_send


def _exchange(line: Line) -> None:
    """A notice, its read-back, free text and heartbeats both ways: every frame type and body kind crosses."""
    line.connect()
    line.tick(1)
    sent = line.a.send(notice(), line.now)
    line.run()
    line.tick(1)
    body = sent.statement.body
    readback = Readback(area=body.area, window=body.window)  # type: ignore[union-attr]
    ack = Ack(answers=sent.statement_hash, level="READ_UNDERSTOOD", ref=body.ref, readback=readback, officer="OOW-2")  # type: ignore[union-attr]
    line.b.send(ack, line.now)
    line.run()
    line.tick(1)
    line.a.heartbeat(line.now)
    line.run()
    line.tick(1)
    line.b.send(FreeText(lang="tr", body="Hat kontrolü."), line.now)
    line.run()
    line.tick(1)
    line.b.heartbeat(line.now)
    line.run()
    line.tick(1)


def _asides(line: Line, c: Corpus) -> None:
    """The frames the exchange does not make: a proof asked for, and the relay's refusals."""
    a = line.sides["a"]
    assert a.connection is not None
    size = line.relay.durable_size
    for frame in (Prove(old=1, new=size), Prove(old=2, new=size + 5), Hello(a.identity.public.key_id, bytes(64))):
        data = encode_frame(frame)
        c.add_station_frame(data)
        a.connection.receive_frame(data, line.now)
    for data in a.connection.data_to_send():
        c.add_relay_frame(data)
    line.relay_events.extend(line.relay.events())
    first = decode_station_frame(c.station_frames["Submit"][0])
    assert isinstance(first, Submit)
    header = msgspec.json.decode(first.envelope.header, type=Header)
    for code in ("out-of-order", "replay", "bad-signature", "rate-limited"):
        c.add_relay_frame(encode_frame(Refusal(code, f"refused: {code}", header.id)))


def _mid_exchange(line: Line, c: Corpus) -> dict[str, list[bytes]]:
    """A's notice logged but not yet seen by anyone, and a second submission staged, not yet committed."""
    a, b = line.sides["a"], line.sides["b"]
    assert a.connection is not None
    assert b.connection is not None
    line.a.send(notice("TUR-2026-000002", precedence="IMMEDIATE"), line.now)
    for frame in line.a.data_to_send():
        c.add_station_frame(frame)
        a.connection.receive_frame(frame, line.now)
    a.stored.extend(line.a.events())
    line.relay_events.extend(line.relay.events())
    line.relay.durable(line.relay.size)
    pending = {name: side.connection.data_to_send() for name, side in line.sides.items() if side.connection}
    for frames in pending.values():
        for frame in frames:
            c.add_relay_frame(frame)
    line.tick(1)
    line.a.send(FreeText(lang="en", body="Second, not yet committed."), line.now)
    for frame in line.a.data_to_send():
        c.add_station_frame(frame)
        a.connection.receive_frame(frame, line.now)
    a.stored.extend(line.a.events())
    line.relay_events.extend(line.relay.events())
    assert line.relay.size == line.relay.durable_size + 1
    return pending


def _values(line: Line, c: Corpus) -> None:
    """Everything that is not a frame: envelopes, statements, bodies, keys, notes, leaves, key files."""
    for side in line.sides.values():
        c.identities[side.name] = side.identity
        c.epoch_pairs[side.name] = line.epoch[side.name]
        for event in side.stored:
            if isinstance(event, MessageSent):
                sealed = event.sealed
                c.statements.append(sealed.statement_bytes)
                c.signed_statements.append(sealed.signed_statement)
                c.headers.append(sealed.envelope.header)
                c.envelopes.append(msgspec.json.encode(sealed.envelope))
                c.bodies.append(msgspec.json.encode(sealed.statement.body))
                c.leaves.append(sealed.leaf_input)
        signed = line.epoch[side.name].signed_public(side.identity)
        c.epoch_key_payloads.append(signed.payload)
        c.epoch_keys.append(msgspec.json.encode(signed))
        c.public_keys.append(side.identity.public.text())
        for sig_type in (notes.ED25519, notes.COSIGNATURE_V1):
            c.vkeys.append(notes.vkey(f"station-{side.name}", side.identity.public.raw, sig_type))
        c.key_files.append(encode_key_file(side.identity, f"station-{side.name}", None))
        c.key_files.append(
            encode_key_file(
                side.identity,
                f"station-{side.name}",
                PASSPHRASE,
                salt=bytes(range(16)),
                nonce=bytes(range(24)),
                opslimit=1,
                memlimit=8192,
            )
        )
    c.relay_identity = line.relay_key
    c.vkeys.append(notes.vkey(ORIGIN, line.relay_key.public.raw))
    for frame in c.relay_frames.get("Submit", []) + c.station_frames.get("Submit", []):
        envelope: Envelope = msgspec.json.decode(frame, type=Submit).envelope
        encoded = msgspec.json.encode(envelope)
        if encoded not in c.envelopes:
            c.envelopes.append(encoded)
    heads = set()
    for kind in ("Welcome", "Accepted", "Deliver", "CheckpointFrame"):
        for frame in c.relay_frames.get(kind, []):
            head = getattr(decode_relay_frame(frame), "head", None)
            if head is not None:
                heads.add(head.checkpoint)
    c.checkpoints.extend(sorted(heads))
    for frame in c.relay_frames.get("Cosigned", []):
        c.cosigned.append(decode_relay_frame(frame).checkpoint)  # type: ignore[union-attr]
    c.leaves = list(dict.fromkeys(c.leaves))


@functools.cache
def _build() -> tuple[Corpus, dict[str, Scenario]]:
    c = Corpus()
    scenarios: dict[str, Scenario] = {}

    # Never connected: stations that have seen nothing, a relay with an empty log and one connection.
    blank = Line(seed=SEED)
    for side in blank.sides.values():
        side.station.connection_made()
    scenarios["blank"] = Scenario("blank", blank, newcomer=blank.relay.connect(blank.now))
    blank.relay.events()
    assert scenarios["blank"].newcomer is not None
    c.add_relay_frame(scenarios["blank"].newcomer.data_to_send()[0])

    line = Line(seed=SEED)
    _record(line, c)
    _exchange(line)
    _unrecord(line)
    _asides(line, c)
    line.relay_events.extend(line.relay.events())

    appended = [e for e in line.relay_events if isinstance(e, Appended)]

    # Authenticated, everything answered and cosigned.
    scenarios["idle"] = Scenario("idle", _pristine(copy.deepcopy(line, _shared(line))), appended=appended)

    # The same history, both stations reconnecting: not authenticated yet, a new relay connection.
    again = copy.deepcopy(line, _shared(line))
    for side in again.sides.values():
        side.station.connection_lost()
        side.station.connection_made()
    newcomer = again.relay.connect(again.now)
    c.add_relay_frame(newcomer.data_to_send()[0])
    scenarios["reconnecting"] = Scenario("reconnecting", _pristine(again), newcomer=newcomer, appended=appended)

    # In the middle of an exchange: deliveries, acceptances and a witness request not yet received.
    pending = _mid_exchange(line, c)
    appended = [e for e in line.relay_events if isinstance(e, Appended)]
    scenarios["mid"] = Scenario("mid", line, pending=pending, appended=appended)

    # The same, with stations that record faults and move on (section 9.4) rather than stop.
    resilient = copy.deepcopy(line, _shared(line))
    for side in resilient.sides.values():
        side.station.resilient = True
    scenarios["mid-resilient"] = Scenario("mid-resilient", resilient, pending=pending, appended=appended)

    _values(line, c)
    _pristine(line)
    _pristine(resilient)
    return c, scenarios


def corpus() -> Corpus:
    return _build()[0]


def scenario(name: str) -> Scenario:
    return _build()[1][name]


SCENARIOS = ("blank", "idle", "reconnecting", "mid", "mid-resilient")


def station_entry(c: Corpus, name: str) -> StationEntry:
    return StationEntry(f"station-{name}", c.identities[name].public)


def next_statement_fields(line: Line, sender: str) -> dict[str, object]:
    """The fields of the statement ``sender`` would sign next on this line (seq, chain, peer), as JSON values."""
    side = line.sides[sender]
    other = "b" if sender == "a" else "a"
    state = side.station.state
    return {
        "sender": side.identity.public.key_id,
        "recipient": line.sides[other].identity.public.key_id,
        "seq": state.next_seq,
        "prev": state.last_hash,
        "peer": state.peer_hash,
        "peer_seq": state.peer_seq,
        "created": line.now,
    }


@functools.cache
def relay_made(name: str, who: str) -> list[bytes]:
    """Deliveries to station ``who`` that a hostile relay can make with its own key, in scenario ``name``.

    Every entry logged for the station again, at the relay's current checkpoint
    (with a good inclusion proof and consistency proof from the station's head),
    with its true ``prev`` and with lies (-1, one more, the index before, the
    station's own last index: hiding an entry); and the station's last entry
    logged a second time at a new index, under a checkpoint the relay signs.
    """
    s = scenario(name)
    line, _ = fresh_line(s)
    relay = line.relay
    relay.durable(relay.size)  # commit what is staged: the relay decides what it shows
    size = relay.durable_size
    station = line.sides[who].station
    key_id = line.sides[who].identity.public.key_id
    seen = notes.Checkpoint.parse(notes.parse_note(station.state.head).text).size if station.state.head else 0

    def head(tree: merkle.Tree, note: bytes) -> Head:
        proof = tree.consistency_proof(seen, tree.size) if 0 < seen < tree.size else []
        return Head(note, proof)

    frames: list[bytes] = []
    mine = [e for e in s.appended if e.recipient == key_id and e.index < size]
    current = head(relay.tree, relay.checkpoints[size]) if size else None
    for e in mine if current else []:
        assert current is not None
        proof = relay.tree.inclusion_proof(e.index, size)
        lies = {e.prev, -1, e.prev + 1, e.index - 1, station.state.peer_index}
        for prev in sorted(p for p in lies if p >= -1):
            frames.append(encode_frame(Deliver(e.index, prev, e.envelope, current, proof, 0)))
    if mine:
        again = mine[-1]
        tree = merkle.Tree.from_leaf_hashes(
            [*(relay.tree.leaf_hash(i) for i in range(size)), merkle.leaf_hash(again.leaf_input)]
        )
        assert relay.key is not None
        cp = notes.Checkpoint(relay.origin, tree.size, tree.root())
        note = notes.sign_checkpoint(cp, relay.origin, relay.key.signing_key)
        proof = tree.inclusion_proof(size)
        for prev in {mine[-1].index, station.state.peer_index}:
            frames.append(encode_frame(Deliver(size, prev, again.envelope, head(tree, note), proof, 0)))
    return frames
