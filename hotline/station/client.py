"""
A station's connection to the relay: the asyncio side of ``hotline.protocol.station``.

Every change goes through one transaction of the station's store (``act``):
read the state back, let the state machine act, store its events, commit,
and only then send the frames it queued. Frames that arrive together are taken
in one transaction (one fsync for all of them). The connection comes back by
itself after a failure, with exponential backoff and jitter; on each new
connection the station publishes its epoch keys and submits again, with the
same ids, what the relay has not yet accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final, TypeVar

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from hotline import failpoints
from hotline.protocol.exceptions import (
    DuplicateMessage,
    HotlineError,
    Refused,
    RemoteProtocolError,
    ReorderedMessage,
    StoreError,
)
from hotline.protocol.frames import MAX_FRAME
from hotline.protocol.keys import EpochKeyPair, IdentityKey, epoch_windows, erasable
from hotline.protocol.messages import Body
from hotline.protocol.relay import StationEntry, log_origin
from hotline.protocol.station import Anomaly, MessageReceived, Station, StationConfig, StationEvent, StationState
from hotline.station.setup import StationFile, load_station
from hotline.store.keyfiles import load_identity
from hotline.store.station import StationStore

__all__ = ["StationClient"]

log = logging.getLogger("hotline.station")

T = TypeVar("T")

RESUBMIT_EVERY: Final = 5.0
RESUBMIT_AFTER: Final = timedelta(seconds=10)
KEYS_EVERY: Final = 600.0
BACKOFF_FIRST: Final = 0.2
BACKOFF_MAX: Final = 30.0
# Frames taken in one transaction at most, and answers sealed in one.
BATCH: Final = 256
OWED_AT_ONCE: Final = 256
# How long events that promise nothing may wait to share a transaction (``act(lazy=True)``).
LAZY_SECONDS: Final = 0.05


def now() -> datetime:
    return failpoints.now()


@dataclass
class Incident:
    """A fault the station detected: what the duty officer and the logs are told."""

    at: datetime
    error: HotlineError


@dataclass
class _Session:
    ws: ClientConnection
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    # Frames to send, in order, by one writer task (several senders could interleave at each await).
    outgoing: asyncio.Queue[list[bytes]] = field(default_factory=asyncio.Queue)

    async def write(self) -> None:
        while True:
            frames = await self.outgoing.get()
            try:
                for frame in frames:
                    await self.ws.send(frame.decode("utf-8"))
            except ConnectionClosed:
                return


async def _put_when_set(event: asyncio.Event, queue: asyncio.Queue[bytes | BaseException | None]) -> None:
    await event.wait()
    queue.put_nowait(None)


class StationClient:
    """One process of a station: a store connection, a state machine, and (when asked) a relay connection."""

    def __init__(
        self,
        directory: Path,
        settings: StationFile,
        identity: IdentityKey,
        receive: bool = True,
        on_events: Callable[[list[StationEvent]], None] | None = None,
        on_incident: Callable[[Incident], None] | None = None,
    ) -> None:
        self.directory = directory
        self.settings = settings
        self.identity = identity
        self.receive = receive
        self.on_events = on_events
        self.on_incident = on_incident
        self.store = StationStore(directory / "station.db")
        relay_key = settings.relay_key
        self.peer = StationEntry(settings.peer.name, settings.peer_key)
        config = StationConfig(
            identity, settings.name, self.peer, relay_key, log_origin(relay_key), dict(settings.deadlines)
        )
        self.station = Station(config, StationState(), {}, os.urandom)
        self.station.receive = receive
        self.station.resilient = True
        self.station.defer_answers = True
        self._pairs: dict[str, EpochKeyPair] = {}
        self._version: int | None = None
        # Events of ``act(lazy=True)``, stored with the next transaction; and those just stored so.
        self._deferred: list[StationEvent] = []
        self._stored: list[StationEvent] = []
        self._flush_timer: asyncio.TimerHandle | None = None
        self.session: _Session | None = None
        self.authenticated = asyncio.Event()
        self.changed = asyncio.Event()
        self.last_error: BaseException | None = None
        self._session_authenticated = False
        # The relay's refusal of our authentication, if it refused: no point in waiting on.
        self.refusal: Refused | None = None
        self.maintain_keys(now())

    @classmethod
    def open(cls, directory: Path, passphrase: bytes | None = None, receive: bool = True) -> StationClient:
        """The station of ``directory``: its settings, its identity key (with ``passphrase``), its store."""
        settings = load_station(directory)
        _, identity = load_identity(Path(settings.key_file), passphrase)
        return cls(directory, settings, identity, receive=receive)

    # --- transactions ---

    def act(self, action: Callable[[Station], T], lazy: bool = False, faults: Sequence[HotlineError] = ()) -> T:
        """Run ``action`` on the state machine inside one store transaction, then send what it queued.

        A fault the station detects is recorded as an incident and raised after
        the commit, so that what was verified before it (a newer checkpoint, the
        confirmation of a duplicate) is kept and sent. ``faults``: those an action found and went on
        after (``_take``), filled in by it, recorded as incidents in the same transaction.

        ``lazy``: for what promises nothing to anyone (the relay's ``accepted``, which the
        relay answers again to a resubmission): if no other process has written since our
        last commit, act in memory and store the events with the next transaction, at the
        latest ``LAZY_SECONDS`` later, instead of costing an fsync of their own on the way
        of a round trip. Lost in a crash, they come back: what is not recorded as accepted
        is submitted again, and the relay answers ``accepted`` again.
        """
        station = self.station
        store = self.store
        failure: HotlineError | None = None
        try:
            if lazy and self._version is not None and store.data_version() == self._version:
                result, failure = self._run(action)
                events = station.events()
                if failure is None and not faults:
                    self._deferred.extend(events)
                    failpoints.reached("station:accepted-held")
                    self._send(station.data_to_send())
                    if self._flush_timer is None:
                        self._flush_timer = asyncio.get_running_loop().call_later(LAZY_SECONDS, self.flush)
                    return result
                with store.transaction():  # a fault is recorded at once, with what came before it
                    self._store(events, [*faults, *([failure] if failure else [])])
            else:
                with store.transaction():
                    self._apply_deferred()
                    # Read the state back only if another process has written since our last commit.
                    version = store.data_version()
                    if version != self._version:
                        loaded = store.load()
                        station.resume(loaded.state, loaded.owed)
                        station.unaccepted = {s.statement.id: s for s in loaded.unaccepted}
                        station.epoch_keys = self._epoch_keys()
                        self._version = version
                    result, failure = self._run(action)
                    events = station.events()
                    self._store(events, [*faults, *([failure] if failure else [])])
        except BaseException:
            # Rolled back: what the state machine holds in memory is no longer what is stored.
            # (Deferred events rolled back with it: read back, their messages are submitted again.)
            self._version = None
            self._deferred.clear()
            self._stored.clear()
            station.events()
            station.data_to_send()
            raise
        events, self._stored = self._stored + events, []
        if any(isinstance(e, MessageReceived) for e in events):
            failpoints.reached("station:after-receive")
        self._send(station.data_to_send())
        self.changed.set()
        if events and self.on_events is not None:
            self.on_events(events)
        if self.on_incident is not None:
            for event in events:
                if isinstance(event, Anomaly):
                    self.on_incident(Incident(now(), event.error))
        if failure is not None:
            if not isinstance(failure, DuplicateMessage) and self.on_incident is not None:
                self.on_incident(Incident(now(), failure))
            raise failure
        return result

    def _run(self, action: Callable[[Station], T]) -> tuple[T, HotlineError | None]:
        try:
            return action(self.station), None
        except RemoteProtocolError as e:
            return None, e  # type: ignore[return-value]

    def _store(self, events: list[StationEvent], faults: list[HotlineError]) -> None:
        """Inside the transaction: what was deferred, the faults found, then the events."""
        store = self.store
        self._apply_deferred()
        for e in faults:
            if not isinstance(e, DuplicateMessage):
                store.incident(e.code, str(e), b"\n".join(getattr(e, "evidence", ())) or None)
        store.apply(events, dict(self.settings.deadlines))

    def _apply_deferred(self) -> None:
        if self._flush_timer is not None:  # a transaction came first: no need of one of their own
            self._flush_timer.cancel()
            self._flush_timer = None
        if self._deferred:
            self.store.apply(self._deferred, dict(self.settings.deadlines))
            self._stored.extend(self._deferred)
            self._deferred.clear()

    def flush(self) -> None:
        """Store what ``act(lazy=True)`` deferred (a transaction of its own when nothing else came first)."""
        if self._deferred:
            self.act(lambda _: None)
        elif self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None

    def _epoch_keys(self) -> dict[str, EpochKeyPair]:
        """Our private epoch keys, decrypting only those another process added since last time."""
        ids = {row[0] for row in self.store.conn.execute("SELECT key_id FROM epoch_keys WHERE sealed_seed IS NOT NULL")}
        if ids != self._pairs.keys():
            fresh = self.store.epoch_keys(self.identity)
            self._pairs = {k: self._pairs.get(k, v) for k, v in fresh.items()}
        return self._pairs

    def maintain_keys(self, when: datetime) -> None:
        """Make the epoch keys of the coming windows, erase those past their grace period, publish."""
        with self.store.transaction():
            for start, end in epoch_windows(when):
                self.store.add_epoch_key(self.identity, EpochKeyPair(os.urandom(96), start, end), os.urandom(24))
            self.store.erase_epoch_keys(erasable(self.store.epoch_keys(self.identity).values(), when))
            self.station.peer_keys.update(self.store.peer_keys(self.peer.key, when))
            published = self.store.published_keys(when)
        self._version = None  # new keys of our own: read them in at the next transaction
        self.station.publish(published)
        self._send(self.station.data_to_send())

    # --- commands ---

    def send(self, body: Body) -> str:
        """Seal and store a message, then submit it if connected; return its statement hash."""
        sealed = self.act(lambda s: s.send(body, now()))
        return sealed.statement_hash

    def send_many(self, bodies: list[Body]) -> list[str]:
        """Seal several messages in one transaction (one fsync); return their statement hashes in order."""
        at = now()
        sealed = self.act(lambda s: [s.send(body, at) for body in bodies])
        return [x.statement_hash for x in sealed]

    def heartbeat(self) -> tuple[str, str]:
        """Send a heartbeat; return its probe and statement hash."""
        sealed = self.act(lambda s: s.heartbeat(now()))
        probe = sealed.statement.body.probe  # type: ignore[union-attr]
        return probe, sealed.statement_hash

    async def wait_for(self, check: Callable[[StationStore], T | None], timeout: float) -> T | None:
        """Wait until ``check`` finds what it looks for in the store (written by any process), or time out."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            self.flush()  # someone waits: what was deferred is stored now
            found = check(self.store)
            if found is not None:
                return found
            remaining = end - loop.time()
            if remaining <= 0:
                return None
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                # Our own transactions wake us at once; another process's are seen by polling.
                await asyncio.wait_for(self.changed.wait(), min(remaining, 0.1))

    # --- the connection ---

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.directory / "relay-ca.pem"))
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        return context

    def _send(self, frames: list[bytes]) -> None:
        session = self.session
        if session is None or not frames:
            return
        # A confirmation only lets the relay drop what we stored, while an answer is on the way of the
        # peer's round trip: answers go first. (Nothing depends on their order at the relay.)
        frames.sort(key=lambda frame: frame.startswith(b'{"type":"confirm"'))
        session.outgoing.put_nowait(frames)

    async def run(self, stop: asyncio.Event) -> None:
        """Stay connected until ``stop`` is set, reconnecting after any failure."""
        backoff = BACKOFF_FIRST
        while not stop.is_set():
            try:
                await self._session(stop)
                backoff = BACKOFF_FIRST
            except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError) as e:
                self.last_error = e
                log.info("relay connection lost", extra={"error": str(e)})
            except StoreError as e:
                # Our own disk refused a write: what came in was not stored, so not confirmed, and the relay
                # keeps it. Reconnecting at once would not free the disk: back off, and say so.
                self.last_error = e
                log.error("the station's store refused a write", extra={"error": str(e)})  # noqa: TRY400 - it says all
                self._session_authenticated = False
            except Exception as e:
                # Whatever went wrong, a station must come back: log it, record it, reconnect.
                self.last_error = e
                log.exception("relay connection failed")
                with contextlib.suppress(Exception), self.store.transaction():
                    self.store.incident("internal", f"the connection failed: {type(e).__name__}: {e}")
            if stop.is_set():
                break
            if self._session_authenticated:
                # A cut after a healthy session is no sign of a relay in trouble: come back at once.
                backoff = BACKOFF_FIRST
            delay = backoff * (0.5 + random.random())  # noqa: S311 - jitter, not a secret
            backoff = min(backoff * 2, BACKOFF_MAX)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)

    async def _session(self, stop: asyncio.Event) -> None:
        self._session_authenticated = False
        try:
            ws = await connect(
                self.settings.relay.url,
                ssl=self.ssl_context(),
                compression=None,
                max_size=MAX_FRAME,
                open_timeout=10,
                # Frames nobody reads any more fill the queue and hold up the closing handshake.
                close_timeout=2,
                user_agent_header=None,
            )
        except InvalidURI as e:
            raise OSError(str(e)) from None
        session = _Session(ws)
        self.session = session
        self.station.connection_made()
        # Frames in the order they arrived, then how the session ends: None when told to stop or when
        # the relay closed the connection, the exception when reading failed. One queue, so that
        # waiting for the next frame costs no more than a get (not a wait on three futures per frame).
        frames: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()
        session.tasks = [
            asyncio.create_task(self._read(ws, frames)),
            asyncio.create_task(self._periodic()),
            asyncio.create_task(session.write()),
            asyncio.create_task(_put_when_set(stop, frames)),
        ]
        try:
            while not stop.is_set():
                item = await frames.get()
                batch: list[bytes] = []
                while isinstance(item, bytes):
                    batch.append(item)
                    if len(batch) == BATCH or frames.empty():
                        break
                    item = frames.get_nowait()
                if batch:
                    self._take(batch, more=not frames.empty() or self.station.backlog > 0)
                if not isinstance(item, bytes):  # the end
                    if item is not None:
                        raise item  # how the connection ended
                    return
                if frames.empty() and self.station.backlog == 0 and self.station.pending_acks:
                    # Let what has arrived meanwhile in first, then answer the rest.
                    await asyncio.sleep(0)
                    if frames.empty():
                        self.act(lambda s: s.answer_owed(now(), OWED_AT_ONCE))
        finally:
            for task in session.tasks:
                task.cancel()
            self.session = None
            self._session_authenticated = self.authenticated.is_set()
            self.authenticated.clear()
            self.station.connection_lost()
            await ws.close()

    async def _read(self, ws: ClientConnection, frames: asyncio.Queue[bytes | BaseException | None]) -> None:
        try:
            async for message in ws:
                frames.put_nowait(message.encode("utf-8") if isinstance(message, str) else message)
        except Exception as e:  # handed to the session, which raises it
            frames.put_nowait(e)
        else:
            frames.put_nowait(None)

    def _take(self, batch: list[bytes], more: bool) -> None:
        """Frames that arrived together, in one transaction; a fault in one does not stop the others.

        The answers owed (RECEIVED, heartbeat replies) go out once nothing more is waiting to be
        read: a station catching up on a backlog takes it all in first, then answers.
        """
        at = now()
        failures: list[HotlineError] = []

        def receive(station: Station) -> list[StationEvent]:
            for frame in batch:
                try:
                    station.receive_frame(frame, at)
                except RemoteProtocolError as e:
                    failures.append(e)
            if not more:
                station.answer_owed(at, OWED_AT_ONCE)
            return []

        # The relay's answers to our submissions alone promise nothing: they need no fsync of their own.
        self.act(receive, lazy=all(frame.startswith(b'{"type":"accepted"') for frame in batch), faults=failures)
        if any(isinstance(e, ReorderedMessage) for e in failures) and self.session is not None:
            # The relay delivered out of its own order: a new connection makes it deliver from the head of
            # the queue again, in order.
            self.session.tasks.append(asyncio.ensure_future(self.session.ws.close(1008, "deliveries out of order")))
        for e in failures:
            if isinstance(e, DuplicateMessage):
                continue
            if isinstance(e, Refused) and not self.station.authenticated:
                self.refusal = e
                self.changed.set()
            log.warning("refused from the relay", extra={"code": e.code, "error": str(e)})
            if self.on_incident is not None:
                self.on_incident(Incident(at, e))
        if self.station.authenticated and not self.authenticated.is_set():
            self.authenticated.set()

    async def _periodic(self) -> None:
        """Resubmit what is still unaccepted; report what the relay leaves unproven; keep the epoch keys coming."""
        keys_at = asyncio.get_running_loop().time()
        while True:
            await asyncio.sleep(RESUBMIT_EVERY)
            try:
                self.act(lambda s: (s.resubmit(now(), RESUBMIT_AFTER), s.check_proofs(now())))
                if asyncio.get_running_loop().time() - keys_at > KEYS_EVERY:
                    keys_at = asyncio.get_running_loop().time()
                    self.maintain_keys(now())
            except StoreError as e:  # tried again at the next turn
                self.last_error = e
                log.error("the station's store refused a write", extra={"error": str(e)})  # noqa: TRY400 - it says all

    def close(self) -> None:
        self.flush()
        self.store.close()
