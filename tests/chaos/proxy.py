"""
A bad network: a TCP proxy on 127.0.0.1 that cuts, stalls, delays and fragments what passes through it.

Run as its own process::

    python -m tests.chaos.proxy --listen-port-file F --target 127.0.0.1:PORT --seed N \\
        [--cut-probability P] [--stall-probability P] [--max-stall-ms MS] [--max-delay-ms MS] \\
        [--fragment] [--fragment-probability P] [--max-fragment BYTES] [--summary-file F]

It is plain TCP: TLS passes through it end to end, so it sees only records, never frames, and whatever it
does to them (a cut in the middle of a record, a record in 1-byte pieces) is what a real network can do.

Every connection gets two pumps, one per direction ("up": client to target, "down": target to client).
Each pump reads a chunk (what one ``read`` returns, up to 64 KiB) and decides, in this order, with its own
``random.Random`` seeded from ``(seed, connection number, direction)``:

1. delay: sleep ``uniform(0, max_delay_ms)`` before forwarding the chunk (every chunk);
2. stall: with ``stall_probability``, stop forwarding (and reading) in this direction for
   ``uniform(max_stall_ms / 10, max_stall_ms)``; the other direction goes on; TCP back-pressure does the rest;
3. cut: with ``cut_probability``, forward only a random prefix of the chunk (possibly all of it, possibly
   none: "mid-frame" when part of it is lost), then abort both sides of the connection, with an RST
   (SO_LINGER 0) or, one time in four, with a FIN (an orderly close in the middle of the stream);
4. fragment: with ``fragment_probability`` (when ``--fragment``), forward the chunk in pieces of
   ``randint(1, max_fragment)`` bytes, each written and drained on its own, with a pause of up to 2 ms
   between pieces half of the time.

The decisions are a deterministic sequence per connection and direction for a given seed; how the kernel
splits the stream into chunks depends on timing, so a run is reproducible in its decisions, not to the byte.

SIGUSR1 cuts every open connection at once (an RST both ways): a test's deterministic cut. SIGUSR2 stalls every
connection, both ways, for ``--on-demand-stall-ms`` (12 s by default): a test's deterministic stall.

On SIGTERM or SIGINT it closes everything, prints one JSON object of counts on stdout, writes it to
``--summary-file`` if given, and exits 0. Each connection's opening and end, and each cut and stall, is also
logged as one JSON line on stderr, with the connection's number, to be read beside the relay's log.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import struct
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

CHUNK = 65536
# How long a connection may stay half-closed (one direction at its end) before both sides are aborted.
HALF_CLOSED_SECONDS = 30.0


@dataclass(frozen=True)
class Chaos:
    seed: int
    cut_probability: float = 0.0
    stall_probability: float = 0.0
    max_stall_ms: float = 3000.0
    max_delay_ms: float = 0.0
    fragment: bool = False
    fragment_probability: float = 1.0
    max_fragment: int = 300
    on_demand_stall_ms: float = 12000.0


@dataclass
class Counts:
    connections: int = 0
    open: int = 0
    target_unreachable: int = 0
    closed_cleanly: int = 0
    reset_by_peer: int = 0
    cuts: int = 0
    cuts_rst: int = 0
    cuts_fin: int = 0
    cuts_mid_chunk: int = 0
    cuts_up: int = 0
    cuts_down: int = 0
    cuts_on_demand: int = 0
    stalls_on_demand: int = 0
    stalls: int = 0
    stall_seconds: float = 0.0
    delayed_chunks: int = 0
    delay_seconds: float = 0.0
    chunks: int = 0
    fragmented_chunks: int = 0
    fragments: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    seconds: float = 0.0
    started: float = field(default_factory=time.monotonic, repr=False)

    def summary(self) -> dict[str, object]:
        data = asdict(self)
        data.pop("started")
        data["seconds"] = round(time.monotonic() - self.started, 3)
        data["stall_seconds"] = round(self.stall_seconds, 3)
        data["delay_seconds"] = round(self.delay_seconds, 3)
        return data


class Cut(Exception):
    def __init__(self, direction: str, forwarded: int, size: int, fin: bool) -> None:
        super().__init__(f"cut {direction} after {forwarded} of {size} bytes")
        self.direction = direction
        self.forwarded = forwarded
        self.size = size
        self.fin = fin


def event(**data: object) -> None:
    print(json.dumps({"t": round(time.time(), 6), **data}), file=sys.stderr, flush=True)


def abort(writer: asyncio.StreamWriter, rst: bool = True) -> None:
    """Close at once, dropping what is buffered: with an RST, or a FIN when ``rst`` is false."""
    transport = writer.transport
    if rst:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    else:
        transport.close()


class Proxy:
    def __init__(self, chaos: Chaos, target: tuple[str, int]) -> None:
        self.chaos = chaos
        self.target = target
        self.counts = Counts()
        self.number = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.writers: dict[int, tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = {}
        self.cut_on_demand: set[int] = set()
        self.stalled_until = 0.0

    def cut_all(self) -> None:
        """SIGUSR1: cut every open connection now, with an RST both ways (a test's deterministic cut)."""
        for number, (client, server) in list(self.writers.items()):
            self.counts.cuts_on_demand += 1
            self.cut_on_demand.add(number)
            event(conn=number, event="cut-on-demand")
            abort(client)
            abort(server)

    def stall_all(self) -> None:
        """SIGUSR2: stop forwarding on every connection, both ways, for ``on_demand_stall_ms``."""
        self.stalled_until = time.monotonic() + self.chaos.on_demand_stall_ms / 1000
        self.counts.stalls_on_demand += 1
        event(event="stall-on-demand", seconds=self.chaos.on_demand_stall_ms / 1000)

    def rng(self, number: int, direction: str) -> random.Random:
        return random.Random(f"{self.chaos.seed}/{number}/{direction}")

    async def handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        number = self.number
        self.number += 1
        counts = self.counts
        counts.connections += 1
        counts.open += 1
        try:
            await self._connection(number, client_reader, client_writer)
        except asyncio.CancelledError:
            pass  # the proxy is stopping: the connection is aborted below
        finally:
            counts.open -= 1
            self.tasks.discard(task)

    async def _connection(
        self, number: int, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        counts = self.counts
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError as e:
            counts.target_unreachable += 1
            event(conn=number, event="target-unreachable", error=str(e))
            abort(client_writer)
            return
        event(conn=number, event="open")
        self.writers[number] = (client_writer, server_writer)
        for writer in (client_writer, server_writer):
            sock = writer.get_extra_info("socket")
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        up = asyncio.create_task(self._pump(number, "up", client_reader, server_writer))
        down = asyncio.create_task(self._pump(number, "down", server_reader, client_writer))
        pumps = {up, down}
        try:
            done, pending = await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            if pending and not any(t.exception() for t in done):
                # One direction ended cleanly (its EOF passed on): let the other finish, within reason.
                done2, pending = await asyncio.wait(pending, timeout=HALF_CLOSED_SECONDS)
                done |= done2
            failure = next((t.exception() for t in done if t.exception() is not None), None)
            if number in self.cut_on_demand:
                outcome = "cut-on-demand"
            elif isinstance(failure, Cut):
                outcome = "cut"
                counts.cuts += 1
                counts.cuts_fin += failure.fin
                counts.cuts_rst += not failure.fin
                counts.cuts_mid_chunk += 0 < failure.forwarded < failure.size
                if failure.direction == "up":
                    counts.cuts_up += 1
                else:
                    counts.cuts_down += 1
                event(
                    conn=number,
                    event="cut",
                    direction=failure.direction,
                    forwarded=failure.forwarded,
                    chunk=failure.size,
                    how="fin" if failure.fin else "rst",
                )
                abort(client_writer, rst=not failure.fin)
                abort(server_writer, rst=not failure.fin)
            elif failure is not None or pending:
                # One side reset or broke the connection: pass it on to the other side as a reset.
                outcome = "reset-by-peer" if failure is not None else "half-closed-too-long"
                counts.reset_by_peer += 1
                abort(client_writer)
                abort(server_writer)
            else:
                outcome = "closed"
                counts.closed_cleanly += 1
                client_writer.close()
                server_writer.close()
            event(conn=number, event="end", outcome=outcome, error=repr(failure) if failure else None)
        finally:
            self.writers.pop(number, None)
            self.cut_on_demand.discard(number)
            for t in pumps:
                t.cancel()
            for t in pumps:
                with contextlib.suppress(BaseException):
                    await t
            for writer in (client_writer, server_writer):
                if not writer.transport.is_closing():
                    abort(writer)

    async def _pump(
        self, number: int, direction: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        chaos, counts, rng = self.chaos, self.counts, self.rng(number, direction)
        while True:
            data = await reader.read(CHUNK)
            if not data:
                if writer.can_write_eof() and not writer.transport.is_closing():
                    writer.write_eof()
                return
            counts.chunks += 1
            if chaos.max_delay_ms > 0:
                delay = rng.uniform(0, chaos.max_delay_ms) / 1000
                counts.delayed_chunks += 1
                counts.delay_seconds += delay
                await asyncio.sleep(delay)
            if chaos.stall_probability > 0 and rng.random() < chaos.stall_probability:
                stall = rng.uniform(chaos.max_stall_ms / 10, chaos.max_stall_ms) / 1000
                counts.stalls += 1
                counts.stall_seconds += stall
                event(conn=number, event="stall", direction=direction, seconds=round(stall, 3))
                await asyncio.sleep(stall)
            if (stalled := self.stalled_until - time.monotonic()) > 0:
                await asyncio.sleep(stalled)
            cut: Cut | None = None
            if chaos.cut_probability > 0 and rng.random() < chaos.cut_probability:
                forwarded = rng.randint(0, len(data))
                cut = Cut(direction, forwarded, len(data), fin=rng.random() < 0.25)
                data = data[:forwarded]
            if data and chaos.fragment and rng.random() < chaos.fragment_probability:
                counts.fragmented_chunks += 1
                at = 0
                while at < len(data):
                    size = rng.randint(1, chaos.max_fragment)
                    writer.write(data[at : at + size])
                    at += size
                    counts.fragments += 1
                    await writer.drain()
                    await asyncio.sleep(rng.uniform(0, 0.002) if rng.random() < 0.5 else 0)
            elif data:
                writer.write(data)
                await writer.drain()
            if direction == "up":
                counts.bytes_up += len(data)
            else:
                counts.bytes_down += len(data)
            if cut is not None:
                raise cut


async def serve(args: argparse.Namespace) -> dict[str, object]:
    host, _, port = args.target.rpartition(":")
    chaos = Chaos(
        seed=args.seed,
        cut_probability=args.cut_probability,
        stall_probability=args.stall_probability,
        max_stall_ms=args.max_stall_ms,
        max_delay_ms=args.max_delay_ms,
        fragment=args.fragment,
        fragment_probability=args.fragment_probability,
        max_fragment=args.max_fragment,
        on_demand_stall_ms=args.on_demand_stall_ms,
    )
    proxy = Proxy(chaos, (host or "127.0.0.1", int(port)))
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, proxy.cut_all)
    loop.add_signal_handler(signal.SIGUSR2, proxy.stall_all)
    server = await asyncio.start_server(proxy.handle, args.listen_host, args.listen_port)
    listening = server.sockets[0].getsockname()[1]
    event(event="listening", port=listening, target=args.target, chaos=asdict(chaos))
    if args.listen_port_file is not None:
        path = Path(args.listen_port_file)
        partial = path.with_name(path.name + ".partial")
        partial.write_text(f"{listening}\n", encoding="ascii")
        os.replace(partial, path)
    try:
        await stop.wait()
    finally:
        server.close()
        for task in list(proxy.tasks):
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*proxy.tasks, return_exceptions=True)
    return proxy.counts.summary()


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.proxy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", required=True, help="HOST:PORT to forward to")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--listen-host", default="127.0.0.1")
    parser.add_argument("--listen-port", type=int, default=0, help="0 (the default): a free port")
    parser.add_argument("--listen-port-file", help="write the port listened on here (atomically)")
    parser.add_argument("--cut-probability", type=float, default=0.0, help="per chunk")
    parser.add_argument("--stall-probability", type=float, default=0.0, help="per chunk")
    parser.add_argument("--max-stall-ms", type=float, default=3000.0)
    parser.add_argument("--max-delay-ms", type=float, default=0.0, help="every chunk waits uniform(0, this)")
    parser.add_argument("--fragment", action="store_true", help="forward in pieces of 1..--max-fragment bytes")
    parser.add_argument("--fragment-probability", type=float, default=1.0, help="per chunk, with --fragment")
    parser.add_argument("--max-fragment", type=int, default=300)
    parser.add_argument("--on-demand-stall-ms", type=float, default=12000.0, help="how long SIGUSR2 stalls")
    parser.add_argument("--summary-file", help="also write the JSON summary here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    summary = asyncio.run(serve(args))
    text = json.dumps(summary)
    print(text, flush=True)
    if args.summary_file is not None:
        Path(args.summary_file).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
