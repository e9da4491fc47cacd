"""``hotline log export``: an evidence bundle (hotline/protocol/evidence.py) from a station's store.

A station holds every entry of its line's log: each is a statement it sent or one it received. So it can rebuild
the whole tree up to the last checkpoint both stations cosigned, prove any entry's inclusion in it, and disclose
only the entries asked for, leaving the others as leaf hashes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import msgspec

from hotline.protocol import checkpoint as notes
from hotline.protocol import merkle
from hotline.protocol.envelope import Statement
from hotline.protocol.evidence import Bundle, BundleEntry, BundleKey, seal_bundle
from hotline.protocol.exceptions import StateError
from hotline.protocol.keys import IdentityKey, PublicKey, format_fingerprint
from hotline.protocol.messages import Ack, Notice
from hotline.store.sqlite import connect

__all__ = ["export_bundle"]

_STATEMENT = msgspec.json.Decoder(Statement)


@dataclass(frozen=True)
class _Entry:
    index: int
    leaf_input: bytes
    signed_statement: bytes
    statement: Statement
    statement_hash: str


def _entries(db: Path) -> tuple[bytes | None, dict[int, _Entry]]:
    conn = connect(db, readonly=True)
    try:
        (logged,) = conn.execute("SELECT logged FROM witness").fetchone()
        rows = conn.execute(
            "SELECT a.log_index, o.leaf_input, o.signed_statement, o.statement, o.statement_hash"
            " FROM outbox o JOIN accepted a USING (seq)"
            " UNION ALL SELECT log_index, leaf_input, signed_statement, statement, statement_hash FROM inbox"
        ).fetchall()
    finally:
        conn.close()
    entries = {
        int(i): _Entry(int(i), bytes(leaf), bytes(signed), _STATEMENT.decode(bytes(statement)), str(h))
        for i, leaf, signed, statement, h in rows
    }
    return (bytes(logged) if logged else None), entries


def _chosen(entry: _Entry, refs: set[str], since: datetime | None, until: datetime | None) -> bool:
    body = entry.statement.body
    if not isinstance(body, Notice):
        return False
    if refs and body.ref not in refs and body.refers_to not in refs:
        return False
    created = entry.statement.created
    return (since is None or created >= since) and (until is None or created <= until)


def export_bundle(
    db: Path,
    exporter: tuple[str, IdentityKey],
    stations: list[tuple[str, PublicKey]],
    relay: tuple[str, PublicKey],
    refs: list[str],
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[bytes, int, int]:
    """The bundle's bytes, the number of entries disclosed, and the log size it proves them in."""
    logged, entries = _entries(db)
    if logged is None:
        raise StateError("no checkpoint cosigned by both stations is stored yet: let the line run, then export")
    cp = notes.Checkpoint.parse(notes.parse_note(logged).text)
    missing = [i for i in range(cp.size) if i not in entries]
    if missing:
        raise StateError(
            f"this station's store lacks {len(missing)} of the {cp.size} log entries (the first: {missing[0]}), "
            "so it cannot prove the others: export from the other station"
        )
    tree = merkle.Tree()
    for i in range(cp.size):
        tree.append(merkle.leaf_hash(entries[i].leaf_input))
    if tree.root(cp.size) != cp.root:
        raise StateError("the stored entries do not make the cosigned checkpoint's root: run 'hotline log verify'")
    wanted = set(refs)
    notices = [e for i, e in sorted(entries.items()) if i < cp.size and _chosen(e, wanted, since, until)]
    hashes = {e.statement_hash for e in notices}
    answers = [
        e
        for i, e in sorted(entries.items())
        if i < cp.size and isinstance(e.statement.body, Ack) and e.statement.body.answers in hashes
    ]
    disclosed = sorted(notices + answers, key=lambda e: e.index)
    if not notices:
        raise StateError("no notice in the cosigned log matches what was asked (refs, times)")
    keys = [BundleKey(name, "station", key.text(), format_fingerprint(key.fingerprint)) for name, key in stations] + [
        BundleKey(relay[0], "relay", relay[1].text(), format_fingerprint(relay[1].fingerprint))
    ]
    bundle = Bundle(
        "hotline-evidence/v1",
        exporter[0],
        keys,
        logged,
        [tree.leaf_hash(i) for i in range(cp.size)],
        [
            BundleEntry(e.index, e.leaf_input, e.signed_statement, tree.inclusion_proof(e.index, cp.size))
            for e in disclosed
        ],
    )
    return seal_bundle(bundle, exporter[1]), len(disclosed), cp.size
