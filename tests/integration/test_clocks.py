"""A station whose clock is wrong: the heartbeat says so before the peer refuses what it sends, and when it does.

``HOTLINE_CLOCK_OFFSET_SECONDS`` moves the clock of one station's process (``hotline.failpoints.now``); the relay
and the peer keep the system's.
"""

from __future__ import annotations

import re

from .harness import Line, query, wait_until
from .test_exchange import listen


def _seconds_ahead(said: str) -> int:
    found = re.search(r"this station's clock is (\d+)s ahead of the relay's: check its time source", said)
    assert found, said
    return int(found.group(1))


def _heartbeat_ahead(line: Line, seconds: int, timeout: int) -> tuple[int, str]:
    """A heartbeat check of A with its clock ``seconds`` ahead: the exit code and the one line it printed."""
    check = line.hotline(
        "heartbeat", "a", "--timeout", str(timeout), env={"HOTLINE_CLOCK_OFFSET_SECONDS": str(seconds)}
    )
    [said] = check.stdout.splitlines()
    return check.returncode, said


def test_a_clock_two_minutes_ahead_is_a_warning_though_the_heartbeat_is_answered(line):
    listener = listen(line)
    code, said = _heartbeat_ahead(line, 120, timeout=20)
    assert code == 1, said
    assert said.startswith("HOTLINE WARNING - heartbeat answered by station-b in "), said
    assert 118 <= _seconds_ahead(said) <= 122
    # The right time again: OK.
    again = line.hotline("heartbeat", "a", "--timeout", "20")
    assert again.returncode == 0, again.stdout + again.stderr
    listener.terminate()


def test_a_clock_ten_minutes_ahead_is_critical_and_the_peer_records_why(line):
    listener = listen(line)
    code, said = _heartbeat_ahead(line, 600, timeout=5)
    assert code == 2, said
    assert said.startswith("HOTLINE CRITICAL - no heartbeat reply from station-b within 5s; "), said
    assert 598 <= _seconds_ahead(said) <= 602
    # B refused the heartbeat as dated in the future, and says so; it did not take it in.
    [incident] = [r for r in listener.json_lines(1) if "incident" in r]
    assert incident["incident"] == "clock-skew", incident
    assert re.fullmatch(
        r"the statement is dated (59[89]|60[0-2])s in the future \(at most 300s allowed\): check both stations' clocks",
        incident["message"],
    ), incident
    assert query(line.db("b"), "SELECT COUNT(*) FROM inbox")[0][0] == 0
    wait_until(lambda: query(line.db("a"), "SELECT COUNT(*) FROM incidents WHERE code = 'heartbeat'")[0][0], 10,
               "A's heartbeat incident")  # fmt: skip
    listener.terminate()
