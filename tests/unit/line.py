"""Two stations and a relay joined in memory through the sans-I/O state machines (no sockets, no store)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hotline.protocol.keys import EpochKeyPair, IdentityKey
from hotline.protocol.messages import Activity, Circle, Notice, Point, Text, Window
from hotline.protocol.relay import Connection, Relay, RelayEvent, StationEntry
from hotline.protocol.station import Station, StationConfig, StationEvent, StationState

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
ORIGIN = "relay.example/hotline"


def seeded(seed: int) -> Callable[[int], bytes]:
    """Deterministic randomness for tests: the protocol takes its randomness as an argument."""
    r = random.Random(seed)
    return r.randbytes


def notice(ref: str = "TUR-2026-000001", precedence: str = "FLASH", **changes: object) -> Notice:
    fields: dict[str, object] = {
        "ref": ref,
        "action": "NEW",
        "mode": "EXER",
        "precedence": precedence,
        "response": "CONFIRM_NO_CONFLICT",
        "classification": "UNCLASSIFIED//REL TO TUR, ISR",
        "text": Text(lang="en", body="Convoy of 12 vehicles on the M4 corridor."),
        "activity": Activity(domain="GROUND", type="CONVOY"),
        "area": Circle(center=Point(lat=36.52, lon=37.95), radius=6.0, unit="KM"),
        "window": Window(start=T0 + timedelta(hours=2), end=T0 + timedelta(hours=5)),
    }
    fields.update(changes)
    return Notice(**fields)  # type: ignore[arg-type]


@dataclass
class Side:
    """One station as the line sees it: its state machine, its connection, what it stored."""

    name: str
    identity: IdentityKey
    station: Station
    relay: Relay
    connection: Connection | None = None
    stored: list[StationEvent] = field(default_factory=list)
    errors: list[Exception] = field(default_factory=list)
    # Frames from the relay pass through this before the station sees them (a lying relay's hook).
    inbound: Callable[[bytes], list[bytes]] = lambda frame: [frame]

    def of(self, kind: type) -> list:
        return [e for e in self.stored if isinstance(e, kind)]


class Line:
    """A relay and two stations, A and B, with a clock the test moves."""

    def __init__(self, seed: int = 1, raise_errors: bool = True) -> None:
        self.now = T0
        self.raise_errors = raise_errors
        rng = seeded(seed)
        self.relay_key = IdentityKey(rng(32))
        ids = {"a": IdentityKey(rng(32)), "b": IdentityKey(rng(32))}
        entries = {n: StationEntry(f"station-{n}", k.public) for n, k in ids.items()}
        self.relay = Relay(self.relay_key, ORIGIN, list(entries.values()), rng)
        self.relay_events: list[RelayEvent] = []
        self.epoch: dict[str, EpochKeyPair] = {}
        self.sides: dict[str, Side] = {}
        for name, identity in ids.items():
            other = "b" if name == "a" else "a"
            pair = EpochKeyPair(rng(96), T0 - timedelta(hours=1), T0 + timedelta(hours=2))
            self.epoch[name] = pair
            config = StationConfig(identity, f"station-{name}", entries[other], self.relay_key.public, ORIGIN)
            station = Station(config, StationState(), {pair.key_id: pair}, rng)
            self.sides[name] = Side(name, identity, station, self.relay)

    @property
    def a(self) -> Station:
        return self.sides["a"].station

    @property
    def b(self) -> Station:
        return self.sides["b"].station

    def tick(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def connect(self, *names: str, relay: Relay | None = None) -> None:
        for name in names or ("a", "b"):
            side = self.sides[name]
            if relay is not None:
                side.relay = relay
            side.station.connection_made()
            side.connection = side.relay.connect(self.now)
            pair = self.epoch[name]
            side.station.publish([pair.signed_public(side.identity)])
        self.run()

    def disconnect(self, name: str) -> None:
        side = self.sides[name]
        if side.connection is not None:
            side.relay.disconnect(side.connection)
            side.connection = None
        side.station.connection_lost()
        side.station.data_to_send()  # what was queued for the lost connection is gone with it

    def run(self, limit: int = 10_000) -> None:
        """Move frames until nothing is left to move, committing the relay's log as a store would."""
        for _ in range(limit):
            moved = False
            relays = {id(side.relay): side.relay for side in self.sides.values()}
            relays[id(self.relay)] = self.relay
            for relay in relays.values():
                size = relay.size
                events = relay.events()
                if relay is self.relay:
                    self.relay_events.extend(events)
                relay.durable(size)
            for side in self.sides.values():
                conn = side.connection
                if conn is None:
                    continue
                # The station stores its events before anything it queued goes out.
                side.stored.extend(side.station.events())
                for frame in side.station.data_to_send():
                    moved = True
                    conn.receive_frame(frame, self.now)
                for frame in conn.data_to_send():
                    moved = True
                    for delivered in side.inbound(frame):
                        self._feed(side, delivered)
                side.stored.extend(side.station.events())
            if not moved and all(r.size == r.durable_size for r in relays.values()):
                return
        raise AssertionError("the line did not settle")

    def _feed(self, side: Side, frame: bytes) -> None:
        try:
            side.station.receive_frame(frame, self.now)
        except Exception as e:
            side.errors.append(e)
            if self.raise_errors:
                raise
