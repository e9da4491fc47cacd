"""What the fuzz properties share: the settings profiles, a watchdog, counters, and snapshots of state.

Profiles. ``hotline-fuzz`` (the default, what ``make test`` runs): a small seeded
sample, ``derandomize=True``, the same examples on every run. With
``HOTLINE_FUZZ_EXAMPLES=N`` set, ``hotline-fuzz-long``: ``N`` examples per
property, random, no deadline. Neither profile is loaded globally, so the other
tests keep their own settings; each property is decorated with ``FUZZ``.

Hangs. Hypothesis deadlines are off (a loaded machine makes them flaky); instead
every call into hotline runs under ``watchdog()``, a SIGALRM timer that raises
``Hang`` (not a ``HotlineError``, so the property fails) after ``WATCHDOG``
seconds.

Known bugs. An input that breaks a property and matches a bug already written up
in ``test_fuzz_found.py`` (recognised by ``known_bug()``: the exception and the
function it came from) is counted, not failed, so that the suite stays useful
until the fix lands; ``HOTLINE_FUZZ_STRICT=1`` turns that off.
"""

from __future__ import annotations

import os
import signal
import traceback
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hypothesis import HealthCheck, settings

from hotline.protocol.relay import Relay
from hotline.protocol.station import Station

__all__ = ["COUNTS", "EXAMPLES", "FUZZ", "WATCHDOG", "Hang", "known_bug", "relay_state", "station_state", "watchdog"]

EXAMPLES = int(os.environ.get("HOTLINE_FUZZ_EXAMPLES", "0") or 0)
STRICT = os.environ.get("HOTLINE_FUZZ_STRICT", "") not in ("", "0")
DEFAULT_EXAMPLES = 60
WATCHDOG = 10.0

_COMMON: dict[str, Any] = {
    "deadline": None,
    "database": None,
    "print_blob": False,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
}
settings.register_profile("hotline-fuzz", max_examples=DEFAULT_EXAMPLES, derandomize=True, **_COMMON)
settings.register_profile("hotline-fuzz-long", max_examples=max(EXAMPLES, 1), derandomize=False, **_COMMON)
FUZZ = settings.get_profile("hotline-fuzz-long" if EXAMPLES else "hotline-fuzz")

# Cases run, by property (and known bugs met, by name): printed after a long run.
COUNTS: Counter[str] = Counter()


class Hang(Exception):
    """A call into hotline did not return within ``WATCHDOG`` seconds."""


@contextmanager
def watchdog(seconds: float = WATCHDOG) -> Iterator[None]:
    """Raise ``Hang`` in the block if it runs longer than ``seconds`` (main thread only)."""

    def alarm(signum: int, frame: object) -> None:
        raise Hang(f"no answer within {seconds} s")

    try:
        previous = signal.signal(signal.SIGALRM, alarm)
    except ValueError:  # not the main thread: no watchdog
        yield
        return
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _functions(error: BaseException) -> list[str]:
    return [frame.name for frame in traceback.extract_tb(error.__traceback__)]


def known_bug(error: BaseException) -> str | None:
    """The name of the bug in ``test_fuzz_found.py`` that ``error`` is an instance of, if any."""
    if STRICT:
        return None
    # Every bug the fuzzing found is fixed (tests/fuzz/test_fuzz_found.py keeps the reproductions).
    return None


def tolerate(error: BaseException) -> bool:
    """Count ``error`` if it is a known bug (and tell the caller to let it pass)."""
    name = known_bug(error)
    if name is None:
        return False
    COUNTS[f"known bug: {name}"] += 1
    return True


# --- state ---------------------------------------------------------------------------------------------


def relay_state(relay: Relay) -> dict[str, Any]:
    """Everything of the relay that its store keeps, or that a refused frame must not move."""
    return {
        "size": relay.tree.size,
        "root": relay.tree.root(),
        "durable": relay.durable_size,
        "ids": dict(relay.ids),
        "queues": {k: tuple(q) for k, q in relay.queues.items()},
        "last_enqueued": dict(relay.last_enqueued),
        "last_seq": dict(relay.last_seq),
        "epoch_keys": {k: tuple(sorted(d)) for k, d in relay.epoch_keys.items()},
        "checkpoints": dict(relay.checkpoints),
        "cosignatures": {k: dict(d) for k, d in relay.cosignatures.items()},
        "cosigned": relay.cosigned,
        "staged": [(q.index, q.recipient) for q in relay._staged],
        "pending": [(p.message_id, p.index, id(p.connection)) for p in relay._pending],
        "connections": [(id(c), c.station, c.receive, c.head_size, tuple(sorted(c._sent))) for c in relay.connections],
    }


def station_state(station: Station) -> dict[str, Any]:
    """Everything of a station that its store keeps, or that a refused frame must not move."""
    s = station.state
    return {
        "next_seq": s.next_seq,
        "last_hash": s.last_hash,
        "peer_seq": s.peer_seq,
        "peer_hash": s.peer_hash,
        "peer_index": s.peer_index,
        "head": s.head,
        "cosigned": s.cosigned,
        "logged": s.logged,
        "recent": dict(s.recent),
        "authenticated": station.authenticated,
        "unaccepted": tuple(station.unaccepted),
        "in_flight": tuple(station.in_flight),
        "peer_keys": tuple(sorted(station.peer_keys)),
        "open_notices": {k: v[2] for k, v in station.open_notices.items()},
        "heartbeats": dict(station.heartbeats),
        "pending_acks": len(station.pending_acks),
    }


def changed(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    return {k for k in before if before[k] != after[k]}
