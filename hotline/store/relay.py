"""
The relay's store: the log, the queues, checkpoints, cosignatures and published epoch keys.

Log rows are append-only: triggers refuse UPDATE and DELETE on ``leaves`` and
``checkpoints``. A queued envelope is deleted once its recipient confirmed it is
stored: the relay keeps the log (leaf inputs, which hold no ciphertext), not the
traffic.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import msgspec

from hotline.protocol.envelope import Envelope
from hotline.protocol.keys import Signed
from hotline.protocol.relay import (
    Appended,
    CheckpointSigned,
    Cosignature,
    Dequeued,
    EpochKeysPublished,
    Refused,
    RelayEvent,
)
from hotline.store.sqlite import connect, migrate

__all__ = ["RelayStore", "Restored"]

MIGRATIONS: Final = [
    """
    CREATE TABLE leaves (
        idx INTEGER PRIMARY KEY,
        leaf_input BLOB NOT NULL,
        message_id TEXT NOT NULL UNIQUE,
        sender TEXT NOT NULL,
        recipient TEXT NOT NULL,
        prev INTEGER NOT NULL,
        accepted_at TEXT NOT NULL
    );
    CREATE TRIGGER leaves_no_update BEFORE UPDATE ON leaves
    BEGIN SELECT RAISE(ABORT, 'the log is append-only'); END;
    CREATE TRIGGER leaves_no_delete BEFORE DELETE ON leaves
    BEGIN SELECT RAISE(ABORT, 'the log is append-only'); END;
    CREATE TABLE queue (
        idx INTEGER PRIMARY KEY REFERENCES leaves(idx),
        recipient TEXT NOT NULL,
        envelope BLOB NOT NULL
    );
    CREATE INDEX queue_by_recipient ON queue (recipient, idx);
    CREATE TABLE checkpoints (
        size INTEGER PRIMARY KEY,
        note BLOB NOT NULL,
        signed_at TEXT NOT NULL
    );
    CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints
    BEGIN SELECT RAISE(ABORT, 'signed checkpoints are kept as signed'); END;
    CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints
    BEGIN SELECT RAISE(ABORT, 'signed checkpoints are kept as signed'); END;
    CREATE TABLE cosignatures (
        size INTEGER NOT NULL,
        station TEXT NOT NULL,
        signature BLOB NOT NULL,
        PRIMARY KEY (size, station)
    );
    CREATE TABLE cosigned (
        size INTEGER PRIMARY KEY,
        note BLOB NOT NULL
    );
    CREATE TABLE epoch_keys (
        station TEXT NOT NULL,
        position INTEGER NOT NULL,
        signed BLOB NOT NULL,
        PRIMARY KEY (station, position)
    );
    """,
]

_SIGNED: Final = msgspec.json.Decoder(Signed)
_ENVELOPE: Final = msgspec.json.Decoder(Envelope)


@dataclass(frozen=True)
class Restored:
    """What ``Relay.restore`` needs, read back from the store."""

    leaves: list[tuple[bytes, str, str]]
    queued: list[tuple[str, int, int, Envelope]]
    epoch_keys: dict[str, tuple[Signed, ...]]
    cosigned: bytes | None


def _now() -> str:
    return datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


class RelayStore:
    """Opens (and creates or migrates) the relay's database; turns relay events into rows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        conn = connect(path)
        try:
            migrate(conn, MIGRATIONS, "relay")
        finally:
            conn.close()

    @staticmethod
    def apply(conn: sqlite3.Connection, events: Iterable[RelayEvent]) -> None:
        """Write relay events inside the caller's transaction (the writer's group commit)."""
        now = _now()
        for event in events:
            if isinstance(event, Appended):
                conn.execute(
                    "INSERT INTO leaves (idx, leaf_input, message_id, sender, recipient, prev, accepted_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        event.index,
                        event.leaf_input,
                        event.message_id,
                        event.sender,
                        event.recipient,
                        event.prev,
                        now,
                    ),
                )
                conn.execute(
                    "INSERT INTO queue (idx, recipient, envelope) VALUES (?, ?, ?)",
                    (event.index, event.recipient, msgspec.json.encode(event.envelope)),
                )
            elif isinstance(event, Dequeued):
                conn.execute("DELETE FROM queue WHERE idx = ? AND recipient = ?", (event.index, event.recipient))
            elif isinstance(event, CheckpointSigned):
                conn.execute(
                    "INSERT OR IGNORE INTO checkpoints (size, note, signed_at) VALUES (?, ?, ?)",
                    (event.size, event.note, now),
                )
            elif isinstance(event, Cosignature):
                conn.execute(
                    "INSERT OR REPLACE INTO cosignatures (size, station, signature) VALUES (?, ?, ?)",
                    (event.size, event.station, event.signature),
                )
                if event.cosigned is not None:
                    conn.execute(
                        "INSERT OR REPLACE INTO cosigned (size, note) VALUES (?, ?)",
                        (event.size, event.cosigned),
                    )
            elif isinstance(event, EpochKeysPublished):
                conn.execute("DELETE FROM epoch_keys WHERE station = ?", (event.station,))
                conn.executemany(
                    "INSERT INTO epoch_keys (station, position, signed) VALUES (?, ?, ?)",
                    [(event.station, i, msgspec.json.encode(k)) for i, k in enumerate(event.keys)],
                )
            else:
                assert isinstance(event, Refused)  # counted by the metrics, never stored

    def load(self) -> Restored:
        """Everything committed, for ``Relay.restore`` at start-up."""
        conn = connect(self.path, readonly=True)
        try:
            leaves = [
                (bytes(leaf), message_id, recipient)
                for leaf, message_id, recipient in conn.execute(
                    "SELECT leaf_input, message_id, recipient FROM leaves ORDER BY idx"
                )
            ]
            queued = [
                (recipient, idx, prev, _ENVELOPE.decode(envelope))
                for recipient, idx, prev, envelope in conn.execute(
                    "SELECT q.recipient, q.idx, l.prev, q.envelope FROM queue q JOIN leaves l USING (idx)"
                    " ORDER BY q.idx"
                )
            ]
            keys: dict[str, list[Signed]] = {}
            for station, signed in conn.execute("SELECT station, signed FROM epoch_keys ORDER BY station, position"):
                keys.setdefault(station, []).append(_SIGNED.decode(signed))
            row = conn.execute("SELECT note FROM cosigned ORDER BY size DESC LIMIT 1").fetchone()
        finally:
            conn.close()
        return Restored(leaves, queued, {k: tuple(v) for k, v in keys.items()}, bytes(row[0]) if row else None)

    def counts(self) -> tuple[int, dict[str, int]]:
        """The log's size and the queue depth per station, for the metrics."""
        conn = connect(self.path, readonly=True)
        try:
            size = conn.execute("SELECT COUNT(*) FROM leaves").fetchone()[0]
            depth = dict(conn.execute("SELECT recipient, COUNT(*) FROM queue GROUP BY recipient").fetchall())
        finally:
            conn.close()
        return size, depth
