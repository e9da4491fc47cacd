"""A full disk: the write is refused with a named error, nothing half-stored, nothing accepted lost.

``HOTLINE_STORE_MAX_PAGES`` caps every database a process opens at a number of pages (SQLite's
``max_page_count``); a write past the cap fails with ``SQLITE_FULL``, the error a full disk gives.
Each test first compacts the database (``VACUUM``), so that no free page inside it can take the write.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from .harness import count, query, wait_until
from .test_exchange import NOTICE, connected, listen

FULL = "the disk is full: free space on it, then try again; nothing of this was stored (SQLITE_FULL)"


def compact(db: Path) -> int:
    """VACUUM the database (no process may have it open for writing); its size in pages afterwards."""
    conn = sqlite3.connect(db)
    try:
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return int(conn.execute("PRAGMA page_count").fetchone()[0])
    finally:
        conn.close()


def test_send_on_a_full_disk_fails_with_one_line_and_stores_nothing(line):
    listen(line).terminate()  # B publishes its epoch keys
    first = line.hotline("send", "a", *NOTICE, "--timeout", "20")
    assert first.returncode == 0, first.stderr
    before = query(line.db("a"), "SELECT seq, message_id FROM outbox ORDER BY seq")
    pages = compact(line.db("a"))
    sent = line.hotline(
        "send", "a", *NOTICE[:1], "TUR-2026-000002", *NOTICE[2:], "--timeout", "5",
        env={"HOTLINE_STORE_MAX_PAGES": str(pages)},
    )  # fmt: skip
    assert sent.returncode == 1
    [message] = sent.stderr.splitlines()
    assert message == f"hotline: StoreError: {Path('a') / 'station.db'}: {FULL}"  # the path as the user named it
    assert query(line.db("a"), "SELECT seq, message_id FROM outbox ORDER BY seq") == before
    assert count(line, "a", "SELECT COUNT(*) FROM pending") == 0
    # With room again, the same command works, and the numbering goes on without a gap.
    again = line.hotline("send", "a", *NOTICE[:1], "TUR-2026-000002", *NOTICE[2:], "--timeout", "20")
    assert again.returncode == 0, again.stderr
    assert [seq for seq, _ in query(line.db("a"), "SELECT seq, ref FROM outbox WHERE kind = 'notice'")] == [1, 2]


def test_a_relay_whose_disk_fills_stops_and_after_restart_nothing_accepted_is_lost(line):
    listen(line).terminate()  # B publishes its epoch keys, then is away: the relay queues what A sends
    line.stop()
    pages = compact(line.db("relay"))
    # Room for a few dozen notices (a log entry and a queued envelope each take two or three pages), taken a
    # few at a time (paced by the relay's rate limit), so that the disk fills in the middle of the burst.
    line.relay_config(submissions_per_second=50, submission_burst=5)
    relay = line.start_relay(env={"HOTLINE_STORE_MAX_PAGES": str(pages + 60)})
    sender = line.tool("bulk-send", str(line.path("a")), "100", "TUR-FULL", "20")
    assert relay.wait(60) == 1
    log = (line.root / "relay.log").read_text()
    assert '"event": "the store refused a write: stopping"' in log
    last = log.splitlines()[-1]
    assert last.startswith("hotline: StoreError: "), last
    assert last.endswith(FULL), last
    assert sender.finish(60) == 1  # what the relay did not accept, A still holds, unaccepted

    accepted = query(line.db("a"), "SELECT message_id, log_index FROM accepted JOIN outbox USING (seq)")
    assert 0 < len(accepted) < 100, "the disk should have filled in the middle of the burst"
    logged = dict(query(line.db("relay"), "SELECT message_id, idx FROM leaves"))
    # Every receipt A holds names an entry the relay has on disk, at that index: nothing accepted was lost.
    assert all(logged.get(message_id) == index for message_id, index in accepted)
    assert sorted(logged.values()) == list(range(len(logged)))  # and the log has no hole

    line.start_relay()  # room again
    drained = line.tool("drain", str(line.path("a")), "60")
    assert drained.finish(90) == 0, drained.lines()
    listener = line.spawn("listen", "b", "--json")
    wait_until(lambda: count(line, "b", "SELECT COUNT(*) FROM inbox") == 100, 90, "100 deliveries")
    rows = query(line.db("b"), "SELECT seq, ref FROM inbox ORDER BY log_index")
    assert [seq for seq, _ in rows] == list(range(1, 101))
    assert [ref for _, ref in rows] == [f"TUR-FULL-{i:06d}" for i in range(100)]
    notices = query(line.db("a"), "SELECT message_id FROM outbox WHERE kind = 'notice'")
    logged = {m for (m,) in query(line.db("relay"), "SELECT message_id FROM leaves")}
    assert len(notices) == 100
    assert {m for (m,) in notices} <= logged
    listener.terminate()
    for directory in ("a", "b", "relay"):
        verified = line.hotline("log", "verify", directory)
        assert verified.returncode == 0, verified.stderr


def test_a_station_whose_disk_fills_takes_nothing_in_and_gets_it_all_once_room_is_made(line):
    listen(line).terminate()
    pages = compact(line.db("b"))
    full = line.spawn("listen", "b", "--json", env={"HOTLINE_STORE_MAX_PAGES": str(pages)})
    since = query(line.db("b"), "SELECT relay_seen_at FROM witness")[0][0]
    for i in range(3):
        sent = line.hotline("send", "a", *NOTICE[:1], f"TUR-2026-00000{i + 1}", *NOTICE[2:], "--timeout", "20")
        assert sent.returncode == 0, sent.stderr
    # B says so where its duty officer looks (no incident can be stored), and keeps trying.
    [told] = full.json_lines(1)
    assert told["incident"] == "store", told
    assert told["message"].endswith(FULL), told
    assert full.process.poll() is None
    assert count(line, "b", "SELECT COUNT(*) FROM inbox") == 0
    # Not confirmed: the relay keeps all three for B.
    [(b_key, queued)] = query(line.db("relay"), "SELECT recipient, COUNT(*) FROM queue GROUP BY recipient")
    assert queued == 3
    full.terminate()

    listener = line.spawn("listen", "b", "--json")
    connected(line, "b", since=since)
    assert [r["ref"] for r in listener.json_lines(3)] == [f"TUR-2026-00000{i + 1}" for i in range(3)]
    assert count(line, "b", "SELECT COUNT(*) FROM inbox") == 3
    wait_until(lambda: query(line.db("relay"), "SELECT COUNT(*) FROM queue WHERE recipient = ?", b_key)[0][0] == 0,
               30, "B's queue to drain")  # fmt: skip
    listener.terminate()


def test_the_heartbeat_of_a_station_whose_disk_is_full_is_critical_and_says_why(line):
    listener = listen(line)
    ok = line.hotline("heartbeat", "a", "--timeout", "20")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    pages = compact(line.db("a"))
    check = line.hotline("heartbeat", "a", "--timeout", "5", env={"HOTLINE_STORE_MAX_PAGES": str(pages)})
    assert check.returncode == 2, check.stdout + check.stderr
    [said] = check.stdout.splitlines()
    assert said.startswith(f"HOTLINE CRITICAL - {Path('a') / 'station.db'}: {FULL}"), said
    listener.terminate()
