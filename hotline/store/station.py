"""
A station's store: outbox, inbox, the evidence of both, the witness state and the epoch keys.

Several processes of one station (a listener, a one-shot ``send``, a heartbeat
timer, the console) share this file. Each change is one ``BEGIN IMMEDIATE``
transaction, which SQLite serialises across processes; inside it, the station's
state (sequence numbers, hash chains, the latest checkpoint) is read back from
the rows themselves, so a process always continues from what every other
process has committed. Nothing is kept twice: the state *is* the rows.

The outbox and inbox hold each statement's exact signed bytes with the log
index, checkpoint and inclusion proof the relay gave: they are the station's
evidence, and append-only (triggers refuse UPDATE and DELETE).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import msgspec

from hotline import failpoints
from hotline.protocol.checkpoint import Checkpoint, parse_note
from hotline.protocol.envelope import Envelope, Header, Sealed, Statement
from hotline.protocol.keys import (
    EpochKey,
    EpochKeyPair,
    IdentityKey,
    PublicKey,
    Signed,
    open_epoch_key,
    open_epoch_seed,
    seal_epoch_seed,
)
from hotline.protocol.messages import Ack, Heartbeat, HeartbeatReply, Notice, strict_decode
from hotline.protocol.station import (
    Anomaly,
    Authenticated,
    DeliveryRejected,
    HeadAdvanced,
    Logged,
    MessageAccepted,
    MessageReceived,
    MessageSent,
    PeerKeys,
    StationEvent,
    StationState,
    SubmissionRefused,
    WitnessCosigned,
    deadline,
)
from hotline.store.sqlite import connect, migrate, store_error

__all__ = ["Queries", "Row", "StationStore", "format_time", "parse_time"]

MIGRATIONS: Final = [
    """
    CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY,
        message_id TEXT NOT NULL UNIQUE,
        statement_hash TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        ref TEXT,
        precedence TEXT,
        answers TEXT,
        level TEXT,
        created TEXT NOT NULL,
        deadline TEXT,
        statement BLOB NOT NULL,
        signed_statement BLOB NOT NULL,
        header BLOB NOT NULL,
        envelope BLOB NOT NULL,
        leaf_input BLOB NOT NULL
    );
    CREATE INDEX outbox_answers ON outbox (answers);
    CREATE INDEX outbox_ref ON outbox (ref);
    CREATE TABLE accepted (
        seq INTEGER PRIMARY KEY REFERENCES outbox (seq),
        log_index INTEGER NOT NULL UNIQUE,
        checkpoint BLOB NOT NULL,
        inclusion BLOB NOT NULL,
        accepted_at TEXT NOT NULL
    );
    CREATE TABLE refused (
        seq INTEGER PRIMARY KEY REFERENCES outbox (seq),
        code TEXT NOT NULL,
        message TEXT NOT NULL,
        refused_at TEXT NOT NULL
    );
    CREATE TABLE inbox (
        log_index INTEGER PRIMARY KEY,
        seq INTEGER NOT NULL UNIQUE,
        message_id TEXT NOT NULL UNIQUE,
        statement_hash TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        ref TEXT,
        precedence TEXT,
        answers TEXT,
        level TEXT,
        created TEXT NOT NULL,
        received_at TEXT NOT NULL,
        statement BLOB NOT NULL,
        signed_statement BLOB NOT NULL,
        header BLOB NOT NULL,
        leaf_input BLOB NOT NULL,
        checkpoint BLOB NOT NULL,
        inclusion BLOB NOT NULL
    );
    CREATE INDEX inbox_answers ON inbox (answers);
    CREATE INDEX inbox_ref ON inbox (ref);
    CREATE TABLE heads (
        size INTEGER PRIMARY KEY,
        note BLOB NOT NULL,
        previous INTEGER NOT NULL,
        consistency BLOB NOT NULL,
        seen_at TEXT NOT NULL
    );
    CREATE TABLE witness (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        cosigned BLOB,
        logged BLOB,
        relay_seen_at TEXT,
        clock_offset REAL
    );
    INSERT INTO witness (id) VALUES (1);
    CREATE TABLE epoch_keys (
        key_id TEXT PRIMARY KEY,
        not_before TEXT NOT NULL UNIQUE,
        not_after TEXT NOT NULL,
        sealed_seed BLOB,
        signed BLOB NOT NULL,
        erased_at TEXT
    );
    CREATE TABLE peer_keys (
        key_id TEXT PRIMARY KEY,
        signed BLOB NOT NULL,
        not_after TEXT NOT NULL
    );
    CREATE TABLE incidents (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        code TEXT NOT NULL,
        message TEXT NOT NULL,
        evidence BLOB
    );
    CREATE TRIGGER outbox_no_update BEFORE UPDATE ON outbox
    BEGIN SELECT RAISE(ABORT, 'sent statements are evidence: append-only'); END;
    CREATE TRIGGER outbox_no_delete BEFORE DELETE ON outbox
    BEGIN SELECT RAISE(ABORT, 'sent statements are evidence: append-only'); END;
    CREATE TRIGGER inbox_no_update BEFORE UPDATE ON inbox
    BEGIN SELECT RAISE(ABORT, 'received statements are evidence: append-only'); END;
    CREATE TRIGGER inbox_no_delete BEFORE DELETE ON inbox
    BEGIN SELECT RAISE(ABORT, 'received statements are evidence: append-only'); END;
    CREATE TRIGGER accepted_no_update BEFORE UPDATE ON accepted
    BEGIN SELECT RAISE(ABORT, 'the relay''s receipts are evidence: append-only'); END;
    CREATE TRIGGER accepted_no_delete BEFORE DELETE ON accepted
    BEGIN SELECT RAISE(ABORT, 'the relay''s receipts are evidence: append-only'); END;
    CREATE TRIGGER heads_no_update BEFORE UPDATE ON heads
    BEGIN SELECT RAISE(ABORT, 'witnessed checkpoints are evidence: append-only'); END;
    CREATE TRIGGER heads_no_delete BEFORE DELETE ON heads
    BEGIN SELECT RAISE(ABORT, 'witnessed checkpoints are evidence: append-only'); END;
    """,
    """
    CREATE TABLE rejected (
        log_index INTEGER PRIMARY KEY,
        envelope BLOB NOT NULL,
        code TEXT NOT NULL,
        reason TEXT NOT NULL,
        rejected_at TEXT NOT NULL
    );
    """,
    """
    CREATE TABLE pending (
        message_id TEXT PRIMARY KEY,
        seq INTEGER NOT NULL
    );
    INSERT INTO pending (message_id, seq)
        SELECT message_id, seq FROM outbox
        WHERE seq NOT IN (SELECT seq FROM accepted) AND seq NOT IN (SELECT seq FROM refused);
    CREATE TABLE owed (
        statement_hash TEXT PRIMARY KEY,
        seq INTEGER NOT NULL
    );
    INSERT INTO owed (statement_hash, seq)
        SELECT i.statement_hash, i.seq FROM inbox i WHERE i.kind IN ('notice', 'text', 'heartbeat')
        AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.answers = i.statement_hash
                        AND (o.level = 'RECEIVED' OR o.kind = 'heartbeat-reply'));
    """,
]

_SEALED_COLUMNS: Final = "message_id, statement, statement_hash, signed_statement, header, envelope, leaf_input"

# Inbox rows read back per transaction, to tell a harmless redelivery from a replay.
RECENT: Final = 256

_STATEMENT: Final = msgspec.json.Decoder(Statement)
_HEADER: Final = msgspec.json.Decoder(Header)
_ENVELOPE: Final = msgspec.json.Decoder(Envelope)
_SIGNED: Final = msgspec.json.Decoder(Signed)


def format_time(t: datetime) -> str:
    """UTC, ISO 8601, microseconds, ending in Z: sorts as text in time order."""
    return t.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_time(text: str) -> datetime:
    """The inverse of ``format_time`` (fromisoformat: strptime costs more than a row's other fields together)."""
    if not text.endswith("Z"):
        raise ValueError(f"not a time as hotline stores them: {text!r}")
    return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)


def _proof(hashes: list[bytes]) -> bytes:
    return msgspec.json.encode(hashes)


def _describe(statement: Statement) -> tuple[str, str | None, str | None, str | None, str | None]:
    """kind, ref, precedence, answers, level: the columns that make the rows easy to query."""
    body = statement.body
    if isinstance(body, Notice):
        return "notice", body.ref, body.precedence, None, None
    if isinstance(body, Ack):
        return "ack", body.ref, None, body.answers, body.level
    if isinstance(body, HeartbeatReply):
        return "heartbeat-reply", None, None, body.answers, None
    if isinstance(body, Heartbeat):
        return "heartbeat", None, None, None, None
    return "text", None, None, None, None


@dataclass(frozen=True)
class Loaded:
    """What a station process needs before it acts: the state, and what is still owed."""

    state: StationState
    unaccepted: list[Sealed]
    owed: list[Ack | HeartbeatReply]


class StationStore:
    """One station's database. Each process opens its own connection."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = connect(path)
        # Erased epoch keys must not survive in free pages (forward secrecy, DESIGN S5).
        self.conn.execute("PRAGMA secure_delete=ON")
        migrate(self.conn, MIGRATIONS, "station")
        # Unaccepted messages this process has decoded (or sealed), by message id.
        self._sealed: dict[str, Sealed] = {}

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE``: the station's write lock, shared by all its processes.

        A write SQLite refuses (a full disk, say) rolls the whole transaction back and
        raises ``StoreError``; the connection is ready for the next one.
        """
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # SQLite may have rolled back already (SQLITE_FULL, SQLITE_IOERR)
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as e:
            raise store_error(e, self.path) from e

    def data_version(self) -> int:
        """Changes whenever another connection (another process) commits to this database."""
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    # --- reading the state back ---

    def load(self) -> Loaded:
        conn = self.conn
        state = StationState()
        row = conn.execute("SELECT seq, statement_hash FROM outbox ORDER BY seq DESC LIMIT 1").fetchone()
        if row:
            state.next_seq, state.last_hash = row[0] + 1, row[1]
        recent = conn.execute(
            "SELECT seq, statement_hash, log_index FROM inbox ORDER BY seq DESC LIMIT ?", (RECENT,)
        ).fetchall()
        if recent:
            state.peer_seq, state.peer_hash, state.peer_index = recent[0]
            state.recent = {seq: (h, index) for seq, h, index in recent}
        # A delivery rejected as unreadable was confirmed: the relay's next one follows it.
        (rejected,) = conn.execute("SELECT MAX(log_index) FROM rejected").fetchone()
        if rejected is not None and rejected > state.peer_index:
            state.peer_index = rejected
        head = conn.execute("SELECT note FROM heads ORDER BY size DESC LIMIT 1").fetchone()
        state.head = bytes(head[0]) if head else None
        cosigned, logged = conn.execute("SELECT cosigned, logged FROM witness").fetchone()
        state.cosigned = bytes(cosigned) if cosigned else None
        state.logged = bytes(logged) if logged else None
        return Loaded(state, self._unaccepted(), self._owed(state))

    def _unaccepted(self) -> list[Sealed]:
        """What the relay has not accepted yet; rows already decoded by this process come from its cache."""
        ids = [row[0] for row in self.conn.execute("SELECT message_id FROM pending ORDER BY seq")]
        missing = [i for i in ids if i not in self._sealed]
        for start in range(0, len(missing), 500):
            chunk = missing[start : start + 500]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT {_SEALED_COLUMNS} FROM outbox WHERE message_id IN ({marks})"  # noqa: S608 - only ?s
            rows = self.conn.execute(sql, chunk)
            for message_id, statement, statement_hash, signed, header, envelope, leaf in rows:
                self._sealed[message_id] = Sealed(
                    _STATEMENT.decode(statement),
                    bytes(statement),
                    statement_hash,
                    bytes(signed),
                    _HEADER.decode(header),
                    _ENVELOPE.decode(envelope),
                    bytes(leaf),
                )
        wanted = set(ids)
        for gone in [i for i in self._sealed if i not in wanted]:
            del self._sealed[gone]
        return [self._sealed[i] for i in ids]

    def _owed(self, state: StationState) -> list[Ack | HeartbeatReply]:
        """Answers the station owes: RECEIVED for notices and texts, replies to heartbeats."""
        owed: list[Ack | HeartbeatReply] = []
        for kind, statement_hash, ref, statement in self.conn.execute(
            "SELECT i.kind, i.statement_hash, i.ref, i.statement FROM owed o JOIN inbox i USING (statement_hash)"
            " ORDER BY o.seq"
        ):
            if kind == "heartbeat":
                probe = _STATEMENT.decode(statement).body
                assert isinstance(probe, Heartbeat)
                owed.append(HeartbeatReply(answers=statement_hash, probe=probe.probe, checkpoint=state.cosigned))
            else:
                owed.append(Ack(answers=statement_hash, level="RECEIVED", ref=ref))
        return owed

    # --- writing events ---

    def apply(self, events: Iterable[StationEvent], deadlines: dict[str, int]) -> None:
        """Write the station's events inside the current transaction."""
        conn = self.conn
        now = format_time(failpoints.now())
        for event in events:
            if isinstance(event, MessageSent):
                s = event.sealed
                kind, ref, precedence, answers, level = _describe(s.statement)
                due = format_time(deadline(precedence, s.statement.created, deadlines)) if precedence else None
                conn.execute(
                    "INSERT INTO outbox (seq, message_id, statement_hash, kind, ref, precedence, answers, level,"
                    " created, deadline, statement, signed_statement, header, envelope, leaf_input)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        s.statement.seq,
                        s.statement.id,
                        s.statement_hash,
                        kind,
                        ref,
                        precedence,
                        answers,
                        level,
                        format_time(s.statement.created),
                        due,
                        s.statement_bytes,
                        s.signed_statement,
                        s.envelope.header,
                        msgspec.json.encode(s.envelope),
                        s.leaf_input,
                    ),
                )
                conn.execute("INSERT INTO pending (message_id, seq) VALUES (?, ?)", (s.statement.id, s.statement.seq))
                self._sealed[s.statement.id] = s
                if answers is not None and (level == "RECEIVED" or kind == "heartbeat-reply"):
                    conn.execute("DELETE FROM owed WHERE statement_hash = ?", (answers,))
            elif isinstance(event, MessageAccepted):
                conn.execute(
                    "INSERT OR IGNORE INTO accepted (seq, log_index, checkpoint, inclusion, accepted_at)"
                    " SELECT seq, ?, ?, ?, ? FROM outbox WHERE message_id = ?",
                    (event.index, event.checkpoint, _proof(event.inclusion), now, event.message_id),
                )
                conn.execute("DELETE FROM pending WHERE message_id = ?", (event.message_id,))
            elif isinstance(event, SubmissionRefused):
                conn.execute(
                    "INSERT OR IGNORE INTO refused (seq, code, message, refused_at)"
                    " SELECT seq, ?, ?, ? FROM outbox WHERE message_id = ?",
                    (event.code, event.message, now, event.message_id),
                )
                conn.execute("DELETE FROM pending WHERE message_id = ?", (event.message_id,))
                self.incident(event.code, f"the relay refused message {event.message_id}: {event.message}")
            elif isinstance(event, MessageReceived):
                o = event.opened
                kind, ref, precedence, answers, level = _describe(o.statement)
                conn.execute(
                    "INSERT INTO inbox (log_index, seq, message_id, statement_hash, kind, ref, precedence, answers,"
                    " level, created, received_at, statement, signed_statement, header, leaf_input, checkpoint,"
                    " inclusion) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        event.index,
                        o.statement.seq,
                        o.statement.id,
                        o.statement_hash,
                        kind,
                        ref,
                        precedence,
                        answers,
                        level,
                        format_time(o.statement.created),
                        now,
                        o.statement_bytes,
                        o.signed_statement,
                        event.envelope.header,
                        o.leaf_input,
                        event.checkpoint,
                        _proof(event.inclusion),
                    ),
                )
                if kind in ("notice", "text", "heartbeat"):
                    conn.execute(
                        "INSERT INTO owed (statement_hash, seq) VALUES (?, ?)", (o.statement_hash, o.statement.seq)
                    )
            elif isinstance(event, DeliveryRejected):
                conn.execute(
                    "INSERT OR IGNORE INTO rejected (log_index, envelope, code, reason, rejected_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (event.index, msgspec.json.encode(event.envelope), event.code, event.reason, now),
                )
            elif isinstance(event, Anomaly):
                evidence = b"\n".join(getattr(event.error, "evidence", ())) or None
                self.incident(event.error.code, str(event.error), evidence)
            elif isinstance(event, HeadAdvanced):
                conn.execute(
                    "INSERT OR IGNORE INTO heads (size, note, previous, consistency, seen_at) VALUES (?, ?, ?, ?, ?)",
                    (event.size, event.checkpoint, event.previous, _proof(event.consistency), now),
                )
            elif isinstance(event, WitnessCosigned):
                conn.execute("UPDATE witness SET cosigned = ?", (event.checkpoint,))
            elif isinstance(event, Logged):
                conn.execute("UPDATE witness SET logged = ?", (event.checkpoint,))
            elif isinstance(event, PeerKeys):
                conn.executemany(
                    "INSERT OR IGNORE INTO peer_keys (key_id, signed, not_after) VALUES (?, ?, ?)",
                    [
                        (key.key_id, msgspec.json.encode(signed), format_time(key.not_after))
                        for signed, key in event.keys
                    ],
                )
            elif isinstance(event, Authenticated):
                conn.execute(
                    "UPDATE witness SET relay_seen_at = ?, clock_offset = ?",
                    (now, event.clock_offset.total_seconds()),
                )

    def incident(self, code: str, message: str, evidence: bytes | None = None) -> None:
        self.conn.execute(
            "INSERT INTO incidents (at, code, message, evidence) VALUES (?, ?, ?, ?)",
            (format_time(failpoints.now()), code, message[:2000], evidence),
        )

    # --- epoch keys ---

    def epoch_keys(self, identity: IdentityKey) -> dict[str, EpochKeyPair]:
        """Our private epoch keys that are not erased."""
        pairs = {}
        for key_id, not_before, not_after, sealed in self.conn.execute(
            "SELECT key_id, not_before, not_after, sealed_seed FROM epoch_keys WHERE sealed_seed IS NOT NULL"
        ):
            pair = EpochKeyPair(open_epoch_seed(identity, bytes(sealed)), parse_time(not_before), parse_time(not_after))
            pairs[key_id] = pair
        return pairs

    def add_epoch_key(self, identity: IdentityKey, pair: EpochKeyPair, nonce: bytes) -> bool:
        """Store a new epoch key unless its window already has one (another process made it first)."""
        cursor = self.conn.execute(
            "INSERT OR IGNORE INTO epoch_keys (key_id, not_before, not_after, sealed_seed, signed)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                pair.key_id,
                format_time(pair.not_before),
                format_time(pair.not_after),
                seal_epoch_seed(identity, pair, nonce),
                msgspec.json.encode(pair.signed_public(identity)),
            ),
        )
        return cursor.rowcount == 1

    def erase_epoch_keys(self, key_ids: Iterable[str]) -> int:
        now = format_time(failpoints.now())
        count = 0
        for key_id in key_ids:
            count += self.conn.execute(
                "UPDATE epoch_keys SET sealed_seed = NULL, erased_at = ? WHERE key_id = ? AND sealed_seed IS NOT NULL",
                (now, key_id),
            ).rowcount
        return count

    def published_keys(self, now: datetime) -> list[Signed]:
        return [
            _SIGNED.decode(signed)
            for (signed,) in self.conn.execute(
                "SELECT signed FROM epoch_keys WHERE not_after > ? AND sealed_seed IS NOT NULL ORDER BY not_before",
                (format_time(now),),
            )
        ]

    def peer_keys(self, peer: PublicKey, now: datetime) -> dict[str, EpochKey]:
        keys = {}
        for (signed,) in self.conn.execute("SELECT signed FROM peer_keys WHERE not_after > ?", (format_time(now),)):
            key = open_epoch_key(_SIGNED.decode(signed), peer)
            keys[key.key_id] = key
        return keys


@dataclass(frozen=True)
class Row:
    """A stored statement as the command line shows it."""

    direction: str  # "in" or "out"
    seq: int
    statement_hash: str
    kind: str
    ref: str | None
    precedence: str | None
    answers: str | None
    level: str | None
    created: datetime
    at: datetime
    log_index: int | None
    statement: Statement


def _rows(direction: str, rows: Iterable[tuple[object, ...]]) -> list[Row]:
    out = []
    for seq, h, kind, ref, precedence, answers, level, created, at, index, statement in rows:
        out.append(
            Row(
                direction,
                int(seq),  # type: ignore[call-overload]
                str(h),
                str(kind),
                ref,  # type: ignore[arg-type]
                precedence,  # type: ignore[arg-type]
                answers,  # type: ignore[arg-type]
                level,  # type: ignore[arg-type]
                parse_time(str(created)),
                parse_time(str(at)),
                index,  # type: ignore[arg-type]
                # Decoding enforces every declared limit: the checks for building one by hand are not run again.
                strict_decode(_STATEMENT, statement, "stored statement"),  # type: ignore[arg-type]
            )
        )
    return out


_OUT = (
    "SELECT o.seq, o.statement_hash, o.kind, o.ref, o.precedence, o.answers, o.level, o.created,"
    " COALESCE(a.accepted_at, o.created), a.log_index, o.statement FROM outbox o LEFT JOIN accepted a USING (seq)"
)
_IN = (
    "SELECT seq, statement_hash, kind, ref, precedence, answers, level, created, received_at, log_index, statement"
    " FROM inbox"
)


class Queries:
    """Read-only questions the command line asks of a station's store."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def accepted_index(self, statement_hash: str) -> int | None:
        row = self.conn.execute(
            "SELECT a.log_index FROM accepted a JOIN outbox o USING (seq) WHERE o.statement_hash = ?", (statement_hash,)
        ).fetchone()
        return None if row is None else int(row[0])

    def refusal(self, statement_hash: str) -> tuple[str, str] | None:
        row = self.conn.execute(
            "SELECT r.code, r.message FROM refused r JOIN outbox o USING (seq) WHERE o.statement_hash = ?",
            (statement_hash,),
        ).fetchone()
        return None if row is None else (row[0], row[1])

    def answers_to(self, statement_hash: str) -> list[Row]:
        """The peer's acknowledgements (or heartbeat reply) of one of our statements, oldest first."""
        return _rows("in", self.conn.execute(_IN + " WHERE answers = ? ORDER BY seq", (statement_hash,)))

    def answer_levels(self, whose: str) -> dict[str, list[str]]:
        """Every answer's level ('' for a heartbeat reply) by the statement it answers, oldest first, in one query:
        the peer's answers to our statements (``whose="peer"``) or ours to the peer's (``whose="ours"``)."""
        table = {"peer": "inbox", "ours": "outbox"}[whose]
        levels: dict[str, list[str]] = {}
        for answers, level in self.conn.execute(
            f"SELECT answers, level FROM {table} WHERE answers IS NOT NULL ORDER BY seq"  # noqa: S608 - a fixed name
        ):
            levels.setdefault(str(answers), []).append(str(level or ""))
        return levels

    def sent(self, statement_hash: str) -> Row | None:
        rows = _rows("out", self.conn.execute(_OUT + " WHERE o.statement_hash = ?", (statement_hash,)))
        return rows[0] if rows else None

    def incoming_notice(self, ref: str) -> Row | None:
        rows = _rows(
            "in", self.conn.execute(_IN + " WHERE kind = 'notice' AND ref = ? ORDER BY seq DESC LIMIT 1", (ref,))
        )
        return rows[0] if rows else None

    def received_since(self, log_index: int) -> list[Row]:
        return _rows("in", self.conn.execute(_IN + " WHERE log_index > ? ORDER BY log_index", (log_index,)))

    def last_received_index(self) -> int:
        row = self.conn.execute("SELECT MAX(log_index) FROM inbox").fetchone()
        return -1 if row[0] is None else int(row[0])

    def notices(self, direction: str) -> list[Row]:
        if direction == "out":
            return _rows("out", self.conn.execute(_OUT + " WHERE o.kind = 'notice' ORDER BY o.seq"))
        return _rows("in", self.conn.execute(_IN + " WHERE kind = 'notice' ORDER BY seq"))

    def all_rows(self) -> list[Row]:
        rows = _rows("out", self.conn.execute(_OUT + " ORDER BY o.seq")) + _rows(
            "in", self.conn.execute(_IN + " ORDER BY seq")
        )
        return sorted(rows, key=lambda r: (r.log_index is None, r.log_index or 0, r.created))

    def incidents_since(self, row_id: int) -> list[tuple[int, datetime, str, str]]:
        return [
            (int(i), parse_time(at), code, message)
            for i, at, code, message in self.conn.execute(
                "SELECT id, at, code, message FROM incidents WHERE id > ? ORDER BY id", (row_id,)
            )
        ]

    def last_incident(self) -> int:
        row = self.conn.execute("SELECT MAX(id) FROM incidents").fetchone()
        return 0 if row[0] is None else int(row[0])

    def logged_size(self) -> int:
        """The size of the last checkpoint both stations cosigned (0 before there is one)."""
        (logged,) = self.conn.execute("SELECT logged FROM witness").fetchone()
        return Checkpoint.parse(parse_note(bytes(logged)).text).size if logged else 0

    def line(self) -> dict[str, object]:
        """When the relay and the peer were last heard, the last heartbeat, the size of the logged checkpoint."""
        seen_at, offset, logged = self.conn.execute(
            "SELECT relay_seen_at, clock_offset, logged FROM witness"
        ).fetchone()
        peer = self.conn.execute("SELECT MAX(received_at) FROM inbox").fetchone()[0]
        beat = self.conn.execute(
            "SELECT o.created, i.received_at FROM outbox o LEFT JOIN inbox i ON i.answers = o.statement_hash"
            " WHERE o.kind = 'heartbeat' ORDER BY o.seq DESC LIMIT 1"
        ).fetchone()
        return {
            "relay_seen_at": seen_at,
            "clock_offset": offset,
            "peer_heard_at": peer,
            "heartbeat_sent_at": beat[0] if beat else None,
            "heartbeat_answered_at": beat[1] if beat else None,
            "logged": bytes(logged) if logged else None,
        }
