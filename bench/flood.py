"""An attacker on the network: floods a relay while the two stations go on working.

``python -m bench.flood URL CA_FILE --idle 1000 --slowloris 50 --auth-spam 20 --oversized 5 --seconds 30``

- idle: WebSocket connections that complete the handshake and then say nothing (the relay must cut them when
  the time to authenticate runs out; the attacker opens them again at once);
- slowloris: TCP+TLS connections that send an HTTP request one byte a second and never finish it;
- auth-spam: connections that answer the challenge with a key nobody pinned, each about once a second;
- oversized: connections that send one frame over the relay's limit, each about once a second.

Connections come from many loopback addresses (127.0.0.2 and up), as an attacker with many machines would,
so that the relay's per-address limit does not stop the flood by itself. It prints a JSON summary at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import ssl
import sys
from collections import Counter
from collections.abc import AsyncIterator

from websockets.asyncio.client import connect

from hotline.protocol.frames import Hello, decode_relay_frame, encode_frame
from hotline.protocol.keys import AUTH_LABEL, IdentityKey

PER_ADDRESS = 15  # one below the relay's default limit of 16 per address


def _addresses() -> list[str]:
    return [f"127.0.{i // 250}.{2 + i % 250}" for i in range(4000)]


class Flood:
    def __init__(self, url: str, ca: str, relay_key_id: str | None) -> None:
        self.url = url
        self.context = ssl.create_default_context(cafile=ca)
        self.host, port = url.split("//")[1].rstrip("/").split(":")
        self.port = int(port)
        self.counts: Counter[str] = Counter()
        self.next_address = 0
        self.addresses = _addresses()
        self.in_use: Counter[str] = Counter()

    def _source(self) -> str:
        while True:
            address = self.addresses[self.next_address % len(self.addresses)]
            self.next_address += 1
            if self.in_use[address] < PER_ADDRESS:
                return address

    @contextlib.asynccontextmanager
    async def _attempt(self, kind: str, pause: float) -> AsyncIterator[str]:
        """One connection of the flood, from the next address with room: a failure is counted, then a pause."""
        address = self._source()
        self.in_use[address] += 1
        try:
            yield address
        except Exception:
            self.counts[f"{kind} failed"] += 1
            await asyncio.sleep(pause)
        finally:
            self.in_use[address] -= 1

    async def idle(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            async with (
                self._attempt("idle", 0.2) as address,
                connect(self.url, ssl=self.context, compression=None, open_timeout=10, local_addr=(address, 0)) as ws,
            ):
                self.counts["idle opened"] += 1
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.wait_closed(), 60)
                self.counts["idle cut by the relay"] += 1

    async def slowloris(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            async with self._attempt("slowloris", 0.2) as address:
                reader, writer = await asyncio.open_connection(
                    self.host, self.port, ssl=self.context, server_hostname=self.host, local_addr=(address, 0)
                )
                self.counts["slowloris opened"] += 1
                request = f"GET / HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n".encode()
                for byte in request * 10:
                    if stop.is_set() or reader.at_eof():
                        break
                    writer.write(bytes([byte]))
                    await writer.drain()
                    await asyncio.sleep(1.0)
                writer.close()
                self.counts["slowloris cut by the relay"] += 1

    async def auth_spam(self, stop: asyncio.Event) -> None:
        key = IdentityKey(os.urandom(32))
        while not stop.is_set():
            await asyncio.sleep(1.0)  # each spammer: about one attempt a second
            async with (
                self._attempt("auth spam", 0.05) as address,
                connect(self.url, ssl=self.context, compression=None, open_timeout=10, local_addr=(address, 0)) as ws,
            ):
                decode_relay_frame((await ws.recv()).encode())  # the challenge, answered with a stranger's key
                sig = key.sign(AUTH_LABEL, os.urandom(96))
                await ws.send(encode_frame(Hello(key.public.key_id, sig)).decode())
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.recv(), 10)
                self.counts["auth spam refused"] += 1

    async def oversized(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(1.0)  # each sender: about one oversized frame a second
            async with (
                self._attempt("oversized", 0.05) as address,
                connect(
                    self.url,
                    ssl=self.context,
                    compression=None,
                    open_timeout=10,
                    max_size=None,
                    local_addr=(address, 0),
                ) as ws,
            ):
                await ws.send("x" * (70 * 1024))
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.wait_closed(), 10)
                self.counts["oversized closed"] += 1


async def run(args: argparse.Namespace) -> dict[str, int]:
    flood = Flood(args.url, args.ca, None)
    stop = asyncio.Event()
    tasks = (
        [asyncio.create_task(flood.idle(stop)) for _ in range(args.idle)]
        + [asyncio.create_task(flood.slowloris(stop)) for _ in range(args.slowloris)]
        + [asyncio.create_task(flood.auth_spam(stop)) for _ in range(args.auth_spam)]
        + [asyncio.create_task(flood.oversized(stop)) for _ in range(args.oversized)]
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), args.seconds)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return dict(flood.counts)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("ca")
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--slowloris", type=int, default=50)
    parser.add_argument("--auth-spam", type=int, default=20)
    parser.add_argument("--oversized", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    counts = asyncio.run(run(args))
    print(json.dumps(counts), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
