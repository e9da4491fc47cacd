"""``hotline demo``: a relay and two stations on this machine; a FLASH notice, its acknowledgements, the log."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from hotline.cli.common import app, reports_errors
from hotline.protocol import checkpoint as notes
from hotline.protocol import merkle
from hotline.protocol.exceptions import RelayUnreachable, TimedOut
from hotline.protocol.keys import IdentityKey, format_fingerprint
from hotline.protocol.messages import Ack, Activity, Circle, Notice, Point, Readback, Text, Window
from hotline.protocol.relay import log_origin
from hotline.relay.setup import init_relay
from hotline.station.client import StationClient
from hotline.station.setup import init_station
from hotline.store.keyfiles import load_public_key, write_identity
from hotline.store.station import Queries, Row
from hotline.store.verify import verify_station

STEP_TIMEOUT = 10.0


class Clock:
    def __init__(self) -> None:
        self.start = time.monotonic()

    def __str__(self) -> str:
        return f"+{time.monotonic() - self.start:.2f}s"


def say(text: str = "") -> None:
    typer.echo(text)


@app.command()
@reports_errors
def demo(
    keep: Annotated[bool, typer.Option("--keep", help="Keep the temporary directory, to look at the files.")] = False,
) -> None:
    """A relay and two stations on this machine: a FLASH notice, RECEIVED and READ_UNDERSTOOD, heartbeats, the log."""
    root = Path(tempfile.mkdtemp(prefix="hotline-demo-"))
    local: LocalLine | None = None
    try:
        clock = Clock()
        say("hotline demo: a neutral relay and two national stations, all on this machine")
        say()
        local = start_local_line(root)
        say("1. Key ceremony: each party makes its key; the others compare its fingerprint, read aloud.")
        for name, fingerprint in local.fingerprints.items():
            say(f"   {name:<10} {fingerprint}")
        say(f"2. The relay runs as its own process at {local.url}: TLS 1.3, its certificate pinned by both stations.")
        asyncio.run(_exchange(root, clock))
        say(f"done in {str(clock)[1:]}.")
    finally:
        if local is not None:
            local.stop()
        if keep:
            say(f"files kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


@dataclass
class LocalLine:
    """A relay process and two station directories on this machine (the demo's, and the benchmarks')."""

    root: Path
    relay: subprocess.Popen[bytes]
    url: str
    fingerprints: dict[str, str]

    def stop(self) -> None:
        self.relay.terminate()
        try:
            self.relay.wait(5)
        except subprocess.TimeoutExpired:
            self.relay.kill()
            self.relay.wait(5)


def start_local_line(root: Path) -> LocalLine:
    """Keys for two stations and a relay, the relay started as its own process, both stations set up."""
    keys = root / "keys"
    fingerprints = {}
    for name in ("station-a", "station-b"):
        key = IdentityKey(os.urandom(32))
        write_identity(keys, name, key, None)
        fingerprints[name] = format_fingerprint(key.public.fingerprint)
    a_pub, b_pub = load_public_key(str(keys / "station-a.pub")), load_public_key(str(keys / "station-b.pub"))
    init_relay(root / "relay", [("station-a", a_pub), ("station-b", b_pub)], "127.0.0.1", 0, ["127.0.0.1"], None)
    relay_pub = load_public_key(str(root / "relay" / "relay.pub"))
    fingerprints["relay"] = format_fingerprint(relay_pub.fingerprint)
    port_file = root / "relay" / "port"
    log = (root / "relay.log").open("wb")
    relay = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "hotline", "relay", "serve", str(root / "relay"), "--port-file", str(port_file)],
        stdout=log,
        stderr=log,
    )
    deadline = time.monotonic() + STEP_TIMEOUT
    while not port_file.exists():
        if relay.poll() is not None or time.monotonic() > deadline:
            relay.kill()
            raise RelayUnreachable(f"the relay did not start; see {root / 'relay.log'}")
        time.sleep(0.02)
    url = f"wss://127.0.0.1:{int(port_file.read_text())}/"
    for me, peer, peer_pub in (("station-a", "station-b", b_pub), ("station-b", "station-a", a_pub)):
        init_station(root / me, me, keys / f"{me}.key", peer, peer_pub, url, root / "relay" / "tls.crt", relay_pub)
    return LocalLine(root, relay, url, fingerprints)


async def _exchange(root: Path, clock: Clock) -> None:
    a, b = (StationClient.open(root / name) for name in ("station-a", "station-b"))
    stop = asyncio.Event()
    runners = [asyncio.create_task(c.run(stop)) for c in (a, b)]
    try:
        for client in (a, b):
            try:
                await asyncio.wait_for(client.authenticated.wait(), STEP_TIMEOUT)
            except TimeoutError:
                raise RelayUnreachable(f"{client.settings.name} could not reach the relay") from None
        await _until(a, lambda: bool(a.station.peer_keys) or None, "station-b's epoch keys")
        await _until(b, lambda: bool(b.station.peer_keys) or None, "station-a's epoch keys")
        say("3. Both stations are connected, and have published their epoch keys (ML-KEM-768 + X25519).")
        say()
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        notice = Notice(
            ref="TUR-2026-000001",
            action="NEW",
            mode="EXER",
            precedence="FLASH",
            response="CONFIRM_NO_CONFLICT",
            classification="UNCLASSIFIED//REL TO TUR, ISR",
            text=Text(lang="en", body="Convoy of 12 vehicles on the M4 corridor, northbound."),
            activity=Activity(domain="GROUND", type="CONVOY"),
            area=Circle(center=Point(lat=36.52, lon=37.95), radius=6.0, unit="KM"),
            window=Window(start=now + timedelta(hours=2), end=now + timedelta(hours=5)),
        )
        say(f"4. Station A sends a FLASH movement notice {notice.ref}: GROUND CONVOY, 6 KM around 36.52N 37.95E,")
        say(f"   {notice.window.start:%H:%MZ} to {notice.window.end:%H:%MZ}; it asks B to confirm no conflict.")  # type: ignore[union-attr]
        h = a.send(notice)
        say("   signed by station-a, encrypted to station-b's current epoch key; the relay cannot read it")
        index = await _until(a, lambda: Queries(a.store.conn).accepted_index(h), "the relay's acceptance")
        say(f"   {clock}  the relay logged it at index {index} and said so with a signed checkpoint and a proof")
        received = await _answer(a, h, "RECEIVED")
        say(f"   {clock}  station-b verified it, stored it and answered RECEIVED by itself")
        _ = received
        say()
        say("5. Station B's duty officer reads it and acknowledges, reading back the area and the window:")
        assert notice.area is not None
        assert notice.window is not None
        b.send(
            Ack(
                answers=h,
                level="READ_UNDERSTOOD",
                ref=notice.ref,
                readback=Readback(area=notice.area, window=notice.window),
                officer="OOW-B-2",
            )
        )
        await _answer(a, h, "READ_UNDERSTOOD")
        say(f"   {clock}  station-a holds READ_UNDERSTOOD from OOW-B-2: closed inside its 10-minute deadline")
        say()
        say("6. Heartbeats, the end-to-end line test a timer runs every minute; each gossips its sender's checkpoint:")
        for sender, other in ((a, "station-b"), (b, "station-a")):
            _, beat = sender.heartbeat()
            sent = Queries(sender.store.conn).sent(beat)
            reply = await _answer(sender, beat, None)
            assert sent is not None
            rtt = (reply.at - sent.created).total_seconds()
            say(f"   {sender.settings.name} -> {other}: answered in {rtt:.3f}s")
        size = await _until(a, lambda: _logged_size(a, b), "both stations cosigning the log")
        say()
        _print_log(a, size)
    finally:
        stop.set()
        for runner in runners:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(runner, 5)
        a.close()
        b.close()


async def _until(client: StationClient, check: object, what: str) -> object:
    found = await client.wait_for(lambda _: check(), STEP_TIMEOUT)  # type: ignore[operator]
    if found is None:
        raise TimedOut(f"no {what} within {STEP_TIMEOUT:g}s")
    return found


async def _answer(client: StationClient, statement_hash: str, level: str | None) -> Row:
    def check() -> Row | None:
        for row in Queries(client.store.conn).answers_to(statement_hash):
            if level is None or row.level == level:
                return row
        return None

    found = await _until(client, check, f"{level or 'reply'} from the peer")
    assert isinstance(found, Row)
    return found


def _logged_size(a: StationClient, b: StationClient) -> int | None:
    """The size of the latest checkpoint both stations hold as cosigned by both, once it covers the whole log."""
    sizes = []
    for client in (a, b):
        logged = client.store.conn.execute("SELECT logged FROM witness").fetchone()[0]
        if not logged:
            return None
        sizes.append(notes.Checkpoint.parse(notes.parse_note(bytes(logged)).text).size)
    total = max(r.log_index or 0 for r in Queries(a.store.conn).all_rows()) + 1
    return sizes[0] if sizes[0] == sizes[1] == total else None


def _print_log(a: StationClient, size: object) -> None:
    rows = [r for r in Queries(a.store.conn).all_rows() if r.log_index is not None]
    say(f"7. The acknowledgement log, as station-a holds it ({len(rows)} entries):")
    say(f"   {'index':>5}  {'kind':<24} {'sender':<10} {'recipient':<10} statement hash")
    me, peer = a.settings.name, a.peer.name
    for row in rows:
        kind = (
            row.kind
            + (f" {row.level}" if row.level else "")
            + (f" {row.ref}" if row.ref and row.kind == "notice" else "")
        )
        sender, recipient = (me, peer) if row.direction == "out" else (peer, me)
        say(f"   {row.log_index:>5}  {kind:<24} {sender:<10} {recipient:<10} {row.statement_hash[:16]}...")
    logged = bytes(a.store.conn.execute("SELECT logged FROM witness").fetchone()[0])
    origin = log_origin(a.settings.relay_key)
    cp, note = notes.open_checkpoint(logged, origin, origin, a.settings.relay_key.raw)
    for name, key in ((me, a.identity.public), (peer, a.peer.key)):
        notes.verify_cosignature(note, name, key.raw)
    leaves = {
        int(i): bytes(leaf)
        for table in ("inbox", "accepted JOIN outbox USING (seq)")
        for i, leaf in a.store.conn.execute(f"SELECT log_index, leaf_input FROM {table}")  # noqa: S608 - fixed names
    }
    root = merkle.root([merkle.leaf_hash(leaves[i]) for i in range(cp.size)])
    if root != cp.root:
        raise TimedOut("station-a's copies of the entries do not hash to the cosigned root")
    report = verify_station(
        a.directory / "station.db", (me, a.identity.public), (peer, a.peer.key), a.settings.relay_key
    )
    say(f"   checkpoint of size {cp.size}: signed by the relay, cosigned by {me} and {peer}: verified;")
    say(f"   station-a's own copies of all {cp.size} entries hash to its root: nothing was left out or changed;")
    proofs = report.checks.get("inclusion proofs", 0)
    heads = report.checks.get("witnessed checkpoints", 0)
    say(f"   {proofs} inclusion proofs and {heads} witnessed checkpoints check ('hotline log verify' does this).")
    _ = size
