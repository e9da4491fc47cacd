"""The line end to end: a relay process, station B as a ``hotline listen`` process, station A driven from here.

Measured in one run, over N notices (5,000 by default, ``HOTLINE_BENCH_NOTICES`` to change it):

- the round trip from sending a notice to holding B's RECEIVED, with one notice in flight (p50, p99);
- throughput with 100 notices in flight;
- the time to drain a backlog of 10,000 notices queued for B while it was away, once it connects.

Two baselines in the same run:

- the bare relay of ``bench/bare_relay.py``: the same traffic pattern through plain WebSockets, forward only;
- the protocol's floor: the signatures, HPKE operations and fsyncs one notice and its RECEIVED need, each
  timed alone as a raw library call and summed (for throughput, divided over the machine's cores).

Every durability promise stays on: WAL with synchronous=FULL everywhere.

``python -m bench.line_bench throughput [N]`` runs the throughput part alone and prints its CPU per notice;
``python -m bench.line_bench roundtrip [N]`` the round trips alone, with the user and system CPU time each process
spent per round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nacl.signing
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from websockets.asyncio.client import connect

from hotline.cli.demo import start_local_line
from hotline.protocol.messages import Activity, Circle, Notice, Point, Text, Window
from hotline.station.client import StationClient
from hotline.store.sqlite import connect as db_connect

NOTICES = int(os.environ.get("HOTLINE_BENCH_NOTICES", "5000"))
BACKLOG = int(os.environ.get("HOTLINE_BENCH_BACKLOG", "10000"))
IN_FLIGHT = 100
ROOT = Path(__file__).resolve().parents[1]


def _notice(i: int) -> Notice:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    return Notice(
        ref=f"BENCH-{i:07d}",
        action="NEW",
        mode="TEST",
        precedence="FLASH",
        response="CONFIRM_NO_CONFLICT",
        classification="UNCLASSIFIED",
        text=Text(lang="en", body="Convoy of 12 vehicles on the M4 corridor, northbound."),
        activity=Activity(domain="GROUND", type="CONVOY"),
        area=Circle(center=Point(lat=36.52, lon=37.95), radius=6.0, unit="KM"),
        window=Window(start=start, end=start + timedelta(hours=3)),
    )


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


# --- the floor ---------------------------------------------------------------------------------------------


def _best(fn: Callable[[], object], rounds: int = 200) -> float:
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(rounds):
            fn()
        best = min(best, (time.perf_counter() - start) / rounds)
    return best


def floor(directory: Path) -> dict[str, float]:
    """The raw cost of one notice and its RECEIVED: signatures, HPKE, fsyncs, timed alone and summed."""
    key = nacl.signing.SigningKey(os.urandom(32))
    message = b"x" * 1100
    sig = key.sign(message).signature
    suite = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
    private = hpke.MLKEM768X25519PrivateKey(mlkem.MLKEM768PrivateKey.generate(), x25519.X25519PrivateKey.generate())
    public = private.public_key()
    plaintext, info = b"y" * 1600, b"z" * 330
    ciphertext = suite.encrypt(plaintext, public, info=info)
    sign = _best(lambda: key.sign(message))
    verify = _best(lambda: key.verify_key.verify(message, sig))
    encrypt = _best(lambda: suite.encrypt(plaintext, public, info=info))
    decrypt = _best(lambda: suite.decrypt(ciphertext, private, info=info))
    path = directory / "fsync.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    block = os.urandom(4096)

    def write_and_sync() -> None:
        os.write(fd, block)
        os.fsync(fd)

    fsync = _best(write_and_sync, rounds=50)
    os.close(fd)
    # The notice: A signs the statement and the envelope, encrypts, commits its outbox. The relay checks
    # the envelope, commits the log, signs a checkpoint. B checks the checkpoint, the envelope and the
    # statement, decrypts, commits the notice with its RECEIVED, which it seals like A sealed the notice.
    # The relay checks and logs that, and A opens it and commits it: the same again, the other way.
    per_leg = {"sign": 3, "verify": 4, "encrypt": 1, "decrypt": 1, "fsync": 2}
    costs = {"sign": sign, "verify": verify, "encrypt": encrypt, "decrypt": decrypt, "fsync": fsync}
    sequential = 2 * sum(n * costs[k] for k, n in per_leg.items()) + fsync  # + A storing the RECEIVED
    crypto = sequential - 5 * fsync
    return {**costs, "sequential": sequential, "crypto": crypto, "throughput": (os.cpu_count() or 1) / sequential}


# --- the bare relay ------------------------------------------------------------------------------------------


async def _bare(url: str, count: int, payload: bytes) -> dict[str, float]:
    async with connect(url, compression=None, max_size=64 * 1024) as ws:
        await ws.send("a")
        await asyncio.sleep(0.3)
        text = payload.decode()
        latencies = []
        for _ in range(count):
            start = time.perf_counter()
            await ws.send(text)
            await ws.recv()
            latencies.append(time.perf_counter() - start)
        start = time.perf_counter()
        sent = received = 0
        while received < count:
            while sent < count and sent - received < IN_FLIGHT:
                await ws.send(text)
                sent += 1
            await ws.recv()
            received += 1
        elapsed = time.perf_counter() - start
    return {
        "p50": statistics.median(latencies),
        "p99": _percentile(latencies, 0.99),
        "throughput": count / elapsed,
    }


def bare_relay(directory: Path, count: int, payload: bytes) -> dict[str, float]:
    port_file = directory / "bare-port"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    relay = subprocess.Popen([sys.executable, "-m", "bench.bare_relay", "serve", str(port_file)], env=env)
    try:
        while not port_file.exists():
            time.sleep(0.02)
        url = f"ws://127.0.0.1:{port_file.read_text().strip()}/"
        echo = subprocess.Popen([sys.executable, "-m", "bench.bare_relay", "echo", url], env=env)
        try:
            return asyncio.run(_bare(url, count, payload))
        finally:
            echo.kill()
            echo.wait()
    finally:
        relay.kill()
        relay.wait()


# --- hotline ------------------------------------------------------------------------------------------------


def _listener(root: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "hotline", "listen", str(root / "station-b")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


class Sender:
    """Station A in this process, counting the RECEIVEDs that come back (``answered``, ``arrived``)."""

    def __init__(self, root: Path) -> None:
        self.a = StationClient.open(root / "station-a")
        self.answered: set[str] = set()
        self.arrived = asyncio.Event()
        self.a.on_events = self._on_events  # type: ignore[assignment]

    def _on_events(self, events: list[object]) -> None:
        for event in events:
            ack = getattr(event, "ack", None)
            if ack is not None and ack.level == "RECEIVED":
                self.answered.add(ack.answers)
                self.arrived.set()

    async def round_trip(self, number: int, timeout: float = 20) -> float:
        """Send one notice, wait for its RECEIVED; the seconds it took."""
        start = time.perf_counter()
        h = self.a.send(_notice(number))
        while h not in self.answered:
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), timeout)
        return time.perf_counter() - start

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[StationClient]:
        """Connected, holding B's keys, warmed up with 20 round trips; closed afterwards."""
        stop = asyncio.Event()
        runner = asyncio.create_task(self.a.run(stop))
        try:
            await asyncio.wait_for(self.a.authenticated.wait(), 20)
            await self.a.wait_for(lambda _: True if self.a.station.peer_keys else None, 20)
            for i in range(20):  # warm up (and let B connect and publish its keys)
                await self.round_trip(i)
            yield self.a
        finally:
            stop.set()
            await asyncio.wait_for(runner, 30)
            self.a.close()


def _cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time of these processes so far (Linux: /proc; elsewhere NaN)."""
    try:
        total = 0
        for pid in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    except OSError:
        return float("nan")
    return total / os.sysconf("SC_CLK_TCK")


async def _hotline(root: Path, count: int, pids: list[int], round_trips: bool = True) -> dict[str, float]:
    sender = Sender(root)
    answered, arrived = sender.answered, sender.arrived
    async with sender.running() as a:
        latencies = [await sender.round_trip(100 + i) for i in range(count if round_trips else 1)]
        # Throughput: keep 100 in flight, topping up in one transaction whenever RECEIVEDs come in.
        pending: set[str] = set()
        done = sent = 0
        cpu = _cpu_seconds([os.getpid(), *pids])
        start = time.perf_counter()
        while done < count:
            room = min(IN_FLIGHT - len(pending), count - sent)
            if room > 0:
                pending.update(a.send_many([_notice(10_000 + sent + k) for k in range(room)]))
                sent += room
            arrived.clear()
            finished = pending & answered
            if not finished:
                await asyncio.wait_for(arrived.wait(), 30)
                finished = pending & answered
            pending -= finished
            done += len(finished)
        elapsed = time.perf_counter() - start
        cpu = _cpu_seconds([os.getpid(), *pids]) - cpu
        size = a.store.conn.execute("SELECT AVG(LENGTH(envelope)) FROM outbox WHERE kind = 'notice'").fetchone()[0]
        return {
            "p50": statistics.median(latencies),
            "p99": _percentile(latencies, 0.99),
            "throughput": count / elapsed,
            "cpu": cpu / count,
            "envelope": float(size),
        }


async def _queue_backlog(root: Path, count: int) -> None:
    """With B away, have the relay accept ``count`` notices from A."""
    a = StationClient.open(root / "station-a")
    a.station.receive = False
    stop = asyncio.Event()
    runner = asyncio.create_task(a.run(stop))
    try:
        await asyncio.wait_for(a.authenticated.wait(), 20)
        before = a.store.conn.execute("SELECT COUNT(*) FROM accepted").fetchone()[0]
        for start in range(0, count, 500):
            a.send_many([_notice(1_000_000 + start + k) for k in range(min(500, count - start))])
            await asyncio.sleep(0)

        def accepted(_: object) -> bool | None:
            done = a.store.conn.execute("SELECT COUNT(*) FROM accepted").fetchone()[0]
            return True if done >= before + count else None

        await a.wait_for(accepted, 600)
    finally:
        stop.set()
        await asyncio.wait_for(runner, 30)
        a.close()


def _inbox(root: Path) -> int:
    conn = db_connect(root / "station-b" / "station.db", readonly=True)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM inbox").fetchone()[0])
    finally:
        conn.close()


def backlog(root: Path, count: int) -> float:
    before = _inbox(root)
    asyncio.run(_queue_backlog(root, count))
    start = time.perf_counter()
    listener = _listener(root)
    try:
        while _inbox(root) < before + count:
            time.sleep(0.02)
        return time.perf_counter() - start
    finally:
        listener.terminate()
        listener.wait()


def run() -> list[dict[str, object]]:
    with tempfile.TemporaryDirectory(prefix="hotline-bench-") as tmp:
        root = Path(tmp)
        # The machine is shared and its speed drifts: the floor is measured before, between and after
        # the runs it is compared with, and each primitive's median taken.
        samples = [floor(root)]
        local = start_local_line(root)
        listener = _listener(root)
        try:
            ours = asyncio.run(_hotline(root, NOTICES, [local.relay.pid, listener.pid]))
        finally:
            listener.terminate()
            listener.wait()
        samples.append(floor(root))
        drain = backlog(root, BACKLOG)
        local.stop()
        samples.append(floor(root))
        raw = {k: statistics.median(s[k] for s in samples) for k in samples[0]}
        # The bare relay carries messages of the size of a notice's envelope.
        bare = bare_relay(root, NOTICES, b"e" * int(ours["envelope"]))
    target_p50 = 1.5 * (raw["sequential"] + bare["p50"])
    rows = [
        {
            "name": f"round trip notice to RECEIVED, 1 in flight, p50 ({NOTICES:,} notices)",
            "value": ours["p50"] * 1000,
            "unit": "ms",
            "baseline": "bare WebSocket relay round trip + the protocol's floor (sequential path)",
            "baseline_value": (bare["p50"] + raw["sequential"]) * 1000,
            "ratio": ours["p50"] / (bare["p50"] + raw["sequential"]),
            "target": "ratio <= 1.5",
            "ok": ours["p50"] <= target_p50,
        },
        {
            "name": "round trip notice to RECEIVED, 1 in flight, p99",
            "value": ours["p99"] * 1000,
            "unit": "ms",
            "baseline": "bare WebSocket relay, p99",
            "baseline_value": bare["p99"] * 1000,
            "ratio": ours["p99"] / bare["p99"],
            "target": "reported",
            "ok": True,
        },
        {
            "name": f"throughput, {IN_FLIGHT} in flight (notices with their RECEIVED per second)",
            "value": ours["throughput"],
            "unit": "/s",
            "baseline": f"the protocol's floor over {os.cpu_count()} cores",
            "baseline_value": raw["throughput"],
            "ratio": ours["throughput"] / raw["throughput"],
            "target": "ratio >= 0.6",
            "ok": ours["throughput"] >= 0.6 * raw["throughput"],
        },
        {
            "name": f"CPU per notice and its RECEIVED, {IN_FLIGHT} in flight (relay, A and B together)",
            "value": ours["cpu"] * 1000,
            "unit": "ms",
            "baseline": "the floor's cryptography (its sequential path without the fsyncs)",
            "baseline_value": raw["crypto"] * 1000,
            "ratio": ours["cpu"] / raw["crypto"],
            "target": "reported",
            "ok": True,
        },
        {
            "name": f"throughput through the bare WebSocket relay, {IN_FLIGHT} in flight",
            "value": ours["throughput"],
            "unit": "/s",
            "baseline": "bare WebSocket relay (forward only)",
            "baseline_value": bare["throughput"],
            "ratio": ours["throughput"] / bare["throughput"],
            "target": "reported",
            "ok": True,
        },
        {
            "name": f"backlog of {BACKLOG:,} notices drained to a station that connects",
            "value": drain,
            "unit": "s",
            "baseline": "the protocol's floor for as many deliveries, over the cores (B's side only)",
            "baseline_value": BACKLOG * (raw["sequential"] / 2) / (os.cpu_count() or 1),
            "ratio": drain / (BACKLOG * (raw["sequential"] / 2) / (os.cpu_count() or 1)),
            "target": "< 10 s",
            "ok": drain < 10,
        },
    ]
    floor_text = ", ".join(
        f"{k} {v * 1e6:.0f} us" for k, v in raw.items() if k not in ("throughput", "sequential", "crypto")
    )
    rows.append(
        {
            "name": "the floor: one notice and its RECEIVED, sequential",
            "value": raw["sequential"] * 1000,
            "unit": "ms",
            "baseline": f"raw calls: {floor_text}",
            "baseline_value": raw["sequential"] * 1000,
            "ratio": 1.0,
            "target": "reported",
            "ok": True,
        }
    )
    return rows


def throughput_only(count: int) -> dict[str, float]:
    """The throughput run alone, with its CPU per notice: to compare two versions of the code, run this
    in a checkout of each, alternately, several times (the machine's speed drifts between runs)."""
    with tempfile.TemporaryDirectory(prefix="hotline-bench-") as tmp:
        root = Path(tmp)
        local = start_local_line(root)
        listener = _listener(root)
        try:
            ours = asyncio.run(_hotline(root, count, [local.relay.pid, listener.pid], round_trips=False))
        finally:
            listener.terminate()
            listener.wait()
            local.stop()
    return {"throughput": ours["throughput"], "cpu_ms": ours["cpu"] * 1000}


def round_trip_only(count: int) -> dict[str, float]:
    """The round trips alone (one in flight), with the CPU each process spent per round trip and the
    floor timed just before and after: to compare two versions of the code, run this in a checkout of
    each, alternately, several times, like ``throughput``."""
    with tempfile.TemporaryDirectory(prefix="hotline-bench-") as tmp:
        root = Path(tmp)
        before = floor(root)
        local = start_local_line(root)
        listener = _listener(root)
        try:
            ours = asyncio.run(_round_trips(root, count, {"relay": local.relay.pid, "b": listener.pid}))
        finally:
            listener.terminate()
            listener.wait()
            local.stop()
        after = floor(root)
    return {**ours, "floor_ms": statistics.mean([before["sequential"], after["sequential"]]) * 1000}


def _user_system_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU time of one process so far (Linux: /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


async def _round_trips(root: Path, count: int, pids: dict[str, int]) -> dict[str, float]:
    sender = Sender(root)
    processes = {"a": os.getpid(), **pids}
    async with sender.running():
        before = {name: _user_system_seconds(pid) for name, pid in processes.items()}
        latencies = [await sender.round_trip(100 + i) for i in range(count)]
        after = {name: _user_system_seconds(pid) for name, pid in processes.items()}
    per = {name: ((after[name][0] - before[name][0]) / count, (after[name][1] - before[name][1]) / count)
           for name in processes}  # fmt: skip
    return {
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": _percentile(latencies, 0.99) * 1000,
        **{f"user_{name}_ms": user * 1000 for name, (user, _) in per.items()},
        **{f"system_{name}_ms": system * 1000 for name, (_, system) in per.items()},
        "cpu_ms": sum(user + system for user, system in per.values()) * 1000,
    }


if __name__ == "__main__":
    if sys.argv[1:2] == ["throughput"]:
        print(throughput_only(int(sys.argv[2]) if len(sys.argv) > 2 else NOTICES))
    elif sys.argv[1:2] == ["roundtrip"]:
        print(round_trip_only(int(sys.argv[2]) if len(sys.argv) > 2 else NOTICES))
    else:
        for row in run():
            print(row)
