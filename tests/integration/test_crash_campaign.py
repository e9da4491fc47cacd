"""
A crash campaign: the relay and each station killed with SIGKILL at random points, seeded and reproducible.

Each run sends a burst of notices from A to B and kills one process while it is
in flight: at a random instant, or at a failpoint (the relay between committing a
group of submissions and answering any of them; a station between storing a
delivery and sending anything). The killed process is started again, and the
run ends when everything is delivered and acknowledged. After every run, for the
whole line: nothing accepted was lost, nothing is there twice, each station's
statements are in order, every database opens, and ``hotline log verify`` passes.

``make test`` runs a few runs of each kind; ``make chaos`` (HOTLINE_CRASH_RUNS=20)
runs twenty of each. HOTLINE_CRASH_SEED chooses the seed (the default is fixed).
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter

import pytest

from .harness import Line, query, wait_until
from .test_exchange import connected

RUNS = int(os.environ.get("HOTLINE_CRASH_RUNS", "2"))
SEED = int(os.environ.get("HOTLINE_CRASH_SEED", "20261126"))
# What each victim's campaign did, printed at the end of the run (conftest.py).
CAMPAIGN: dict[str, Counter[str]] = {}


def _settle(line: Line, runs: int) -> None:
    """Everything sent is accepted, delivered, stored and answered; every queue is empty."""

    def settled() -> bool:
        pending = sum(query(line.db(s), "SELECT COUNT(*) FROM pending")[0][0] for s in ("a", "b"))
        owed = sum(query(line.db(s), "SELECT COUNT(*) FROM owed")[0][0] for s in ("a", "b"))
        queued = query(line.db("relay"), "SELECT COUNT(*) FROM queue")[0][0]
        return pending == 0 and owed == 0 and queued == 0

    wait_until(settled, 120, f"the line to settle after run {runs}")


def _check(line: Line) -> None:
    """Nothing lost, nothing twice, everything in order, every log verifies."""
    sent = [i for (i,) in query(line.db("a"), "SELECT message_id FROM outbox WHERE kind = 'notice' ORDER BY seq")]
    got = [i for (i,) in query(line.db("b"), "SELECT message_id FROM inbox WHERE kind = 'notice' ORDER BY log_index")]
    assert got == sent, "B does not hold exactly A's notices, once each, in order"
    for station in ("a", "b"):
        seqs = [s for (s,) in query(line.db(station), "SELECT seq FROM outbox ORDER BY seq")]
        assert seqs == list(range(1, len(seqs) + 1))
        inbox = [s for (s,) in query(line.db(station), "SELECT seq FROM inbox ORDER BY log_index")]
        assert inbox == list(range(1, len(inbox) + 1))
        assert query(line.db(station), "SELECT COUNT(*) FROM incidents WHERE code IN ('dropped', 'chain-broken')") == [
            (0,)
        ]
    logged = query(line.db("relay"), "SELECT COUNT(*), COUNT(DISTINCT message_id) FROM leaves")[0]
    assert logged[0] == logged[1]
    receipts = query(line.db("a"), "SELECT COUNT(*) FROM inbox WHERE level = 'RECEIVED'")[0][0]
    assert receipts == len(sent), "a RECEIVED missing, or twice"
    for directory in ("a", "b", "relay"):
        verified = line.hotline("log", "verify", directory)
        assert verified.returncode == 0, verified.stderr


def _burst(line: Line, rng: random.Random, run: int, figures: Counter[str]) -> object:
    notices = rng.randint(20, 60)
    figures["notices"] += notices
    return line.tool("bulk-send", str(line.path("a")), str(notices), f"TUR-C{run:03d}", "120")


@pytest.mark.parametrize("victim", ["relay", "station-b", "station-a"])
def test_crash_campaign(line, victim):
    rng = random.Random(f"{SEED}-{victim}")
    figures = CAMPAIGN.setdefault(victim, Counter())
    b = line.spawn("listen", "b", "--json")
    connected(line, "b")
    a = line.spawn("listen", "a", "--json")
    connected(line, "a")
    for run in range(RUNS):
        failpoint = rng.choice([None, "relay:after-commit" if victim == "relay" else "station:after-receive"])
        if victim == "relay":
            sender = _burst(line, rng, run, figures)
            if failpoint:
                line.kill_relay()
                line.start_relay(env={"HOTLINE_FAILPOINT": failpoint})
                line.relay_process.wait(60)  # it kills itself at the first commit of a submission
            else:
                time.sleep(rng.uniform(0.05, 1.5))
                line.kill_relay()
            line.start_relay()
            assert sender.finish(180) == 0, sender.lines()
        elif victim == "station-b":
            if failpoint:
                b.terminate()
                b = line.spawn("listen", "b", "--json", env={"HOTLINE_FAILPOINT": failpoint})
            sender = _burst(line, rng, run, figures)
            if failpoint:
                b.process.wait(60)  # killed itself right after storing a delivery
            else:
                time.sleep(rng.uniform(0.05, 1.5))
                b.kill()
            b = line.spawn("listen", "b", "--json")
            assert sender.finish(180) == 0, sender.lines()
        else:
            sender = _burst(line, rng, run, figures)
            time.sleep(rng.uniform(0.05, 1.0))
            sender.kill()  # A's sender dies with notices sealed, some perhaps not yet accepted
            drained = line.tool("drain", str(line.path("a")), "120")
            assert drained.finish(180) == 0, drained.lines()
        # Station A's sender dies at a random instant whatever the draw: its failpoint is the listener's.
        at_failpoint = failpoint is not None and victim != "station-a"
        figures["kills at a failpoint" if at_failpoint else "kills at a random instant"] += 1
        _settle(line, run)
        _check(line)
        figures["runs checked"] += 1
    b.terminate()
    a.terminate()
