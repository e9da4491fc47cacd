"""Several processes of one station at once: a listener, a heartbeat timer and one-shot sends, nothing lost or twice."""

from __future__ import annotations

import json

from .harness import query, wait_until
from .test_exchange import connected, listen


def test_a_listener_a_heartbeat_timer_and_sends_share_one_station(line):
    listen(line, "b")
    a_listener = line.spawn("listen", "a", "--json")
    connected(line, "a")
    timer = line.spawn("heartbeat", "a", "--every", "0.5", "--timeout", "5")
    # Meanwhile, one-shot sends from the same station, each its own process.
    for i in range(1, 6):
        sent = line.hotline(
            "send", "a", "--ref", f"TUR-2026-{i:06d}", "--precedence", "PRIORITY", "--domain", "NAVAL",
            "--activity", "TRANSIT", "--circle", "35.1,33.9,12NM", "--start", "2026-11-27T06:00Z",
            "--end", "2026-11-27T09:00Z", "--text", f"Transit {i}.", "--wait", "received", "--timeout", "20",
        )  # fmt: skip
        assert sent.returncode == 0, sent.stderr
    wait_until(lambda: len(timer.lines()) >= 3, 20, "three heartbeats from the timer")
    timer.terminate()
    # A's sequence numbers have no gap and no repeat, whichever process sealed them.
    seqs = [seq for (seq,) in query(line.db("a"), "SELECT seq FROM outbox ORDER BY seq")]
    assert seqs == list(range(1, len(seqs) + 1))
    # B got each notice once; A got each RECEIVED once, whichever of its processes took it in.
    assert query(line.db("b"), "SELECT COUNT(*), COUNT(DISTINCT ref) FROM inbox WHERE kind = 'notice'")[0] == (5, 5)
    received = query(line.db("a"), "SELECT answers, COUNT(*) FROM inbox WHERE level = 'RECEIVED' GROUP BY answers")
    assert len(received) == 5
    assert all(count == 1 for _, count in received)
    # Every heartbeat the timer sent was answered once (on a loaded machine, perhaps slowly: WARNING).
    assert all(line_.startswith(("HOTLINE OK - ", "HOTLINE WARNING - ")) for line_ in timer.lines())
    replies = query(line.db("a"), "SELECT answers, COUNT(*) FROM inbox WHERE kind = 'heartbeat-reply' GROUP BY answers")
    assert all(count == 1 for _, count in replies)
    # The listener of A showed each RECEIVED at most once (others may have been taken in by another process).
    shown = [row["answers"] for row in map(json.loads, a_listener.lines()) if row.get("level") == "RECEIVED"]
    assert len(shown) == len(set(shown))
    a_listener.terminate()
    # Several processes, one history: not a single incident at either station.
    assert query(line.db("a"), "SELECT code, message FROM incidents") == []
    assert query(line.db("b"), "SELECT code, message FROM incidents") == []
    for directory in ("a", "b", "relay"):
        assert line.hotline("log", "verify", directory).returncode == 0
