"""
Write the examples of docs/protocol.md into docs/examples/, made by hotline's own code.

    .venv/bin/python docs/make_examples.py [OUT_DIR]      (default: docs/examples next to this file)

Everything comes from fixed inputs: identity keys from fixed seeds, fixed epoch key
seeds, a clock that starts at 2026-11-26T12:00:00Z and moves only when this
script says so, and ``random.Random(n).randbytes`` as each party's source of
message ids, statement nonces, heartbeat probes and challenge nonces. The frames
are what the real relay and station state machines emit when they are joined in
memory, the way tests/unit/line.py joins them.

One thing is NOT reproducible: HPKE encryption draws a fresh ephemeral key
inside pyca/cryptography (``Suite.encrypt`` takes no randomness argument), so
every run gives another ``sealed`` (enc || ciphertext). Everything that covers
those bytes changes with it: the envelope signature (over SHA-256 of the sealed
bytes), the log leaf, every tree root and so every checkpoint, cosignature and
proof. ``RANDOMIZED`` names those files; the rest are identical from run to run,
and tests/unit/test_docs_examples.py checks both.

The randomness used here is Python's ``random`` with fixed seeds: fine for
examples, never for keys, nonces or ids in real use. The key file is derived
with the smallest argon2id limits libsodium allows (1 pass, 8 KiB) so that this
script runs fast; real key files use the defaults (OPSLIMIT_MODERATE,
MEMLIMIT_MODERATE).
"""

from __future__ import annotations

import base64
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import msgspec
import nacl.pwhash

from hotline.protocol import checkpoint as notes
from hotline.protocol import merkle
from hotline.protocol.envelope import Sealed
from hotline.protocol.frames import Hello, decode_relay_frame, decode_station_frame, encode_frame
from hotline.protocol.keys import (
    AUTH_LABEL,
    EpochKeyPair,
    IdentityKey,
    encode_key_file,
    format_fingerprint,
)
from hotline.protocol.messages import (
    Ack,
    Activity,
    Body,
    Circle,
    Contact,
    Force,
    FreeText,
    HeartbeatReply,
    Notice,
    Point,
    Readback,
    Text,
    Translation,
    Vertical,
    Window,
)
from hotline.protocol.relay import Connection, Relay, StationEntry, auth_payload, log_origin
from hotline.protocol.station import MessageSent, Station, StationConfig, StationState

# --- fixed inputs -------------------------------------------------------------------------------------

T0: Final = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
NAMES: Final = {"a": "station-a", "b": "station-b"}

IDENTITY_SEEDS: Final = {"a": bytes([1]) * 32, "b": bytes([2]) * 32, "relay": bytes([3]) * 32}
STRANGER_SEED: Final = bytes([4]) * 32  # a key on no roster, for the refusal example
# 64-byte ML-KEM-768 seed || 32-byte X25519 private key.
EPOCH_SEEDS: Final = {"a": bytes([0x0A]) * 96, "b": bytes([0x0B]) * 96}
EPOCH_WINDOW: Final = (T0, T0 + timedelta(hours=1))
RANDOM_SEEDS: Final = {"a": 7, "b": 8, "relay": 9}

# The key file example only: a real key file draws its salt and nonce at random.
PASSPHRASE: Final = b"correct horse battery staple"
KEY_FILE_SALT: Final = bytes(range(16))
KEY_FILE_NONCE: Final = bytes(range(24))
KEY_FILE_OPSLIMIT: Final = nacl.pwhash.argon2id.OPSLIMIT_MIN  # 1
KEY_FILE_MEMLIMIT: Final = nacl.pwhash.argon2id.MEMLIMIT_MIN  # 8192 bytes

STATION_FRAMES: Final = ("hello", "submit", "confirm", "cosign", "publish", "prove")
FRAME_TYPES: Final = (
    "challenge",
    "hello",
    "welcome",
    "keys",
    "publish",
    "submit",
    "accepted",
    "deliver",
    "confirm",
    "checkpoint",
    "cosign",
    "cosigned",
    "prove",
    "proof",
    "refused",
)

# Files whose bytes depend on HPKE's internal randomness (see the module docstring), with the reason.
RANDOMIZED: Final = {
    "envelope.json": "holds the sealed bytes (enc || ciphertext) and the signature over their hash",
    "leaf-input.hex": "holds SHA-256(sealed) and the envelope signature",
    "leaf-hash.hex": "the hash of the leaf input",
    "checkpoint.txt": "the root covers leaf hashes, so the root and the relay's signature change",
    "cosigned-checkpoint.txt": "the same checkpoint, and cosignatures over its text",
    "bodies/heartbeat.json": "gossips a cosigned checkpoint",
    "bodies/heartbeat-reply.json": "gossips a cosigned checkpoint",
    "frames/welcome.json": "carries a checkpoint and a consistency proof",
    "frames/submit.json": "carries the envelope",
    "frames/accepted.json": "carries a checkpoint and an inclusion proof",
    "frames/deliver.json": "carries the envelope, a checkpoint and an inclusion proof",
    "frames/checkpoint.json": "carries a checkpoint",
    "frames/cosign.json": "a cosignature over a checkpoint's text",
    "frames/cosigned.json": "carries a cosigned checkpoint",
    "frames/proof.json": "tree hashes",
}


def identity(name: str) -> IdentityKey:
    """The identity key of "a", "b" or "relay"."""
    return IdentityKey(IDENTITY_SEEDS[name])


# The log's origin follows from the relay's key; it is also the relay's key name in signed notes.
ORIGIN: Final = log_origin(identity("relay").public)


def epoch_pair(name: str) -> EpochKeyPair:
    """The epoch key pair of station "a" or "b" (valid 12:00 to 13:00 UTC)."""
    return EpochKeyPair(EPOCH_SEEDS[name], *EPOCH_WINDOW)


def entries() -> dict[str, StationEntry]:
    return {n: StationEntry(NAMES[n], identity(n).public) for n in ("a", "b")}


def seeded(seed: int) -> Callable[[int], bytes]:
    # Deterministic, and not for real use: see the module docstring.
    return random.Random(seed).randbytes  # noqa: S311


def the_notice() -> Notice:
    return Notice(
        ref="TUR-2026-000123",
        action="NEW",
        mode="EXER",
        precedence="IMMEDIATE",
        response="CONFIRM_NO_CONFLICT",
        classification="UNCLASSIFIED//REL TO TUR, ISR",
        text=Text(
            lang="tr",
            body="M4 koridorunda 2 UAV devriyesi.",
            translations=[Translation(lang="en", body="Two UAV patrols over the M4 corridor.", translator="TR-LNG-4")],
        ),
        activity=Activity(domain="UAV", type="PATROL"),
        area=Circle(center=Point(lat=36.52, lon=37.95), radius=6.0, unit="KM"),
        vertical=Vertical(lower=0.0, upper=12000.0, unit="FT", ref="AMSL"),
        window=Window(start=T0 + timedelta(hours=2), end=T0 + timedelta(hours=5)),
        forces=[Force(callsign="KARTAL 1", unit="UAV SQN 1", platform="ANKA", count=2)],
        contact=Contact(callsign="KARTAL OPS", frequency="243.000 MHz"),
    )


# --- the line in memory -------------------------------------------------------------------------------


@dataclass
class Sent:
    """One frame on the wire: who sent it, to whom, when, and its exact bytes."""

    time: datetime
    sender: str
    receiver: str
    data: bytes

    @property
    def type(self) -> str:
        return str(msgspec.json.decode(self.data)["type"])


@dataclass
class Wire:
    """A relay and two stations joined in memory (the approach of tests/unit/line.py), every frame kept."""

    now: datetime = T0
    frames: list[Sent] = field(default_factory=list)
    sealed: list[Sealed] = field(default_factory=list)

    def __post_init__(self) -> None:
        roster = entries()
        self.relay = Relay(identity("relay"), ORIGIN, list(roster.values()), seeded(RANDOM_SEEDS["relay"]))
        self.stations: dict[str, Station] = {}
        self.connections: dict[str, Connection | None] = {"a": None, "b": None}
        for n, other in (("a", "b"), ("b", "a")):
            config = StationConfig(identity(n), NAMES[n], roster[other], identity("relay").public, ORIGIN)
            pair = epoch_pair(n)
            self.stations[n] = Station(config, StationState(), {pair.key_id: pair}, seeded(RANDOM_SEEDS[n]))

    def tick(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def connect(self, n: str) -> None:
        station = self.stations[n]
        station.connection_made()
        self.connections[n] = self.relay.connect(self.now)
        station.publish([epoch_pair(n).signed_public(identity(n))])
        self.run()

    def disconnect(self, n: str) -> None:
        connection = self.connections[n]
        if connection is not None:
            self.relay.disconnect(connection)
        self.connections[n] = None
        self.stations[n].connection_lost()

    def send(self, n: str, body: Body) -> Sealed:
        sealed = self.stations[n].send(body, self.now)
        self.run()
        return sealed

    def heartbeat(self, n: str) -> Sealed:
        sealed = self.stations[n].heartbeat(self.now)
        self.run()
        return sealed

    def store(self, station: Station) -> None:
        """Drain the station's events, as its store would; keep what it sealed."""
        self.sealed.extend(e.sealed for e in station.events() if isinstance(e, MessageSent))

    def run(self) -> None:
        """Move frames until none is left, committing the relay's log as its store would (then durable())."""
        for _ in range(10_000):
            moved = False
            size = self.relay.size
            self.relay.events()  # a real relay stores these first
            self.relay.durable(size)
            for n, station in self.stations.items():
                connection = self.connections[n]
                if connection is None:
                    continue
                # A real station stores its events before anything it queued goes out.
                self.store(station)
                for data in station.data_to_send():
                    moved = True
                    self.frames.append(Sent(self.now, NAMES[n], "relay", data))
                    connection.receive_frame(data, self.now)
                for data in connection.data_to_send():
                    moved = True
                    self.frames.append(Sent(self.now, "relay", NAMES[n], data))
                    station.receive_frame(data, self.now)
                self.store(station)
            if not moved and self.relay.size == self.relay.durable_size:
                return
        raise AssertionError("the line did not settle")

    def stranger(self) -> None:
        """Someone with a key on no roster answers the challenge: refused, and the connection closes."""
        stranger = IdentityKey(STRANGER_SEED)
        connection = self.relay.connect(self.now)
        [challenge] = connection.data_to_send()
        self.frames.append(Sent(self.now, "relay", "stranger", challenge))
        nonce = decode_relay_frame(challenge).nonce  # type: ignore[union-attr]
        signature = stranger.sign(AUTH_LABEL, auth_payload(self.relay.key.public, nonce, stranger.public))
        hello = encode_frame(Hello(stranger.public.key_id, signature))
        self.frames.append(Sent(self.now, "stranger", "relay", hello))
        connection.receive_frame(hello, self.now)
        for data in connection.data_to_send():
            self.frames.append(Sent(self.now, "relay", "stranger", data))
        assert connection.closing
        self.relay.disconnect(connection)

    def find(self, kind: str, test: Callable[[Sent], bool] = lambda sent: True) -> bytes:
        """The first frame of this type that passes ``test``."""
        for sent in self.frames:
            if sent.type == kind and test(sent):
                return sent.data
        raise LookupError(f"no such {kind} frame")


def play() -> tuple[Wire, dict[str, Sealed]]:
    """The exchange the examples come from, and the messages it sealed by name. The clock moves only here."""
    wire = Wire()
    wire.connect("a")  # 12:00:00, before B has published an epoch key
    wire.tick(5)
    wire.connect("b")  # 12:00:05
    wire.tick(25)
    notice = wire.send("a", the_notice())  # 12:00:30: B's station answers RECEIVED by itself
    wire.tick(150)
    understood = wire.send(  # 12:03:00: B's duty officer has read it and reads back area and window
        "b",
        Ack(
            answers=notice.statement_hash,
            level="READ_UNDERSTOOD",
            ref=the_notice().ref,
            readback=Readback(area=the_notice().area, window=the_notice().window),  # type: ignore[arg-type]
            officer="OOW-2",
        ),
    )
    wire.tick(60)
    wire.disconnect("b")  # 12:04:00
    wire.tick(60)
    text = wire.send("a", FreeText(lang="tr", body="Hat kontrolü."))  # 12:05:00, queued for B
    wire.tick(60)
    heartbeat = wire.heartbeat("a")  # 12:06:00, gossips A's latest cosigned checkpoint (size 4)
    wire.tick(60)
    wire.connect("b")  # 12:07:00: B catches up and checks A's gossip with a consistency proof
    wire.tick(60)
    wire.stranger()  # 12:08:00
    sealed = {"notice": notice, "ack": understood, "text": text, "heartbeat": heartbeat}
    sealed["heartbeat-reply"] = next(s for s in wire.sealed if isinstance(s.statement.body, HeartbeatReply))
    return wire, sealed


# --- the files ----------------------------------------------------------------------------------------


def pretty(data: bytes) -> bytes:
    """JSON for people: the same fields in the same order, indented. The wire form is compact."""
    return msgspec.json.format(data, indent=2) + b"\n"


def build() -> dict[str, bytes]:
    """Every example file, by its path under the examples directory."""
    wire, sealed = play()
    a, b = identity("a"), identity("b")
    files: dict[str, bytes] = {}

    files["public-key.txt"] = a.public.text().encode() + b"\n"
    files["fingerprint.txt"] = format_fingerprint(a.public.fingerprint).encode() + b"\n"
    files["key-file.json"] = encode_key_file(
        a,
        NAMES["a"],
        PASSPHRASE,
        salt=KEY_FILE_SALT,
        nonce=KEY_FILE_NONCE,
        opslimit=KEY_FILE_OPSLIMIT,
        memlimit=KEY_FILE_MEMLIMIT,
    )
    signed_epoch_key = epoch_pair("b").signed_public(b)
    files["epoch-key-payload.json"] = signed_epoch_key.payload  # exact signed bytes
    files["epoch-key.json"] = pretty(msgspec.json.encode(signed_epoch_key))

    # A's notice to B, as A's station sealed and submitted it.
    notice = sealed["notice"]
    files["statement.json"] = notice.statement_bytes  # exact signed bytes
    files["signed-statement.json"] = notice.signed_statement  # exact HPKE plaintext
    files["header.json"] = notice.envelope.header  # exact bytes: HPKE info, and what the relay reads
    files["envelope.json"] = pretty(msgspec.json.encode(notice.envelope))
    files["leaf-input.hex"] = notice.leaf_input.hex().encode() + b"\n"
    files["leaf-hash.hex"] = merkle.leaf_hash(notice.leaf_input).hex().encode() + b"\n"

    # The first checkpoint (size 1: the notice alone), then with both stations' cosignatures.
    cosigned = decode_relay_frame(wire.find("cosigned")).checkpoint  # type: ignore[union-attr]
    note = notes.parse_note(cosigned)
    files["checkpoint.txt"] = notes.Note(note.text, note.signatures[:1]).encode()
    files["cosigned-checkpoint.txt"] = cosigned

    for kind in ("notice", "ack", "text", "heartbeat", "heartbeat-reply"):
        files[f"bodies/{kind}.json"] = pretty(msgspec.json.encode(sealed[kind].statement.body))

    # B's return at 12:07 (hello with head 3, welcome with a proof from 3 to 5), and A's free text (log
    # index 3): accepted with a proof in the tree of 4, delivered to B with prev 0 (the notice was B's last).
    text_id = sealed["text"].statement.id
    text_header = base64.b64encode(sealed["text"].envelope.header).decode()
    back = datetime(2026, 11, 26, 12, 7, tzinfo=UTC)
    to_b = NAMES["b"]
    chosen = {
        "challenge": wire.find("challenge", lambda s: s.receiver == to_b and s.time == back),
        "hello": wire.find("hello", lambda s: s.sender == to_b and s.time == back),
        "welcome": wire.find("welcome", lambda s: s.receiver == to_b and s.time == back),
        "keys": wire.find("keys", lambda s: s.receiver == to_b),
        "accepted": wire.find("accepted", lambda s: _field(s, "id") == text_id),
        "deliver": wire.find("deliver", lambda s: _field(s, "envelope", "header") == text_header),
        "confirm": wire.find("confirm", lambda s: s.sender == to_b and s.time == back),
        "refused": wire.find("refused", lambda s: s.receiver == "stranger"),
    }
    for kind in FRAME_TYPES:
        data = chosen[kind] if kind in chosen else wire.find(kind)
        if kind in STATION_FRAMES:
            decode_station_frame(data)
        else:
            decode_relay_frame(data)
        files[f"frames/{kind}.json"] = pretty(data)

    files["transcript.txt"] = "".join(
        f"{s.time:%H:%M:%S}  {s.sender:>9} -> {s.receiver:<9}  {s.type}"
        + (f"  ({len(s.data)} bytes)\n" if s.type in ("submit", "deliver") else "\n")
        for s in wire.frames
    ).encode()
    return files


def _field(sent: Sent, *path: str) -> object:
    value = msgspec.json.decode(sent.data)
    for key in path:
        value = value[key]
    return value


def main(out_dir: Path) -> None:
    """Write every example under ``out_dir``."""
    for name, data in build().items():
        path = out_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "examples")
