"""The duty officer's console, driven by Textual's pilot against a real relay and the other station's processes.

Station A runs in the console (in this process, its client in the app's event loop); the relay and station B are
real processes on 127.0.0.1 with TLS, as in tests/integration.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from textual.widgets import DataTable, Input, Static

from hotline.cli.console import (
    ComposeScreen,
    ConfirmScreen,
    Console,
    HelpScreen,
    NoticeScreen,
    ReasonScreen,
    SentScreen,
    form_from_notice,
    next_ref,
    notice_from_form,
    time_left,
)
from hotline.station.client import StationClient
from hotline.station.setup import load_station
from tests.integration.harness import Line, query

NOTICE = (
    "--precedence", "FLASH", "--mode", "EXER", "--domain", "GROUND", "--activity", "CONVOY",
    "--circle", "36.52,37.95,6KM", "--start", "2026-11-26T14:00Z", "--end", "2026-11-26T17:00Z",
    "--text", "Convoy of 12 vehicles on the M4.",
)  # fmt: skip


ACCEPTED = "SELECT a.log_index FROM accepted a JOIN outbox o ON a.seq = o.seq WHERE o.level = ?"


def console_for(line: Line, name: str = "a") -> Console:
    directory = line.path(name)
    client = StationClient.open(directory)
    return Console(client, dict(load_station(directory).deadlines))


async def settle(pilot: Any, check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    """Let the app run until ``check()`` is true (the app refreshes its boards every second)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        await pilot.pause(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def cells(app: Console, table: str) -> list[list[str]]:
    widget = app.query_one(f"#{table}", DataTable)
    return [[str(c).strip() for c in widget.get_row_at(i)] for i in range(widget.row_count)]


async def sent_beside_and_received(line: Line, pilot: Any, app: Console, ref: str, count: int = 1) -> None:
    """A one-shot send of A beside the console; wait until the console shows B's RECEIVED on top."""
    sent = await asyncio.to_thread(line.hotline, "send", "a", "--ref", ref, *NOTICE)
    assert sent.returncode == 0, sent.stderr
    await settle(
        pilot, lambda: len(app.outgoing) == count and app.outgoing[0].state == "RECEIVED", f"RECEIVED of {ref} from B"
    )


def shown_by_listener(line: Line, listener: Any, kind: str) -> list[dict[str, Any]]:
    return [row for row in map(json.loads, listener.lines()) if row.get("kind") == kind]


async def test_a_flash_notice_comes_in_is_read_and_understood_and_the_sender_gets_the_read_back(line):
    sender = line.spawn("send", "b", "--ref", "TUR-2026-000001", *NOTICE, "--wait", "received", "--timeout", "60")
    app = console_for(line)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, lambda: app.incoming, "the notice on the incoming board")
        [row] = cells(app, "incoming")
        assert row[:5] == ["FLASH", "TUR-2026-000001", "GND CONVOY", "36.52,37.95 6KM", "26 14:00-17:00Z"]
        assert re.fullmatch(r"(LATE )?(\d+h\d\dm|\d+m\d\ds)", row[5]), row[5]
        # The console answered RECEIVED by itself: B's send returned.
        assert await asyncio.to_thread(sender.finish, 60) == 0
        await pilot.press("i", "enter")
        assert isinstance(app.screen, NoticeScreen)
        text = str(app.screen.query_one("#notice-text", Static).render())
        assert "TUR-2026-000001   NEW EXER FLASH" in text
        assert "text (en): Convoy of 12 vehicles on the M4." in text
        await pilot.press("u")
        assert not isinstance(app.screen, NoticeScreen)
        await settle(pilot, lambda: app.incoming[0].answered == "READ_UNDERSTOOD", "the board to show the answer")
        await settle(pilot, lambda: query(line.db("a"), ACCEPTED, "READ_UNDERSTOOD"), "the relay to accept it")
    # B's officer sees it, with the read-back of the area and window.
    listener = line.spawn("listen", "b", "--json")
    await asyncio.to_thread(
        lambda: _wait(lambda: shown_by_listener(line, listener, "ack"), 30, "B's listener to show the answer")
    )
    [ack] = [a for a in shown_by_listener(line, listener, "ack") if a["level"] == "READ_UNDERSTOOD"]
    assert ack["ref"] == "TUR-2026-000001"
    assert ack["body"]["readback"]["window"]["start"] == "2026-11-26T14:00:00Z"


async def test_conflict_asks_for_a_reason_and_escape_sends_nothing(line):
    line.spawn("send", "b", "--ref", "TUR-2026-000002", *NOTICE, "--timeout", "60")
    app = console_for(line)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, lambda: app.incoming, "the notice on the incoming board")
        await pilot.press("enter", "c")
        assert isinstance(app.screen, ReasonScreen)
        await pilot.press("escape")  # changed their mind: nothing is sent
        assert isinstance(app.screen, NoticeScreen)
        await pilot.press("c")
        app.screen.query_one("#reason-input", Input).value = "Our convoy uses the M4 from 15:00Z."
        await pilot.press("enter")
        assert not isinstance(app.screen, NoticeScreen | ReasonScreen)
        await settle(pilot, lambda: app.incoming[0].answered == "CONFLICT", "the board to show the CONFLICT")
    [(level, statement)] = query(
        line.db("a"), "SELECT level, statement FROM outbox WHERE kind = 'ack' AND level != 'RECEIVED'"
    )
    assert level == "CONFLICT"
    assert "Our convoy uses the M4 from 15:00Z." in bytes(statement).decode()


async def test_the_outgoing_board_follows_a_notice_to_read_understood(line):
    app = console_for(line)
    b = line.spawn("listen", "b", "--json")
    async with app.run_test(size=(100, 30)) as pilot:
        await sent_beside_and_received(line, pilot, app, "TUR-2026-000003")
        [row] = cells(app, "outgoing")
        assert row[:2] == ["FLASH", "TUR-2026-000003"]
        acked = await asyncio.to_thread(line.hotline, "ack", "b", "TUR-2026-000003")
        assert acked.returncode == 0, acked.stderr
        await settle(pilot, lambda: app.outgoing[0].state == "READ_UNDERSTOOD", "READ_UNDERSTOOD from B")
        assert cells(app, "outgoing")[0][3] == "READ_UNDERSTOOD"
        # A second notice, answered CONFLICT with a reason: A's officer opens it and reads the reason.
        await sent_beside_and_received(line, pilot, app, "TUR-2026-000004", count=2)
        why = "Our patrol is on the M4 until 16:00Z."
        conflict = await asyncio.to_thread(
            line.hotline, "ack", "b", "TUR-2026-000004", "--level", "conflict", "--comment", why
        )
        assert conflict.returncode == 0, conflict.stderr
        await settle(pilot, lambda: any(r.state == "CONFLICT" for r in app.outgoing), "the CONFLICT")
        await pilot.press("o", "enter")
        assert isinstance(app.screen, SentScreen)
        answers = str(app.screen.query_one("#notice-actions", Static).render())
        assert "CONFLICT at " in answers
        assert why in answers
        await pilot.press("escape", "h")
        page = str(app.screen.query_one("#page-text", Static).render())
        assert f"TUR-2026-000004  CONFLICT from station-b: {why}" in page
    b.terminate()


async def test_the_boards_are_read_from_the_store_again_only_when_it_changed(line):
    app = console_for(line)
    b = line.spawn("listen", "b", "--json")
    async with app.run_test(size=(100, 30)) as pilot:
        await sent_beside_and_received(line, pilot, app, "TUR-2026-000005")
        await pilot.pause(1.5)  # the witnessing of the last entries, then nothing more happens on the line
        reads: list[str] = []
        app.client.store.conn.set_trace_callback(lambda sql: reads.append(sql) if "kind = 'notice'" in sql else None)
        try:
            shown = cells(app, "outgoing")
            await pilot.pause(3.5)  # three refreshes of the boards
            assert reads == []
            assert cells(app, "outgoing")[0][:4] == shown[0][:4]
            # Another process writes (B's answer, taken in by A's console): the boards are read again.
            acked = await asyncio.to_thread(line.hotline, "ack", "b", "TUR-2026-000005")
            assert acked.returncode == 0, acked.stderr
            await settle(pilot, lambda: app.outgoing[0].state == "READ_UNDERSTOOD", "READ_UNDERSTOOD from B")
            assert reads
        finally:
            app.client.store.conn.set_trace_callback(None)
    b.terminate()


async def test_the_line_status_says_when_the_relay_is_gone(line):
    app = console_for(line)
    async with app.run_test(size=(80, 24)) as pilot:
        status = app.query_one("#line", Static)
        await settle(pilot, lambda: "relay: connected" in str(status.render()), "the relay connection")
        assert not status.has_class("bad")
        await asyncio.to_thread(line.kill_relay)
        await settle(pilot, lambda: "relay: NOT CONNECTED" in str(status.render()), "the loss to show")
        assert status.has_class("bad")


async def test_help_lists_the_keys_and_closes(line):
    app = console_for(line)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert "READ_UNDERSTOOD" in str(app.screen.query_one("#help", Static).render())
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


def test_time_left_says_how_long_or_how_late():
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    assert time_left(now + timedelta(minutes=9, seconds=5), now) == "9m05s"
    assert time_left(now + timedelta(hours=2, minutes=3), now) == "2h03m"
    assert time_left(now - timedelta(minutes=3), now) == "LATE 3m00s"


def _wait(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# --- composing ---------------------------------------------------------------------------------------------

FORM = {
    "ref": "TUR-2026-000010",
    "precedence": "IMMEDIATE",
    "mode": "EXER",
    "response": "CONFIRM_NO_CONFLICT",
    "domain": "AIR",
    "activity": "TRANSIT",
    "shape": "circle",
    "area": "36.52,37.95,10NM",
    "start": "2026-11-26T14:00Z",
    "end": "2026-11-26T15:30Z",
    "lower": "5000",
    "upper": "12000",
    "unit": "FT",
    "vertical_ref": "AMSL",
    "forces": "VIPER11/1-22 AS/F-16/2",
    "contact": "VIPER11/243.0",
    "text": "Two F-16 in transit.",
}


def test_a_complete_form_makes_the_notice_and_a_broken_one_names_what_to_fix():
    notice = notice_from_form(FORM)
    assert (notice.ref, notice.precedence, notice.vertical.upper, notice.forces[0].count) == (
        "TUR-2026-000010", "IMMEDIATE", 12000.0, 2,
    )  # fmt: skip
    problems = {
        "start": ("2026-11-26 14:00", "start"),
        "lower": ("", "vertical"),  # air activity needs a vertical band
        "area": ("36.52", "circle"),
        "upper": ("high", "upper: 'high' is not a number"),
        "text": ("", "text: required"),
    }
    for field, (value, named) in problems.items():
        form = {**FORM, field: value}
        if field == "lower":
            form["upper"] = ""
        with pytest.raises(ValueError, match=named):
            notice_from_form(form)


def test_an_amend_starts_from_the_notice_it_changes_and_a_cancel_needs_only_a_reason():
    original = notice_from_form(FORM)
    form = form_from_notice(original, "AMEND", "TUR-2026-000011")
    amended = notice_from_form({**form, "end": "2026-11-26T16:00Z"})
    assert (amended.action, amended.refers_to, amended.ref) == ("AMEND", "TUR-2026-000010", "TUR-2026-000011")
    assert (amended.area, amended.vertical, amended.forces, amended.contact) == (
        original.area, original.vertical, original.forces, original.contact,
    )  # fmt: skip
    assert amended.window.end == datetime(2026, 11, 26, 16, 0, tzinfo=UTC)
    cancel = form_from_notice(original, "CANCEL", "TUR-2026-000012")
    with pytest.raises(ValueError, match="text: required"):
        notice_from_form(cancel)
    cancelled = notice_from_form({**cancel, "text": "Transit called off."})
    assert (cancelled.action, cancelled.area, cancelled.window) == ("CANCEL", None, None)


def test_the_next_ref_follows_the_last_of_ours():
    assert next_ref(["TUR-2026-000009", "TUR-2026-000010"]) == "TUR-2026-000011"
    assert next_ref(["TUR-2026-000099"]) == "TUR-2026-000100"
    assert next_ref([]) == ""


async def test_a_notice_composed_checked_confirmed_sent_then_amended(line):
    app = console_for(line)
    b = line.spawn("listen", "b", "--json")
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot, app.client.authenticated.is_set, "the console to connect")
        await pilot.press("s")
        compose = app.screen
        assert isinstance(compose, ComposeScreen)
        problem = compose.query_one("#problem", Static)
        assert "to fix: ref: required" in str(problem.render())
        for field, value in FORM.items():
            compose.query_one(f"#{field}").value = value  # an Input or a Select
            await pilot.pause()
        assert "ready to send" in str(problem.render())
        assert '"ref":"TUR-2026-000010"' in str(compose.query_one("#preview", Static).render())
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")  # not yet: back to the form, nothing sent
        assert app.screen is compose
        assert query(line.db("a"), "SELECT COUNT(*) FROM outbox WHERE kind = 'notice'") == [(0,)]
        await pilot.press("ctrl+s", "y")
        assert not isinstance(app.screen, ComposeScreen)
        await settle(pilot, lambda: app.outgoing and app.outgoing[0].state == "RECEIVED", "B's RECEIVED")
        # Amend it from the outgoing board: the form starts from the notice, with the next ref.
        await pilot.press("o", "a")
        amend = app.screen
        assert isinstance(amend, ComposeScreen)
        assert amend.query_one("#ref", Input).value == "TUR-2026-000011"
        assert amend.query_one("#area", Input).value == "36.52,37.95,10NM"
        amend.query_one("#end", Input).value = "2026-11-26T16:00Z"
        await pilot.pause()
        await pilot.press("ctrl+s", "y")
        await settle(pilot, lambda: len(app.outgoing) == 2, "the amendment on the board")
    wait = lambda: [n for n in shown_by_listener(line, b, "notice") if n["ref"] == "TUR-2026-000011"]  # noqa: E731
    [amended] = await asyncio.to_thread(_wait, wait, 30, "B to show the amendment")
    assert amended["body"]["action"] == "AMEND"
    assert amended["body"]["refers_to"] == "TUR-2026-000010"
    assert amended["body"]["window"]["end"] == "2026-11-26T16:00:00Z"
    b.terminate()


# --- the watch: handover, log, escalation ------------------------------------------------------------------


async def test_handover_log_and_escalation_of_an_overdue_notice(line):
    line.station_config("a", deadlines={"FLASH": 3, "IMMEDIATE": 1800, "PRIORITY": 10800, "ROUTINE": 86400})
    app = console_for(line)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app.client.authenticated.is_set, "the console to connect")
        # B comes on the line once (and so publishes its epoch keys), then goes.
        hello = await asyncio.to_thread(line.hotline, "send", "b", "--text", "On watch.", "--timeout", "30")
        assert hello.returncode == 0, hello.stderr
        # A FLASH notice from A that nobody at B answers: overdue after 3 s.
        sent = await asyncio.to_thread(line.hotline, "send", "a", "--ref", "TUR-2026-000020", *NOTICE)
        assert sent.returncode == 0, sent.stderr
        await settle(pilot, lambda: app.overdue, "the notice to become overdue")
        assert cells(app, "outgoing")[0][4].startswith("LATE ")
        await pilot.press("h")
        page = str(app.screen.query_one("#page-text", Static).render())
        assert "Outgoing notices awaiting station-b: 1" in page
        assert "TUR-2026-000020  FLASH     OVERDUE" in page
        assert "This watch: 0 notices received, 1 sent" in page
        await pilot.press("escape", "l")
        table = app.screen.query_one("#log-table", DataTable)
        entries = [[str(c).strip() for c in table.get_row_at(i)][:4] for i in range(table.row_count)]
        # B's text, A's RECEIVED of it, A's notice: in log order.
        assert [e[1:] for e in entries] == [
            ["in", "text", ""],
            ["out", "ack", "RECEIVED"],
            ["out", "notice", "TUR-2026-000020"],
        ]
        assert [e[0] for e in entries] == ["0", "1", "2"]
        await pilot.press("v")
        verified = app.screen.query_one("#verified", Static)
        await settle(pilot, lambda: "log verified" in str(verified.render()), "the log to verify")
    cli = line.hotline("status", "a", "--handover")
    assert cli.returncode == 1  # overdue
    assert "HANDOVER station-a" in cli.stdout
    assert "TUR-2026-000020  FLASH     OVERDUE" in cli.stdout


async def test_a_notice_cancelled_from_the_board_and_the_line_tested_with_a_heartbeat(line):
    app = console_for(line)
    b = line.spawn("listen", "b", "--json")
    async with app.run_test(size=(80, 24)) as pilot:
        sent = await asyncio.to_thread(line.hotline, "send", "a", "--ref", "TUR-2026-000030", *NOTICE)
        assert sent.returncode == 0, sent.stderr
        await settle(pilot, lambda: app.outgoing and app.outgoing[0].state == "RECEIVED", "B's RECEIVED")
        await pilot.press("x")  # the incoming board has the focus: it says where to choose the notice
        assert not isinstance(app.screen, ComposeScreen)
        await pilot.press("o", "x")
        cancel = app.screen
        assert isinstance(cancel, ComposeScreen)
        assert "to fix: text: required" in str(cancel.query_one("#problem", Static).render())
        cancel.query_one("#text", Input).value = "Convoy called off."
        await pilot.pause()
        await pilot.press("ctrl+s", "y")
        await settle(pilot, lambda: len(app.outgoing) == 2, "the cancellation on the board")
        await pilot.press("t")
        status = app.query_one("#line", Static)
        await settle(pilot, lambda: "rtt" in str(status.render()), "the heartbeat's round trip")
    wait = lambda: [n for n in shown_by_listener(line, b, "notice") if n["body"]["action"] == "CANCEL"]  # noqa: E731
    [cancelled] = await asyncio.to_thread(_wait, wait, 30, "B to show the cancellation")
    assert (cancelled["ref"], cancelled["body"]["refers_to"]) == ("TUR-2026-000031", "TUR-2026-000030")
    assert cancelled["body"]["area"] is None
    b.terminate()


async def test_a_notice_whose_text_looks_like_markup_is_shown_as_written(line):
    text = "[/] [bold red]not markup[/bold red] \\x1b"
    sent = line.spawn("send", "b", "--ref", "TUR-2026-000040", *NOTICE[:-1], text, "--timeout", "60")
    app = console_for(line)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, lambda: app.incoming, "the notice")
        await pilot.press("enter")
        shown = str(app.screen.query_one("#notice-text", Static).render())
        assert f"text (en): {text}" in shown
    assert await asyncio.to_thread(sent.finish, 60) == 0
