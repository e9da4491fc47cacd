"""A flood against the relay (issue 4, item 5) while the two stations go on working.

``bench/flood.py``, the attacker of ``bench/flood_bench.py``, runs as its own process with a smaller flood than the
benchmark's (200 idle connections, 10 slow clients, 5 spammers of authentication, 2 senders of oversized frames)
and a relay that cuts unauthenticated connections after 2 s, so that every kind of refusal happens many times
within the test. The figures (round trip and memory against a quiet baseline) are the benchmark's: ``make bench``.
"""

from __future__ import annotations

import json
import time

from tests.adversary.harness import send
from tests.integration.harness import query, wait_until
from tests.integration.test_refusals import refused_count

from .network import FIGURES


def test_the_stations_keep_exchanging_while_the_relay_is_flooded_and_every_attack_is_refused(line):
    line.kill_relay()
    line.relay_config(unauthenticated_seconds=2.0)
    line.start_relay()
    listener = line.spawn("listen", "b", "--json")
    wait_until(lambda: query(line.db("b"), "SELECT relay_seen_at FROM witness")[0][0], 30, "B to connect")
    flood = line.spawn(
        "--idle", "200", "--slowloris", "10", "--auth-spam", "5", "--oversized", "2", "--seconds", "120",
        line.url, str(line.path("a") / "relay-ca.pem"), module="bench.flood",
    )  # fmt: skip
    started = time.monotonic()
    # The flood is on: idle connections have been cut at their deadline and opened again.
    wait_until(lambda: refused_count(line, "auth-timeout") >= 200, 60, "the relay to cut 200 idle connections")
    for i in range(10):
        sent = send(line, f"FLOOD-{i}", wait="received")
        assert sent.returncode == 0, sent.stderr
    wait_until(lambda: refused_count(line, "frame-too-large") >= 5, 30, "5 oversized frames refused")
    # Slow clients are cut by the time limit of the opening handshake (10 s): let it pass once.
    time.sleep(max(0.0, started + 12 - time.monotonic()))
    assert flood.process.poll() is None, flood.lines()
    flood.terminate()
    counts = json.loads(flood.lines()[-1])
    FIGURES.append(("flood", counts))
    assert line.relay_process is not None
    assert line.relay_process.poll() is None, (line.root / "relay.log").read_text()[-3000:]
    # Every kind of attack was tried many times and refused as such.
    assert counts["idle opened"] >= 400
    assert counts["idle cut by the relay"] >= 200
    assert counts["auth spam refused"] >= 10
    assert counts["oversized closed"] >= 5
    assert counts["slowloris opened"] >= 10
    assert counts["slowloris cut by the relay"] >= 10
    assert refused_count(line, "unknown-key") >= 10
    # The line worked throughout: each notice once at B, each RECEIVED at A, nothing else in any store.
    assert [ref for (ref,) in query(line.db("b"), "SELECT ref FROM inbox ORDER BY seq")] == [
        f"FLOOD-{i}" for i in range(10)
    ]
    assert query(line.db("a"), "SELECT COUNT(*) FROM inbox WHERE level = 'RECEIVED'") == [(10,)]
    assert query(line.db("relay"), "SELECT COUNT(*) FROM leaves") == [(20,)]
    for station in ("a", "b"):
        assert query(line.db(station), "SELECT code, message FROM incidents") == []
    # And the relay still takes a station that connects afresh, after the flood.
    after = send(line, "FLOOD-AFTER", wait="received")
    assert after.returncode == 0, after.stderr
    assert listener.process.poll() is None
