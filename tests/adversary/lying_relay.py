"""
A lying relay: the real relay server (``hotline.relay.server.RelayServer``) with hooks that make it lie.

It keeps the real server's TLS, store, limits, group commit and witness timer, and the real protocol
state machine; what changes is small and in one place each:

- every connection is a ``LyingConnection``, whose outgoing frames (``data_to_send``) and incoming
  frames (``receive_frame``) pass through the chosen ``Lie``;
- for ``fork``, a second ``Relay`` state with the same key (the "fork face") serves station B, and the
  server settles it after each input as it settles the real one.

Run as its own process, on a directory made by ``hotline relay init``::

    python -m tests.adversary.lying_relay RELAY_DIR --lie MODE [--after N] [--to STATION] [--hold S] --port-file F

Every lie it tells is logged as a JSON line on stderr with ``"event": "lie"``, its time and what it did,
so that a test can measure how soon a station detects it.

Modes (``--after N`` counts deliveries of distinct log entries to the victim, ``--to``, default station-b):

==============  =================================================================================================
honest          no lie: the double itself, to show it is faithful
drop            the (N+1)th delivery is never sent and leaves the queue for good; the next delivery's ``prev``
                still names it (the relay does not hide the drop)
drop-hide       the same, and the next delivery's ``prev`` is rewritten to hide the drop
delay           every delivery after the Nth is held ``--hold`` seconds (sent then with a fresh head and proof)
reorder         the (N+1)th delivery is held until the next one, which goes first
replay          once the victim confirmed the (N+1)th delivery, its envelope is logged again at a new index
duplicate       the (N+1)th deliver frame is sent twice
tamper-sealed   the (N+1)th delivery's ciphertext has a byte flipped
tamper-header   the (N+1)th delivery's header has its ``seq`` changed and is re-encoded (canonically)
strip-keys      every ``keys`` frame to the victim carries no key
stale-keys      ``keys`` frames to the victim carry only the first key it was ever given (the current epoch's),
                never the newer ones: once that epoch ends the victim holds only an expired key
withhold-proofs every ``proof`` frame to the victim is dropped: the relay never answers a ``prove``
fork            once the log holds N entries (default 2), the victim is moved to a second face of the log with
                the same key, which logs one extra entry (an old envelope again, delivered to nobody); from then
                on every envelope and key either station sends is put into both faces, so the exchange goes on
==============  =================================================================================================
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import weakref
from dataclasses import replace as replace_event
from datetime import datetime
from pathlib import Path
from typing import ClassVar

import msgspec

from hotline.cli.common import passphrase_for
from hotline.protocol import merkle
from hotline.protocol.envelope import Envelope, Header
from hotline.protocol.exceptions import HotlineError
from hotline.protocol.frames import (
    Accepted,
    CheckpointFrame,
    Confirm,
    Cosign,
    Deliver,
    Head,
    Hello,
    Keys,
    Proof,
    Publish,
    Submit,
    Welcome,
    decode_relay_frame,
    decode_station_frame,
    encode_frame,
)
from hotline.protocol.keys import IdentityKey
from hotline.protocol.relay import Appended, Connection, Dequeued, Relay, RelayEvent, log_origin
from hotline.relay.server import JsonFormatter, RelayServer, _Link, write_port_file
from hotline.relay.setup import RelayConfig, load_config
from hotline.store.keyfiles import load_identity

log = logging.getLogger("hotline.relay.lying")


def _is(frame: bytes, *kinds: str) -> bool:
    """Whether a frame is of one of these types (frames are encoded with their type first)."""
    return any(frame.startswith(b'{"type":"' + kind.encode() + b'"') for kind in kinds)


class LyingConnection(Connection):
    """A protocol connection whose frames, both ways, pass through the lie.

    A liar that holds back, drops or reorders frames must still show each station one history that only
    grows, or it is caught for the wrong lie: so every head that goes out is made again, with a
    consistency proof from the last checkpoint this connection really showed (``shown``), and a frame
    whose checkpoint is older than that one is sent with the current checkpoint instead.
    """

    lie: Lie

    def __init__(self, relay: Relay, now: datetime, lie: Lie) -> None:
        self.lie = lie
        # Frames the lie held back and now releases: they go out before anything new.
        self.released: list[bytes] = []
        self.shown = 0
        super().__init__(relay, now)

    def data_to_send(self) -> list[bytes]:
        out, self.released = self.released, []
        return [self.consistent(frame) for frame in out + self.lie.outgoing(self, super().data_to_send())]

    def receive_frame(self, data: bytes, now: datetime) -> None:
        if self.station is None and _is(data, "hello"):
            with contextlib.suppress(HotlineError):
                hello = decode_station_frame(data)
                assert isinstance(hello, Hello)
                self.shown = hello.head
        self.lie.before(self, data, now)
        super().receive_frame(data, now)
        self.lie.after(self, data, now)

    def consistent(self, frame: bytes) -> bytes:
        if not _is(frame, "welcome", "accepted", "deliver", "checkpoint"):
            return frame
        decoded = decode_relay_frame(frame)
        assert isinstance(decoded, Welcome | Accepted | Deliver | CheckpointFrame)
        if decoded.head is None:
            return frame
        relay = self.relay
        note = decoded.head.checkpoint
        size = _size(note)
        changes: dict[str, object] = {}
        if size < self.shown:
            # Held back past a newer checkpoint: show the current one, and prove the entry in it.
            size = relay.durable_size
            note = relay.checkpoints[size]
            if isinstance(decoded, Accepted | Deliver):
                changes["inclusion"] = relay.tree.inclusion_proof(decoded.index, size)
        proof = relay.tree.consistency_proof(self.shown, size) if 0 < self.shown < size else []
        self.shown = size
        return encode_frame(msgspec.structs.replace(decoded, head=Head(note, proof), **changes))


def _size(note: bytes) -> int:
    """The tree size of a checkpoint note (its second line)."""
    return int(note.split(b"\n", 2)[1])


class LyingCore(Relay):
    """The real relay state machine; its connections lie, and it keeps what a lie needs to know."""

    lie: Lie

    def connect(self, now: datetime) -> Connection:
        return LyingConnection(self, now, self.lie)

    def disconnect(self, connection: Connection) -> None:
        # A connection the fork took over belongs to the other face now.
        if connection.relay is not self:
            connection.relay.disconnect(connection)
        super().disconnect(connection)

    def events(self) -> list[RelayEvent]:
        events = super().events()
        return self.lie.stored(events)


class Lie:
    """No lie: every hook passes everything through. Subclasses override what they lie about."""

    name: ClassVar[str] = "honest"

    def __init__(self, server: LyingRelay, victim: str, skip: int, hold: float) -> None:
        self.server = server
        self.victim = victim  # the victim's key id
        self.skip = skip  # deliveries (fork: log entries) left alone first
        self.hold = hold
        # Distinct log indices delivered to the victim so far, in the order they first went out.
        self.delivered: list[int] = []
        self.target: int | None = None
        self.envelopes: dict[int, Envelope] = {}
        # Every leaf the real face has stored (leaf input, message id, recipient), in log order.
        self.leaves: list[tuple[bytes, str, str]] = []
        self.setup()

    def setup(self) -> None:
        """What a lie keeps of its own."""

    # --- hooks ---

    def outgoing(self, conn: LyingConnection, frames: list[bytes]) -> list[bytes]:
        if conn.station != self.victim:
            return frames
        out: list[bytes] = []
        for frame in frames:
            if _is(frame, "deliver"):
                deliver = decode_relay_frame(frame)
                assert isinstance(deliver, Deliver)
                if deliver.index not in self.delivered:
                    self.delivered.append(deliver.index)
                    self.envelopes[deliver.index] = deliver.envelope
                    if len(self.delivered) == self.skip + 1:
                        self.target = deliver.index
                out.extend(self.deliver(conn, frame, deliver))
            elif _is(frame, "keys"):
                keys = decode_relay_frame(frame)
                assert isinstance(keys, Keys)
                out.extend(self.keys(conn, frame, keys))
            else:
                out.append(frame)
        return out

    def deliver(self, conn: LyingConnection, frame: bytes, deliver: Deliver) -> list[bytes]:
        return [frame]

    def keys(self, conn: LyingConnection, frame: bytes, keys: Keys) -> list[bytes]:
        return [frame]

    def before(self, conn: LyingConnection, data: bytes, now: datetime) -> None:
        """A frame from a station, before the relay takes it."""

    def after(self, conn: LyingConnection, data: bytes, now: datetime) -> None:
        """A frame from a station, after the relay took it."""

    def stored(self, events: list[RelayEvent]) -> list[RelayEvent]:
        """The real face's events, on their way to the store."""
        return events

    def settle(self) -> None:
        """After every input and commit, before the real face's events are stored and frames sent."""

    # --- helpers ---

    def told(self, action: str, **details: object) -> None:
        log.info("lie", extra={"lie": self.name, "action": action, **details})

    def refresh(self, conn: Connection, deliver: Deliver) -> bytes:
        """The same delivery with a head and an inclusion proof made now (a held frame's head would be stale)."""
        relay = conn.relay
        head = conn._head()
        proof = relay.tree.inclusion_proof(deliver.index, relay.durable_size)
        return encode_frame(msgspec.structs.replace(deliver, head=head, inclusion=proof))

    def release(self, conn: LyingConnection, frames: list[bytes]) -> None:
        """Send frames the lie held back, on the next write of the connection (if it is still open)."""
        conn.released.extend(frames)
        link = self.server.links.get(conn)
        if link is not None:
            link.wake.set()


class Drop(Lie):
    name = "drop"
    hide = False

    def setup(self) -> None:
        # Dropped index -> the prev it had, so that a later prev naming it can be rewritten.
        self.dropped: dict[int, int] = {}

    def deliver(self, conn: LyingConnection, frame: bytes, deliver: Deliver) -> list[bytes]:
        if deliver.index == self.target or deliver.index in self.dropped:
            if deliver.index not in self.dropped:
                self.dropped[deliver.index] = deliver.prev
                relay = conn.relay
                relay.queues[self.victim].pop(deliver.index, None)
                relay._events.append(Dequeued(self.victim, deliver.index))  # gone from the store too
                self.told("dropped", index=deliver.index)
            conn._sent.discard(deliver.index)
            return []
        if deliver.prev not in self.dropped:
            return [frame]
        if not self.hide:
            self.told("named the dropped entry", index=deliver.index, prev=deliver.prev)
            return [frame]
        prev = deliver.prev
        while prev in self.dropped:
            prev = self.dropped[prev]
        self.told("hid the drop", index=deliver.index, prev=deliver.prev, told=prev)
        return [encode_frame(msgspec.structs.replace(deliver, prev=prev))]


class DropHide(Drop):
    name = "drop-hide"
    hide = True


class Delay(Lie):
    name = "delay"

    def deliver(self, conn: LyingConnection, frame: bytes, deliver: Deliver) -> list[bytes]:
        if self.delivered.index(deliver.index) < self.skip:
            return [frame]
        self.told("held", index=deliver.index, seconds=self.hold)

        def send() -> None:
            self.told("released", index=deliver.index)
            self.release(conn, [self.refresh(conn, deliver)])

        asyncio.get_running_loop().call_later(self.hold, send)
        return []


class Reorder(Lie):
    name = "reorder"

    def setup(self) -> None:
        self.held: Deliver | None = None
        self.done = False

    def deliver(self, conn: LyingConnection, frame: bytes, deliver: Deliver) -> list[bytes]:
        if self.done:
            return [frame]
        if self.held is None and deliver.index == self.target:
            self.held = deliver
            self.told("held", index=deliver.index)
            return []
        if self.held is not None and deliver.index != self.held.index:
            held, self.held, self.done = self.held, None, True
            self.told("reordered", first=deliver.index, then=held.index)
            return [self.refresh(conn, deliver), self.refresh(conn, held)]
        return [frame]


class Duplicate(Lie):
    name = "duplicate"

    def deliver(self, conn: LyingConnection, frame: bytes, deliver: Deliver) -> list[bytes]:
        if deliver.index == self.target:
            self.target = None
            self.told("duplicated", index=deliver.index)
            return [frame, frame]
        return [frame]


class TamperSealed(Lie):
    name = "tamper-sealed"

    def tamper(self, envelope: Envelope) -> Envelope:
        sealed = envelope.sealed
        return msgspec.structs.replace(envelope, sealed=sealed[:-1] + bytes([sealed[-1] ^ 1]))

    def deliver(self, conn: LyingConnection, frame: bytes, deliver: Deliver) -> list[bytes]:
        if deliver.index == self.target:
            self.told("tampered", index=deliver.index)
            return [encode_frame(msgspec.structs.replace(deliver, envelope=self.tamper(deliver.envelope)))]
        return [frame]


class TamperHeader(TamperSealed):
    name = "tamper-header"

    def tamper(self, envelope: Envelope) -> Envelope:
        header = msgspec.json.decode(envelope.header, type=Header)
        changed = msgspec.structs.replace(header, seq=header.seq + 1)
        return msgspec.structs.replace(envelope, header=msgspec.json.encode(changed))


class Replay(Lie):
    name = "replay"

    def setup(self) -> None:
        self.replayed: set[int] = set()
        self.done = False

    def after(self, conn: LyingConnection, data: bytes, now: datetime) -> None:
        if self.done or conn.station != self.victim or not _is(data, "confirm") or self.target is None:
            return
        frame = decode_station_frame(data)
        if not isinstance(frame, Confirm) or frame.index != self.target:
            return
        self.done = True
        relay = conn.relay
        envelope = self.envelopes[self.target]
        header = msgspec.json.decode(envelope.header, type=Header)
        # Log the same envelope again, as its sender would submit it, past the relay's own checks.
        ghost = Connection(relay, now)
        ghost.station, ghost.receive = header.sender, False
        ghost.data_to_send()
        first, last_seq = relay.ids.pop(header.id), relay.last_seq[header.sender]
        relay.last_seq[header.sender] = header.seq - 1
        try:
            ghost._submit(envelope)
        finally:
            index = relay.ids.get(header.id, first)
            relay.ids[header.id] = first
            relay.last_seq[header.sender] = last_seq
        self.replayed.add(index)
        self.told("replayed", index=first, again_at=index)

    def stored(self, events: list[RelayEvent]) -> list[RelayEvent]:
        # The store keeps one row per message id; the lying relay stores the replay under another name.
        return [
            replace_event(e, message_id=f"replay-{e.index}")
            if isinstance(e, Appended) and e.index in self.replayed
            else e
            for e in events
        ]


class StripKeys(Lie):
    name = "strip-keys"

    def keys(self, conn: LyingConnection, frame: bytes, keys: Keys) -> list[bytes]:
        if keys.keys:
            self.told("stripped keys", count=len(keys.keys))
        return [encode_frame(msgspec.structs.replace(keys, keys=[]))]


class StaleKeys(Lie):
    name = "stale-keys"

    def setup(self) -> None:
        self.only: bytes | None = None

    def keys(self, conn: LyingConnection, frame: bytes, keys: Keys) -> list[bytes]:
        if self.only is None and keys.keys:
            self.only = keys.keys[0].payload
        kept = [k for k in keys.keys if k.payload == self.only]
        if len(kept) < len(keys.keys):
            self.told("withheld newer keys", count=len(keys.keys) - len(kept), forwarded=len(kept))
        return [encode_frame(msgspec.structs.replace(keys, keys=kept))]


class WithholdProofs(Lie):
    """Never answer the victim's ``prove``: what a relay that forked the log, and cannot prove otherwise, would do."""

    name = "withhold-proofs"

    def setup(self) -> None:
        # The victim's connections, numbered from 1 in the order they were first seen (a test tells its
        # long-running process, started first, from the one-shot commands that follow).
        self.numbers: weakref.WeakKeyDictionary[Connection, int] = weakref.WeakKeyDictionary()

    def outgoing(self, conn: LyingConnection, frames: list[bytes]) -> list[bytes]:
        if conn.station != self.victim:
            return frames
        number = self.numbers.setdefault(conn, len(self.numbers) + 1)
        for frame in frames:
            if _is(frame, "proof"):
                proof = decode_relay_frame(frame)
                assert isinstance(proof, Proof)
                self.told("withheld-proof", old=proof.old, new=proof.new, connection=number)
        return [frame for frame in frames if not _is(frame, "proof")]


class Fork(Lie):
    """Two faces of the log with one key: the real one for the other station, a fork for the victim."""

    name = "fork"

    def setup(self) -> None:
        self.fork: Relay | None = None
        self.ghosts: dict[tuple[int, str], Connection] = {}

    def stored(self, events: list[RelayEvent]) -> list[RelayEvent]:
        self.leaves.extend((e.leaf_input, e.message_id, e.recipient) for e in events if isinstance(e, Appended))
        return events

    def settle(self) -> None:
        real = self.server.relay
        if self.fork is None and real.durable_size >= self.skip and real.size == real.durable_size:
            self.split(real)
        fork = self.fork
        if fork is None:
            return
        fork.events()  # the fork face keeps its log in memory only
        fork.durable(fork.size)
        for ghost in self.ghosts.values():
            ghost.data_to_send()

    def split(self, real: Relay) -> None:
        fork = Relay(real.key, real.origin, list(real.stations.values()), os.urandom)
        fork.witness_every_commit = True
        queued = [(q.recipient, q.index, q.prev, q.envelope) for q in real.queues[self.victim].values()]
        fork.restore(list(self.leaves), queued, {k: real.published(k) for k in real.stations}, real.cosigned)
        fork.checkpoints.update(real.checkpoints)
        fork.cosignatures = {size: dict(sigs) for size, sigs in real.cosignatures.items()}
        # The extra entry only the victim's face holds: an old envelope logged again, delivered to nobody.
        leaf = self.leaves[-1][0]
        fork.tree.append(merkle.leaf_hash(leaf))
        self.fork = fork
        moved = [c for c in real.connections if c.station == self.victim]
        for conn in moved:
            self.move(conn, real, fork)
        self.told("split", size=real.durable_size, fork_size=fork.tree.size, moved=len(moved))

    @staticmethod
    def move(conn: Connection, real: Relay, fork: Relay) -> None:
        if conn in real.connections:
            real.connections.remove(conn)
        conn.relay = fork
        fork.connections.append(conn)

    def before(self, conn: LyingConnection, data: bytes, now: datetime) -> None:
        # A new connection of the victim is taken to the fork face as soon as it says who it is.
        if self.fork is None or conn.station is not None or not _is(data, "hello"):
            return
        try:
            hello = decode_station_frame(data)
        except HotlineError:
            return
        if isinstance(hello, Hello) and hello.station == self.victim:
            self.move(conn, self.server.relay, self.fork)

    def after(self, conn: LyingConnection, data: bytes, now: datetime) -> None:
        """What a station gives its face goes into the other face too, so that the exchange goes on."""
        if self.fork is None or conn.station is None or not _is(data, "submit", "publish", "cosign"):
            return
        other = self.server.relay if conn.relay is self.fork else self.fork
        ghost = self.ghost(other, conn.station, now)
        try:
            frame = decode_station_frame(data)
            if isinstance(frame, Submit):
                ghost._submit(frame.envelope)
            elif isinstance(frame, Publish):
                ghost._publish(frame.keys, now)
            elif isinstance(frame, Cosign):
                ghost._check_cosignature(frame)
        except HotlineError:
            pass  # a cosignature of the other face's checkpoint does not verify here: expected
        ghost.data_to_send()

    def ghost(self, relay: Relay, station: str, now: datetime) -> Connection:
        """A connection that nobody reads, through which the relay puts a station's frames into a face."""
        key = (id(relay), station)
        ghost = self.ghosts.get(key)
        if ghost is None:
            ghost = self.ghosts[key] = Connection(relay, now)
            ghost.station, ghost.receive = station, False
        return ghost


LIES: dict[str, type[Lie]] = {
    cls.name: cls
    for cls in (
        Lie,
        Drop,
        DropHide,
        Delay,
        Reorder,
        Replay,
        Duplicate,
        TamperSealed,
        TamperHeader,
        StripKeys,
        StaleKeys,
        WithholdProofs,
        Fork,
    )
}
MODES = tuple(LIES)


class LyingRelay(RelayServer):
    """The real relay server, serving a ``LyingCore`` whose connections tell one kind of lie."""

    def __init__(
        self,
        directory: Path,
        config: RelayConfig,
        identity: IdentityKey,
        lie: str,
        victim: str,
        after: int,
        hold: float,
    ) -> None:
        super().__init__(directory, config, identity)
        names = {entry.name: key for key, entry in self.relay.stations.items()}
        self.lie = LIES[lie](self, names[victim], after, hold)
        # The same state machine as the server made, restored from the same store, but one whose connections lie.
        core = LyingCore(identity, log_origin(identity.public), config.roster(), os.urandom)
        core.lie = self.lie
        core.witness_every_commit = False
        restored = self.store.load()
        core.restore(restored.leaves, restored.queued, restored.epoch_keys, restored.cosigned)
        self.lie.leaves.extend(restored.leaves)
        self.relay = core

    def _after_input(self, link: _Link | None = None) -> None:
        self.lie.settle()
        super()._after_input(link)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.adversary.lying_relay", description=__doc__.split("\n")[1])
    parser.add_argument("directory", type=Path, help="a relay directory made by 'hotline relay init'")
    parser.add_argument("--lie", choices=MODES, required=True)
    parser.add_argument("--after", type=int, default=None, help="deliveries left alone first (fork: log size)")
    parser.add_argument("--to", default="station-b", help="the station lied to (its name on the roster)")
    parser.add_argument("--hold", type=float, default=3.0, help="seconds a delayed delivery is held")
    parser.add_argument("--port-file", type=Path, default=None)
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    after = args.after if args.after is not None else (2 if args.lie == "fork" else 0)
    config = load_config(args.directory)
    _, identity = load_identity(args.directory / "relay.key", passphrase_for(args.directory / "relay.key"))
    server = LyingRelay(args.directory, config, identity, args.lie, args.to, after, args.hold)
    log.info("lying relay", extra={"lie": args.lie, "after": after, "to": args.to, "hold": args.hold})

    def ready(port: int) -> None:
        if args.port_file is not None:
            write_port_file(args.port_file, port)

    asyncio.run(server.serve(ready))
    return 0


if __name__ == "__main__":
    sys.exit(main())
