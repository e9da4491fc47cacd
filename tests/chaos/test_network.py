"""
A bad network between the stations and the relay (issue 4, item 2).

Every station connects to the relay through ``tests/chaos/proxy.py``, which cuts connections (sometimes in the
middle of a TLS record), stalls one direction for up to seconds, delays every chunk and forwards in pieces of
1 to 300 bytes. Station A's bulk sender pushes notices to B's listener through it; then nothing may be lost,
repeated or reordered anywhere: B's inbox, A's RECEIVEDs, the relay's log and queues, the listener's output,
and every log verifies.

``make test`` runs the small version (300 notices); the 2,000-notice one runs with ``HOTLINE_CHAOS=1``.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from typing import Any

import pytest

from tests.integration.harness import Line, Spawned, count, query, wait_until

from .network import FIGURES, aim_stations_at, start_proxy

PREFIX = "CHAOS"


def seed(default: int) -> int:
    """The proxy's seed: HOTLINE_CHAOS_SEED to try another run of decisions, or to replay one."""
    return int(os.environ.get("HOTLINE_CHAOS_SEED", default))


def seen_at(line: Line, station: str) -> str | None:
    """When a process of the station last authenticated with the relay (None: never)."""
    return query(line.db(station), "SELECT relay_seen_at FROM witness")[0][0]


def connected(line: Line, station: str, since: str = "", timeout: float = 20) -> str:
    """Wait until a process of the station authenticates with the relay (after ``since``); return when it did."""

    def seen() -> str | None:
        at = seen_at(line, station)
        return at if at is not None and at > since else None

    return wait_until(seen, timeout, f"station {station} to connect")


def incidents(line: Line, station: str) -> list[tuple[str, str]]:
    return [(code, message) for code, message in query(line.db(station), "SELECT code, message FROM incidents")]


def notices_shown(listener: Spawned) -> list[str]:
    return [row["ref"] for row in map(json.loads, listener.lines()) if row.get("kind") == "notice"]


def exchange_through_a_bad_network(
    line: Line, notices: int, seed: int, chaos: dict[str, Any], timeout: float
) -> tuple[dict[str, Any], Spawned]:
    """B listens, A sends ``notices`` with the bulk sender, then A's listener takes the RECEIVEDs in.

    Returns what was measured, with the proxy's counts, and B's listener (stopped).
    """
    started = time.monotonic()
    proxy = start_proxy(line, seed, **chaos)
    aim_stations_at(line, proxy.url)
    b_listener = line.spawn("listen", "b", "--json")
    wait_until(lambda: seen_at(line, "b"), 120, "B to connect through the proxy")

    sender = line.tool("bulk-send", str(line.path("a")), str(notices), PREFIX, str(timeout))
    assert sender.finish(timeout + 30) == 0, [*sender.lines(), sender.out.with_suffix(".log").read_text()[-3000:]]
    sent_at = time.monotonic()
    a_listener = line.spawn("listen", "a", "--json")
    wait_until(lambda: count(line, "b", "SELECT COUNT(*) FROM inbox") >= notices, timeout, f"{notices} at B")
    wait_until(
        lambda: count(line, "a", "SELECT COUNT(*) FROM inbox WHERE level = 'RECEIVED'") >= notices,
        timeout,
        f"{notices} RECEIVED at A",
    )
    wait_until(lambda: count(line, "relay", "SELECT COUNT(*) FROM queue") == 0, timeout, "the relay's queues to drain")
    done_at = time.monotonic()
    # Give the listener the time to print what it stored last, then stop everyone but the relay.
    wait_until(lambda: len(notices_shown(b_listener)) >= notices, 30, f"B's listener to show {notices} notices")
    # Nothing crashed on the way.
    for name, process in (("B's listener", b_listener.process), ("A's listener", a_listener.process)):
        assert process.poll() is None, f"{name} exited with {process.returncode}"
    assert line.relay_process is not None
    assert line.relay_process.poll() is None, (line.root / "relay.log").read_text()[-3000:]
    b_listener.terminate()
    a_listener.terminate()
    summary = proxy.stop()
    figures = {
        "notices": notices,
        "seed": seed,
        "seconds": round(done_at - started, 1),
        "seconds_to_all_accepted": round(sent_at - started, 1),
        "cuts": summary["cuts"],
        "cuts_mid_chunk": summary["cuts_mid_chunk"],
        "stalls": summary["stalls"],
        "stall_seconds": summary["stall_seconds"],
        "connections": summary["connections"],
        "fragments": summary["fragments"],
        "bytes": summary["bytes_up"] + summary["bytes_down"],
    }
    return figures, b_listener


def check_nothing_lost_repeated_or_reordered(line: Line, notices: int, b_listener: Spawned) -> None:
    refs = [f"{PREFIX}-{i:06d}" for i in range(notices)]
    # A sealed each notice once, seq 1..N.
    sent = query(line.db("a"), "SELECT seq, ref, message_id, statement_hash FROM outbox ORDER BY seq")
    assert [(seq, ref) for seq, ref, _, _ in sent] == [(i + 1, ref) for i, ref in enumerate(refs)]
    # B's inbox holds each notice exactly once, in order: seq 1..N and the refs in log order.
    rows = query(line.db("b"), "SELECT seq, ref, statement_hash FROM inbox ORDER BY log_index")
    assert [seq for seq, _, _ in rows] == list(range(1, notices + 1))
    assert [ref for _, ref, _ in rows] == refs
    assert [h for _, _, h in rows] == [h for _, _, _, h in sent]
    # B answered each RECEIVED once; A holds exactly one RECEIVED for each of its notices.
    answered = query(line.db("b"), "SELECT answers FROM outbox WHERE level = 'RECEIVED' ORDER BY seq")
    assert [h for (h,) in answered] == [h for _, _, _, h in sent]
    received = Counter(h for (h,) in query(line.db("a"), "SELECT answers FROM inbox WHERE level = 'RECEIVED'"))
    assert set(received) == {h for _, _, _, h in sent}
    assert set(received.values()) == {1}
    # The relay's log holds every message of both stations exactly once, and nothing else.
    logged = Counter(i for (i,) in query(line.db("relay"), "SELECT message_id FROM leaves"))
    ids = [i for _, _, i, _ in sent] + [i for (i,) in query(line.db("b"), "SELECT message_id FROM outbox")]
    assert set(logged.values()) == {1}
    assert sorted(logged) == sorted(ids)
    assert count(line, "relay", "SELECT COUNT(*) FROM queue") == 0
    # B's listener showed each notice once, in order.
    assert notices_shown(b_listener) == refs
    # A bad network is not an attack: no incident at either station (no split view, gap, replay, refusal).
    for station in ("a", "b"):
        assert incidents(line, station) == [], f"incidents at {station}"
    for directory in ("a", "b", "relay"):
        verified = line.hotline("log", "verify", directory, timeout=300)
        assert verified.returncode == 0, verified.stdout + verified.stderr


# A bad network: every chunk (what one read returns, up to 64 KiB) delayed up to 5 ms and forwarded in pieces
# of 1 to 300 bytes; 1 chunk in 170 stalls its direction for 0.3 to 3 s; 1 in 200 is the last before a cut.
# The small run has fewer chunks (a few hundred to 900 against 6,000, fewer as the line got faster): 1 in 40
# stalls there, for 0.2 to 2 s, and 1 in 67 is cut.
CHAOS: dict[str, Any] = {
    "cut_probability": 0.005,
    "stall_probability": 0.006,
    "max_stall_ms": 3000,
    "max_delay_ms": 5,
    "fragment": True,
}


def test_300_notices_through_a_bad_network_arrive_once_in_order_and_are_received_once(line):
    figures, b_listener = exchange_through_a_bad_network(
        line,
        300,
        seed=seed(4),
        chaos={**CHAOS, "cut_probability": 0.015, "stall_probability": 0.025, "max_stall_ms": 2000},
        timeout=240,
    )
    FIGURES.append(("300 notices", figures))
    check_nothing_lost_repeated_or_reordered(line, 300, b_listener)
    assert figures["cuts"] >= 3, f"too few cuts to test anything: {figures}"
    assert figures["stalls"] >= 3, f"too few stalls to test anything: {figures}"


@pytest.mark.skipif(os.environ.get("HOTLINE_CHAOS") != "1", reason="2,000 notices: set HOTLINE_CHAOS=1")
def test_2000_notices_through_a_bad_network_arrive_once_in_order_and_are_received_once(line):
    figures, b_listener = exchange_through_a_bad_network(line, 2000, seed=seed(2000), chaos=CHAOS, timeout=900)
    FIGURES.append(("2000 notices", figures))
    check_nothing_lost_repeated_or_reordered(line, 2000, b_listener)
    assert figures["cuts"] >= 15, f"too few cuts to test anything: {figures}"
    assert figures["stalls"] >= 15, f"too few stalls to test anything: {figures}"


# --- what the bad network found, and was fixed ---------------------------------------------------------


def test_a_listener_beside_a_sender_of_the_same_station_raises_no_false_alarm(line):
    # No proxy, no fault: the relay is honest and the network perfect. operations.md: "Other processes of the
    # same station may run beside it at any time".
    line.spawn("listen", "b", "--json")
    connected(line, "b")
    line.spawn("listen", "a", "--json")
    connected(line, "a")
    sender = line.tool("bulk-send", str(line.path("a")), "300", PREFIX, "120")
    assert sender.finish(150) == 0, sender.lines()
    wait_until(lambda: count(line, "relay", "SELECT COUNT(*) FROM queue") == 0, 60, "the relay's queues to drain")
    received = count(line, "a", "SELECT COUNT(*) FROM inbox WHERE level = 'RECEIVED'")
    found = Counter(code for code, _ in incidents(line, "a"))
    assert (found, received) == (Counter(), 300), f"incidents at A: {dict(found)}; RECEIVED taken in: {received}"


def test_a_station_reconnects_at_once_after_each_cut_of_a_healthy_connection(line):
    proxy = start_proxy(line, seed=7)  # no random faults: only the cuts this test makes with SIGUSR1
    aim_stations_at(line, proxy.url)
    line.spawn("listen", "b", "--json")
    last = connected(line, "b")
    waits = []
    for _ in range(6):
        time.sleep(1.0)  # a healthy session: authenticated, and quiet for a second
        proxy.process.send_signal(signal.SIGUSR1)
        cut_at = time.monotonic()
        last = connected(line, "b", since=last, timeout=60)
        waits.append(round(time.monotonic() - cut_at, 2))
    assert proxy.stop()["cuts_on_demand"] == 6
    # A fraction of a second each time (it was 0.2 s doubling each time: the 6th took 3.2 to 9.6 s).
    assert max(waits) < 3, f"seconds from each cut to the next authentication: {waits}"


def test_a_cosignature_that_comes_late_over_a_slow_link_is_no_incident(line):
    # A sends straight to the relay; B listens through the proxy, which will stall B's link for 12 s.
    proxy = start_proxy(line, seed=12)
    aim_stations_at(line, proxy.url, stations=("b",))
    line.spawn("listen", "b", "--json")
    connected(line, "b")
    sender = line.tool("bulk-send", str(line.path("a")), "3000", PREFIX, "120")
    wait_until(lambda: count(line, "b", "SELECT COUNT(*) FROM inbox") >= 100, 60, "B to take in 100 notices")
    proxy.process.send_signal(signal.SIGUSR2)  # B's link stalls 12 s while A goes on: many commits, checkpoints
    assert sender.finish(150) == 0, sender.lines()
    wait_until(lambda: count(line, "b", "SELECT COUNT(*) FROM accepted") == 3000, 120, "B's 3000 RECEIVEDs logged")
    assert proxy.stop()["stalls_on_demand"] == 1
    # None (it was "the relay refused: no recent checkpoint of size N to cosign (malformed, DecodeError)").
    assert incidents(line, "b") == []
