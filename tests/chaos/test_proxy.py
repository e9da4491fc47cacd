"""The bad network itself: what passes through it arrives intact and in order, unless it is cut."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.integration.harness import ROOT, wait_until

from .proxy import Chaos, Proxy


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.write_eof()
    except ConnectionError:
        pass
    finally:
        writer.close()


def proxy(tmp_path: Path, target: int, *options: str) -> tuple[subprocess.Popen[bytes], int]:
    port_file = tmp_path / "proxy.port"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.chaos.proxy", "--listen-port-file", str(port_file),
         "--target", f"127.0.0.1:{target}", "--summary-file", str(tmp_path / "summary.json"), *options],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "proxy.log").open("wb"),
    )  # fmt: skip
    wait_until(lambda: port_file.exists() or process.poll() is not None, 20, "the proxy to listen")
    assert process.poll() is None, (tmp_path / "proxy.log").read_text()
    return process, int(port_file.read_text())


def summary(tmp_path: Path, process: subprocess.Popen[bytes]) -> dict[str, int | float]:
    process.send_signal(signal.SIGTERM)
    assert process.wait(20) == 0
    return json.loads((tmp_path / "summary.json").read_text())


async def test_every_byte_arrives_in_order_through_delays_stalls_and_fragments(tmp_path):
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    target = server.sockets[0].getsockname()[1]
    process, port = proxy(
        tmp_path, target, "--seed", "1", "--max-delay-ms", "3", "--stall-probability", "0.2",
        "--max-stall-ms", "200", "--fragment", "--max-fragment", "100",
    )  # fmt: skip
    try:
        payload = os.urandom(100_000)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(payload)
        writer.write_eof()
        received = await asyncio.wait_for(reader.read(-1), 60)
        writer.close()
        assert received == payload
    finally:
        counts = summary(tmp_path, process)
        server.close()
    assert counts["bytes_up"] == counts["bytes_down"] == len(payload)
    assert counts["cuts"] == 0
    assert counts["closed_cleanly"] == 1
    assert counts["fragments"] >= 2 * len(payload) / 100
    assert counts["stalls"] >= 1


async def test_a_cut_aborts_both_sides_of_the_connection(tmp_path):
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    target = server.sockets[0].getsockname()[1]
    process, port = proxy(tmp_path, target, "--seed", "2", "--cut-probability", "1")
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(os.urandom(100_000))
        started = time.monotonic()
        try:
            got = await asyncio.wait_for(reader.read(-1), 10)  # a FIN in the middle: what came before it
        except ConnectionResetError:  # an RST
            got = b""
        assert len(got) < 100_000
        assert time.monotonic() - started < 5
        writer.close()
    finally:
        counts = summary(tmp_path, process)
        server.close()
    assert counts["cuts"] == 1


def test_the_same_seed_makes_the_same_decisions_for_the_same_connection():
    first, again, other = (Proxy(Chaos(seed=s), ("127.0.0.1", 1)) for s in (5, 5, 6))
    draws = [[p.rng(n, d).random() for n in range(3) for d in ("up", "down")] for p in (first, again, other)]
    assert draws[0] == draws[1]
    assert draws[0] != draws[2]
    assert len(set(draws[0])) == 6
