"""
The relay server: WebSockets over TLS 1.3 around the relay state machine.

This module only moves bytes and keeps the promises of the durability
contract (``hotline.protocol.relay``): events go to the store's writer, which
commits many connections' events in one transaction; only when a commit is on
disk does the relay answer ``accepted`` or deliver. It also enforces the limits
of DESIGN section 10, answers ``GET /healthz`` and ``GET /metrics``, and shuts
down cleanly on SIGTERM.
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import contextlib
import gc
import http
import json
import logging
import os
import random
import signal
import ssl
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from hotline import failpoints
from hotline.protocol.keys import IdentityKey
from hotline.protocol.relay import Appended, Connection, Dequeued, Refused, Relay, RelayEvent, log_origin
from hotline.relay.setup import RelayConfig, load_config
from hotline.store.keyfiles import load_identity
from hotline.store.relay import RelayStore
from hotline.store.sqlite import Writer

__all__ = ["RelayServer", "run", "write_port_file"]

log = logging.getLogger("hotline.relay")

# Close codes (RFC 6455 section 7.4.1; 4000-4999 are ours).
POLICY_VIOLATION: Final = 1008
MESSAGE_TOO_BIG: Final = 1009
TRY_AGAIN_LATER: Final = 1013
AUTH_TIMEOUT: Final = 4001
# How long writes that promise nothing may wait to share a commit.
LAZY_SECONDS: Final = 0.05
TLS_READ_BUFFER: Final = 32 * 1024
# Addresses whose connection rate is tracked, before the table is started afresh.
MAX_TRACKED_ADDRESSES: Final = 100_000
# How often the stations are asked to witness the newest checkpoint.
WITNESS_SECONDS: Final = 0.25
# Keepalive pings, for the stations' connections only: one that has not authenticated is cut at its deadline
# anyway, and a thousand idle ones would otherwise cost a ping and a pong every 20 ms.
PING_SECONDS: Final = 20.0


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, event, and whatever the call passed in ``extra``."""

    RESERVED: Final = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message"}

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in self.RESERVED})
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


@dataclass
class _Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.connections = Gauge("hotline_relay_open_connections", "Open connections.", ["state"], registry=r)
        self.connections_total = Counter("hotline_relay_connections", "Connections opened.", registry=r)
        self.accepted = Counter("hotline_relay_accepted", "Envelopes logged.", ["sender"], registry=r)
        self.delivered = Counter("hotline_relay_delivered", "Deliveries confirmed.", ["recipient"], registry=r)
        self.refused = Counter("hotline_relay_refused", "Inputs refused, by error code.", ["code"], registry=r)
        self.queue_depth = Gauge("hotline_relay_queue_depth", "Envelopes waiting.", ["station"], registry=r)
        self.log_size = Gauge("hotline_relay_log_size", "Entries in the log.", registry=r)
        self.commit_seconds = Histogram(
            "hotline_relay_commit_seconds",
            "Time to commit one group of writes to disk.",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
            registry=r,
        )


class _TokenBucket:
    """Submissions per second per station, with a burst allowance."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, float(burst)
        self.tokens, self.at = float(burst), time.monotonic()

    def take(self) -> bool:
        """Take a token if there is one; never go into debt."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    def wait(self) -> float:
        """Take a token; return how long to wait for it first (0 when one was there)."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


class _Link:
    """A WebSocket and its protocol connection, with the task that writes what the protocol queued."""

    def __init__(self, ws: ServerConnection, conn: Connection) -> None:
        self.ws = ws
        self.conn = conn
        self.wake = asyncio.Event()
        self.address = ws.remote_address[0] if ws.remote_address else "?"
        self.evicted = False  # cut to make room for a newer connection (RelayServer._make_room)

    async def write(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            for frame in self.conn.data_to_send():
                await self.ws.send(frame.decode("utf-8"))
            if self.conn.closing:
                await self.ws.close(POLICY_VIOLATION, "refused")
                return


class RelayServer:
    """The relay's process: state machine, store writer, WebSocket server."""

    def __init__(self, directory: Path, config: RelayConfig, identity: IdentityKey) -> None:
        self.directory = directory
        self.config = config
        self.limits = config.limits
        self.store = RelayStore(directory / "relay.db")
        self.relay = Relay(identity, log_origin(identity.public), config.roster(), os.urandom)
        self.relay.witness_every_commit = False
        restored = self.store.load()
        self.relay.restore(restored.leaves, restored.queued, restored.epoch_keys, restored.cosigned)
        self.writer = Writer(directory / "relay.db")
        self.metrics = _Metrics()
        self.links: dict[Connection, _Link] = {}
        self.evicted = 0  # links cut to make room whose handlers have not finished yet
        self.stations_links: dict[Connection, _Link] = {}  # the authenticated ones
        self.per_address: defaultdict[str, int] = defaultdict(int)
        self.buckets: dict[str, _TokenBucket] = {}
        self.arrivals: dict[str, _TokenBucket] = {}
        self.server: Server | None = None
        self.failed: BaseException | None = None
        self.lazy: list[RelayEvent] = []
        self.lazy_timer: asyncio.TimerHandle | None = None
        # The log size committed, and whether making it durable (answers, deliveries) is on its way.
        self.durable_to = self.relay.durable_size
        self.durable_scheduled = False
        size, depth = self.store.counts()
        self.metrics.log_size.set(size)
        for entry in self.relay.stations.values():
            self.metrics.queue_depth.labels(entry.name).set(depth.get(entry.key.key_id, 0))

    # --- HTTP side: health, metrics, connection limits ---

    def process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        if request.path == "/healthz":
            body = json.dumps({"status": "ok", "log_size": self.relay.durable_size}) + "\n"
            return ws.respond(http.HTTPStatus.OK, body)
        if request.path == "/metrics":
            response = ws.respond(http.HTTPStatus.OK, "")
            response.body = generate_latest(self.metrics.registry)
            response.headers = Headers({"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})
            response.headers["Content-Length"] = str(len(response.body))
            return response
        address = ws.remote_address[0] if ws.remote_address else "?"
        if self.open_connections >= self.limits.max_connections and not self._make_room():
            self.metrics.refused.labels("at-capacity").inc()
            return ws.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "the relay is at capacity; try again later\n")
        if self.per_address[address] >= self.limits.connections_per_address:
            self.metrics.refused.labels("too-many-connections").inc()
            return ws.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "too many connections from this address\n")
        if not self._new_connection_allowed(address):
            self.metrics.refused.labels("too-many-new-connections").inc()
            return ws.respond(http.HTTPStatus.TOO_MANY_REQUESTS, "too many new connections from this address\n")
        return None

    @property
    def open_connections(self) -> int:
        """Connections that count against the cap: those not already cut to make room."""
        return len(self.links) - self.evicted

    def _make_room(self) -> bool:
        """Cut the oldest connection that has not authenticated; False if every one has."""
        for link in self.links.values():  # in the order they were opened
            if link.conn.station is None and not link.evicted:
                link.evicted = True
                self.evicted += 1
                self.metrics.refused.labels("evicted-at-capacity").inc()
                log.debug("cut an unauthenticated connection to make room", extra={"address": link.address})
                link.ws.transport.abort()
                return True
        return False

    def _new_connection_allowed(self, address: str) -> bool:
        """New connections per second per address: spam from one address is turned away before it costs more."""
        bucket = self.arrivals.get(address)
        if bucket is None:
            if len(self.arrivals) > MAX_TRACKED_ADDRESSES:
                self.arrivals.clear()
            bucket = self.arrivals[address] = _TokenBucket(
                self.limits.new_connections_per_second, self.limits.new_connection_burst
            )
        return bucket.take()

    # --- WebSocket side ---

    async def handler(self, ws: ServerConnection) -> None:
        now = datetime.now(UTC)
        conn = self.relay.connect(now)
        link = _Link(ws, conn)
        self.links[conn] = link
        self.per_address[link.address] += 1
        self.metrics.connections_total.inc()
        self.metrics.connections.labels("unauthenticated").inc()
        writer = asyncio.create_task(link.write())
        link.wake.set()
        authenticated = False
        try:
            # Jittered, so that a flood of idle connections opened together is not cut (and reopened) together.
            allowed = self.limits.unauthenticated_seconds * random.uniform(0.75, 1.25)  # noqa: S311 - not a secret
            async with asyncio.timeout(allowed) as deadline:
                async for message in ws:
                    data = message.encode("utf-8") if isinstance(message, str) else message
                    if conn.station is not None:
                        delay = self._pace(conn, data)
                        if delay:
                            self.metrics.refused.labels("rate-limited").inc()
                            await asyncio.sleep(delay)
                    conn.receive_frame(data, datetime.now(UTC))
                    if not authenticated and conn.station is not None:
                        authenticated = True
                        deadline.reschedule(None)
                        self._authenticated(link)
                    self._after_input(link)
                    if conn.closing:
                        break
        except TimeoutError:
            self.metrics.refused.labels("auth-timeout").inc()
            log.debug("closed a connection that did not authenticate in time", extra={"address": link.address})
            await ws.close(AUTH_TIMEOUT, "authenticate within the time allowed")
        except ConnectionClosed as closed:
            if closed.sent is not None and closed.sent.code == MESSAGE_TOO_BIG:
                self.metrics.refused.labels("frame-too-large").inc()
                log.debug("closed a connection that sent a frame over the limit", extra={"address": link.address})
        finally:
            self.relay.disconnect(conn)
            del self.links[conn]
            if link.evicted:
                self.evicted -= 1
            self.stations_links.pop(conn, None)
            self.per_address[link.address] -= 1
            if not self.per_address[link.address]:
                del self.per_address[link.address]
            self.metrics.connections.labels("authenticated" if authenticated else "unauthenticated").dec()
            if conn.closing:
                link.wake.set()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(writer, 5)
            writer.cancel()

    def _authenticated(self, link: _Link) -> None:
        conn = link.conn
        assert conn.station is not None
        name = self.relay.stations[conn.station].name
        self.stations_links[conn] = link
        link.ws.ping_interval = PING_SECONDS
        link.ws.start_keepalive()
        same = sum(1 for c in self.stations_links if c.station == conn.station)
        self.metrics.connections.labels("unauthenticated").dec()
        self.metrics.connections.labels("authenticated").inc()
        if same > self.limits.connections_per_station:
            conn.closing = True
            self.metrics.refused.labels("too-many-connections").inc()
        log.info("station authenticated", extra={"station": name, "address": link.address})

    def _pace(self, conn: Connection, data: bytes) -> float:
        """The submission rate limit: how long to wait before taking this frame (0: at once).

        Over the limit, the relay reads that station's frames more slowly rather
        than refusing one: a refusal in the middle of a window of submissions
        would make the sender's later statements arrive ahead of it.
        """
        if not data.startswith(b'{"type":"submit"'):
            return 0.0
        assert conn.station is not None
        bucket = self.buckets.get(conn.station)
        if bucket is None:
            bucket = self.buckets[conn.station] = _TokenBucket(
                self.limits.submissions_per_second, self.limits.submission_burst
            )
        return bucket.wait()

    def _after_input(self, link: _Link | None = None) -> None:
        """Send what the protocol stored to the writer, then wake the connections that have frames."""
        events = self.relay.events()
        storable = [e for e in events if not isinstance(e, Refused)]
        for e in events:
            if isinstance(e, Refused):
                self.metrics.refused.labels(e.code).inc()
        if any(isinstance(e, Appended) for e in storable):
            # Entries to log: commit now, with whatever else is waiting.
            batch, self.lazy = self.lazy + storable, []
            self._commit(batch)
        elif storable:
            # Checkpoints, cosignatures, confirmations and keys promise nothing to anyone yet: they
            # ride with the next commit, or one a moment later, instead of costing an fsync each.
            self.lazy.extend(storable)
            if self.lazy_timer is None:
                self.lazy_timer = asyncio.get_running_loop().call_later(LAZY_SECONDS, self._flush_lazy)
        self._wake(link)

    def _flush_lazy(self) -> None:
        self.lazy_timer = None
        if self.lazy:
            batch, self.lazy = self.lazy, []
            self._commit(batch)

    def _commit(self, batch: list[RelayEvent]) -> None:
        if self.failed is not None:
            return  # stopping: nothing more is stored or answered
        size = self.relay.size
        self.writer.submit(lambda c: RelayStore.apply(c, batch), lambda _, error: self._committed(error, size, batch))

    def _committed(self, error: BaseException | None, size: int, events: list[RelayEvent]) -> None:
        if error is not None:
            # The disk refused a write: nothing more can be promised. Stop, so that a restart
            # resumes from what is committed, rather than answering from memory. (The writer fails
            # every later job too: nothing built on the lost entries reaches the disk.)
            if self.failed is None:
                self.failed = error
                log.critical("the store refused a write: stopping", extra={"error": str(error)})
                if self.server is not None:
                    self.server.close()
            return
        if any(isinstance(e, Appended) for e in events):
            failpoints.reached("relay:after-commit")
        # The jobs of one transaction are answered together (Writer.submit): the log becomes durable
        # up to the largest of their sizes once, under one signed checkpoint, rather than once per job.
        # (Each checkpoint costs a signature here and a verification at each station that sees it.)
        if size > self.durable_to:
            self.durable_to = size
            if not self.durable_scheduled:
                self.durable_scheduled = True
                asyncio.get_running_loop().call_soon(self._make_durable)
        for e in events:
            if isinstance(e, Appended):
                self.metrics.accepted.labels(self.relay.stations[e.sender].name).inc()
                self.metrics.queue_depth.labels(self.relay.stations[e.recipient].name).inc()
            elif isinstance(e, Dequeued):
                self.metrics.delivered.labels(self.relay.stations[e.recipient].name).inc()
                self.metrics.queue_depth.labels(self.relay.stations[e.recipient].name).dec()
        stats = self.writer.stats
        if stats.commit_seconds:
            self.metrics.commit_seconds.observe(stats.commit_seconds[-1])
        if not self.durable_scheduled:
            self._after_input()

    def _make_durable(self) -> None:
        self.durable_scheduled = False
        self.relay.durable(self.durable_to)
        self.metrics.log_size.set(self.relay.durable_size)
        self._after_input()

    async def _witness_timer(self) -> None:
        """Ask the stations to cosign the newest checkpoint a few times a second, not after every commit."""
        while True:
            await asyncio.sleep(WITNESS_SECONDS)
            self.relay.ask_witnesses(datetime.now(UTC))
            self._after_input()

    def _wake(self, link: _Link | None = None) -> None:
        """Wake the writers of the stations' connections that have frames to send, and of ``link``.

        Not every connection: only the input of an authenticated one can give others something
        to send, and a flood of idle connections must not cost each station's frame a pass over
        a thousand of them.
        """
        ready = [
            each
            for each in (*self.stations_links.values(), *((link,) if link is not None else ()))
            if each.conn.pending_output or each.conn.closing
        ]
        # A delivery is on the way of a round trip, the answer to its sender is not: deliveries go out first.
        ready.sort(key=lambda each: not each.conn.delivering)
        for each in ready:
            each.wake.set()

    # --- running ---

    @staticmethod
    def small_tls_buffers() -> None:
        """asyncio gives each TLS connection a 256 KiB read buffer; a record is at most 16 KiB.

        With a thousand idle connections that is a quarter of a gigabyte for nothing:
        the relay uses 32 KiB. (A class attribute of asyncio's SSL protocol: the only
        place to set it.)
        """
        asyncio.sslproto.SSLProtocol.max_size = TLS_READ_BUFFER

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        # Stations open a fresh session each time; tickets would only be work for every handshake, a flood's too.
        context.num_tickets = 0
        context.load_cert_chain(self.directory / "tls.crt", self.directory / "tls.key")
        return context

    async def serve(self, ready: Callable[[int], None] | None = None) -> None:
        """Serve until SIGTERM or SIGINT, then close connections, finish writing and stop."""
        self.small_tls_buffers()
        # What was made to start (modules, keys, the restored log) lives as long as the process: out of the
        # collector's sight, so that a full collection during a flood scans only what the connections made.
        gc.freeze()
        stop = asyncio.get_running_loop().create_future()
        loop = asyncio.get_running_loop()

        def stopping() -> None:
            if not stop.done():
                stop.set_result(None)

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping)
        async with serve(
            self.handler,
            self.config.host,
            self.config.port,
            ssl=self.ssl_context(),
            compression=None,
            max_size=self.limits.frame_bytes,
            ping_interval=None,  # started once a station authenticates (_authenticated)
            ping_timeout=PING_SECONDS,
            process_request=self.process_request,
            server_header=None,
            logger=logging.getLogger("hotline.relay.websockets"),
        ) as server:
            self.server = server
            port = next(iter(server.sockets)).getsockname()[1]
            log.info(
                "relay serving",
                extra={"host": self.config.host, "port": port, "log_size": self.relay.durable_size},
            )
            if ready is not None:
                ready(port)
            witnesses = asyncio.create_task(self._witness_timer())
            closed = asyncio.ensure_future(server.wait_closed())
            await asyncio.wait([stop, closed], return_when=asyncio.FIRST_COMPLETED)
            log.info("relay stopping")
            witnesses.cancel()
        self._flush_lazy()
        await asyncio.to_thread(self.writer.close)
        log.info("relay stopped", extra={"log_size": self.relay.durable_size})
        if self.failed is not None:
            raise self.failed


def write_port_file(path: Path, port: int) -> None:
    """Write the port listened on, atomically: whoever waits for the file must never read it half written."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(f"{port}\n", encoding="ascii")
    partial.replace(path)


def run(directory: Path, passphrase: bytes | None, port_file: Path | None = None) -> None:
    """``hotline relay serve``: load the directory, then serve until told to stop."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    # One line per connection opened and closed is noise in a flood; refusals are counted in the metrics.
    logging.getLogger("hotline.relay.websockets").setLevel(logging.WARNING)
    config = load_config(directory)
    _, identity = load_identity(directory / "relay.key", passphrase)
    server = RelayServer(directory, config, identity)

    def ready(port: int) -> None:
        if port_file is not None:
            write_port_file(port_file, port)

    asyncio.run(server.serve(ready))
