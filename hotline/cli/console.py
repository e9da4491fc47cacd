"""
``hotline console DIR``: the duty officer's terminal, a live view of the line (textual).

One screen, keyboard first, in 80x24 and up:

- the line's health on top: the relay connection, the last heartbeat and its round trip, when the peer was last
  heard, the size of the last checkpoint both stations cosigned, the clock offset to the relay, incidents;
- incoming notices, open ones first, FLASH and IMMEDIATE first among them (in colour, with the terminal bell when
  one arrives), each with its activity, area, window and the time left to acknowledge it;
- outgoing notices with their state (queued, accepted by the relay, RECEIVED, READ_UNDERSTOOD, CONFLICT, UNABLE),
  overdue ones in red.

Enter on an incoming notice shows all of it, with the acknowledgements: READ_UNDERSTOOD (its area and window read
back), CONFLICT or UNABLE (with a reason). The console is a station process like any other: it takes deliveries
in and answers RECEIVED, beside a heartbeat timer or one-shot commands of the same station.

The rows are built by pure functions (``incoming_rows``, ``outgoing_rows``, ``line_text``) from the store, so that
they are tested without a terminal; the app only lays them out and turns keys into acknowledgements.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import typer
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Input, Label, Select, Static

from hotline.cli.notices import NoticeFields, build_notice
from hotline.cli.station import FINAL_LEVELS, URGENCY, acknowledgement, area_text, notice_state
from hotline.protocol.exceptions import HotlineError
from hotline.protocol.messages import Ack, AckLevel, Circle, Corridor, Notice, Polygon, encode
from hotline.protocol.station import deadline
from hotline.station.client import StationClient
from hotline.store.station import Queries, Row, format_time, parse_time
from hotline.store.verify import Report, verify_station

LOUD = ("FLASH", "IMMEDIATE")
STYLE = {"FLASH": "bold white on red", "IMMEDIATE": "bold black on yellow", "PRIORITY": "bold", "ROUTINE": ""}


@dataclass(frozen=True)
class Incoming:
    """One incoming notice as the board shows it."""

    statement_hash: str
    ref: str
    precedence: str
    what: str
    area: str
    window: str
    due: datetime
    answered: str | None  # our last acknowledgement level, if any
    row: Row
    superseded: str | None = None  # "AMENDED by REF" or "CANCELLED by REF"

    @property
    def open(self) -> bool:
        return self.answered not in FINAL_LEVELS and self.superseded is None


@dataclass(frozen=True)
class Outgoing:
    """One of our notices as the board shows it."""

    statement_hash: str
    ref: str
    precedence: str
    sent: datetime
    state: str
    due: datetime

    @property
    def open(self) -> bool:
        return self.state not in FINAL_LEVELS and not self.state.startswith(("AMENDED", "CANCELLED"))


# Short forms for the boards, which must fit 80 columns; the notice's own page spells everything out.
PREC = {"FLASH": "FLASH", "IMMEDIATE": "IMMED", "PRIORITY": "PRIO", "ROUTINE": "ROUT"}
DOMAIN = {"AIR": "AIR", "GROUND": "GND", "NAVAL": "NAV", "UAV": "UAV", "FIRES": "FIRES"}


def _what(notice: Notice) -> str:
    if notice.action != "NEW":
        return f"{notice.action} {(notice.refers_to or '')[-6:]}"
    if notice.activity is None:
        return notice.mode
    return f"{DOMAIN[notice.activity.domain]} {notice.activity.type}"


def superseded(rows: list[Row]) -> dict[str, str]:
    """For each ref that a later notice of the same side amends or cancels: 'AMENDED by REF', 'CANCELLED by REF'."""
    found = {}
    for row in sorted(rows, key=lambda r: r.seq):
        notice = row.statement.body
        if isinstance(notice, Notice) and notice.refers_to and notice.action != "NEW":
            found[notice.refers_to] = f"{'CANCELLED' if notice.action == 'CANCEL' else 'AMENDED'} by {notice.ref}"
    return found


def _area(notice: Notice) -> str:
    area = notice.area
    if isinstance(area, Circle):
        return f"{area.center.lat:.2f},{area.center.lon:.2f} {area.radius:g}{area.unit}"
    if isinstance(area, Polygon):
        return f"polygon {len(area.points)} pts"
    if isinstance(area, Corridor):
        return f"corridor {area.half_width:g}{area.unit}"
    return ""


def _window(notice: Notice) -> str:
    if notice.window is None:
        return ""
    start, end = notice.window.start, notice.window.end
    if start.date() == end.date():
        return f"{start:%d %H:%M}-{end:%H:%MZ}"
    return f"{start:%d %H:%M}-{end:%d %H:%MZ}"


def incoming_rows(q: Queries, deadlines: dict[str, int]) -> list[Incoming]:
    """Every notice received: the open ones first, by urgency then time; then the answered ones, newest first."""
    rows = []
    received = q.notices("in")
    replaced = superseded(received)
    answered = q.answer_levels("ours")
    for row in received:
        notice = row.statement.body
        assert isinstance(notice, Notice)
        ours = answered.get(row.statement_hash, [])
        final = [level for level in ours if level in FINAL_LEVELS]
        rows.append(
            Incoming(
                row.statement_hash,
                notice.ref,
                notice.precedence,
                _what(notice),
                _area(notice),
                _window(notice),
                deadline(notice.precedence, row.created, deadlines),
                final[-1] if final else None,
                row,
                replaced.get(notice.ref),
            )
        )
    still = sorted((r for r in rows if r.open), key=lambda r: (URGENCY[r.precedence], r.row.created))
    done = sorted((r for r in rows if not r.open), key=lambda r: r.row.created, reverse=True)
    return still + done


def outgoing_rows(q: Queries, deadlines: dict[str, int]) -> list[Outgoing]:
    """Our notices: the open ones first, by urgency then time; then the answered ones, newest first."""
    rows = []
    sent = q.notices("out")
    replaced = superseded(sent)
    answered = q.answer_levels("peer")
    for row in sent:
        levels = answered.get(row.statement_hash, [])
        state = replaced.get(row.ref or "") or notice_state(levels, row.log_index is not None)
        precedence = row.precedence or "ROUTINE"
        due = deadline(precedence, row.created, deadlines)
        rows.append(Outgoing(row.statement_hash, row.ref or "", precedence, row.created, state, due))
    still = sorted((r for r in rows if r.open), key=lambda r: (URGENCY[r.precedence], r.sent))
    done = sorted((r for r in rows if not r.open), key=lambda r: r.sent, reverse=True)
    return still + done


def time_left(due: datetime, now: datetime) -> str:
    """How long until ``due`` ('9m05s', '2h03m'), or how late ('LATE 3m00s')."""
    seconds = int((due - now).total_seconds())
    span = abs(seconds)
    text = f"{span // 3600}h{span % 3600 // 60:02d}m" if span >= 3600 else f"{span // 60}m{span % 60:02d}s"
    return text if seconds > 0 else f"LATE {text}"


def line_text(q: Queries, connected: bool, now: datetime) -> tuple[str, bool]:
    """The line's health in one or two lines, and whether it is bad (no relay, a split view, a silent peer)."""
    line = q.line()
    parts = ["relay: connected" if connected else "relay: NOT CONNECTED"]
    seen = line["relay_seen_at"]
    if not connected and isinstance(seen, str):
        parts[0] += f" (last {parse_time(seen):%H:%M:%SZ})"
    sent, answered = line["heartbeat_sent_at"], line["heartbeat_answered_at"]
    if isinstance(sent, str) and isinstance(answered, str):
        rtt = (parse_time(answered) - parse_time(sent)).total_seconds()
        parts.append(f"heartbeat {parse_time(sent):%H:%MZ} rtt {max(rtt, 0):.2f}s")
    elif isinstance(sent, str):
        parts.append(f"heartbeat {parse_time(sent):%H:%MZ} UNANSWERED")
    else:
        parts.append("no heartbeat yet")
    heard = line["peer_heard_at"]
    parts.append(f"peer heard {parse_time(heard):%H:%M:%SZ}" if isinstance(heard, str) else "peer never heard")
    parts.append(f"cosigned log {q.logged_size()}")
    offset = line["clock_offset"]
    if isinstance(offset, int | float):
        parts.append(f"clock {offset:+.1f}s")
    since = format_time(now - timedelta(days=1))
    codes = [c for (c,) in q.conn.execute("SELECT code FROM incidents WHERE at >= ?", (since,))]
    split = q.conn.execute("SELECT COUNT(*) FROM incidents WHERE code = 'split-view'").fetchone()[0] > 0
    if split:
        parts.append("SPLIT VIEW: do not trust the relay")
    elif codes:
        parts.append(f"incidents 24h: {len(codes)}")
    unanswered = isinstance(sent, str) and not isinstance(answered, str)
    recent = isinstance(answered, str) and now - parse_time(answered) < timedelta(minutes=10)
    if split:
        verdict = "DO NOT TRUST THE RELAY"
    elif not connected:
        verdict = "LINE DOWN"
    elif unanswered:
        verdict = "NO HEARTBEAT REPLY"
    elif recent:
        verdict = "LINE OK"
    else:
        verdict = "line up, not tested lately (t)"
    return f"{verdict} · " + " · ".join(parts), (not connected) or split or unanswered


def notice_text(row: Row) -> str:
    """All of a notice, for the officer who must acknowledge it."""
    notice = row.statement.body
    assert isinstance(notice, Notice)
    lines = [
        f"{notice.ref}   {notice.action} {notice.mode} {notice.precedence}   {notice.classification}",
        f"response asked: {notice.response}",
    ]
    if notice.refers_to:
        lines.append(f"refers to: {notice.refers_to}")
    if notice.activity is not None:
        lines.append(f"activity: {notice.activity.domain} {notice.activity.type}")
    if notice.area is not None:
        lines.append(f"area: {area_text(notice.area)}")
    if notice.vertical is not None:
        v = notice.vertical
        lines.append(f"vertical: {v.lower:g} to {v.upper:g} {v.unit} {v.ref}")
    if notice.window is not None:
        w = notice.window
        schedule = f" ({w.schedule})" if w.schedule else ""
        lines.append(f"window: {w.start:%Y-%m-%d %H:%MZ} to {w.end:%Y-%m-%d %H:%MZ}{schedule}")
    for force in notice.forces:
        lines.append(
            f"force: {force.callsign} x{force.count}" + "".join(f", {x}" for x in (force.unit, force.platform) if x)
        )
    if notice.contact is not None:
        c = notice.contact
        lines.append(f"contact: {c.callsign}" + (f" on {c.frequency}" if c.frequency else ""))
    lines.append(f"text ({notice.text.lang}): {notice.text.body}")
    for t in notice.text.translations:
        lines.append(f"translation ({t.lang}, by {t.translator}): {t.body}")
    lines.append(f"sent {row.created:%Y-%m-%d %H:%M:%SZ}, log index {row.log_index}")
    return "\n".join(lines)


def answers_text(answers: list[Row]) -> str:
    """The peer's answers to one of our notices, each with what it says."""
    if not answers:
        return "no answer yet"
    lines = []
    for row in answers:
        ack = row.statement.body
        if not isinstance(ack, Ack):
            continue
        line = f"{ack.level} at {row.created:%Y-%m-%d %H:%M:%SZ}"
        if ack.officer:
            line += f" by {ack.officer}"
        if ack.comment:
            line += f": {ack.comment}"
        lines.append(line)
        if ack.readback is not None:
            window = ack.readback.window
            lines.append(
                f"  read back: {area_text(ack.readback.area)}, {window.start:%Y-%m-%d %H:%MZ} to {window.end:%H:%MZ}"
            )
    return "\n".join(lines)


class ReasonScreen(ModalScreen[str | None]):
    """The reason a CONFLICT or UNABLE needs."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, level: str) -> None:
        super().__init__()
        self.level = level

    def compose(self) -> ComposeResult:
        with Vertical(id="reason"):
            yield Label(f"{self.level}: why? (Enter to send, Escape to cancel)")
            yield Input(placeholder="the reason, for the other side's duty officer", id="reason-input")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self.dismiss(event.value.strip())
        else:
            self.notify("a reason is required: the other side's officer reads it", severity="warning")


class NoticeScreen(ModalScreen[None]):
    """A notice received, whole, with the acknowledgements."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("u", "ack('READ_UNDERSTOOD')", "Read & understood"),
        Binding("c", "ack('CONFLICT')", "Conflict"),
        Binding("n", "ack('UNABLE')", "Unable"),
        Binding("escape", "dismiss(None)", "Back"),
    ]

    def __init__(self, item: Incoming) -> None:
        super().__init__()
        self.item = item
        self.again = False  # a second acknowledgement of a notice already acknowledged needs a second press

    def compose(self) -> ComposeResult:
        with Vertical(id="notice"):
            # The peer's words as plain text, never as markup: "[/]" in a notice must not break the screen.
            yield Static(Text(notice_text(self.item.row)), id="notice-text")
            answered = f"acknowledged: {self.item.answered}" if self.item.answered else "not acknowledged yet"
            if self.item.superseded:
                answered = f"{self.item.superseded}: read that one. {answered}"
            yield Static(
                f"{answered}. u: READ_UNDERSTOOD (reads the area and window back), c: CONFLICT, n: UNABLE",
                id="notice-actions",
            )
        yield Footer()

    def action_ack(self, level: AckLevel) -> None:
        console = self.app
        assert isinstance(console, Console)
        if self.item.answered is not None and not self.again:
            self.again = True
            self.notify(f"already acknowledged {self.item.answered}: press again to send {level} as well", timeout=8)
            return
        if level == "READ_UNDERSTOOD":
            if console.acknowledge(self.item.row, level, None):
                self.dismiss(None)
            return

        def with_reason(reason: str | None) -> None:
            if reason and console.acknowledge(self.item.row, level, reason):
                self.dismiss(None)

        console.push_screen(ReasonScreen(level), with_reason)


class SentScreen(ModalScreen[None]):
    """One of our notices, whole, with the peer's answers (the reason of a CONFLICT, the read-back)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "dismiss(None)", "Back")]

    def __init__(self, row: Row, answers: list[Row], state: str) -> None:
        super().__init__()
        self.row, self.answers, self.state = row, answers, state

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="notice"):
            yield Static(Text(notice_text(self.row)), id="notice-text")
            yield Static(Text(f"{self.state}\n{answers_text(self.answers)}"), id="notice-actions")
        yield Footer()


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,question_mark,q", "dismiss(None)", "Back")]

    def compose(self) -> ComposeResult:
        yield Static(
            "hotline console: keys\n\n"
            "  i / o      incoming / outgoing board\n"
            "  s          send a new notice: a form checked as you type, previewed as it will be signed\n"
            "  a / x      amend / cancel the outgoing notice under the cursor\n"
            "    ctrl+s   send (after a confirmation); escape: discard\n"
            "  up, down   choose a notice\n"
            "  enter      open a notice: incoming, to read and acknowledge it; outgoing, to read the answers\n"
            "    u        READ_UNDERSTOOD: its area and window are read back to the sender\n"
            "    c / n    CONFLICT / UNABLE, with a reason\n"
            "    escape   back\n"
            "  t          test the line now: a heartbeat, answered by the peer's station\n"
            "  h          handover summary, for the change of watch (also: hotline status --handover)\n"
            "  l          the acknowledgement log; v verifies it all from the stored bytes\n"
            "  ?          this help\n"
            "  q          quit (the notices stay in the station's store)\n\n"
            "Precedence: FLASH (red), IMMED(IATE) (yellow), PRIO(RITY), ROUT(INE); FLASH and IMMEDIATE ring the\n"
            "bell when they arrive. The boards shorten; Enter on a notice shows it whole.\n"
            "A notice is due for acknowledgement by a time set by its precedence; past it, it is OVERDUE.\n"
            "The top line says whether the line works: the relay, the last heartbeat, the peer, the log.",
            id="help",
        )


# --- composing a notice ----------------------------------------------------------------------------------------

CHOICES: dict[str, tuple[str, ...]] = {
    "precedence": ("FLASH", "IMMEDIATE", "PRIORITY", "ROUTINE"),
    "mode": ("OPER", "EXER", "TEST"),
    "response": ("INFO_ONLY", "CONFIRM_NO_CONFLICT", "REQUEST_CLEAR"),
    "domain": ("GROUND", "AIR", "NAVAL", "UAV", "FIRES"),
    "activity": ("CONVOY", "PATROL", "TRANSIT", "EXERCISE", "STRIKE", "ISR", "MEDEVAC", "OTHER"),
    "shape": ("circle", "polygon", "corridor"),
    "unit": ("FT", "M", "FL"),
    "vertical_ref": ("AMSL", "AGL", "SFC", "UNL"),
}
TEXTS: dict[str, str] = {
    "ref": "never reused, e.g. TUR-2026-000124",
    "area": "e.g. 36.52,37.95,6KM (circle: LAT,LON,RADIUS with NM or KM)",
    "lower": "air, UAV, fires only",
    "upper": "air, UAV, fires only",
    "start": "UTC, e.g. 2026-11-26T14:00Z",
    "end": "UTC, e.g. 2026-11-26T17:00Z",
    "forces": "CALLSIGN/UNIT/PLATFORM/COUNT; ...",
    "contact": "on-scene CALLSIGN/FREQUENCY",
    "text": "what the other side's officer reads first",
}


def next_ref(refs: list[str]) -> str:
    """The ref after the last of ours that ends in digits (same prefix, one more, same width); else empty."""
    for ref in reversed(refs):
        head = ref.rstrip("0123456789")
        digits = ref[len(head) :]
        if digits:
            return f"{head}{int(digits) + 1:0{len(digits)}d}"
    return ""


def area_fields(notice: Notice) -> tuple[str, str]:
    """A notice's area as the compose form writes it (shape, text)."""
    area = notice.area
    if isinstance(area, Circle):
        return "circle", f"{area.center.lat:g},{area.center.lon:g},{area.radius:g}{area.unit}"
    if isinstance(area, Polygon):
        return "polygon", ";".join(f"{p.lat:g},{p.lon:g}" for p in area.points)
    if isinstance(area, Corridor):
        path = ";".join(f"{p.lat:g},{p.lon:g}" for p in area.path)
        return "corridor", f"{path}@{area.half_width:g}{area.unit}"
    return "circle", ""


def form_from_notice(notice: Notice, action: str, ref: str) -> dict[str, str]:
    """The compose form for an AMEND or CANCEL of ``notice``: its fields, a new ref, and what it refers to."""
    shape, area = area_fields(notice)
    form = {
        "ref": ref,
        "action": action,
        "refers_to": notice.ref,
        "precedence": notice.precedence,
        "mode": notice.mode,
        "response": notice.response,
        "classification": notice.classification,
        "text": "" if action == "CANCEL" else notice.text.body,
        "lang": notice.text.lang,
        "shape": shape,
        "area": area,
    }
    if notice.activity is not None:
        form |= {"domain": notice.activity.domain, "activity": notice.activity.type}
    if notice.window is not None:
        form |= {"start": f"{notice.window.start:%Y-%m-%dT%H:%MZ}", "end": f"{notice.window.end:%Y-%m-%dT%H:%MZ}"}
    if notice.vertical is not None:
        v = notice.vertical
        form |= {"lower": f"{v.lower:g}", "upper": f"{v.upper:g}", "unit": v.unit, "vertical_ref": v.ref}
    if notice.forces:
        form["forces"] = "; ".join(
            "/".join([f.callsign, f.unit or "", f.platform or "", str(f.count)]) for f in notice.forces
        )
    if notice.contact is not None:
        form["contact"] = notice.contact.callsign + (f"/{notice.contact.frequency}" if notice.contact.frequency else "")
    return form


def notice_from_form(form: dict[str, str]) -> Notice:
    """The notice a filled form makes; ``ValueError`` with what to fix, naming the field, if it makes none."""

    def given(name: str) -> str | None:
        value = form.get(name, "").strip()
        return value or None

    action = form.get("action", "NEW")
    cancel = action == "CANCEL"
    shape, area = form.get("shape", "circle"), given("area")

    def number(name: str) -> float | None:
        value = given(name)
        if value is None:
            return None
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"{name}: {value!r} is not a number") from None

    if given("ref") is None:
        raise ValueError("ref: required (a reference never used before)")
    if given("text") is None:
        raise ValueError("text: required (what the other side's officer reads first)")
    fields = NoticeFields(
        ref=form["ref"].strip(),
        action=action,
        refers_to=given("refers_to"),
        mode=form.get("mode", "OPER"),
        precedence=form.get("precedence", "ROUTINE"),
        response=form.get("response", "INFO_ONLY"),
        domain=None if cancel else given("domain"),
        activity=None if cancel else given("activity"),
        circle=area if shape == "circle" and not cancel else None,
        polygon=area if shape == "polygon" and not cancel else None,
        corridor=area if shape == "corridor" and not cancel else None,
        lower=None if cancel else number("lower"),
        upper=None if cancel else number("upper"),
        unit=form.get("unit", "FT"),
        vertical_ref=form.get("vertical_ref", "AMSL"),
        start=None if cancel else given("start"),
        end=None if cancel else given("end"),
        forces=[] if cancel else [f.strip() for f in form.get("forces", "").split(";") if f.strip()],
        contact=None if cancel else given("contact"),
        text=form["text"].strip(),
        lang=given("lang") or "en",
        classification=given("classification") or "UNCLASSIFIED",
    )
    try:
        return build_notice(fields)
    except typer.BadParameter as e:
        where = e.param_hint if isinstance(e.param_hint, str) else None
        raise ValueError(f"{where.lstrip('-') + ': ' if where else ''}{e.message}") from None
    except HotlineError as e:
        raise ValueError(str(e)) from None


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "dismiss(True)", "Send"),
        Binding("n,escape", "dismiss(False)", "Not yet"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm"):
            yield Static(self.question)
            yield Label("y: send   n or escape: back to the form")


class ComposeScreen(ModalScreen[None]):
    """A movement notice: checked as it is typed, previewed as it will be signed, sent after a confirmation."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "send", "Send", priority=True),
        Binding("escape", "dismiss(None)", "Discard"),
    ]

    def __init__(self, form: dict[str, str], peer: str) -> None:
        super().__init__()
        self.form = dict(form)
        self.peer = peer
        self.notice: Notice | None = None

    def compose(self) -> ComposeResult:
        action = self.form.get("action", "NEW")
        title = f"{action} notice" + (f" (changes {self.form['refers_to']})" if action != "NEW" else "")
        with VerticalScroll(id="compose"):
            yield Label(f"{title} to {self.peer}: ctrl+s to send, escape to discard", classes="board-title")
            yield self._row("ref", "precedence")
            yield self._row("mode", "response")
            if action != "CANCEL":
                yield self._row("domain", "activity")
                yield self._row("shape", "area")
                yield self._row("start", "end")
                yield self._row("lower", "upper")
                yield self._row("unit", "vertical_ref")
                yield self._row("forces")
                yield self._row("contact")
            yield self._row("text")
            yield self._row("lang", "classification")
            yield Static("", id="problem")
            yield Static("", id="preview")

    LABELS: ClassVar[dict[str, str]] = {"vertical_ref": "v. ref", "classification": "class.", "precedence": "prec"}

    def _row(self, *names: str) -> Horizontal:
        """One line of the form: each field with its name before it (one row each, to fit 80x24)."""
        widgets: list[Label | Input | Select[str]] = []
        for name in names:
            widgets.append(Label(self.LABELS.get(name, name), classes="field"))
            if name in CHOICES:
                options = [(value, value) for value in CHOICES[name]]
                value = self.form.get(name, "ROUTINE" if name == "precedence" else CHOICES[name][0])
                widgets.append(Select(options, value=value, allow_blank=False, id=name, compact=True))
            else:
                default = {"lang": "en", "classification": "UNCLASSIFIED"}.get(name, "")
                widgets.append(
                    Input(self.form.get(name, default), placeholder=TEXTS.get(name, ""), id=name, compact=True)
                )
        return Horizontal(*widgets, classes="row")

    def on_mount(self) -> None:
        self.check()
        # Typing goes to the form at once: the ref of a new notice, the text of a cancellation.
        first = "text" if self.form.get("action") == "CANCEL" else "ref"
        self.query_one(f"#{first}", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id:
            self.form[event.input.id] = event.value
            self.check()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id and isinstance(event.value, str):
            self.form[event.select.id] = event.value
            self.check()

    def check(self) -> None:
        problem, preview = self.query_one("#problem", Static), self.query_one("#preview", Static)
        try:
            self.notice = notice_from_form(self.form)
        except ValueError as e:
            self.notice = None
            problem.update(Text(f"to fix: {e}", style="bold red"))
            preview.update("")
            return
        problem.update(Text("ready to send (ctrl+s)", style="bold green"))
        preview.update(
            "signed, inside a statement with its sequence number and time, exactly as:\n" + encode(self.notice).decode()
        )

    def action_send(self) -> None:
        notice = self.notice
        if notice is None:
            self.notify("the notice is not complete: see 'to fix'", severity="error")
            return
        console = self.app
        assert isinstance(console, Console)

        def answered(yes: bool | None) -> None:
            if yes and console.send_notice(notice):
                self.dismiss(None)

        what = f"{notice.action} {notice.precedence} notice {notice.ref}"
        console.push_screen(ConfirmScreen(f"Send the {what} to {self.peer}? It cannot be taken back."), answered)


class TextScreen(ModalScreen[None]):
    """A page of text (the handover summary), scrollable, closed with escape."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "dismiss(None)", "Back")]

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="page"):
            yield Static(Text(self.text), id="page-text")
        yield Footer()


def log_rows(q: Queries) -> list[tuple[str, str, str, str, str, str]]:
    """The acknowledgement log as this station holds it: index, direction, kind, ref or level, time, state."""
    size = q.logged_size()
    rows = []
    for row in q.all_rows():
        if row.log_index is None:
            state = "not yet logged"
        elif row.log_index < size:
            state = "cosigned by both"
        else:
            state = "logged, proof held"
        what = row.level or row.ref or ""
        index = "" if row.log_index is None else str(row.log_index)
        rows.append((index, row.direction, row.kind, what, f"{row.created:%d %H:%M:%SZ}", state))
    return rows


class LogScreen(ModalScreen[None]):
    """The acknowledgement log, each entry with how far it is proven; v verifies it all from the stored bytes."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("v", "verify", "Verify all"),
        Binding("escape,q", "dismiss(None)", "Back"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="log"):
            yield Label("the acknowledgement log: v verifies every signature, chain and proof", classes="board-title")
            yield DataTable(id="log-table", cursor_type="row", zebra_stripes=True, cell_padding=0)
            yield Static("", id="verified")
        yield Footer()

    def on_mount(self) -> None:
        console = self.app
        assert isinstance(console, Console)
        table = self.query_one("#log-table", DataTable)
        table.add_columns(*(_cell(c) for c in ("index", "dir", "kind", "ref/level", "signed", "state")))
        for entry in log_rows(console.queries):
            table.add_row(*(_cell(c) for c in entry))
        table.focus()

    async def action_verify(self) -> None:
        console = self.app
        assert isinstance(console, Console)
        result = self.query_one("#verified", Static)
        result.update("verifying...")
        try:
            report = await asyncio.to_thread(console.verify_log)
        except HotlineError as e:
            result.update(Text(f"VERIFICATION FAILED: {e}", style="bold red"))
            return
        checks = sum(report.checks.values())
        result.update(
            Text(f"log verified: {checks} checks, cosigned by both up to size {report.logged_size}", style="green")
        )


def _cell(text: str, style: str = "") -> Text:
    """A board's cell, with one space before it (the tables have no padding of their own, to fit 80 columns)."""
    return Text(f"\u00a0{text}", style=style)  # a space the table does not strip


def _refill(table: DataTable[Text], rows: list[tuple[list[Text], str]]) -> None:
    """Replace a board's rows (cells, key), keeping the cursor where it was."""
    keep = table.cursor_row
    table.clear()
    for cells, key in rows:
        table.add_row(*cells, key=key)
    if rows:
        table.move_cursor(row=min(keep, len(rows) - 1))


class Console(App[None]):
    TITLE = "hotline"
    ENABLE_COMMAND_PALETTE = False
    CSS = """
    #line { height: auto; padding: 0 1; background: $boost; }
    #line.bad { background: $error; color: $text; }
    .board-title { padding: 0 1; text-style: bold; }
    DataTable { height: 1fr; }
    #notice, #reason { width: 100%; height: auto; max-height: 100%; border: thick $accent; background: $surface;
        padding: 0 1; }
    #notice-actions { margin-top: 1; text-style: bold; }
    NoticeScreen, ReasonScreen, HelpScreen, ConfirmScreen, ComposeScreen, TextScreen, LogScreen, SentScreen {
        align: center middle; }
    #page, #log { width: 100%; height: 100%; background: $surface; padding: 0 1; }
    #verified { height: auto; }
    #compose { width: 100%; height: 100%; background: $surface; }
    #compose .row { height: 1; margin-bottom: 1; }
    #compose .field { width: 9; color: $text-muted; }
    #compose Select, #compose Input { width: 1fr; margin-right: 1; }
    #compose #problem { margin-top: 1; }
    #confirm { width: 70; height: auto; border: thick $error; background: $surface; padding: 1 2; }
    #help { width: 80; height: auto; border: thick $accent; background: $surface; padding: 1 2; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("i", "focus('incoming')", "In"),
        Binding("o", "focus('outgoing')", "Out"),
        Binding("s", "compose", "New"),
        Binding("a", "change('AMEND')", "Amend"),
        Binding("x", "change('CANCEL')", "Cancel"),
        Binding("t", "test_line", "Test"),
        Binding("h", "handover", "Handover"),
        Binding("l", "log", "Log"),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, client: StationClient, deadlines: dict[str, int]) -> None:
        super().__init__()
        self.client = client
        self.directory = client.directory
        self.deadlines = deadlines
        self.queries = Queries(client.store.conn)
        self.boards_version: tuple[int, int] | None = None
        self.incoming: list[Incoming] = []
        self.outgoing: list[Outgoing] = []
        self.seen: set[str] | None = None  # incoming notices already on the board (None: not drawn yet)
        self.overdue: set[str] = set()  # notices already announced as overdue
        self.stop = asyncio.Event()
        self.runner: asyncio.Task[None] | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="line")
        yield Label("INCOMING", classes="board-title")
        yield DataTable(id="incoming", cursor_type="row", zebra_stripes=True, cell_padding=0)
        yield Label("OUTGOING", classes="board-title")
        yield DataTable(id="outgoing", cursor_type="row", zebra_stripes=True, cell_padding=0)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"{self.client.settings.name} ↔ {self.client.peer.name}"
        incoming = ("prec", "ref", "what", "area", "window", "ack due")
        self.query_one("#incoming", DataTable).add_columns(*(_cell(c) for c in incoming))
        outgoing = ("prec", "ref", "sent", "state", "answer due")
        self.query_one("#outgoing", DataTable).add_columns(*(_cell(c) for c in outgoing))
        self.runner = asyncio.create_task(self.client.run(self.stop))
        self.refresh_boards()
        self.set_interval(1.0, self.refresh_boards)
        self.query_one("#incoming", DataTable).focus()

    async def on_unmount(self) -> None:
        self.stop.set()
        if self.runner is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.runner, 5)

    def refresh_boards(self) -> None:
        now = datetime.now(UTC)
        text, bad = line_text(self.queries, self.client.authenticated.is_set(), now)
        line = self.query_one("#line", Static)
        line.update(text)
        line.set_class(bad, "bad")
        peer = self.client.peer.name
        # The boards are read from the store again only when it changed (a store of a year's notices would
        # otherwise be decoded every second); what depends on the time is worked out below, each second.
        # (PRAGMA data_version moves with the other processes' commits, total_changes with this one's writes.)
        version = (self.client.store.data_version(), self.client.store.conn.total_changes)
        if version != self.boards_version:
            self.boards_version = version
            self.incoming = incoming_rows(self.queries, self.deadlines)
            self.outgoing = outgoing_rows(self.queries, self.deadlines)
        arrived = [r for r in self.incoming if self.seen is not None and r.statement_hash not in self.seen]
        if any(r.precedence in LOUD and r.open for r in arrived):
            self.bell()
        for r in arrived:
            loud = r.precedence in LOUD
            self.notify(f"{r.precedence} notice {r.ref}: {r.what}", severity="warning" if loud else "information")
        self.seen = {r.statement_hash for r in self.incoming}
        # Escalation: a notice that has just become overdue, either way, rings and says so once.
        late = [
            (f"{r.ref}: {peer} has not answered", r.statement_hash) for r in self.outgoing if r.open and now >= r.due
        ]
        late += [
            (f"{r.ref}: we owe the acknowledgement", r.statement_hash) for r in self.incoming if r.open and now >= r.due
        ]
        for text, key in late:
            if key not in self.overdue:
                self.overdue.add(key)
                self.bell()
                self.notify(f"OVERDUE {text}", severity="error", timeout=30)
        self._fill_incoming(now)
        self._fill_outgoing(now)

    def _fill_incoming(self, now: datetime) -> None:
        rows = []
        for r in self.incoming:
            late_style = "bold red" if r.open and now >= r.due else ""
            quiet = "" if r.open else "dim"
            cells = [
                _cell(PREC[r.precedence], STYLE[r.precedence] if r.open else "dim"),
                _cell(r.ref, quiet),
                _cell(r.what, quiet),
                _cell(r.area, quiet),
                _cell(r.window, quiet),
                _cell(
                    time_left(r.due, now) if r.open else (r.superseded or r.answered or ""),
                    late_style or quiet,
                ),
            ]
            rows.append((cells, r.statement_hash))
        _refill(self.query_one("#incoming", DataTable), rows)

    def _fill_outgoing(self, now: datetime) -> None:
        rows = []
        for r in self.outgoing:
            late = "bold red" if r.open and now >= r.due else ""
            cells = [
                _cell(PREC[r.precedence], STYLE[r.precedence] if r.open else "dim"),
                _cell(r.ref),
                _cell(f"{r.sent:%d %H:%MZ}"),
                _cell(r.state, late),
                _cell(time_left(r.due, now) if r.open else "", late),
            ]
            rows.append((cells, r.statement_hash))
        _refill(self.query_one("#outgoing", DataTable), rows)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "outgoing":
            chosen = next((r for r in self.outgoing if r.statement_hash == event.row_key.value), None)
            row = self.queries.sent(chosen.statement_hash) if chosen else None
            if chosen is not None and row is not None:
                self.push_screen(SentScreen(row, self.queries.answers_to(chosen.statement_hash), chosen.state))
            return
        item = next((r for r in self.incoming if r.statement_hash == event.row_key.value), None)
        if item is not None:
            self.push_screen(NoticeScreen(item))

    def acknowledge(self, row: Row, level: AckLevel, comment: str | None) -> bool:
        """Seal and queue an acknowledgement; the client sends it. False (and a message) if it cannot be sealed."""
        return self._queue(acknowledgement(row, level, comment), f"{level} of {row.ref}")

    def send_notice(self, notice: Notice) -> bool:
        """Seal and queue a notice; the client sends it. False (and a message) if it cannot be sealed."""
        return self._queue(notice, f"{notice.precedence} notice {notice.ref}")

    def _queue(self, body: Ack | Notice, what: str) -> bool:
        try:
            self.client.send(body)
        except HotlineError as e:
            self.notify(f"{what} not sent: {e}", severity="error", timeout=10)
            return False
        self.notify(f"{what} signed and queued for the relay")
        self.refresh_boards()
        return True

    def _ours(self) -> list[str]:
        return [r.ref for r in sorted(self.outgoing, key=lambda r: r.sent) if r.ref]

    def action_compose(self) -> None:
        self.push_screen(ComposeScreen({"ref": next_ref(self._ours())}, self.client.peer.name))

    def action_change(self, action: str) -> None:
        """AMEND or CANCEL the outgoing notice under the cursor."""
        table = self.query_one("#outgoing", DataTable)
        if not self.outgoing or not table.has_focus:
            self.notify(f"to {action.lower()} a notice, choose it on the outgoing board first (o)", timeout=5)
            return
        chosen = self.outgoing[min(table.cursor_row, len(self.outgoing) - 1)]
        row = self.queries.sent(chosen.statement_hash)
        if row is None or not isinstance(row.statement.body, Notice):
            return
        form = form_from_notice(row.statement.body, action, next_ref(self._ours()))
        self.push_screen(ComposeScreen(form, self.client.peer.name))

    def action_handover(self) -> None:
        from hotline.cli.station import handover_lines, status_report

        now = datetime.now(UTC)
        report = status_report(self.queries, self.deadlines, now)
        me, peer = self.client.settings.name, self.client.peer.name
        lines = handover_lines(self.queries, report, me, peer, now - timedelta(hours=12), now)
        self.push_screen(TextScreen("\n".join(lines)))

    def action_test_line(self) -> None:
        """A heartbeat now: the top line shows its round trip when the peer's station answers."""
        try:
            self.client.heartbeat()
        except HotlineError as e:
            self.notify(f"no heartbeat sent: {e}", severity="error", timeout=10)
            return
        self.notify("heartbeat sent: its round trip shows on the top line when the peer answers")

    def action_log(self) -> None:
        self.push_screen(LogScreen())

    def verify_log(self) -> Report:
        """``hotline log verify`` of this station, on its own connection to the store (run in a thread)."""
        settings = self.client.settings
        return verify_station(
            self.directory / "station.db",
            (settings.name, self.client.identity.public),
            (settings.peer.name, settings.peer_key),
            settings.relay_key,
        )

    def action_help(self) -> None:
        self.push_screen(HelpScreen())
