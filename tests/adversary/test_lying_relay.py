"""A relay that lies, as its own process (``tests/adversary/lying_relay.py``), between real stations.

For each lie: which station detects it, how soon, with which error code (an incident in its store, and a row
of ``rejected`` for an unreadable delivery), what the duty officer is shown (only genuine statements of the
peer, each once), and what the lie cannot achieve. ``docs/reliability.md`` has the table of what each lie got,
and of the weaknesses these tests found; the tests named after a weakness ("... still get through", "... is not
told ...") are those that failed until it was fixed.

Every test starts one line (copied from one made by ``make_line``) with the lying relay in place of
``hotline relay serve``, runs ``hotline listen``, ``send``, ``heartbeat``, ``ack`` and ``status`` as a duty
officer would, and reads the stores afterwards. Station A sends, station B is lied to, unless said otherwise.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from hotline.store.keyfiles import load_public_key
from hotline.store.station import StationStore
from tests.integration.harness import Line, Spawned, query, wait_until

from .harness import (
    FAST_FLASH,
    Incident,
    accepted_at,
    avoid_epoch_boundary,
    copy_line,
    evidence_notes,
    genuine,
    incidents,
    lies,
    listen,
    parse_time,
    record,
    seconds,
    send,
    shown,
    shown_genuine,
    status,
    wait_for_incident,
    wait_for_lie,
)


def refs_shown(listener: Spawned) -> list[str]:
    return [row["ref"] for row in shown(listener)[0] if row["kind"] == "notice"]


def wait_shown(listener: Spawned, refs: list[str], codes: tuple[str, ...] = (), timeout: float = 10) -> None:
    """Wait until the listener has printed these notices, and these incidents first, in this order."""

    def done() -> bool:
        printed = [i["incident"] for i in shown(listener)[1]]
        return set(refs) <= set(refs_shown(listener)) and list(codes) == printed[: len(codes)]

    wait_until(done, timeout, f"the listener to show {refs} and incidents {list(codes)}")


def inbox_refs(line: Line, station: str = "b") -> list[str | None]:
    return [ref for _, kind, ref in genuine(line, "a", station) if kind == "notice"]


def outgoing(line: Line) -> dict[str, dict]:
    code, report = status(line, "a")
    return {n["ref"]: {**n, "exit": code} for n in report["outgoing"]}


def receiveds_sent_by_b(line: Line, ref: str) -> int:
    return query(line.db("b"), "SELECT COUNT(*) FROM outbox WHERE level = 'RECEIVED' AND ref = ?", ref)[0][0]


def receiveds_at_a(line: Line, ref: str) -> int:
    return query(
        line.db("a"),
        "SELECT COUNT(*) FROM inbox i JOIN outbox o ON i.answers = o.statement_hash WHERE o.ref = ? AND i.level = ?",
        ref,
        "RECEIVED",
    )[0][0]


# --- the double itself ---------------------------------------------------------------------------------------


def test_the_double_without_a_lie_is_an_honest_relay(lying):
    line = lying("honest")
    b = listen(line, "b")
    for ref in ("TUR-1", "TUR-2"):
        sent = send(line, ref, wait="received")
        assert sent.returncode == 0, sent.stderr
    wait_shown(b, ["TUR-1", "TUR-2"])
    assert incidents(line, "a") == incidents(line, "b") == []
    assert inbox_refs(line) == ["TUR-1", "TUR-2"]
    assert lies(line) == []
    for directory in ("a", "b", "relay"):
        verified = line.hotline("log", "verify", directory)
        assert verified.returncode == 0, verified.stderr


# --- drop ----------------------------------------------------------------------------------------------------


def test_a_dropped_delivery_whose_gap_the_relay_hides_is_a_dropped_incident_at_the_next_one(lying):
    line = lying("drop-hide", after=1, deadlines=FAST_FLASH)
    b = listen(line, "b")
    assert send(line, "TUR-1", wait="received").returncode == 0
    assert send(line, "TUR-2", precedence="FLASH").returncode == 0  # dropped for good
    dropped = wait_for_lie(line, "dropped")
    third = send(line, "TUR-3", wait="received")  # its prev is rewritten to hide the drop
    assert third.returncode == 0, third.stderr
    hidden = wait_for_lie(line, "hid the drop")

    # B detects it when the next statement arrives: the peer's numbering skips statement 2.
    incident = wait_for_incident(line, "b", "dropped")
    assert incident.message == "statement 2 from the peer never arrived; this one is 3"
    assert seconds(incident.at, hidden["time"]) < 2
    assert [i.code for i in incidents(line, "b")] == ["dropped"]
    assert query(line.db("b"), "SELECT COUNT(*) FROM rejected")[0][0] == 0
    # The officer at B sees notices 1 and 3, each once, both genuine, and the incident; never notice 2.
    wait_shown(b, ["TUR-1", "TUR-3"], ("dropped",))
    assert refs_shown(b) == inbox_refs(line) == ["TUR-1", "TUR-3"]
    shown_genuine(line, b, "a", "b")
    # A is told nothing by the relay, but notice 2 never gets its RECEIVED and becomes overdue.
    wait_until(lambda: outgoing(line)["TUR-2"]["overdue"], 10, "TUR-2 to be overdue at A")
    notices = outgoing(line)
    assert notices["TUR-2"]["state"] == "accepted by the relay"
    assert notices["TUR-2"]["exit"] == 1
    assert [notices[r]["state"] for r in ("TUR-1", "TUR-3")] == ["RECEIVED", "RECEIVED"]
    assert incidents(line, "a") == []
    record(
        "drop-hide",
        detected_by="B",
        code="dropped",
        at_the_next_delivery=seconds(incident.at, hidden["time"]),
        after_the_drop=seconds(incident.at, dropped["time"]),
    )


def _drop_without_hiding(lying) -> tuple[Line, Spawned]:
    line = lying("drop", after=1, deadlines=FAST_FLASH)
    b = listen(line, "b")
    assert send(line, "TUR-1", wait="received").returncode == 0
    assert send(line, "TUR-2", precedence="FLASH").returncode == 0  # dropped for good
    wait_for_lie(line, "dropped")
    assert send(line, "TUR-3", precedence="FLASH").returncode == 0  # its prev still names notice 2
    return line, b


def test_a_dropped_delivery_the_relay_still_names_is_a_reordered_incident(lying):
    line, b = _drop_without_hiding(lying)
    incident = wait_for_incident(line, "b", "reordered")
    named = wait_for_lie(line, "named the dropped entry")
    assert seconds(incident.at, named["time"]) < 2
    pattern = r"index \d+ came before index \d+, which the relay holds for us \(the last we have is 0\)"
    assert re.fullmatch(pattern, incident.message), incident.message
    assert query(line.db("b"), "SELECT COUNT(*) FROM rejected")[0][0] == 0
    assert inbox_refs(line) == ["TUR-1"]  # nothing out of order, nothing unverified
    wait_shown(b, ["TUR-1"], ("reordered",))
    assert refs_shown(b) == ["TUR-1"]
    shown_genuine(line, b, "a", "b")
    # Both notices after the drop are overdue at A, neither acknowledged.
    wait_until(lambda: outgoing(line)["TUR-3"]["overdue"], 10, "TUR-3 to be overdue at A")
    notices = outgoing(line)
    assert [notices[r]["state"] for r in ("TUR-2", "TUR-3")] == ["accepted by the relay"] * 2
    assert incidents(line, "a") == []
    record(
        "drop",
        detected_by="B",
        code="reordered",
        at_the_next_delivery=seconds(incident.at, named["time"]),
    )


def test_after_a_drop_the_relay_admits_later_notices_still_get_through(lying):
    line, b = _drop_without_hiding(lying)
    wait_for_incident(line, "b", "reordered")
    # No one intervenes: B's listener reconnects by itself, and the relay's first delivery names an entry it
    # does not deliver: recorded as dropped, and the line goes on.
    wait_until(lambda: "TUR-3" in inbox_refs(line), 10, "TUR-3 to reach B")
    wait_shown(b, ["TUR-1", "TUR-3"])
    assert [i.code for i in incidents(line, "b")] == ["reordered", "dropped"]


# --- delay ---------------------------------------------------------------------------------------------------


def test_delayed_deliveries_show_in_the_heartbeat_round_trip_and_nowhere_else(lying):
    line = lying("delay", hold=3)
    b = listen(line, "b")
    beat = line.hotline("heartbeat", "a", "--timeout", "10")
    rtt = float(re.search(r"rtt=([\d.]+)s", beat.stdout).group(1))
    assert beat.returncode == 1, beat.stdout  # WARNING: over 2 s
    assert beat.stdout.startswith("HOTLINE WARNING - heartbeat answered by station-b in ")
    assert 3 <= rtt < 5
    late = send(line, "TUR-1", wait="received", timeout=1.5)
    assert late.returncode == 1
    assert "station-b did not acknowledge within 1.5s (received awaited); the notice is logged" in late.stderr
    wait_shown(b, ["TUR-1"], timeout=10)
    [(received,)] = query(line.db("b"), "SELECT received_at FROM inbox WHERE ref = 'TUR-1'")
    held = seconds(parse_time(received), accepted_at(line, "a", "TUR-1"))
    assert held >= 2.9
    # B answered it once, late (A takes the RECEIVED in the next time it connects).
    assert receiveds_sent_by_b(line, "TUR-1") == 1
    # A delay breaks no rule: nothing is an incident, and what arrives late is genuine and shown once.
    assert incidents(line, "a") == incidents(line, "b") == []
    assert inbox_refs(line) == refs_shown(b) == ["TUR-1"]
    shown_genuine(line, b, "a", "b")
    record("delay", detected_by="A (heartbeat)", code="none (HOTLINE WARNING)", heartbeat_rtt=rtt, notice_held=held)


# --- reorder -------------------------------------------------------------------------------------------------


def _reordered(lying) -> tuple[Line, Spawned]:
    line = lying("reorder", after=1)
    b = listen(line, "b")
    assert send(line, "TUR-1", wait="received").returncode == 0
    assert send(line, "TUR-2").returncode == 0  # held back...
    assert send(line, "TUR-3").returncode == 0  # ...and sent after this one
    wait_for_lie(line, "reordered")
    return line, b


def test_two_reordered_deliveries_are_a_reordered_incident_and_nothing_is_shown_out_of_order(lying):
    line, b = _reordered(lying)
    swapped = lies(line, "reordered")[0]
    incident = wait_for_incident(line, "b", "reordered")
    assert incident.message == (
        f"index {swapped['first']} came before index {swapped['then']}, which the relay holds for us "
        "(the last we have is 0)"
    )
    assert seconds(incident.at, swapped["time"]) < 2
    wait_shown(b, ["TUR-1", "TUR-2"], ("reordered",))
    assert inbox_refs(line) == ["TUR-1", "TUR-2"]  # 3 was refused, 2 then taken in its turn
    # People intervene: B's listener starts again, the relay delivers 3 again, in order this time.
    b.terminate()
    again = listen(line, "b")
    wait_until(lambda: inbox_refs(line) == ["TUR-1", "TUR-2", "TUR-3"], 10, "TUR-3 after the restart")
    wait_shown(again, ["TUR-3"])
    assert refs_shown(b) + refs_shown(again) == ["TUR-1", "TUR-2", "TUR-3"]
    for listener in (b, again):
        shown_genuine(line, listener, "a", "b")
    assert [i.code for i in incidents(line, "b")] == ["reordered"]
    assert incidents(line, "a") == []
    record("reorder", detected_by="B", code="reordered", after_the_lie=seconds(incident.at, swapped["time"]))


def test_after_a_reorder_the_refused_notice_gets_through_without_a_restart(lying):
    line, _ = _reordered(lying)
    wait_for_incident(line, "b", "reordered")
    wait_until(lambda: "TUR-3" in inbox_refs(line), 6, "TUR-3 to reach B")


# --- replay --------------------------------------------------------------------------------------------------


def _replayed(lying) -> tuple[Line, Spawned]:
    line = lying("replay", after=0)
    b = listen(line, "b")
    assert send(line, "TUR-1", wait="received").returncode == 0
    wait_for_lie(line, "replayed")
    return line, b


def test_a_replayed_envelope_is_a_replay_incident_and_shown_once(lying):
    line, b = _replayed(lying)
    replayed = lies(line, "replayed")[0]
    incident = wait_for_incident(line, "b", "replay")
    assert incident.message == (
        f"statement 1 from the peer, received at index {replayed['index']}, presented again at {replayed['again_at']}"
    )
    assert seconds(incident.at, replayed["time"]) < 2
    wait_shown(b, ["TUR-1"], ("replay",))
    assert inbox_refs(line) == refs_shown(b) == ["TUR-1"]
    shown_genuine(line, b, "a", "b")
    assert receiveds_sent_by_b(line, "TUR-1") == 1  # acknowledged once, not again for the replay
    # The relay's own log shows the same envelope twice: an auditor of the relay's store sees it too.
    audit = line.hotline("log", "verify", "relay")
    assert audit.returncode == 1
    assert f"log entry {replayed['again_at']}: its message id is not its own, or appears twice" in audit.stderr
    assert incidents(line, "a") == []
    record("replay", detected_by="B", code="replay", after_the_lie=seconds(incident.at, replayed["time"]))


def test_after_a_replay_later_notices_still_get_through(lying):
    line, b = _replayed(lying)
    wait_for_incident(line, "b", "replay")
    # No one intervenes: the replayed copy is confirmed, and the next notice follows it as any other would.
    assert send(line, "TUR-2", wait="received").returncode == 0
    wait_shown(b, ["TUR-1", "TUR-2"], ("replay",))
    assert inbox_refs(line) == refs_shown(b) == ["TUR-1", "TUR-2"]
    assert [i.code for i in incidents(line, "b")] == ["replay"]


# --- duplicate -----------------------------------------------------------------------------------------------


def test_a_duplicated_delivery_is_taken_once_answered_once_and_the_line_goes_on(lying):
    line = lying("duplicate", after=0)
    b = listen(line, "b")
    assert send(line, "TUR-1", wait="received").returncode == 0
    wait_for_lie(line, "duplicated")
    assert send(line, "TUR-2", wait="received").returncode == 0
    wait_shown(b, ["TUR-1", "TUR-2"])
    assert inbox_refs(line) == refs_shown(b) == ["TUR-1", "TUR-2"]
    shown_genuine(line, b, "a", "b")
    assert receiveds_sent_by_b(line, "TUR-1") == receiveds_at_a(line, "TUR-1") == 1
    # Detected (DuplicateMessage, confirmed again) and deliberately not an incident: a duplicate is also what
    # an honest relay sends after a lost confirm, or to two processes of one station.
    assert incidents(line, "a") == incidents(line, "b") == []
    record("duplicate", detected_by="B (not recorded)", code="duplicate (no incident)")


# --- tamper --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lie", ["tamper-sealed", "tamper-header"])
def test_a_tampered_delivery_is_rejected_kept_as_evidence_and_never_shown(lying, lie):
    line = lying(lie, after=1, deadlines=FAST_FLASH)
    b = listen(line, "b")
    assert send(line, "TUR-1", wait="received").returncode == 0
    assert send(line, "TUR-2", precedence="FLASH").returncode == 0  # tampered on its way to B
    tampered = wait_for_lie(line, "tampered")
    rejected = wait_for_incident(line, "b", "bad-signature")
    assert rejected.message == "signature does not verify (hotline/v1/envelope)"
    assert seconds(rejected.at, tampered["time"]) < 2
    # The delivery is kept as it came, as evidence, and is not the envelope A signed.
    [(index, code, envelope)] = query(line.db("b"), "SELECT log_index, code, envelope FROM rejected")
    assert (index, code) == (tampered["index"], "bad-signature")
    [(signed,)] = query(line.db("a"), "SELECT envelope FROM outbox WHERE ref = 'TUR-2'")
    kept, original = json.loads(envelope), json.loads(signed)
    assert kept != original
    changed = "sealed" if lie == "tamper-sealed" else "header"
    assert [k for k in kept if kept[k] != original[k]] == [changed]
    # The next notice arrives after the gap the rejection left, which is recorded too.
    assert send(line, "TUR-3", wait="received").returncode == 0
    gap = wait_for_incident(line, "b", "dropped")
    assert gap.message == "statement 2 from the peer never arrived; this one is 3"
    assert [i.code for i in incidents(line, "b")] == ["bad-signature", "dropped"]
    wait_shown(b, ["TUR-1", "TUR-3"], ("bad-signature", "dropped"))
    assert refs_shown(b) == inbox_refs(line) == ["TUR-1", "TUR-3"]
    shown_genuine(line, b, "a", "b")
    wait_until(lambda: outgoing(line)["TUR-2"]["overdue"], 10, "TUR-2 to be overdue at A")
    assert outgoing(line)["TUR-2"]["state"] == "accepted by the relay"
    assert incidents(line, "a") == []
    # B's own log no longer verifies past the gap (what the officer sees if they check it).
    verified = line.hotline("log", "verify", "b")
    assert verified.returncode == 1
    assert "received statement 3: sequence numbers jump from 1 to 3" in verified.stderr
    record(
        lie, detected_by="B", code="bad-signature, then dropped", after_the_lie=seconds(rejected.at, tampered["time"])
    )


# --- epoch keys ----------------------------------------------------------------------------------------------


def test_keys_withheld_from_a_station_leave_its_answers_unsent_and_the_peers_heartbeat_critical(lying):
    line = lying("strip-keys", to="station-b", deadlines=FAST_FLASH)
    b = listen(line, "b")
    sent = send(line, "TUR-1", precedence="FLASH", wait="received", timeout=3)
    # A seals to B's keys (A got them): the notice is logged and B shows it, but B holds no key of A's.
    assert sent.returncode == 1
    assert "station-b did not acknowledge within 3s" in sent.stderr
    wait_shown(b, ["TUR-1"])
    assert query(line.db("b"), "SELECT COUNT(*) FROM peer_keys")[0][0] == 0
    beat = line.spawn("heartbeat", "a", "--timeout", "3")
    # B takes the heartbeat in, and owes the RECEIVED and the heartbeat reply, which it cannot seal.
    wait_until(lambda: query(line.db("b"), "SELECT COUNT(*) FROM owed")[0][0] == 2, 10, "B to owe two answers")
    # B's officer cannot acknowledge either: the command fails (and blames station A: see below).
    officer = line.hotline("ack", "b", "TUR-1", "--timeout", "2")
    assert officer.returncode == 1
    assert officer.stderr.startswith("hotline: NoEpochKey: ")
    assert beat.finish(30) == 2
    [verdict] = beat.lines()
    assert verdict.startswith("HOTLINE CRITICAL - no heartbeat reply from station-b within 3s")
    assert query(line.db("b"), "SELECT COUNT(*) FROM owed")[0][0] == 2
    assert [i.code for i in incidents(line, "a")] == ["heartbeat"]
    notices = outgoing(line)
    assert notices["TUR-1"]["overdue"]
    assert notices["TUR-1"]["state"] == "accepted by the relay"
    assert inbox_refs(line) == refs_shown(b) == ["TUR-1"]
    shown_genuine(line, b, "a", "b")
    assert lies(line, "stripped keys")
    record(
        "strip-keys",
        detected_by="A (heartbeat, status)",
        code="heartbeat (incident at A: no reply), HOTLINE CRITICAL; NoEpochKey at B's commands",
        heartbeat="CRITICAL after its 3 s timeout",
    )


def test_a_heartbeat_that_gets_no_reply_is_recorded_as_an_incident(lying):
    line = lying("strip-keys", to="station-b")
    listen(line, "b")
    beat = line.hotline("heartbeat", "a", "--timeout", "2")
    assert beat.returncode == 2
    assert incidents(line, "a") + incidents(line, "b") != []


def test_a_station_denied_its_peers_keys_is_not_told_that_the_peer_never_published(lying):
    line = lying("strip-keys", to="station-b")
    listen(line, "a").terminate()  # A has been on the line and published its keys
    assert query(line.db("a"), "SELECT COUNT(*) FROM epoch_keys")[0][0] >= 48
    sent = line.hotline("send", "b", "--text", "Line check.", "--timeout", "2")
    assert sent.returncode == 1
    assert "has published no epoch key" not in sent.stderr, sent.stderr


def test_a_station_given_only_the_current_epoch_key_works_until_the_epoch_ends(lying):
    avoid_epoch_boundary()
    line = lying("stale-keys", to="station-a")
    b = listen(line, "b")
    assert send(line, "TUR-1", wait="received").returncode == 0
    wait_shown(b, ["TUR-1"])
    published = query(line.db("b"), "SELECT COUNT(*) FROM epoch_keys")[0][0]
    [(not_after,)] = query(line.db("a"), "SELECT not_after FROM peer_keys")
    assert published >= 48
    # A holds one key of B's, the current epoch's; at its end A holds no valid key and cannot send.
    ends = parse_time(not_after)
    assert 0 < (ends.timestamp() - time.time()) <= 3600
    store = StationStore(line.db("a"))
    try:
        peer = load_public_key(str(line.root / "keys" / "station-b.pub"))
        assert len(store.peer_keys(peer, ends)) == 0
    finally:
        store.close()
    # A records at once that no key of B's reaches beyond this epoch: the relay withholds them.
    assert [i.code for i in incidents(line, "a")] == ["epoch-key"]
    assert incidents(line, "b") == []
    record(
        "stale-keys",
        detected_by="A, as soon as the keys reach it",
        code="epoch-key (incident); NoEpochKey at A's commands once the epoch ends",
        keys_given=1,
        keys_published=published,
        expires_in_s=round(ends.timestamp() - time.time()),
    )


def test_a_relay_withholding_the_peers_next_epoch_keys_is_noticed_before_they_are_needed(lying):
    avoid_epoch_boundary()
    line = lying("stale-keys", to="station-a")
    listen(line, "b")
    assert send(line, "TUR-1", wait="received").returncode == 0
    assert query(line.db("a"), "SELECT COUNT(*) FROM peer_keys")[0][0] == 1
    assert incidents(line, "a") != []


# --- fork ----------------------------------------------------------------------------------------------------

EVERY = 2.0  # seconds between heartbeats of the timer


def _forked(lying) -> tuple[Line, dict, Spawned, Spawned]:
    """A line whose relay splits the log once it holds 2 entries; then A's heartbeat timer runs."""
    line = lying("fork", after=2)
    b = listen(line, "b")
    assert send(line, "TUR-1", wait="received").returncode == 0
    split = wait_for_lie(line, "split")
    # One process of A at a time (see the last test: several at once raise split views of their own).
    timer = line.spawn("heartbeat", "a", "--every", str(EVERY), "--timeout", "5")
    return line, split, timer, b


def _first_split_view(line: Line, station: str) -> Incident:
    return wait_for_incident(line, station, "split-view", timeout=4 * EVERY + 10)


def test_a_forked_log_is_caught_by_the_first_heartbeat_after_the_split(lying):
    line, split, timer, b = _forked(lying)
    at_a = _first_split_view(line, "a")
    at_b = _first_split_view(line, "b")
    beats = [
        parse_time(created)
        for (created,) in query(line.db("a"), "SELECT created FROM outbox WHERE kind = 'heartbeat' ORDER BY seq")
    ]
    first = next(t for t in beats if t >= split["time"])
    # Nothing shows the split until a heartbeat crosses it; then A sees it in the reply, B at the next heartbeat.
    assert all(i.at >= first for i in incidents(line, "a") + incidents(line, "b"))
    to_a, to_b = seconds(at_a.at, first), seconds(at_b.at, first)
    assert to_a < EVERY, f"A caught the fork {to_a}s after the first heartbeat"
    assert to_b < 2 * EVERY, f"B caught the fork {to_b}s after the first heartbeat: not at the second one"
    assert "the relay forked the log" in at_a.message
    # The evidence each keeps is two checkpoints the relay signed, of one size with two roots: portable proof.
    for incident in (at_a, at_b):
        one, other = evidence_notes(line, incident.evidence)
        assert one.size == other.size
        assert one.root != other.root
    # Nothing false for the officers: every statement each holds is one its peer signed, shown once.
    wait_until(lambda: len(timer.lines()) >= 3, 10, "three heartbeats")
    timer.terminate()
    after = send(line, "TUR-2", wait="received")  # the exchange goes on through both faces
    assert after.returncode == 0, after.stderr
    wait_shown(b, ["TUR-1", "TUR-2"], ("split-view",))
    assert inbox_refs(line) == refs_shown(b) == ["TUR-1", "TUR-2"]
    shown_genuine(line, b, "a", "b")
    genuine(line, "b", "a")
    assert {i.code for i in incidents(line, "a") + incidents(line, "b")} == {"split-view"}
    # Each station's own log verifies: only the gossip shows that the two are not one history.
    for directory in ("a", "b"):
        assert line.hotline("log", "verify", directory).returncode == 0
    record(
        "fork",
        detected_by="A, then B",
        code="split-view",
        heartbeat_every=EVERY,
        a_after_first_heartbeat=to_a,
        b_after_first_heartbeat=to_b,
        first_heartbeat_after_split=seconds(first, split["time"]),
    )


def test_the_heartbeat_check_is_not_ok_once_it_has_caught_a_fork(lying):
    line, _, timer, _ = _forked(lying)
    _first_split_view(line, "a")
    checks = len(timer.lines())
    wait_until(lambda: len(timer.lines()) > checks, 3 * EVERY, "the timer's next check after the split view")
    timer.terminate()
    [last] = timer.lines()[-1:]
    assert not last.startswith("HOTLINE OK"), last


def test_a_relay_that_never_answers_prove_is_reported_as_unproven(lying):
    # Two processes of A: a listener, and one-shot sends. Each new head a send stores is, for the listener, a
    # checkpoint from elsewhere that the relay must prove one history with its own: this relay never does.
    line = lying("withhold-proofs", to="station-a")
    listen(line, "b")
    a = listen(line, "a")  # the victim's first connection
    started = time.monotonic()
    refs: list[str] = []

    def asked_by_the_listener() -> list[dict]:
        return [lie for lie in lies(line, "withheld-proof") if lie["connection"] == 1]

    # Whether a send's head is news to the listener depends on timing (it may have seen that size already):
    # send until the listener has asked at least once.
    while not asked_by_the_listener() and len(refs) < 20:
        refs.append(f"TUR-{len(refs) + 1}")
        assert send(line, refs[-1], wait="received").returncode == 0
    asked = asked_by_the_listener()
    assert asked, f"the listener asked for no proof in {len(refs)} notices: nothing was tested"
    withheld = asked[0]
    found = wait_for_incident(line, "a", "unproven", timeout=60)
    waited = time.monotonic() - started
    # Reported after the patience (30 s), at the listener's next check (every 5 s) at the latest.
    assert found.at >= withheld["time"]
    assert seconds(found.at, withheld["time"]) >= 30
    assert "it may be hiding a fork of the log" in found.message
    # The evidence is the two checkpoints the relay would not join: both signed by it.
    assert len(evidence_notes(line, found.evidence)) == 2
    # Shown to A's duty officer, and nothing else is wrong: the notices went through, each once.
    wait_shown(a, [], ("unproven",), timeout=10)
    assert inbox_refs(line) == refs
    assert {i.code for i in incidents(line, "a") + incidents(line, "b")} == {"unproven"}
    record(
        "withhold-proofs",
        detected_by="A",
        code="unproven",
        after_first_withheld=seconds(found.at, withheld["time"]),
        test_seconds=round(waited, 1),
    )


# --- not a lie at all: one station, several processes --------------------------------------------------------


def test_a_listener_and_one_shot_sends_of_one_station_see_no_split_view(template, tmp_path):
    line = copy_line(template, tmp_path / "line")
    line.start_relay()
    try:
        listen(line, "b")
        listen(line, "a")
        for i in range(5):
            assert send(line, f"TUR-{i}", timeout=10).returncode == 0
        wait_until(lambda: receiveds_at_a(line, "TUR-4") == 1, 5, "the RECEIVEDs at A's listener")
        assert incidents(line, "a") == []
    finally:
        line.stop()
