"""The baseline relay: plain WebSockets that forward each message to the other client. No crypto, no storage.

``python -m bench.bare_relay serve PORT_FILE`` runs the relay; ``python -m bench.bare_relay echo URL`` runs a
client that answers every message at once (the other station). The benchmark measures round trips and
throughput through it exactly as it does through hotline, so the difference is what hotline adds.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from hotline.relay.server import write_port_file

MAX_SIZE = 64 * 1024


async def _serve(port_file: Path) -> None:
    clients: dict[str, ServerConnection] = {}

    async def handler(ws: ServerConnection) -> None:
        name = await ws.recv()
        assert isinstance(name, str)
        clients[name] = ws
        other = "b" if name == "a" else "a"
        async for message in ws:
            peer = clients.get(other)
            if peer is not None:
                await peer.send(message)

    async with serve(handler, "127.0.0.1", 0, compression=None, max_size=MAX_SIZE) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        write_port_file(port_file, port)
        await asyncio.get_running_loop().create_future()


async def _echo(url: str) -> None:
    async with connect(url, compression=None, max_size=MAX_SIZE) as ws:
        await ws.send("b")
        async for message in ws:
            await ws.send(message[:64])


def main() -> None:
    command, arg = sys.argv[1], sys.argv[2]
    if command == "serve":
        asyncio.run(_serve(Path(arg)))
    else:
        asyncio.run(_echo(arg))


if __name__ == "__main__":
    main()
