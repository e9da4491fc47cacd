"""Nothing accepted is lost, nothing is shown twice: processes killed with SIGKILL at awkward moments."""

from __future__ import annotations

from .harness import query, wait_until
from .test_exchange import NOTICE, connected, listen


def test_relay_killed_during_a_burst_of_500_loses_nothing_and_duplicates_nothing(line):
    # Paced to 200 submissions a second, the burst lasts over two seconds whatever the machine's speed: the kill
    # below lands in the middle of it.
    line.kill_relay()
    line.relay_config(submissions_per_second=200, submission_burst=50)
    line.start_relay()
    first = listen(line)  # B publishes its epoch keys, then goes away while A sends
    first.terminate()
    sender = line.tool("bulk-send", str(line.path("a")), "500", "TUR-BURST", "120")
    # Kill the relay with SIGKILL once it has accepted part of the burst, then start it again.
    wait_until(lambda: line.db("a").exists() and query(line.db("a"), "SELECT COUNT(*) FROM accepted")[0][0] >= 150,
               60, "150 notices accepted")  # fmt: skip
    line.kill_relay()
    accepted_before = query(line.db("a"), "SELECT COUNT(*) FROM accepted")[0][0]
    assert accepted_before < 500, "the burst ended before the relay was killed: nothing was tested"
    line.start_relay()
    assert sender.finish(120) == 0, sender.lines()

    # The relay's log holds every notice exactly once.
    ids = query(line.db("relay"), "SELECT message_id FROM leaves WHERE sender = (SELECT sender FROM leaves LIMIT 1)")
    sent = query(line.db("a"), "SELECT message_id FROM outbox WHERE kind = 'notice'")
    assert len(sent) == 500
    assert sorted(i for (i,) in ids) == sorted(i for (i,) in sent)
    # A holds a receipt (index, checkpoint, inclusion proof) for each: 'log verify' checks every proof.
    assert query(line.db("a"), "SELECT COUNT(*), COUNT(DISTINCT log_index) FROM accepted")[0] == (500, 500)

    # B comes online: each notice arrives once, in order.
    listener = line.spawn("listen", "b", "--json")
    wait_until(lambda: query(line.db("b"), "SELECT COUNT(*) FROM inbox")[0][0] == 500, 90, "500 deliveries")
    rows = query(line.db("b"), "SELECT seq, ref FROM inbox ORDER BY log_index")
    assert [seq for seq, _ in rows] == list(range(1, 501))
    assert [ref for _, ref in rows] == [f"TUR-BURST-{i:06d}" for i in range(500)]
    assert [row["ref"] for row in listener.json_lines(500)] == [ref for _, ref in rows]
    listener.terminate()
    for directory in ("a", "b", "relay"):
        verified = line.hotline("log", "verify", directory)
        assert verified.returncode == 0, verified.stderr


def test_relay_killed_between_commit_and_answer_answers_after_restart(line):
    first = listen(line)
    first.terminate()
    line.kill_relay()
    line.start_relay(env={"HOTLINE_FAILPOINT": "relay:after-commit"})
    # The relay commits A's notice, then dies before it says 'accepted'.
    sent = line.hotline("send", "a", *NOTICE, "--timeout", "3")
    assert sent.returncode == 1
    assert "did not accept the message within 3s" in sent.stderr or "no connection" in sent.stderr
    assert line.relay_process.wait(10) == -9
    assert query(line.db("relay"), "SELECT COUNT(*) FROM leaves")[0][0] == 1
    line.start_relay()
    # The outbox still holds it; the next connection submits it again with the same id: logged once.
    again = line.hotline("heartbeat", "a", "--timeout", "2")
    assert again.returncode in (0, 2)
    wait_until(lambda: query(line.db("a"), "SELECT COUNT(*) FROM accepted")[0][0] >= 1, 20, "the receipt")
    rows = query(line.db("relay"), "SELECT message_id FROM leaves")
    notice_id = query(line.db("a"), "SELECT message_id FROM outbox WHERE kind = 'notice'")[0][0]
    assert [i for (i,) in rows].count(notice_id) == 1
    assert query(line.db("a"), "SELECT log_index FROM accepted JOIN outbox USING (seq) WHERE kind = 'notice'") == [(0,)]


def test_station_killed_after_storing_a_notice_still_acknowledges_it_once(line):
    listener = listen(line)
    listener.terminate()
    # B will die with SIGKILL right after it commits the notice (and the RECEIVED it owes), before sending.
    doomed = line.spawn("listen", "b", "--json", env={"HOTLINE_FAILPOINT": "station:after-receive"})
    connected(line, "b", since=query(line.db("b"), "SELECT relay_seen_at FROM witness")[0][0])
    sent = line.hotline("send", "a", *NOTICE, "--timeout", "20")
    assert sent.returncode == 0, sent.stderr
    assert doomed.process.wait(20) == -9
    assert query(line.db("b"), "SELECT COUNT(*) FROM inbox")[0][0] == 1
    assert query(line.db("b"), "SELECT COUNT(*) FROM outbox WHERE level = 'RECEIVED'")[0][0] == 1
    assert query(line.db("a"), "SELECT COUNT(*) FROM inbox")[0][0] == 0  # the RECEIVED never left B
    # B starts again: the relay delivers the notice again (never confirmed), B sees it already has it,
    # and its RECEIVED, still in the outbox, goes out with its original id.
    revived = line.spawn("listen", "b", "--json")
    a_listener = line.spawn("listen", "a", "--json")
    wait_until(lambda: query(line.db("a"), "SELECT COUNT(*) FROM inbox WHERE level = 'RECEIVED'")[0][0] == 1,
               30, "the RECEIVED at A")  # fmt: skip
    wait_until(lambda: query(line.db("relay"), "SELECT COUNT(*) FROM queue")[0][0] == 0, 30, "every queue to drain")
    assert query(line.db("b"), "SELECT COUNT(*) FROM inbox")[0][0] == 1
    assert query(line.db("b"), "SELECT COUNT(*) FROM outbox WHERE level = 'RECEIVED'")[0][0] == 1
    assert query(line.db("a"), "SELECT COUNT(*) FROM inbox WHERE level = 'RECEIVED'")[0][0] == 1
    # The duty officer at B sees it among the notices awaiting READ_UNDERSTOOD, once.
    status = line.hotline("status", "b", "--json")
    assert [n["ref"] for n in __import__("json").loads(status.stdout)["incoming"]] == ["TUR-2026-000001"]
    revived.terminate()
    a_listener.terminate()


def test_station_killed_holding_an_acceptance_not_yet_stored_gets_it_again(line):
    """The relay's 'accepted' is stored lazily, with the station's next transaction: lost in a crash, it comes
    back, because what is not recorded as accepted is submitted again and the relay answers it again."""
    listener = listen(line)
    # The one-shot send dies with SIGKILL right after it takes the relay's 'accepted' in, before storing it.
    sent = line.hotline("send", "a", *NOTICE, "--timeout", "20", env={"HOTLINE_FAILPOINT": "station:accepted-held"})
    assert sent.returncode == -9, sent.stderr
    notice_id = query(line.db("a"), "SELECT message_id FROM outbox WHERE kind = 'notice'")[0][0]
    assert query(line.db("a"), "SELECT COUNT(*) FROM accepted")[0][0] == 0
    logged = query(line.db("relay"), "SELECT idx FROM leaves WHERE message_id = ?", notice_id)
    assert len(logged) == 1
    # The next process of A submits it again with the same id: the relay answers with the same index.
    again = line.spawn("listen", "a", "--json")
    wait_until(lambda: query(line.db("a"), "SELECT COUNT(*) FROM accepted")[0][0] >= 1, 30, "the receipt again")
    assert query(line.db("a"), "SELECT log_index FROM accepted JOIN outbox USING (seq) WHERE kind = 'notice'") == [
        logged[0]
    ]
    assert query(line.db("relay"), "SELECT COUNT(*) FROM leaves WHERE message_id = ?", notice_id) == [(1,)]
    # And B holds the notice once, and A its RECEIVED.
    wait_until(lambda: query(line.db("a"), "SELECT COUNT(*) FROM inbox WHERE level = 'RECEIVED'")[0][0] == 1,
               30, "the RECEIVED at A")  # fmt: skip
    assert query(line.db("b"), "SELECT COUNT(*) FROM inbox WHERE kind = 'notice'")[0][0] == 1
    again.terminate()
    listener.terminate()
