"""Lines whose relay lies: a copy of a line made by ``make_line``, the lying relay as its own process, and
what the tests read back (incidents, inboxes, what the listener printed, what the relay says it did)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hotline.protocol import checkpoint as notes
from hotline.protocol.relay import log_origin
from hotline.store.keyfiles import load_public_key
from tests.integration.harness import ROOT, Line, Spawned, free_port, make_line, query, wait_until

# Deadlines for station A: a FLASH notice is overdue after 2 seconds, the others not during a test.
FAST_FLASH = {"FLASH": 2, "IMMEDIATE": 1800, "PRIORITY": 10800, "ROUTINE": 86400}


def parse_time(text: str) -> datetime:
    """A time as the stores and the relay's log write it (ISO 8601, UTC, ending in Z)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


# --- a line ---------------------------------------------------------------------------------------------


def make_template(root: Path) -> Path:
    """Keys and directories for a relay and two stations, made once by the integration harness."""
    root.mkdir(parents=True, exist_ok=True)
    make_line(root)
    return root


def copy_line(template: Path, root: Path) -> Line:
    """A fresh copy of the template on a free port: the same keys, empty stores, no process running."""
    shutil.copytree(template, root)
    port = free_port()
    config = json.loads((root / "relay" / "relay.json").read_text())
    config["port"] = port
    (root / "relay" / "relay.json").write_text(json.dumps(config))
    for name in ("a", "b"):
        path = root / name / "station.json"
        settings = json.loads(path.read_text())
        settings["relay"]["url"] = f"wss://127.0.0.1:{port}/"
        settings["key_file"] = str(root / "keys" / Path(settings["key_file"]).name)
        path.write_text(json.dumps(settings))
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env["PYTHONPATH"] = str(ROOT)
    return Line(root, port, env)


def start_lying_relay(
    line: Line, lie: str, after: int | None = None, to: str | None = None, hold: float | None = None
) -> subprocess.Popen[bytes]:
    """``python -m tests.adversary.lying_relay`` on the line's relay directory, in place of ``Line.start_relay``."""
    port_file = line.root / "relay" / "port"
    port_file.unlink(missing_ok=True)
    args = [str(line.root / "relay"), "--lie", lie, "--port-file", str(port_file)]
    for option, value in (("--after", after), ("--to", to), ("--hold", hold)):
        if value is not None:
            args += [option, str(value)]
    out = (line.root / "relay.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.adversary.lying_relay", *args],
        cwd=ROOT,
        env=line.env,
        stdout=out,
        stderr=out,
    )
    line.relay_process = process
    line.processes.append(process)
    wait_until(lambda: port_file.exists() or process.poll() is not None, 20, "the lying relay to listen")
    assert process.poll() is None, (line.root / "relay.log").read_text()
    return process


# --- station processes ----------------------------------------------------------------------------------

NOTICE_FIELDS = (
    "--mode", "EXER", "--domain", "GROUND", "--activity", "CONVOY", "--circle", "36.52,37.95,6KM",
    "--start", "2026-11-26T14:00Z", "--end", "2026-11-26T17:00Z",
)  # fmt: skip


def seen_at(line: Line, station: str) -> str:
    return query(line.db(station), "SELECT relay_seen_at FROM witness")[0][0] or ""


def listen(line: Line, station: str) -> Spawned:
    """``hotline listen STATION --json``, once it has authenticated with the relay."""
    since = seen_at(line, station)
    process = line.spawn("listen", station, "--json")
    wait_until(lambda: seen_at(line, station) > since, 20, f"station {station} to connect")
    return process


def send(
    line: Line,
    ref: str,
    precedence: str = "ROUTINE",
    wait: str | None = None,
    timeout: float = 20,
    station: str = "a",
) -> subprocess.CompletedProcess[str]:
    """``hotline send`` of a movement notice, as a duty officer would."""
    args = ["send", station, "--ref", ref, "--precedence", precedence, *NOTICE_FIELDS]
    args += ["--text", f"Convoy {ref} on the M4.", "--timeout", str(timeout), "--json"]
    if wait is not None:
        args += ["--wait", wait]
    return line.hotline(*args, timeout=timeout + 30)


def shown(listener: Spawned) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What a listener printed for the duty officer: the statements, and the incidents."""
    rows = [json.loads(text) for text in listener.lines() if text.strip()]
    return [r for r in rows if "incident" not in r], [r for r in rows if "incident" in r]


# --- what the stores hold -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Incident:
    at: datetime
    code: str
    message: str
    evidence: bytes | None


def incidents(line: Line, station: str) -> list[Incident]:
    rows = query(line.db(station), "SELECT at, code, message, evidence FROM incidents ORDER BY id")
    return [Incident(parse_time(at), code, message, bytes(ev) if ev else None) for at, code, message, ev in rows]


def genuine(line: Line, sender: str, receiver: str) -> list[tuple[int, str, str | None]]:
    """The receiver's inbox, checked to hold only what the sender signed, once each, in the sender's order.

    Returns (seq, kind, ref) of each row, in log order.
    """
    signed = {h: bytes(s) for h, s in query(line.db(sender), "SELECT statement_hash, statement FROM outbox")}
    rows = query(
        line.db(receiver), "SELECT log_index, seq, statement_hash, statement, kind, ref FROM inbox ORDER BY log_index"
    )
    for _, seq, statement_hash, statement, _, _ in rows:
        assert statement_hash in signed, f"statement {seq} in the inbox of {receiver} was never sent by {sender}"
        assert bytes(statement) == signed[statement_hash], f"statement {seq} is not the one {sender} signed"
    seqs = [seq for _, seq, *_ in rows]
    assert seqs == sorted(set(seqs)), f"the inbox of {receiver} is out of order or holds a statement twice: {seqs}"
    return [(seq, kind, ref) for _, seq, _, _, kind, ref in rows]


def shown_genuine(line: Line, listener: Spawned, sender: str, receiver: str) -> list[dict[str, Any]]:
    """What the listener showed: each row a statement the sender signed, each once, as stored."""
    signed = {h for (h,) in query(line.db(sender), "SELECT statement_hash FROM outbox")}
    stored = {h for (h,) in query(line.db(receiver), "SELECT statement_hash FROM inbox")}
    rows, _ = shown(listener)
    hashes = [r["statement_hash"] for r in rows]
    assert len(hashes) == len(set(hashes)), "the listener showed a statement twice"
    assert set(hashes) <= signed & stored, "the listener showed a statement the peer never signed"
    return rows


def accepted_at(line: Line, station: str, ref: str) -> datetime:
    [(at,)] = query(
        line.db(station), "SELECT a.accepted_at FROM accepted a JOIN outbox o USING (seq) WHERE o.ref = ?", ref
    )
    return parse_time(at)


def status(line: Line, station: str) -> tuple[int, dict[str, Any]]:
    result = line.hotline("status", station, "--json")
    return result.returncode, json.loads(result.stdout)


# --- what the relay says it did -------------------------------------------------------------------------


def lies(line: Line, action: str | None = None) -> list[dict[str, Any]]:
    """The lying relay's own account of its lies (JSON log lines with ``"event": "lie"``), with times parsed."""
    found = []
    for text in (line.root / "relay.log").read_text().splitlines():
        if not text.startswith("{"):
            continue
        entry = json.loads(text)
        if entry.get("event") == "lie" and (action is None or entry["action"] == action):
            entry["time"] = parse_time(entry["time"])
            found.append(entry)
    return found


def wait_for_lie(line: Line, action: str, timeout: float = 20) -> dict[str, Any]:
    return wait_until(lambda: lies(line, action), timeout, f"the relay to lie ({action})")[0]


def wait_for_incident(line: Line, station: str, code: str, timeout: float = 20) -> Incident:
    found = wait_until(
        lambda: [i for i in incidents(line, station) if i.code == code], timeout, f"a {code} incident at {station}"
    )
    return found[0]


def evidence_notes(line: Line, evidence: bytes) -> list[notes.Checkpoint]:
    """Split a split-view incident's evidence into its relay-signed checkpoints, each verified with the relay key."""
    relay_key = load_public_key(str(line.root / "relay" / "relay.pub"))
    origin = log_origin(relay_key)
    starts = [i for i in range(len(evidence)) if evidence.startswith(origin.encode() + b"\n", i)]
    starts = [i for i in starts if i == 0 or evidence[i - 1 : i] == b"\n"]
    parts = [evidence[a:b].rstrip(b"\n") + b"\n" for a, b in zip(starts, [*starts[1:], len(evidence)], strict=True)]
    return [notes.open_checkpoint(part, origin, origin, relay_key.raw)[0] for part in parts]


# --- measurements ---------------------------------------------------------------------------------------


def record(lie: str, **measured: object) -> None:
    """Print what a test measured; with HOTLINE_ADVERSARY_RESULTS=FILE, also append it there as a JSON line."""
    entry = {"lie": lie, **measured}
    print(json.dumps(entry, default=str))
    path = os.environ.get("HOTLINE_ADVERSARY_RESULTS")
    if path:
        with Path(path).open("a") as f:
            f.write(json.dumps(entry, default=str) + "\n")


def seconds(later: datetime, earlier: datetime) -> float:
    return round((later - earlier).total_seconds(), 3)


def avoid_epoch_boundary(margin: float = 30) -> None:
    """Epoch keys change on the hour: a test that holds a single one waits past the change rather than straddle it."""
    left = 3600 - time.time() % 3600
    if left < margin:
        time.sleep(left + 1)
