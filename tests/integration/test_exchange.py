"""The product as a duty officer uses it: real relay and station processes on 127.0.0.1, real TLS."""

from __future__ import annotations

import json
import time

from .harness import Line, query, wait_until

NOTICE = (
    "--ref", "TUR-2026-000001", "--precedence", "FLASH", "--mode", "EXER",
    "--domain", "GROUND", "--activity", "CONVOY", "--circle", "36.52,37.95,6KM",
    "--start", "2026-11-26T14:00Z", "--end", "2026-11-26T17:00Z", "--text", "Convoy on the M4.",
)  # fmt: skip


def connected(line: Line, station: str, since: str = "") -> str:
    """Wait until a process of the station has authenticated with the relay (after ``since``)."""

    def seen() -> str | None:
        at = query(line.db(station), "SELECT relay_seen_at FROM witness")[0][0]
        return at if at and at > since else None

    return wait_until(seen, 20, f"station {station} to connect")


def listen(line: Line, station: str = "b"):
    process = line.spawn("listen", station, "--json")
    connected(line, station)
    return process


def test_notice_received_read_understood_heartbeat_and_the_log_verifies(line):
    listener = listen(line)
    sent = line.hotline("send", "a", *NOTICE, "--wait", "received", "--timeout", "20", "--json")
    assert sent.returncode == 0, sent.stderr
    result = json.loads(sent.stdout)
    assert result["ref"] == "TUR-2026-000001"
    assert [level for level, _ in result["acks"]] == ["RECEIVED"]

    # B's listener printed the notice once, with its log index.
    [first] = listener.json_lines(1)
    assert first["kind"] == "notice"
    assert first["ref"] == "TUR-2026-000001"
    assert first["log_index"] == result["log_index"]

    # The duty officer at B reads it: READ_UNDERSTOOD with the read-back of area and window.
    acked = line.hotline("ack", "b", "TUR-2026-000001", "--officer", "OOW-2", "--json")
    assert acked.returncode == 0, acked.stderr
    assert json.loads(acked.stdout)["level"] == "READ_UNDERSTOOD"

    beat = line.hotline("heartbeat", "a", "--timeout", "10")
    assert beat.returncode == 0, beat.stdout + beat.stderr
    assert beat.stdout.startswith("HOTLINE OK - heartbeat answered by station-b in ")
    assert "| rtt=" in beat.stdout

    # A learns of READ_UNDERSTOOD when it next connects (the heartbeat did): nothing is left open.
    status = line.hotline("status", "a", "--json")
    assert status.returncode == 0, status.stdout
    report = json.loads(status.stdout)
    assert report["outgoing"] == []
    assert report["overdue"] == 0

    for directory in ("a", "b", "relay"):
        verified = line.hotline("log", "verify", directory)
        assert verified.returncode == 0, verified.stderr
        assert "log verified" in verified.stdout
    listener.terminate()


def test_status_shows_an_overdue_notice_and_exits_1(line):
    line.station_config("a", deadlines={"FLASH": 1, "IMMEDIATE": 1800, "PRIORITY": 10800, "ROUTINE": 86400})
    listener = listen(line)
    sent = line.hotline("send", "a", *NOTICE, "--wait", "received", "--timeout", "20")
    assert sent.returncode == 0, sent.stderr
    time.sleep(1.2)
    status = line.hotline("status", "a")
    assert status.returncode == 1
    assert "TUR-2026-000001  FLASH" in status.stdout
    assert "OVERDUE" in status.stdout
    listener.terminate()


def test_heartbeat_is_ok_then_critical_when_the_peer_is_gone(line):
    listener = listen(line)
    ok = line.hotline("heartbeat", "a", "--timeout", "10")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    listener.terminate()
    gone = line.hotline("heartbeat", "a", "--timeout", "2")
    assert gone.returncode == 2, gone.stdout + gone.stderr
    assert gone.stdout.startswith("HOTLINE CRITICAL - no heartbeat reply from station-b within 2s")
    assert gone.stdout.strip().endswith("| rtt=2s;2;5;0")


def test_heartbeat_without_a_relay_is_critical_and_without_a_station_unknown(line):
    line.kill_relay()
    down = line.hotline("heartbeat", "a", "--timeout", "2")
    assert down.returncode == 2
    assert "HOTLINE CRITICAL - no connection to the relay" in down.stdout
    missing = line.hotline("heartbeat", "nowhere")
    assert missing.returncode == 3
    assert missing.stdout.startswith("HOTLINE UNKNOWN - ")


def test_recipient_offline_gets_100_notices_once_and_in_order(line):
    # B has been on the line once (and published its epoch keys), then goes offline.
    first = listen(line)
    first.terminate()
    sender = line.tool("bulk-send", str(line.path("a")), "100", "TUR-BULK", "60")
    assert sender.finish(90) == 0, sender.lines()
    assert query(line.db("relay"), "SELECT COUNT(*) FROM queue")[0][0] == 100
    listener = line.spawn("listen", "b", "--json")
    wait_until(lambda: query(line.db("b"), "SELECT COUNT(*) FROM inbox")[0][0] == 100, 60, "100 deliveries")
    rows = query(line.db("b"), "SELECT seq, ref FROM inbox ORDER BY log_index")
    assert [seq for seq, _ in rows] == list(range(1, 101))
    assert [ref for _, ref in rows] == [f"TUR-BULK-{i:06d}" for i in range(100)]
    # Shown once each, in order, by the listener.
    shown = [row["ref"] for row in listener.json_lines(100)]
    assert shown == [f"TUR-BULK-{i:06d}" for i in range(100)]
    wait_until(
        lambda: (
            query(
                line.db("relay"),
                "SELECT COUNT(*) FROM queue WHERE recipient = (SELECT recipient FROM leaves WHERE idx = 0)",
            )[0][0]
            == 0
        ),
        20,
        "B's queue to drain",
    )
    listener.terminate()
