"""The station's commands: ``station init``, ``send``, ``listen``, ``ack``, ``status``, ``heartbeat``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Final, TypeVar

import msgspec
import typer

from hotline.cli.common import app, passphrase_for, reports_errors
from hotline.cli.notices import NoticeFields, body_from_file, build_notice, free_text, parse_time
from hotline.protocol.envelope import DEFAULT_MAX_SKEW
from hotline.protocol.exceptions import HotlineError, NoEpochKey, Refused, RelayUnreachable, StoreError, TimedOut
from hotline.protocol.messages import Ack, AckLevel, Body, Circle, Corridor, FreeText, Notice, Polygon, Readback
from hotline.protocol.station import KEY_HORIZON, deadline
from hotline.station.client import StationClient
from hotline.station.setup import init_station, load_station
from hotline.store.keyfiles import describe_key_file, load_identity, load_public_key
from hotline.store.station import Queries, Row, format_time

station_app = typer.Typer(no_args_is_help=True, help="Set up a station.")
app.add_typer(station_app, name="station")

T = TypeVar("T")

FINAL_LEVELS = ("READ_UNDERSTOOD", "CONFLICT", "UNABLE")


class WaitFor(StrEnum):
    received = "received"
    understood = "understood"


class Level(StrEnum):
    understood = "understood"
    conflict = "conflict"
    unable = "unable"


LEVELS: dict[str, AckLevel] = {"understood": "READ_UNDERSTOOD", "conflict": "CONFLICT", "unable": "UNABLE"}


# --- helpers -------------------------------------------------------------------------------------------


def open_client(directory: Path, receive: bool) -> StationClient:
    settings = load_station(directory)
    return StationClient.open(directory, passphrase_for(Path(settings.key_file)), receive=receive)


async def online(client: StationClient, body: Callable[[StationClient], Awaitable[T]], timeout: float) -> T:
    """Run ``body`` while the client keeps a connection to the relay; stop cleanly afterwards."""
    stop = asyncio.Event()
    runner = asyncio.create_task(client.run(stop))
    try:
        return await body(client)
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(runner, timeout=5)


async def until_authenticated(client: StationClient, timeout: float) -> None:
    def settled(_: object) -> bool | None:
        return True if client.authenticated.is_set() or client.refusal is not None else None

    await client.wait_for(settled, timeout)
    if client.refusal is not None:
        raise Refused(
            f"the relay refused this station ({client.refusal.refusal}): is its key on the relay's roster? "
            "Compare fingerprints with the relay operator",
            client.refusal.refusal,
        )
    if not client.authenticated.is_set():
        reason = f": {client.last_error}" if client.last_error else ""
        raise RelayUnreachable(
            f"no connection to the relay at {client.settings.relay.url} within {timeout:g}s{reason}; "
            "check that it runs and that --relay-ca and --relay-key are the relay's"
        )


async def seal(client: StationClient, body: Body, timeout: float) -> str:
    """Seal now if the peer's epoch keys are known; otherwise connect first to learn them."""
    try:
        return client.send(body)
    except NoEpochKey:
        pass
    await until_authenticated(client, timeout)
    found = await client.wait_for(lambda _: True if client.station.peer_keys else None, min(timeout, 5))
    if not found:
        raise NoEpochKey(
            f"no epoch key of {client.peer.name} has reached this station: {client.peer.name} publishes them "
            "each time it connects to the relay, which hands them on; if it has connected, the relay withholds them"
            " (check that the relay runs the roster agreed at the key ceremony). Until then nothing can be sealed"
            " to it: use the fallback channel for anything urgent"
        )
    return client.send(body)


async def accepted(client: StationClient, statement_hash: str, timeout: float, total: float | None = None) -> int:
    def check(_: object) -> int | tuple[str, str] | None:
        q = Queries(client.store.conn)
        return (
            q.accepted_index(statement_hash)
            if q.accepted_index(statement_hash) is not None
            else q.refusal(statement_hash)
        )

    found = await client.wait_for(check, timeout)
    if isinstance(found, tuple):
        raise Refused(f"the relay refused the message: {found[1]}", found[0])
    if found is None:
        raise TimedOut(
            f"the relay did not accept the message within {total or timeout:g}s; it stays in the outbox and will be "
            "submitted again with the same id"
        )
    assert isinstance(found, int)
    return found


def summary(notice: Notice) -> str:
    """One line: what, where, when."""
    parts = [f"{notice.action} {notice.mode} {notice.precedence}"]
    if notice.refers_to:
        parts.append(f"refers to {notice.refers_to}")
    if notice.activity:
        parts.append(f"{notice.activity.domain} {notice.activity.type}")
    if notice.area is not None:
        parts.append(area_text(notice.area))
    if notice.window is not None:
        parts.append(f"{notice.window.start:%Y-%m-%dT%H:%MZ} to {notice.window.end:%Y-%m-%dT%H:%MZ}")
    return ", ".join(parts)


def area_text(area: Circle | Polygon | Corridor) -> str:
    if isinstance(area, Circle):
        return f"circle {area.center.lat:.4f},{area.center.lon:.4f} radius {area.radius:g}{area.unit}"
    if isinstance(area, Polygon):
        return f"polygon of {len(area.points)} points"
    return f"corridor of {len(area.path)} points, {area.half_width:g}{area.unit} each side"


def row_json(row: Row) -> dict[str, object]:
    return {
        "direction": row.direction,
        "seq": row.seq,
        "log_index": row.log_index,
        "kind": row.kind,
        "ref": row.ref,
        "precedence": row.precedence,
        "answers": row.answers,
        "level": row.level,
        "created": format_time(row.created),
        "at": format_time(row.at),
        "statement_hash": row.statement_hash,
        "body": msgspec.to_builtins(row.statement.body),
    }


def row_text(row: Row, peer: str) -> str:
    body = row.statement.body
    when = f"{row.at:%H:%M:%SZ}"
    index = f"[log {row.log_index}]" if row.log_index is not None else "[not yet logged]"
    if isinstance(body, Notice):
        text = body.text.body if len(body.text.body) <= 60 else body.text.body[:57] + "..."
        return f"{when}  NOTICE {body.ref} from {peer}: {summary(body)}: {text!r} {index}"
    if isinstance(body, Ack):
        about = body.ref or row.answers or ""
        extra = f" ({body.comment})" if body.comment else ""
        return f"{when}  ACK {body.level} of {about} from {peer}{extra} {index}"
    if isinstance(body, FreeText):
        return f"{when}  TEXT from {peer} ({body.lang}): {body.body!r} {index}"
    return f"{when}  {row.kind.upper()} from {peer} {index}"


def emit(data: object, json_output: bool, text: str) -> None:
    typer.echo(json.dumps(data) if json_output else text)


# --- station init ----------------------------------------------------------------------------------------


def _name_and_key(text: str, what: str) -> tuple[str, str]:
    name, sep, key = text.partition("=")
    if not sep or not name or not key:
        raise typer.BadParameter(f"give {what} as NAME=PUB, PUB being a .pub file or a key line 'ed25519:...'")
    return name, key


@station_app.command("init")
@reports_errors
def station_init(
    directory: Annotated[Path, typer.Argument(help="The station's directory (created).")],
    key: Annotated[Path, typer.Option(help="This station's identity key file (from hotline keygen).")],
    peer: Annotated[str, typer.Option(help="The other station, NAME=PUB, as compared at the key ceremony.")],
    relay: Annotated[str, typer.Option(help="The relay's URL, wss://HOST:PORT/.")],
    relay_ca: Annotated[Path, typer.Option(help="The relay's TLS certificate (its tls.crt).")],
    relay_key: Annotated[str, typer.Option(help="The relay's public key (its relay.pub), as compared.")],
    name: Annotated[str | None, typer.Option(help="This station's name (default: the key file's).")] = None,
) -> None:
    """Make a station's directory: its settings, the pinned keys of the peer and relay, its store."""
    peer_name, peer_key = _name_and_key(peer, "--peer")
    key_name, _ = describe_key_file(key)
    settings = init_station(
        directory,
        name or key_name,
        key,
        peer_name,
        load_public_key(peer_key),
        relay,
        relay_ca,
        load_public_key(relay_key),
    )
    typer.echo(f"station {settings.name} in {directory}; peer {peer_name}; relay {relay}")


# --- send --------------------------------------------------------------------------------------------------


@app.command()
@reports_errors
def send(
    directory: Annotated[Path, typer.Argument(help="The station's directory.")],
    ref: Annotated[str | None, typer.Option(help="The notice's reference, never reused, e.g. TUR-2026-000123.")] = None,
    action: Annotated[str, typer.Option(help="NEW, AMEND or CANCEL.")] = "NEW",
    refers_to: Annotated[str | None, typer.Option(help="For AMEND and CANCEL: the ref of the notice changed.")] = None,
    mode: Annotated[str, typer.Option(help="OPER, EXER or TEST.")] = "OPER",
    precedence: Annotated[str, typer.Option(help="FLASH, IMMEDIATE, PRIORITY or ROUTINE.")] = "ROUTINE",
    response: Annotated[str, typer.Option(help="INFO_ONLY, CONFIRM_NO_CONFLICT or REQUEST_CLEAR.")] = "INFO_ONLY",
    domain: Annotated[str | None, typer.Option(help="AIR, GROUND, NAVAL, UAV or FIRES.")] = None,
    activity: Annotated[str | None, typer.Option(help="STRIKE, PATROL, TRANSIT, CONVOY, ISR, EXERCISE...")] = None,
    circle: Annotated[str | None, typer.Option(help="LAT,LON,RADIUS e.g. 36.52,37.95,10NM")] = None,
    polygon: Annotated[str | None, typer.Option(help="'LAT,LON;LAT,LON;LAT,LON'")] = None,
    corridor: Annotated[str | None, typer.Option(help="'LAT,LON;LAT,LON@HALF_WIDTH' e.g. ...@6KM")] = None,
    lower: Annotated[float | None, typer.Option(help="Lower limit of the vertical band.")] = None,
    upper: Annotated[float | None, typer.Option(help="Upper limit of the vertical band.")] = None,
    unit: Annotated[str, typer.Option(help="FT, M or FL.")] = "FT",
    vertical_ref: Annotated[str, typer.Option(help="AMSL, AGL, SFC or UNL.")] = "AMSL",
    start: Annotated[str | None, typer.Option(help="Window start, UTC: 2026-11-26T14:00Z")] = None,
    end: Annotated[str | None, typer.Option(help="Window end, UTC.")] = None,
    force: Annotated[list[str] | None, typer.Option(help="CALLSIGN[/UNIT[/PLATFORM[/COUNT]]] (repeatable).")] = None,
    contact: Annotated[str | None, typer.Option(help="On-scene contact CALLSIGN[/FREQUENCY].")] = None,
    text: Annotated[str | None, typer.Option(help="The notice's text, or a free-text message on its own.")] = None,
    lang: Annotated[str, typer.Option(help="The language of the text (en, tr, ru, he...).")] = "en",
    classification: Annotated[str, typer.Option(help="Classification and releasability marking.")] = "UNCLASSIFIED",
    file: Annotated[Path | None, typer.Option(help="A notice (or text) as JSON, instead of the options.")] = None,
    wait: Annotated[
        WaitFor | None, typer.Option(help="Wait for RECEIVED or READ_UNDERSTOOD (or CONFLICT/UNABLE).")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the relay, and for --wait.")] = 30.0,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Send a movement notice (or a free text) to the peer station, and wait for it to be logged."""
    body: Body
    if file is not None:
        body = body_from_file(file)
    elif ref is not None:
        if text is None:
            raise typer.BadParameter("a notice needs --text (what a duty officer reads first)", param_hint="--text")
        fields = NoticeFields(
            ref=ref,
            action=action,
            refers_to=refers_to,
            mode=mode,
            precedence=precedence,
            response=response,
            domain=domain,
            activity=activity,
            circle=circle,
            polygon=polygon,
            corridor=corridor,
            lower=lower,
            upper=upper,
            unit=unit,
            vertical_ref=vertical_ref,
            start=start,
            end=end,
            forces=list(force or []),
            contact=contact,
            text=text,
            lang=lang,
            classification=classification,
        )
        body = build_notice(fields)
    elif text is not None:
        body = free_text(text, lang)
    else:
        raise typer.BadParameter("give a notice (--ref and its fields), a --text, or a --file")
    client = open_client(directory, receive=wait is not None)
    result = asyncio.run(online(client, lambda c: _send(c, body, wait, timeout), timeout))
    client.close()
    if json_output:
        typer.echo(json.dumps(result))
        return
    what = f"notice {result['ref']}" if result["ref"] else "text"
    typer.echo(f"sent {what} to {client.peer.name}: accepted by the relay at log index {result['log_index']}")
    acks = result["acks"]
    assert isinstance(acks, list)
    for level, seconds in acks:
        typer.echo(f"  {level} from {client.peer.name} after {seconds:.3f}s")


async def _send(client: StationClient, body: Body, wait: WaitFor | None, timeout: float) -> dict[str, object]:
    started = time.monotonic()
    statement_hash = await seal(client, body, timeout)
    await until_authenticated(client, max(0.1, timeout - (time.monotonic() - started)))
    index = await accepted(client, statement_hash, max(0.1, timeout - (time.monotonic() - started)), timeout)
    sent = Queries(client.store.conn).sent(statement_hash)
    assert sent is not None
    acks: list[tuple[str, float]] = []
    if wait is not None:
        wanted = ("RECEIVED", *FINAL_LEVELS) if wait is WaitFor.received else FINAL_LEVELS

        def check(_: object) -> list[Row] | None:
            answers = Queries(client.store.conn).answers_to(statement_hash)
            return answers if any(a.level in wanted for a in answers) else None

        remaining = max(0.1, timeout - (time.monotonic() - started))
        answers = await client.wait_for(check, remaining)
        if answers is None:
            raise TimedOut(
                f"{client.peer.name} did not acknowledge within {timeout:g}s ({wait.value} awaited); the notice "
                "is logged, and its deadline is tracked by 'hotline status'"
            )
        acks = [(a.level or "", (a.at - sent.created).total_seconds()) for a in answers]
    ref = body.ref if isinstance(body, Notice) else None
    return {"ref": ref, "statement_hash": statement_hash, "log_index": index, "acks": acks}


# --- listen ------------------------------------------------------------------------------------------------


@app.command()
@reports_errors
def listen(
    directory: Annotated[Path, typer.Argument(help="The station's directory.")],
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    history: Annotated[bool, typer.Option("--history", help="Print what was received before, first.")] = False,
) -> None:
    """Receive: verify, store, acknowledge RECEIVED automatically, and print what arrives. Stop with Ctrl-C."""
    client = open_client(directory, receive=True)
    asyncio.run(_listen(client, json_output, history))
    client.close()


async def _listen(client: StationClient, json_output: bool, history: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    queries = Queries(client.store.conn)
    cursor = -1 if history else queries.last_received_index()
    incident_cursor = queries.last_incident()
    runner = asyncio.create_task(client.run(stop))
    peer = client.peer.name
    store_error: BaseException | None = None
    typer.echo(f"listening as {client.settings.name} for {peer} via {client.settings.relay.url}", err=True)
    while not stop.is_set():
        for row in queries.received_since(cursor):
            if row.log_index is not None:
                cursor = max(cursor, row.log_index)
            emit(row_json(row), json_output, row_text(row, peer))
        for number, at, code, message in queries.incidents_since(incident_cursor):
            incident_cursor = number
            data = {"incident": code, "at": format_time(at), "message": message}
            emit(data, json_output, f"{at:%H:%M:%SZ}  INCIDENT {code}: {message}")
        if isinstance(client.last_error, StoreError) and client.last_error is not store_error:
            # Our own disk refused a write: no incident can be stored either, so it is told here.
            store_error = client.last_error
            at = datetime.now(UTC)
            data = {"incident": store_error.code, "at": format_time(at), "message": str(store_error)}
            emit(data, json_output, f"{at:%H:%M:%SZ}  INCIDENT {store_error.code}: {store_error}; trying again")
        sys.stdout.flush()
        client.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(client.changed.wait(), 0.2)
    await runner


# --- ack ---------------------------------------------------------------------------------------------------


@app.command()
@reports_errors
def ack(
    directory: Annotated[Path, typer.Argument(help="The station's directory.")],
    ref: Annotated[str, typer.Argument(help="The ref of the notice received.")],
    level: Annotated[Level, typer.Option(help="understood (with read-back), conflict or unable.")] = Level.understood,
    comment: Annotated[str | None, typer.Option(help="Why (required for conflict and unable).")] = None,
    officer: Annotated[str | None, typer.Option(help="The duty officer's id.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the relay.")] = 30.0,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Acknowledge a notice received: READ_UNDERSTOOD with the read-back of its area and window, or CONFLICT/UNABLE."""
    client = open_client(directory, receive=False)
    notice_row = Queries(client.store.conn).incoming_notice(ref)
    if notice_row is None:
        client.close()
        raise typer.BadParameter(f"no notice {ref} was received; 'hotline status' lists them", param_hint="REF")
    wanted: AckLevel = LEVELS[level.value]
    try:
        body = acknowledgement(notice_row, wanted, comment, officer)
    except HotlineError as e:
        client.close()
        raise typer.BadParameter(str(e)) from None
    result = asyncio.run(online(client, lambda c: _ack(c, body, timeout), timeout))
    client.close()
    emit(
        {"ref": ref, "level": wanted, "log_index": result},
        json_output,
        f"{wanted} of {ref} sent to {client.peer.name}: accepted by the relay at log index {result}",
    )


def acknowledgement(row: Row, level: AckLevel, comment: str | None, officer: str | None = None) -> Ack:
    """The acknowledgement of a notice received: READ_UNDERSTOOD reads its area and window back."""
    notice = row.statement.body
    assert isinstance(notice, Notice)
    readback = None
    if level == "READ_UNDERSTOOD" and notice.area is not None and notice.window is not None:
        readback = Readback(area=notice.area, window=notice.window)
    return Ack(
        answers=row.statement_hash, level=level, ref=notice.ref, readback=readback, officer=officer, comment=comment
    )


async def _ack(client: StationClient, body: Ack, timeout: float) -> int:
    statement_hash = await seal(client, body, timeout)
    await until_authenticated(client, timeout)
    return await accepted(client, statement_hash, timeout)


# --- status ------------------------------------------------------------------------------------------------


@app.command()
@reports_errors
def status(
    directory: Annotated[Path, typer.Argument(help="The station's directory.")],
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
    handover: Annotated[bool, typer.Option("--handover", help="A summary for the change of watch.")] = False,
    since: Annotated[
        str | None, typer.Option(help="With --handover: the watch's start, UTC (default: 12 hours ago).")
    ] = None,
) -> None:
    """Open notices both ways, deadlines, incidents; exit 1 when something is overdue or the relay forked the log."""
    settings = load_station(directory)
    from hotline.store.station import StationStore

    now = datetime.now(UTC)
    start = parse_time(since, "--since") if since is not None else now - timedelta(hours=12)
    store = StationStore(directory / "station.db")
    queries = Queries(store.conn)
    report = status_report(queries, settings.deadlines, now)
    lines = handover_lines(queries, report, settings.name, settings.peer.name, start, now) if handover else []
    store.close()
    if json_output:
        typer.echo(json.dumps(report))
    else:
        for line in lines or status_lines(report, settings.peer.name):
            typer.echo(line)
    if report["overdue"] or report["split_view"]:
        raise typer.Exit(1)


# Open notices first, the most urgent first among them.
URGENCY: dict[str, int] = {"FLASH": 0, "IMMEDIATE": 1, "PRIORITY": 2, "ROUTINE": 3}


def notice_state(levels: list[str], logged: bool) -> str:
    """Where one of our notices stands, from the levels of the answers it has and whether it is logged."""
    for level in ("CONFLICT", "UNABLE", "READ_UNDERSTOOD", "RECEIVED"):
        if level in levels:
            return level
    return "accepted by the relay" if logged else "queued"


def status_report(q: Queries, deadlines: dict[str, int], now: datetime) -> dict[str, object]:
    outgoing, incoming = [], []
    overdue = 0
    theirs, ours_all = q.answer_levels("peer"), q.answer_levels("ours")
    for row in q.notices("out"):
        levels = theirs.get(row.statement_hash, [])
        due = deadline(row.precedence or "ROUTINE", row.created, deadlines)
        is_open = not any(level in FINAL_LEVELS for level in levels)
        late = is_open and now >= due
        overdue += late
        if is_open:
            outgoing.append(
                {
                    "ref": row.ref,
                    "precedence": row.precedence,
                    "sent": format_time(row.created),
                    "due": format_time(due),
                    "state": notice_state(levels, row.log_index is not None),
                    "overdue": late,
                }
            )
    for row in q.notices("in"):
        ours = ours_all.get(row.statement_hash, [])
        due = deadline(row.precedence or "ROUTINE", row.created, deadlines)
        is_open = not any(level in FINAL_LEVELS for level in ours)
        late = is_open and now >= due
        overdue += late
        if is_open:
            incoming.append(
                {
                    "ref": row.ref,
                    "precedence": row.precedence,
                    "received": format_time(row.at),
                    "due": format_time(due),
                    "answered": ours[-1] if ours else None,
                    "overdue": late,
                }
            )
    since = format_time(now - timedelta(days=1))
    incidents = [
        {"at": at, "code": code, "message": message}
        for at, code, message in q.conn.execute(
            "SELECT at, code, message FROM incidents WHERE at >= ? ORDER BY id", (since,)
        )
    ]
    split_view = q.conn.execute("SELECT COUNT(*) FROM incidents WHERE code = 'split-view'").fetchone()[0] > 0
    line = q.line()
    line.pop("logged")
    line["logged_size"] = q.logged_size()
    return {
        "outgoing": outgoing,
        "incoming": incoming,
        "overdue": overdue,
        "line": line,
        "incidents": incidents,
        "split_view": split_view,
    }


def status_lines(report: dict[str, object], peer: str) -> list[str]:
    lines = []
    outgoing = report["outgoing"]
    incoming = report["incoming"]
    assert isinstance(outgoing, list)
    assert isinstance(incoming, list)
    lines.append(f"outgoing notices awaiting {peer}'s answer: {len(outgoing)}")
    for n in outgoing:
        flag = "  OVERDUE" if n["overdue"] else ""
        lines.append(f"  {n['ref']}  {n['precedence']:<9}  {n['state']:<22}  due {n['due'][:19]}Z{flag}")
    lines.append(f"incoming notices awaiting our READ_UNDERSTOOD: {len(incoming)}")
    for n in incoming:
        flag = "  OVERDUE" if n["overdue"] else ""
        received, due = n["received"][:19], n["due"][:19]
        lines.append(f"  {n['ref']}  {n['precedence']:<9}  received {received}Z  due {due}Z{flag}")
    line = report["line"]
    assert isinstance(line, dict)
    lines.append(
        f"line: relay last seen {line['relay_seen_at'] or 'never'};"
        f" {peer} last heard {line['peer_heard_at'] or 'never'};"
        f" last heartbeat answered {line['heartbeat_answered_at'] or 'never'}; logged entries {line['logged_size']}"
    )
    incidents = report["incidents"]
    assert isinstance(incidents, list)
    if incidents:
        lines.append(f"incidents in the last 24 hours: {len(incidents)}")
        lines.extend(f"  {i['at'][:19]}Z  {i['code']}: {i['message']}" for i in incidents[-10:])
    if report["split_view"]:
        lines.append("SPLIT VIEW: the relay showed the two stations different logs; do not trust it (incidents)")
    if report["overdue"]:
        lines.append(f"OVERDUE: {report['overdue']} notice(s) past their acknowledgement deadline")
    return lines


# --- console -----------------------------------------------------------------------------------------------


@app.command()
@reports_errors
def console(directory: Annotated[Path, typer.Argument(help="The station's directory.")]) -> None:
    """The duty officer's console: incoming and outgoing notices, acknowledgements, the line's health."""
    from hotline.cli.console import Console  # textual is loaded for the console only

    settings = load_station(directory)
    client = open_client(directory, receive=True)
    try:
        Console(client, dict(settings.deadlines)).run()
    finally:
        client.close()


def _when(stored: object) -> str:
    """A stored time to the second, or 'never'."""
    return f"{str(stored)[:19]}Z" if stored else "never"


def handover_lines(
    q: Queries, report: dict[str, object], me: str, peer: str, since: datetime, now: datetime
) -> list[str]:
    """What the next watch must know: what is open both ways, what is overdue, the line, what happened since."""
    lines = [f"HANDOVER {me} at {now:%Y-%m-%d %H:%MZ}, the watch since {since:%Y-%m-%d %H:%MZ}", ""]
    incoming, outgoing = report["incoming"], report["outgoing"]
    assert isinstance(incoming, list)
    assert isinstance(outgoing, list)
    by_ref = {row.ref: row for row in q.notices("in")}
    incoming = sorted(incoming, key=lambda n: (URGENCY.get(str(n["precedence"]), 4), n["due"]))
    outgoing = sorted(outgoing, key=lambda n: (URGENCY.get(str(n["precedence"]), 4), n["due"]))

    def due(n: dict[str, object]) -> str:
        return "OVERDUE" if n["overdue"] else f"due {str(n['due'])[8:10]} {str(n['due'])[11:16]}Z"

    lines.append(f"Incoming notices still to acknowledge (READ_UNDERSTOOD, CONFLICT or UNABLE): {len(incoming)}")
    for n in incoming:
        row = by_ref.get(n["ref"])
        what = summary(row.statement.body) if row and isinstance(row.statement.body, Notice) else ""
        lines.append(f"  {n['ref']}  {n['precedence']:<9} {due(n):<12} {what}")
    lines.append(f"Outgoing notices awaiting {peer}: {len(outgoing)}")
    for n in outgoing:
        lines.append(f"  {n['ref']}  {n['precedence']:<9} {due(n):<12} {n['state']}")
    refusals = []
    for row in q.notices("out"):
        for answer in q.answers_to(row.statement_hash):
            body = answer.statement.body
            if isinstance(body, Ack) and body.level in ("CONFLICT", "UNABLE") and answer.at >= since:
                refusals.append(f"  {row.ref}  {body.level} from {peer}: {body.comment or ''}")
    lines.append(f"Our notices answered CONFLICT or UNABLE this watch: {len(refusals)}")
    lines.extend(refusals)
    lines.append(f"Overdue: {report['overdue']}")
    line = report["line"]
    assert isinstance(line, dict)
    lines.append(
        f"Line: relay last seen {_when(line['relay_seen_at'])}; {peer} last heard {_when(line['peer_heard_at'])};"
        f" last heartbeat answered {_when(line['heartbeat_answered_at'])}; cosigned log {line['logged_size']}"
    )
    start = format_time(since)
    received = q.conn.execute("SELECT COUNT(*) FROM inbox WHERE kind = 'notice' AND received_at >= ?", (start,))
    sent = q.conn.execute("SELECT COUNT(*) FROM outbox WHERE kind = 'notice' AND created >= ?", (start,))
    lines.append(f"This watch: {received.fetchone()[0]} notices received, {sent.fetchone()[0]} sent")
    incidents = q.conn.execute("SELECT at, code, message FROM incidents WHERE at >= ? ORDER BY id", (start,)).fetchall()
    lines.append(f"Incidents this watch: {len(incidents)}")
    lines.extend(f"  {at[:16]}Z  {code}: {message}" for at, code, message in incidents)
    if report["split_view"]:
        lines.append("SPLIT VIEW recorded: the relay showed the two stations different logs; do not trust it")
    return lines


# --- heartbeat ---------------------------------------------------------------------------------------------

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3

STATES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}

# A station clock this far from the relay's is a warning: at DEFAULT_MAX_SKEW from the peer's, the peer refuses
# what it sends as dated in the future (or it refuses the peer's).
CLOCK_WARNING: Final = timedelta(minutes=1)


@app.command()
def heartbeat(
    directory: Annotated[Path, typer.Argument(help="The station's directory.")],
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the peer's reply.")] = 10.0,
    every: Annotated[float | None, typer.Option(help="Run as a timer: a check every SECONDS, until stopped.")] = None,
) -> None:
    """One end-to-end check of the line (Nagios plugin convention): exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN."""
    try:
        settings = load_station(directory)
        client = open_client(directory, receive=True)
    except HotlineError as e:
        typer.echo(f"HOTLINE UNKNOWN - {type(e).__name__}: {e}")
        raise typer.Exit(UNKNOWN) from None
    code = asyncio.run(_heartbeats(client, timeout, every, settings.heartbeat_warning, settings.heartbeat_critical))
    client.close()
    raise typer.Exit(code)


async def _heartbeats(client: StationClient, timeout: float, every: float | None, warn: float, crit: float) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    if every is not None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    runner = asyncio.create_task(client.run(stop))
    code = UNKNOWN
    try:
        while True:
            code, line = await _one_heartbeat(client, timeout, warn, crit)
            typer.echo(line)
            sys.stdout.flush()
            if every is None or stop.is_set():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
            if stop.is_set():
                break
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(runner, 5)
    return code if every is None else OK


async def _one_heartbeat(client: StationClient, timeout: float, warn: float, crit: float) -> tuple[int, str]:
    peer = client.peer.name
    perf = f";{warn:g};{crit:g};0"
    started = time.monotonic()
    try:
        await until_authenticated(client, timeout)
        if not await client.wait_for(lambda _: True if client.station.peer_keys else None, timeout):
            raise NoEpochKey(f"no epoch key of {peer} has reached this station, so nothing can be sealed to it")
        _, statement_hash = client.heartbeat()
    except HotlineError as e:
        return CRITICAL, f"HOTLINE CRITICAL - {e} | rtt={timeout:g}s{perf}"
    remaining = max(0.1, timeout - (time.monotonic() - started))
    forked = _split_views(client)
    if forked:
        # Whatever the heartbeat says, a relay caught forking the log cannot be trusted.
        return CRITICAL, f"HOTLINE CRITICAL - {forked} | rtt={timeout:g}s{perf}"

    def check(_: object) -> Row | None:
        answers = Queries(client.store.conn).answers_to(statement_hash)
        return answers[0] if answers else None

    reply = await client.wait_for(check, remaining)
    clock = _clock_note(client)
    if reply is None:
        message = f"no heartbeat reply from {peer} within {timeout:g}s{clock}"
        with contextlib.suppress(StoreError), client.store.transaction():  # a full disk: said by the check alone
            client.store.incident("heartbeat", message)
        return CRITICAL, f"HOTLINE CRITICAL - {message} | rtt={timeout:g}s{perf}"
    forked = _split_views(client)
    if forked:
        return CRITICAL, f"HOTLINE CRITICAL - {forked} | rtt={timeout:g}s{perf}"
    sent = Queries(client.store.conn).sent(statement_hash)
    assert sent is not None
    rtt = max(0.0, (reply.at - sent.created).total_seconds())
    code = OK if rtt < warn else WARNING if rtt < crit else CRITICAL
    note = clock
    if clock and code == OK:
        code = WARNING
    horizon = max((k.not_after for k in client.station.peer_keys.values()), default=None)
    if code == OK and (horizon is None or horizon < datetime.now(UTC) + KEY_HORIZON):
        # The peer publishes two days of keys ahead: holding less than an hour means they are withheld.
        code = WARNING
        note += f"; the relay has handed on no epoch key of {peer} beyond {horizon:%H:%MZ}" if horizon else ""
    return code, f"HOTLINE {STATES[code]} - heartbeat answered by {peer} in {rtt:.3f}s{note} | rtt={rtt:.3f}s{perf}"


def _clock_note(client: StationClient) -> str:
    """What to say of this station's clock, measured against the relay's when it authenticated: '' if near."""
    offset = Queries(client.store.conn).line()["clock_offset"]
    if not isinstance(offset, float) or abs(offset) <= CLOCK_WARNING.total_seconds():
        return ""
    direction = "ahead of" if offset < 0 else "behind"
    return (
        f"; this station's clock is {abs(offset):.0f}s {direction} the relay's: check its time source "
        f"(statements dated over {DEFAULT_MAX_SKEW.total_seconds() / 60:g} min ahead are refused)"
    )


def _split_views(client: StationClient) -> str | None:
    row = client.store.conn.execute(
        "SELECT at, message FROM incidents WHERE code = 'split-view' ORDER BY id DESC LIMIT 1"
    ).fetchone()
    return None if row is None else f"the relay showed the two stations different logs ({row[0]}: {row[1]})"


# --- log verify, export; audit verify ---------------------------------------------------------------------

log_app = typer.Typer(no_args_is_help=True, help="The acknowledgement log.")
app.add_typer(log_app, name="log")


@log_app.command("verify")
@reports_errors
def log_verify(
    directory: Annotated[Path, typer.Argument(help="A station's or a relay's directory.")],
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Verify a stored log from its bytes: signatures, hash chains, inclusion and consistency proofs, cosignatures."""
    from hotline.store.verify import verify_relay, verify_station

    if (directory / "relay.json").exists():
        from hotline.relay.setup import load_config

        config = load_config(directory)
        relay_key = load_public_key(str(directory / "relay.pub"))
        report = verify_relay(directory / "relay.db", relay_key, [(e.name, e.key) for e in config.roster()])
        what = "relay"
    else:
        settings = load_station(directory)
        _, own = describe_key_file(Path(settings.key_file))
        report = verify_station(
            directory / "station.db",
            (settings.name, own),
            (settings.peer.name, settings.peer_key),
            settings.relay_key,
        )
        what = f"station {settings.name}"
    if json_output:
        typer.echo(json.dumps({"ok": True, "checks": report.checks, "logged_size": report.logged_size}))
        return
    typer.echo(f"{what}: log verified")
    for check, count in report.checks.items():
        typer.echo(f"  {count:>6}  {check}")
    typer.echo(f"  cosigned by both stations up to log size {report.logged_size}")


@log_app.command("export")
@reports_errors
def log_export(
    directory: Annotated[Path, typer.Argument(help="The station's directory.")],
    out: Annotated[Path, typer.Option("-o", "--output", help="The bundle to write (one JSON file).")],
    ref: Annotated[
        list[str] | None, typer.Option(help="A notice's ref (repeatable); its AMEND/CANCEL come too.")
    ] = None,
    since: Annotated[str | None, typer.Option(help="Notices signed at or after this UTC time.")] = None,
    until: Annotated[str | None, typer.Option(help="Notices signed at or before this UTC time.")] = None,
) -> None:
    """Evidence for a third party: the chosen notices and their acknowledgements, proven in the cosigned log."""
    from hotline.store.evidence import export_bundle

    settings = load_station(directory)
    key_file = Path(settings.key_file)
    _, identity = load_identity(key_file, passphrase_for(key_file))
    data, disclosed, size = export_bundle(
        directory / "station.db",
        (settings.name, identity),
        sorted([(settings.name, identity.public), (settings.peer.name, settings.peer_key)]),
        ("relay", settings.relay_key),
        list(ref or []),
        parse_time(since, "--since") if since else None,
        parse_time(until, "--until") if until else None,
    )
    out.write_bytes(data)
    typer.echo(f"{out}: {disclosed} statements disclosed, proven in a log of {size} entries cosigned by both stations")
    typer.echo("verify it with: hotline audit verify BUNDLE --key NAME=PUB --key NAME=PUB --relay-key PUB")


audit_app = typer.Typer(no_args_is_help=True, help="Check evidence offline, as a third party.")
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
@reports_errors
def audit_verify(
    bundle: Annotated[Path, typer.Argument(help="An evidence bundle from 'hotline log export'.")],
    key: Annotated[list[str], typer.Option(help="NAME=PUB for each station: a .pub file or 'ed25519:...'.")],
    relay_key: Annotated[str, typer.Option(help="The relay's public key: a .pub file or 'ed25519:...'.")],
) -> None:
    """Verify a bundle with nothing but the three public keys, and print the timeline it proves."""
    from hotline.protocol.evidence import verify_bundle

    stations = {}
    for given in key:
        name, _, pub = given.partition("=")
        if not name or not pub:
            raise typer.BadParameter(f"{given!r}: give NAME=PUB", param_hint="--key")
        stations[name] = load_public_key(pub)
    try:
        data = bundle.read_bytes()
    except OSError as e:
        raise typer.BadParameter(f"cannot read {bundle}: {e.strerror}", param_hint="BUNDLE") from None
    verified = verify_bundle(data, stations, load_public_key(relay_key))
    typer.echo(
        f"{bundle}: verified against a checkpoint of {verified.size} entries signed by the relay and cosigned by "
        + " and ".join(sorted(stations))
    )
    for line in verified.timeline():
        typer.echo(line)
    typer.echo("times are each signer's own clock, signed; the order is the log's, cosigned by both stations")
