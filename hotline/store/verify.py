"""
``hotline log verify``: check a station's or a relay's stored log from its bytes alone.

Every check is a protocol primitive applied to stored bytes (signatures over
the exact statements, inclusion proofs against relay-signed checkpoints,
consistency between checkpoints, cosignatures, hash chains); nothing is taken
from the store's own bookkeeping on trust. The first fault stops the check with
a ``VerificationError`` that names the row.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from hotline.protocol import checkpoint as notes
from hotline.protocol import merkle
from hotline.protocol.envelope import ZERO_HASH, Header, Statement
from hotline.protocol.evidence import check_leaf, parse_leaf
from hotline.protocol.exceptions import HotlineError, VerificationError
from hotline.protocol.keys import STATEMENT_LABEL, PublicKey, Signed, open_signed
from hotline.protocol.messages import canonical_decode
from hotline.protocol.relay import log_origin
from hotline.store.sqlite import connect

__all__ = ["Report", "verify_relay", "verify_station"]

_STATEMENT = msgspec.json.Decoder(Statement)
_HEADER = msgspec.json.Decoder(Header)
_SIGNED = msgspec.json.Decoder(Signed)
_HASHES = msgspec.json.Decoder(list[bytes])


@dataclass
class Report:
    """What was checked, for the summary printed when everything holds."""

    checks: dict[str, int] = field(default_factory=dict)
    logged_size: int = 0

    def count(self, what: str, n: int = 1) -> None:
        self.checks[what] = self.checks.get(what, 0) + n


def _fail(where: str, error: HotlineError | str) -> VerificationError:
    return VerificationError(f"{where}: {error}")


class _Checkpoints:
    """Opens relay-signed checkpoints and remembers the root of every size seen, which must never differ."""

    def __init__(self, relay_key: PublicKey) -> None:
        self.relay_key = relay_key
        self.origin = log_origin(relay_key)
        self.roots: dict[int, bytes] = {}

    def open(self, note: bytes, where: str) -> notes.Checkpoint:
        try:
            cp, _ = notes.open_checkpoint(note, self.origin, self.origin, self.relay_key.raw)
        except HotlineError as e:
            raise _fail(where, e) from None
        known = self.roots.setdefault(cp.size, cp.root)
        if known != cp.root:
            raise _fail(where, f"two checkpoints of {cp.size} entries with different roots: the relay forked the log")
        return cp


def _rows(db: Path, sql: str) -> list[Any]:
    conn = connect(db, readonly=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def verify_station(db: Path, me: tuple[str, PublicKey], peer: tuple[str, PublicKey], relay_key: PublicKey) -> Report:
    """Check a station's evidence: statements, chains, receipts, inclusion proofs, the witnessed heads."""
    report = Report()
    checkpoints = _Checkpoints(relay_key)
    keys = {me[1].key_id: me[1], peer[1].key_id: peer[1]}

    # The chain of heads: each extends the one before it.
    heads: dict[int, notes.Checkpoint] = {}
    for size, note, previous, consistency in _rows(
        db, "SELECT size, note, previous, consistency FROM heads ORDER BY size"
    ):
        cp = checkpoints.open(bytes(note), f"witnessed checkpoint {size}")
        if previous:
            old = heads.get(previous)
            if old is None:
                raise _fail(f"witnessed checkpoint {size}", f"the checkpoint of {previous} it extends is missing")
            try:
                merkle.verify_consistency(old.size, cp.size, old.root, cp.root, _HASHES.decode(consistency))
            except HotlineError as e:
                raise _fail(f"witnessed checkpoint {size}", e) from None
        heads[cp.size] = cp
        report.count("witnessed checkpoints")

    for direction, signer, table, extra in (
        ("sent", me[1], "outbox", "LEFT JOIN accepted a USING (seq)"),
        ("received", peer[1], "inbox", ""),
    ):
        columns = "o.seq, o.statement_hash, o.statement, o.signed_statement, o.header, o.leaf_input"
        receipt = (
            "a.log_index, a.checkpoint, a.inclusion" if table == "outbox" else "o.log_index, o.checkpoint, o.inclusion"
        )
        rows = _rows(db, f"SELECT {columns}, {receipt} FROM {table} o {extra} ORDER BY o.seq")  # noqa: S608 - fixed names
        prev = ZERO_HASH
        for expected_seq, (seq, statement_hash, statement, signed, header, leaf, index, note, inclusion) in enumerate(
            rows, start=1
        ):
            where = f"{direction} statement {seq}"
            if seq != expected_seq:
                raise _fail(where, f"sequence numbers jump from {expected_seq - 1} to {seq}")
            try:
                _, payload = open_signed(_SIGNED.decode(signed), STATEMENT_LABEL, [signer])
                if payload != statement or hashlib.sha256(payload).hexdigest() != statement_hash:
                    raise VerificationError("the stored statement is not the one signed")
                parsed = canonical_decode(_STATEMENT, payload, "statement")
                if parsed.prev != prev:
                    raise VerificationError("it does not link to the statement before it")
                leaf_header = check_leaf(bytes(leaf), keys)
                if bytes(header) != parse_leaf(bytes(leaf))[0] or leaf_header.statement != statement_hash:
                    raise VerificationError("its log entry commits to another statement")
            except HotlineError as e:
                raise _fail(where, e) from None
            prev = str(statement_hash)
            report.count(f"{direction} statements")
            if index is None:
                continue
            cp = checkpoints.open(bytes(note), f"{where}, its checkpoint")
            if cp.size in heads and heads[cp.size].root != cp.root:
                raise _fail(where, "its checkpoint is not the one witnessed at that size")
            try:
                merkle.verify_inclusion(
                    merkle.leaf_hash(bytes(leaf)), index, cp.size, _HASHES.decode(inclusion), cp.root
                )
            except HotlineError as e:
                raise _fail(where, e) from None
            report.count("inclusion proofs")

    (logged,) = _rows(db, "SELECT logged FROM witness")[0]
    if logged:
        cp = checkpoints.open(bytes(logged), "logged checkpoint")
        note = notes.parse_note(bytes(logged))
        for name, key in (me, peer):
            try:
                notes.verify_cosignature(note, name, key.raw)
            except HotlineError as e:
                raise _fail("logged checkpoint", e) from None
        report.logged_size = cp.size
        report.count("cosigned checkpoints")
    return report


def verify_relay(db: Path, relay_key: PublicKey, stations: list[tuple[str, PublicKey]]) -> Report:
    """Check a relay's log: every leaf, the tree, every signed checkpoint, the cosigned ones."""
    report = Report()
    keys = {key.key_id: key for _, key in stations}
    tree = merkle.Tree()
    seen_ids: set[str] = set()
    for idx, leaf, message_id in _rows(db, "SELECT idx, leaf_input, message_id FROM leaves ORDER BY idx"):
        if idx != tree.size:
            raise _fail(f"log entry {idx}", f"the log jumps from {tree.size - 1} to {idx}")
        try:
            header = check_leaf(bytes(leaf), keys)
        except HotlineError as e:
            raise _fail(f"log entry {idx}", e) from None
        if header.id != message_id or header.id in seen_ids:
            raise _fail(f"log entry {idx}", "its message id is not its own, or appears twice")
        seen_ids.add(header.id)
        tree.append(merkle.leaf_hash(bytes(leaf)))
    report.count("log entries", tree.size)
    checkpoints = _Checkpoints(relay_key)
    for size, note in _rows(db, "SELECT size, note FROM checkpoints ORDER BY size"):
        cp = checkpoints.open(bytes(note), f"checkpoint {size}")
        if cp.size > tree.size or tree.root(cp.size) != cp.root:
            raise _fail(f"checkpoint {size}", "its root is not the root of the stored log at that size")
        report.count("signed checkpoints")
    for size, note in _rows(db, "SELECT size, note FROM cosigned ORDER BY size"):
        checkpoints.open(bytes(note), f"cosigned checkpoint {size}")
        parsed = notes.parse_note(bytes(note))
        for name, key in stations:
            try:
                notes.verify_cosignature(parsed, name, key.raw)
            except HotlineError as e:
                raise _fail(f"cosigned checkpoint {size}", e) from None
        report.logged_size = max(report.logged_size, int(size))
        report.count("cosigned checkpoints")
    return report
