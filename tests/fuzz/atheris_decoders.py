"""Coverage-guided fuzzing of hotline's decoders and state machines with atheris (libFuzzer).

    .venv/bin/pip install atheris        # not a dependency of hotline: install it by hand
    .venv/bin/python tests/fuzz/atheris_decoders.py -runs=100000

Every libFuzzer option works (``-max_total_time=600``, ``-jobs=2``, a corpus
directory...). The first byte of an input picks the target, the rest is what the
network or a file brings:

0. the relay: ``Connection.receive_frame`` on an authenticated connection, or on a
   new one, must never raise, and a refusal must move none of its state;
1. a station: ``decode_relay_frame`` then ``Station.receive_frame`` (authenticated,
   everything received) may raise only ``RemoteProtocolError``;
2. ``decode_envelope`` then ``check_envelope`` with the line's two stations;
3. ``parse_note``, ``open_checkpoint`` with the relay's key, ``verify_cosignature``;
4. ``decode_body``.

Anything else raised (for targets 2 to 4: anything that is not a ``HotlineError``)
is a crash: libFuzzer stops and writes the input to ``crash-*`` in the artifact
directory (``-artifact_prefix``, by default a new directory under /tmp). Known
bugs (``harness.known_bug``) are let through unless ``HOTLINE_FUZZ_STRICT=1``.
The seed corpus is the one the Hypothesis properties mutate (``corpus.py``): the
frames, envelopes, notes and bodies of a real exchange.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

with atheris.instrument_imports(include=["hotline"]):
    from hotline.protocol import checkpoint as notes
    from hotline.protocol import station as _station  # noqa: F401 - instrumented before the corpus imports it
    from hotline.protocol.envelope import check_envelope, decode_envelope
    from hotline.protocol.exceptions import HotlineError, RemoteProtocolError
    from hotline.protocol.frames import decode_relay_frame
    from hotline.protocol.messages import decode_body
    from hotline.protocol.relay import Refused

from tests.fuzz.corpus import ORIGIN, corpus, fresh_line, fresh_station, scenario
from tests.fuzz.harness import changed, known_bug, relay_state, station_state

C = corpus()
KEYS = C.keys
RELAY_KEY = C.relay_identity.public.raw if C.relay_identity else b""
STATIONS = [(f"station-{n}", k.public.raw) for n, k in C.identities.items()]


class Working:
    """A relay and a station to feed, copied again from the pristine scenario after any input they accept."""

    def __init__(self) -> None:
        self.relay_line = None
        self.station = None

    def relay(self, newcomer: bool):  # type: ignore[no-untyped-def]
        if self.relay_line is None:
            self.relay_line, self.newcomer = fresh_line(scenario("reconnecting"))
        line = self.relay_line
        if newcomer:
            return line.relay, self.newcomer, line.now
        return line.relay, line.sides["a"].connection, line.now

    def station_(self):  # type: ignore[no-untyped-def]
        if self.station is None:
            self.station = fresh_station(scenario("idle"), "b")
        return self.station


W = Working()
NOW = scenario("idle").line.now


def relay_target(data: bytes) -> None:
    newcomer = bool(data[:1]) and data[0] & 1 == 1
    relay, conn, now = W.relay(newcomer)
    relay.events()
    for c in {id(c): c for c in [*relay.connections, conn]}.values():
        c.data_to_send()
    before = relay_state(relay)
    station = conn.station
    conn.receive_frame(data[1:], now)  # must never raise
    events = relay.events()
    if events and all(isinstance(e, Refused) for e in events):
        moved = changed(before, relay_state(relay))
        if moved or conn.station != station or len(events) != 1:
            raise AssertionError(f"the relay refused ({events}) but moved {sorted(moved)}")
    else:
        W.relay_line = None  # accepted: start again from the scenario
    if conn.closing:
        W.relay_line = None


def station_target(data: bytes) -> None:
    station = W.station_()
    station.events()
    station.data_to_send()
    before = station_state(station)
    try:
        decode_relay_frame(data)
        station.receive_frame(data, NOW)
    except RemoteProtocolError as e:
        if known_bug(e):
            W.station = None
            return
        moved = changed(before, station_state(station)) - {"head"}
        if moved:
            raise AssertionError(f"{type(e).__name__} raised after moving {sorted(moved)}") from e
        return
    except HotlineError as e:
        if known_bug(e):
            W.station = None
            return
        raise
    W.station = None  # accepted: start again from the scenario


def envelope_target(data: bytes) -> None:
    check_envelope(decode_envelope(data), KEYS)


def note_target(data: bytes) -> None:
    try:
        note = notes.parse_note(data)
        for name, key in STATIONS:
            with contextlib.suppress(RemoteProtocolError):
                notes.verify_cosignature(note, name, key)
    finally:
        notes.open_checkpoint(data, ORIGIN, ORIGIN, RELAY_KEY)


def body_target(data: bytes) -> None:
    decode_body(data)


TARGETS = [relay_target, station_target, envelope_target, note_target, body_target]


def test_one_input(data: bytes) -> None:
    if not data:
        return
    target = TARGETS[data[0] % len(TARGETS)]
    payload = data[1:]
    if target is relay_target or target is station_target:
        target(payload)
        return
    with contextlib.suppress(HotlineError):
        target(payload)


def seeds(directory: Path) -> None:
    """The seed corpus: each value prefixed with the byte of its target."""
    items: list[tuple[int, bytes]] = []
    station_frames = [f for frames in C.station_frames.values() for f in frames]
    relay_frames = [f for frames in C.relay_frames.values() for f in frames]
    items += [(0, b"\x00" + f) for f in station_frames] + [(0, b"\x01" + f) for f in station_frames[:4]]
    items += [(1, f) for f in relay_frames]
    items += [(2, e) for e in C.envelopes]
    items += [(3, n) for n in C.checkpoints + C.cosigned]
    items += [(4, b) for b in C.bodies]
    for i, (target, value) in enumerate(items):
        (directory / f"seed-{i:04d}").write_bytes(bytes([target]) + value)


def main() -> None:
    argv = list(sys.argv)
    options = [a for a in argv[1:] if a.startswith("-")]
    dirs = [a for a in argv[1:] if not a.startswith("-")]
    work = Path(tempfile.mkdtemp(prefix="hotline-atheris-"))
    seed_dir = work / "corpus"
    seed_dir.mkdir()
    seeds(seed_dir)
    if not any(o.startswith("-artifact_prefix=") for o in options):
        options.append(f"-artifact_prefix={work}/")
    if not any(o.startswith("-timeout=") for o in options):
        options.append("-timeout=10")
    if not any(o.startswith("-max_len=") for o in options):
        options.append("-max_len=65536")
    print(f"hotline atheris: seeds and artifacts in {work}", file=sys.stderr)
    atheris.Setup([argv[0], *options, *dirs, str(seed_dir)], test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
