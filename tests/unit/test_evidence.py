"""The evidence verifier against bundles forged in memory with real signatures: what it must not let through.

Each bundle here is sound in its signatures and proofs (the relay signs the checkpoint, both stations cosign it,
the exporter signs the bundle), so that what is tested is what the verifier makes of the content: the timeline
must not be fooled by free text, by an acknowledgement from the wrong station or logged too early, or by a clock.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from hotline.protocol import checkpoint as notes
from hotline.protocol import merkle
from hotline.protocol.envelope import SUITE, ZERO_HASH, Header, Statement, leaf_input
from hotline.protocol.evidence import Bundle, BundleEntry, seal_bundle, verify_bundle
from hotline.protocol.exceptions import VerificationError
from hotline.protocol.keys import ENVELOPE_LABEL, STATEMENT_LABEL, IdentityKey, sign
from hotline.protocol.messages import Ack, Activity, Circle, Notice, Point, Text, Window
from hotline.protocol.relay import log_origin

A, B, RELAY = (IdentityKey(bytes([n]) * 32) for n in (1, 2, 3))
NAMES = {"station-a": A, "station-b": B}
KEYS = {name: key.public for name, key in NAMES.items()}
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

Entry = tuple[bytes, bytes, str]  # leaf input, signed statement, statement hash


class Line:
    """Statements of two stations, each with its sequence number, made into log entries."""

    def __init__(self) -> None:
        self.seq = {A.public.key_id: 0, B.public.key_id: 0}

    def entry(self, sender: IdentityKey, recipient: IdentityKey, body: object, created: datetime) -> Entry:
        self.seq[sender.public.key_id] += 1
        number = self.seq[sender.public.key_id]
        statement = Statement(
            v=1, sender=sender.public.key_id, recipient=recipient.public.key_id, id=hashlib.md5(
                created.isoformat().encode() + bytes([self.seq[sender.public.key_id]])
            ).hexdigest(), seq=self.seq[sender.public.key_id], prev=ZERO_HASH if number == 1 else "1" * 64,
            peer=ZERO_HASH, peer_seq=0,
            created=created, nonce=bytes(32), body=body,
        )  # fmt: skip
        payload = msgspec.json.encode(statement)
        statement_hash = hashlib.sha256(payload).hexdigest()
        header = msgspec.json.encode(
            Header(
                1, SUITE, statement.id, statement.sender, statement.recipient, statement.seq, "e" * 32, statement_hash
            )
        )
        sealed = b"ciphertext the verifier never sees"
        signature = sender.sign(ENVELOPE_LABEL, hashlib.sha256(header).digest() + hashlib.sha256(sealed).digest())
        signed = msgspec.json.encode(sign(sender, STATEMENT_LABEL, payload))
        return leaf_input(header, sealed, signature), signed, statement_hash


def notice(ref: str = "TUR-2026-000001", created: datetime = T0) -> Notice:
    return Notice(
        ref=ref, action="NEW", mode="EXER", precedence="FLASH", response="CONFIRM_NO_CONFLICT", classification="U",
        text=Text(lang="en", body="Convoy."), activity=Activity(domain="GROUND", type="CONVOY"),
        area=Circle(center=Point(lat=36.5, lon=37.9), radius=6.0, unit="KM"),
        window=Window(start=created + timedelta(hours=2), end=created + timedelta(hours=5)),
    )  # fmt: skip


def bundle(entries: list[Entry], leaf_hashes: list[bytes] | None = None, disclose: bool = True) -> bytes:
    """A bundle of these entries, every signature and proof genuine."""
    hashes = [merkle.leaf_hash(leaf) for leaf, _, _ in entries]
    origin = log_origin(RELAY.public)
    tree = merkle.Tree.from_leaf_hashes(hashes)
    signed = notes.sign_checkpoint(notes.Checkpoint(origin, len(hashes), tree.root()), origin, RELAY._signing_key)
    note = notes.parse_note(signed)
    cosigned = notes.add_signatures(
        note, *(notes.cosign(note, name, key._signing_key, 1_800_000_000) for name, key in sorted(NAMES.items()))
    )
    disclosed = [BundleEntry(i, e[0], e[1], tree.inclusion_proof(i)) for i, e in enumerate(entries)] if disclose else []
    made = Bundle("hotline-evidence/v1", "station-a", [], cosigned.encode(), leaf_hashes or hashes, disclosed)
    return seal_bundle(made, A)


def timeline(data: bytes) -> list[str]:
    return verify_bundle(data, KEYS, RELAY.public).timeline()


def test_a_notice_and_its_acknowledgements_make_the_timeline():
    line = Line()
    sent = line.entry(A, B, notice(), T0)
    received = line.entry(
        B, A, Ack(answers=sent[2], level="RECEIVED", ref="TUR-2026-000001"), T0 + timedelta(seconds=1)
    )
    read = line.entry(B, A, Ack(answers=sent[2], level="READ_UNDERSTOOD"), T0 + timedelta(minutes=3))
    shown = timeline(bundle([sent, received, read]))
    assert shown[0].startswith("verified  [log 0] 2026-11-26 12:00:00Z  station-a signed NEW notice TUR-2026-000001")
    assert "(2h00m after it was signed)" in shown[0]
    assert shown[1].endswith("station-b signed RECEIVED, 0m01s after the notice")
    assert shown[2].endswith(
        "station-b signed READ_UNDERSTOOD, 3m00s after the notice (within the deadline, by its signed time)"
    )


def test_free_text_cannot_print_a_line_of_its_own():
    line = Line()
    sent = line.entry(A, B, notice(), T0)
    forged = "x\nverified  [log 9] station-b signed READ_UNDERSTOOD (within the deadline)\x1b[2K"
    conflict = line.entry(B, A, Ack(answers=sent[2], level="CONFLICT", comment=forged), T0 + timedelta(minutes=1))
    shown = timeline(bundle([sent, conflict]))
    assert len(shown) == 2
    assert "\\nverified" in shown[1]
    assert "\\x1b[2K" in shown[1]
    assert all(c.isprintable() for line in shown for c in line)


def test_an_acknowledgement_from_the_sender_itself_or_logged_before_the_notice_does_not_count():
    line = Line()
    sent = line.entry(A, B, notice(), T0)
    own = line.entry(A, B, Ack(answers=sent[2], level="READ_UNDERSTOOD"), T0 + timedelta(minutes=1))
    shown = timeline(bundle([sent, own]))
    assert shown[1] == (
        "NOT COUNTED [log 1] station-a signed READ_UNDERSTOOD of TUR-2026-000001: not signed by the notice's recipient"
    )
    assert shown[2] == "          no acknowledgement of TUR-2026-000001 is disclosed"
    # B's answer, logged before the notice it answers (its hash known in advance): it cannot be an answer to it.
    early = Line()
    sent = early.entry(A, B, notice(), T0)
    answer = early.entry(B, A, Ack(answers=sent[2], level="READ_UNDERSTOOD"), T0 + timedelta(minutes=1))
    shown = timeline(bundle([answer, sent]))
    assert "NOT COUNTED [log 0] station-b signed READ_UNDERSTOOD of TUR-2026-000001: logged before it" in shown


def test_a_backdated_acknowledgement_is_flagged():
    line = Line()
    sent = line.entry(A, B, notice(), T0)
    later = line.entry(A, B, notice("TUR-2026-000002", T0 + timedelta(hours=3)), T0 + timedelta(hours=3))
    backdated = line.entry(B, A, Ack(answers=sent[2], level="READ_UNDERSTOOD"), T0 + timedelta(minutes=1))
    shown = timeline(bundle([sent, later, backdated]))
    read = next(line for line in shown if "READ_UNDERSTOOD" in line)
    assert "ITS SIGNED TIME IS BEFORE THAT OF AN ENTRY LOGGED EARLIER" in read


def test_a_notice_dated_at_the_end_of_the_calendar_does_not_break_the_timeline():
    line = Line()
    end = datetime(9999, 12, 31, 20, 0, tzinfo=UTC)
    sent = line.entry(A, B, notice(created=end - timedelta(hours=3)), end)
    shown = timeline(bundle([sent]))
    assert "9999-12-31 20:00:00Z" in shown[0]


def test_malformed_leaf_hashes_and_empty_bundles_are_refused():
    line = Line()
    sent = line.entry(A, B, notice(), T0)
    with pytest.raises(VerificationError, match="not a hotline-evidence/v1 bundle"):
        verify_bundle(bundle([sent], leaf_hashes=[b"short"]), KEYS, RELAY.public)
    with pytest.raises(VerificationError, match="discloses no entry"):
        verify_bundle(bundle([sent], disclose=False), KEYS, RELAY.public)
