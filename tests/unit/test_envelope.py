"""Tests for hotline.protocol.envelope: statements, sealing, the relay's check and opening.

A sends to B. Every fault in what arrives must be refused with a named
``RemoteProtocolError``; every fault in what we are asked to seal with a
``LocalProtocolError``. Some envelopes are built by hand (``hand_seal``, an
independent transcription of ``seal``) to reach the checks that follow
decryption, which no envelope made by ``seal`` can fail.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest
from cryptography.hazmat.primitives import hpke
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline.protocol.envelope import (
    MAX_HEADER,
    MAX_SEALED,
    MAX_STATEMENT,
    SUITE,
    ZERO_HASH,
    Envelope,
    Header,
    Statement,
    check_envelope,
    decode_envelope,
    leaf_input,
    open_envelope,
    seal,
)
from hotline.protocol.exceptions import (
    BadSignature,
    ClockSkew,
    DecodeError,
    DecryptionFailed,
    ExpiredEpochKey,
    InvalidMessage,
    LocalProtocolError,
    NoEpochKey,
    RemoteProtocolError,
    UnknownEpochKey,
    UnknownKey,
    WrongRecipient,
)
from hotline.protocol.keys import (
    ENVELOPE_LABEL,
    EPOCH_KEY_LABEL,
    HPKE_INFO_LABEL,
    STATEMENT_LABEL,
    EpochKey,
    EpochKeyPair,
    IdentityKey,
    Signature,
    Signed,
    open_epoch_key,
    open_signed,
    sign,
)
from hotline.protocol.messages import Body, FreeText, Heartbeat, Translation

from .line import T0, notice
from .strategies import bodies

PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

A = IdentityKey(bytes([1]) * 32)
B = IdentityKey(bytes([2]) * 32)
C = IdentityKey(bytes([3]) * 32)
NOT_BEFORE = T0 - timedelta(hours=1)
NOT_AFTER = T0 + timedelta(hours=2)
PAIR = EpochKeyPair(bytes([0xB]) * 96, NOT_BEFORE, NOT_AFTER)
EK = open_epoch_key(PAIR.signed_public(B), B.public)
KEYS = {PAIR.key_id: PAIR}
A_PAIR = EpochKeyPair(bytes([0xA]) * 96, NOT_BEFORE, NOT_AFTER)
A_EK = open_epoch_key(A_PAIR.signed_public(A), A.public)
C_PAIR = EpochKeyPair(bytes([0xC]) * 96, NOT_BEFORE, NOT_AFTER)
C_EK = open_epoch_key(C_PAIR.signed_public(C), C.public)
ROSTER = {A.public.key_id: A.public, B.public.key_id: B.public}
MESSAGE_ID = "0123456789abcdef" * 2
NONCE = bytes(range(32))
HPKE_SUITE = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)


def statement(**changes: Any) -> Statement:
    fields: dict[str, Any] = {
        "v": 1,
        "sender": A.public.key_id,
        "recipient": B.public.key_id,
        "id": MESSAGE_ID,
        "seq": 1,
        "prev": ZERO_HASH,
        "peer": ZERO_HASH,
        "peer_seq": 0,
        "created": T0,
        "nonce": NONCE,
        "body": notice(),
    }
    fields.update(changes)
    return Statement(**fields)


STATEMENT = statement()
SEALED = seal(A, B.public, EK, STATEMENT)
ENVELOPE = SEALED.envelope
ENCODED = msgspec.json.encode(ENVELOPE)


def open_b(envelope: Envelope, now: datetime = T0, keys: dict[str, EpochKeyPair] = KEYS) -> Any:
    """B opens what A sent."""
    return open_envelope(envelope, B.public, A.public, keys, now)


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _flip(value: bytes, bit: int) -> bytes:
    bit %= len(value) * 8
    out = bytearray(value)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def sign_envelope(header: bytes, sealed: bytes, signer: IdentityKey = A) -> Envelope:
    """An envelope around ``header`` and ``sealed`` with a valid outer signature by ``signer``."""
    sig = signer.sign(ENVELOPE_LABEL, _sha256(header) + _sha256(sealed))
    return Envelope(header, sealed, [Signature("ed25519", signer.public.key_id, sig)])


def hand_seal(
    statement_bytes: bytes,
    *,
    signed: bytes | None = None,
    signer: IdentityKey = A,
    epoch_key: EpochKey = EK,
    **header_changes: Any,
) -> Envelope:
    """``seal`` written out by hand, for any statement bytes, inner signature and header."""
    if signed is None:
        signed = msgspec.json.encode(sign(signer, STATEMENT_LABEL, statement_bytes))
    fields: dict[str, Any] = {
        "v": 1,
        "suite": SUITE,
        "id": MESSAGE_ID,
        "sender": A.public.key_id,
        "recipient": B.public.key_id,
        "seq": 1,
        "epoch": epoch_key.key_id,
        "statement": hashlib.sha256(statement_bytes).hexdigest(),
    }
    fields.update(header_changes)
    header = msgspec.json.encode(Header(**fields))
    sealed = HPKE_SUITE.encrypt(signed, epoch_key.hpke_public_key(), info=HPKE_INFO_LABEL + b"\x00" + header)
    return sign_envelope(header, sealed)


# --- Seal and open ---------------------------------------------------------------------------------------


def test_seal_then_open_returns_the_statement() -> None:
    opened = open_b(ENVELOPE)
    assert opened.statement == STATEMENT
    assert opened.statement_bytes == SEALED.statement_bytes == msgspec.json.encode(STATEMENT)
    digest = hashlib.sha256(SEALED.statement_bytes).hexdigest()
    assert opened.statement_hash == SEALED.statement_hash == SEALED.header.statement == digest
    assert opened.header == SEALED.header
    assert opened.signed_statement == SEALED.signed_statement
    assert opened.leaf_input == SEALED.leaf_input


def test_sealed_parts_agree() -> None:
    header = msgspec.json.decode(ENVELOPE.header, type=Header)
    assert header == SEALED.header
    assert header == Header(
        1, SUITE, MESSAGE_ID, A.public.key_id, B.public.key_id, 1, PAIR.key_id, SEALED.statement_hash
    )
    # The inner signature is A's over the exact statement bytes.
    signed = msgspec.json.decode(SEALED.signed_statement, type=Signed)
    assert open_signed(signed, STATEMENT_LABEL, [A.public]) == (A.public, SEALED.statement_bytes)
    # The relay sees neither the statement nor its body.
    assert b"Convoy" not in ENCODED
    assert SEALED.statement_bytes not in ENVELOPE.sealed


def test_leaf_input_layout() -> None:
    sig = ENVELOPE.signatures[0].sig
    expected = struct.pack(">I", len(ENVELOPE.header)) + ENVELOPE.header + _sha256(ENVELOPE.sealed) + sig
    assert SEALED.leaf_input == expected == leaf_input(ENVELOPE.header, ENVELOPE.sealed, sig)
    assert check_envelope(ENVELOPE, ROSTER).leaf_input == expected


def test_envelope_wire_round_trip() -> None:
    back = decode_envelope(ENCODED)
    assert back == ENVELOPE
    assert msgspec.json.encode(back) == ENCODED
    assert open_b(back).statement == STATEMENT


def test_each_seal_is_fresh_but_commits_to_the_same_statement() -> None:
    again = seal(A, B.public, EK, STATEMENT)
    assert again.statement_hash == SEALED.statement_hash
    assert again.envelope.sealed != ENVELOPE.sealed  # HPKE encapsulation is randomised
    assert open_b(again.envelope).statement == STATEMENT


def test_hand_seal_matches_seal() -> None:
    # The independent transcription opens like the real thing, so the tests built on it are fair.
    opened = open_b(hand_seal(SEALED.statement_bytes))
    assert opened.statement == STATEMENT
    assert opened.header == SEALED.header


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies)
def test_every_body_seals_and_opens(body: Body) -> None:
    s = statement(body=body)
    opened = open_b(decode_envelope(msgspec.json.encode(seal(A, B.public, EK, s).envelope)))
    assert opened.statement == s


def test_a_later_statement_in_the_chain() -> None:
    s = statement(seq=2, prev="11" * 32, peer="22" * 32, peer_seq=7, body=Heartbeat(probe="ab" * 16))
    assert open_b(seal(A, B.public, EK, s).envelope).statement == s


def test_b_answers_a() -> None:
    s = statement(sender=B.public.key_id, recipient=A.public.key_id)
    sealed = seal(B, A.public, A_EK, s)
    opened = open_envelope(sealed.envelope, A.public, B.public, {A_PAIR.key_id: A_PAIR}, T0)
    assert opened.statement == s


# --- The relay's check -----------------------------------------------------------------------------------


def test_check_envelope_passes() -> None:
    checked = check_envelope(ENVELOPE, ROSTER)
    assert checked.header == SEALED.header
    assert checked.sender == A.public
    assert checked.recipient == B.public
    assert checked.envelope is ENVELOPE
    # A third station on the roster changes nothing.
    assert check_envelope(ENVELOPE, {**ROSTER, C.public.key_id: C.public}).sender == A.public


def test_check_envelope_sender_not_on_the_roster() -> None:
    with pytest.raises(UnknownKey, match="sender"):
        check_envelope(ENVELOPE, {B.public.key_id: B.public, C.public.key_id: C.public})


def test_check_envelope_recipient_not_on_the_roster() -> None:
    with pytest.raises(WrongRecipient):
        check_envelope(ENVELOPE, {A.public.key_id: A.public, C.public.key_id: C.public})


def test_check_envelope_to_oneself() -> None:
    envelope = hand_seal(SEALED.statement_bytes, recipient=A.public.key_id)
    with pytest.raises(WrongRecipient):
        check_envelope(envelope, ROSTER)


def test_check_envelope_roster_key_under_another_name() -> None:
    # The roster maps A's fingerprint to C's key: the signature names A, whom C's key is not.
    with pytest.raises(UnknownKey):
        check_envelope(ENVELOPE, {A.public.key_id: C.public, B.public.key_id: B.public})


def test_check_envelope_signed_by_another_roster_station() -> None:
    forged = sign_envelope(ENVELOPE.header, ENVELOPE.sealed, signer=B)
    with pytest.raises(UnknownKey):
        check_envelope(forged, ROSTER)


def test_check_envelope_skips_other_algorithms() -> None:
    future = Signature("ml-dsa-65", A.public.key_id, bytes(3309))
    envelope = Envelope(ENVELOPE.header, ENVELOPE.sealed, [future, *ENVELOPE.signatures])
    checked = check_envelope(envelope, ROSTER)
    assert checked.leaf_input == SEALED.leaf_input
    with pytest.raises(BadSignature, match="no Ed25519"):
        check_envelope(Envelope(ENVELOPE.header, ENVELOPE.sealed, [future]), ROSTER)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"{}",
        b"[]",
        ENCODED[:-1],
        ENCODED.replace(b'"signatures":[', b'"signatures":[],"x":['),
        msgspec.json.encode(Envelope(ENVELOPE.header, ENVELOPE.sealed, [])),
        msgspec.json.encode(Envelope(ENVELOPE.header, ENVELOPE.sealed, ENVELOPE.signatures * 5)),
        msgspec.json.encode(Envelope(bytes(MAX_HEADER + 1), ENVELOPE.sealed, ENVELOPE.signatures)),
        msgspec.json.encode(Envelope(ENVELOPE.header, bytes(MAX_SEALED + 1), ENVELOPE.signatures)),
        ENCODED.replace(b'"ed25519","key":"', b'"ed25519","key":"A'),
    ],
)
def test_decode_envelope_refuses(data: bytes) -> None:
    with pytest.raises(DecodeError, match="malformed envelope"):
        decode_envelope(data)


@pytest.mark.parametrize(
    "header",
    [
        b"",
        b"not json",
        b"{}",
        ENVELOPE.header.replace(b'"v":1', b'"v":2'),
        ENVELOPE.header.replace(SUITE.encode(), b"dhkemx25519-hkdfsha256-aes128gcm"),
        ENVELOPE.header.replace(b'"id":"', b'"id":"0'),
        ENVELOPE.header[:-1] + b',"extra":1}',
    ],
)
def test_check_envelope_refuses_a_malformed_header(header: bytes) -> None:
    # Well signed, so only the header is at fault.
    with pytest.raises(DecodeError, match="envelope header"):
        check_envelope(sign_envelope(header, ENVELOPE.sealed), ROSTER)


# --- Single-bit flips ----------------------------------------------------------------------------------


def _refused(envelope: Envelope) -> None:
    """B refuses ``envelope`` with a RemoteProtocolError: never accepts it, never raises another error."""
    try:
        opened = open_b(envelope)
    except RemoteProtocolError:
        return
    pytest.fail(f"a tampered envelope was accepted: {opened.statement}")


@PROPERTY
@given(st.integers(min_value=0))
def test_a_flipped_bit_in_the_header_is_refused(bit: int) -> None:
    _refused(Envelope(_flip(ENVELOPE.header, bit), ENVELOPE.sealed, ENVELOPE.signatures))


@PROPERTY
@given(st.integers(min_value=0))
def test_a_flipped_bit_in_the_sealed_bytes_is_refused(bit: int) -> None:
    _refused(Envelope(ENVELOPE.header, _flip(ENVELOPE.sealed, bit), ENVELOPE.signatures))


@PROPERTY
@given(st.integers(min_value=0, max_value=511))
def test_a_flipped_bit_in_the_envelope_signature_is_refused(bit: int) -> None:
    s = ENVELOPE.signatures[0]
    _refused(Envelope(ENVELOPE.header, ENVELOPE.sealed, [Signature(s.alg, s.key, _flip(s.sig, bit))]))


def _flipped_json_is_refused(bit: int) -> None:
    data = _flip(ENCODED, bit)
    try:
        envelope = decode_envelope(data)
    except DecodeError:
        return
    if envelope == ENVELOPE:
        # A flip in the unused low bits of a base64 quantum's last character: msgspec ignores
        # them, so the same envelope (same bytes, same signature, same log leaf) arrives.
        return
    _refused(envelope)


@PROPERTY
@given(st.integers(min_value=0))
def test_a_flipped_bit_in_the_encoded_envelope_is_refused(bit: int) -> None:
    _flipped_json_is_refused(bit)


def test_every_flipped_bit_in_header_and_signature_is_refused() -> None:
    # Exhaustive where it is cheap.
    for bit in range(len(ENVELOPE.header) * 8):
        _refused(Envelope(_flip(ENVELOPE.header, bit), ENVELOPE.sealed, ENVELOPE.signatures))
    s = ENVELOPE.signatures[0]
    for bit in range(512):
        _refused(Envelope(ENVELOPE.header, ENVELOPE.sealed, [Signature(s.alg, s.key, _flip(s.sig, bit))]))


@pytest.mark.slow
def test_every_flipped_bit_in_the_encoded_envelope_is_refused() -> None:
    for bit in range(len(ENCODED) * 8):
        _flipped_json_is_refused(bit)


def test_non_canonical_base64_decodes_to_the_same_envelope() -> None:
    # Documented: the signature's base64 ends in "==", whose last data character carries 4 unused bits.
    # msgspec ignores them, so the encoded envelope is malleable, but nothing that is signed or logged.
    sig_b64 = msgspec.json.encode(ENVELOPE.signatures[0].sig)
    assert sig_b64.endswith(b'=="')
    last = sig_b64[-4:-3]
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    twin = bytes([alphabet[alphabet.index(last) ^ 1]])
    data = ENCODED.replace(sig_b64, sig_b64[:-4] + twin + b'=="')
    assert data != ENCODED
    assert decode_envelope(data) == ENVELOPE


@PROPERTY
@given(st.integers(min_value=0))
def test_a_flipped_bit_in_the_signed_statement_is_a_bad_signature(bit: int) -> None:
    signed = msgspec.json.decode(SEALED.signed_statement, type=Signed)
    tampered = Signed(_flip(signed.payload, bit), signed.signatures)
    with pytest.raises(BadSignature):
        open_signed(tampered, STATEMENT_LABEL, [A.public])


# --- Named refusals ----------------------------------------------------------------------------------


def test_opened_by_a_third_station() -> None:
    with pytest.raises(WrongRecipient):
        open_envelope(ENVELOPE, C.public, A.public, {C_PAIR.key_id: C_PAIR, **KEYS}, T0)


def test_opened_with_the_wrong_peer_key() -> None:
    # B believes its peer is C: the envelope is a stranger's.
    with pytest.raises(UnknownKey):
        open_envelope(ENVELOPE, B.public, C.public, KEYS, T0)


def test_opened_by_its_own_sender() -> None:
    # A's envelope to B, handed back to A (as "me") with B as the peer: it is addressed to B.
    with pytest.raises(WrongRecipient, match="another station"):
        open_envelope(ENVELOPE, A.public, B.public, {A_PAIR.key_id: A_PAIR, **KEYS}, T0)


def test_unknown_epoch_key() -> None:
    with pytest.raises(UnknownEpochKey, match=PAIR.key_id):
        open_b(ENVELOPE, keys={})
    with pytest.raises(UnknownEpochKey):
        open_b(ENVELOPE, keys={A_PAIR.key_id: A_PAIR})


def test_the_wrong_private_key_under_the_right_id() -> None:
    with pytest.raises(DecryptionFailed):
        open_b(ENVELOPE, keys={PAIR.key_id: A_PAIR})


@pytest.mark.parametrize(
    ("not_before", "not_after"),
    [
        (T0 + timedelta(hours=1), T0 + timedelta(hours=2)),  # created before B's window
        (T0 - timedelta(hours=1), T0),  # created at its end, which is excluded
        (T0 - timedelta(hours=1), T0 - timedelta(minutes=1)),  # created after it
    ],
)
def test_statement_outside_the_epoch_keys_window(not_before: datetime, not_after: datetime) -> None:
    # A sealed to B's published key; B holds the same key with another window.
    narrower = EpochKeyPair(PAIR.seed, not_before, not_after)
    assert narrower.key_id == PAIR.key_id
    with pytest.raises(ExpiredEpochKey):
        open_b(ENVELOPE, keys={PAIR.key_id: narrower})


def test_statement_at_the_start_of_the_epoch_keys_window() -> None:
    exact = EpochKeyPair(PAIR.seed, T0, T0 + timedelta(minutes=1))
    assert open_b(ENVELOPE, keys={PAIR.key_id: exact}).statement == STATEMENT


@pytest.mark.parametrize(
    ("ahead", "refused"),
    [
        (timedelta(minutes=10), True),
        (timedelta(minutes=5, microseconds=1), True),
        (timedelta(minutes=5), False),
        (timedelta(0), False),
        (-timedelta(minutes=50), False),  # old statements are for the sequence checks, not the clock
    ],
)
def test_clock_skew(ahead: timedelta, refused: bool) -> None:
    now = T0 - ahead  # the statement is dated `ahead` in B's future
    if refused:
        with pytest.raises(ClockSkew, match="future"):
            open_b(ENVELOPE, now=now)
    else:
        assert open_b(ENVELOPE, now=now).statement == STATEMENT


def test_clock_skew_is_configurable() -> None:
    with pytest.raises(ClockSkew):
        open_envelope(ENVELOPE, B.public, A.public, KEYS, T0 - timedelta(minutes=1), max_skew=timedelta(seconds=30))


# --- Sealing what may not be sealed -----------------------------------------------------------------------


@pytest.mark.parametrize("created", [T0 + timedelta(hours=2), T0 - timedelta(hours=1, seconds=1)])
def test_seal_needs_an_epoch_key_valid_at_created(created: datetime) -> None:
    with pytest.raises(NoEpochKey, match="publish a current epoch key") as caught:
        seal(A, B.public, EK, statement(created=created))
    assert isinstance(caught.value, LocalProtocolError)


def test_seal_refuses_another_stations_statement() -> None:
    with pytest.raises(InvalidMessage, match=r"Statement\.sender"):
        seal(C, B.public, EK, STATEMENT)


def test_seal_refuses_a_mismatched_recipient_or_epoch_key() -> None:
    with pytest.raises(InvalidMessage, match=r"Statement\.recipient"):
        seal(A, C.public, C_EK, STATEMENT)
    with pytest.raises(InvalidMessage, match=r"Statement\.recipient"):
        seal(A, B.public, C_EK, STATEMENT)


def _filled(n: int) -> FreeText:
    """Free text of 4000 + 4000 two-byte and ``n`` one-byte characters: each part within its limit."""
    return FreeText(
        lang="en",
        body="ж" * 4000,
        translations=[Translation(lang="tr", body=t, translator="t") for t in ("ж" * 4000, "a" * n)],
    )


def test_a_statement_over_the_limit_is_refused() -> None:
    big = FreeText(
        lang="ru", body="ж" * 4000, translations=[Translation(lang="en", body="ж" * 4000, translator="t")] * 4
    )
    with pytest.raises(InvalidMessage, match="over the limit"):
        seal(A, B.public, EK, statement(body=big))


def test_a_statement_at_the_limit_seals_opens_and_fits_the_envelope() -> None:
    n = MAX_STATEMENT - (len(msgspec.json.encode(statement(body=_filled(1)))) - 1)
    assert 1 <= n < 4000
    at_limit = statement(body=_filled(n))
    assert len(msgspec.json.encode(at_limit)) == MAX_STATEMENT
    sealed = seal(A, B.public, EK, at_limit)
    encoded = msgspec.json.encode(sealed.envelope)
    assert len(sealed.envelope.sealed) <= MAX_SEALED
    assert open_b(decode_envelope(encoded)).statement == at_limit
    with pytest.raises(InvalidMessage, match=f"over the limit of {MAX_STATEMENT}"):
        seal(A, B.public, EK, statement(body=_filled(n + 1)))


# --- Statement validation ----------------------------------------------------------------------------


STATEMENT_FAULTS: dict[str, tuple[dict[str, Any], str]] = {
    "seq 1 with a prev": ({"prev": "11" * 32}, "Statement.prev"),
    "seq 2 with the zero prev": ({"seq": 2}, "Statement.prev"),
    "peer_seq 0 with a peer": ({"peer": "22" * 32}, "Statement.peer"),
    "peer_seq 3 with the zero peer": ({"peer_seq": 3}, "Statement.peer"),
    "to itself": ({"recipient": A.public.key_id}, "Statement"),
    "seq 0": ({"seq": 0}, "Statement.seq"),
    "seq over 2^53": ({"seq": 2**53 + 1, "prev": "11" * 32}, "Statement.seq"),
    "negative peer_seq": ({"peer_seq": -1}, "Statement.peer_seq"),
    "seq True": ({"seq": True}, "Statement.seq"),
    "version 2": ({"v": 2}, "Statement.v"),
    "sender upper-case": ({"sender": A.public.key_id.upper()}, "Statement.sender"),
    "short id": ({"id": "abcd"}, "Statement.id"),
    "nonce 31 bytes": ({"nonce": bytes(31)}, "Statement.nonce"),
    "nonce text": ({"nonce": "0" * 32}, "Statement.nonce"),
    "naive created": ({"created": T0.replace(tzinfo=None)}, "Statement.created"),
    "created UTC+1": ({"created": T0.astimezone(timezone(timedelta(hours=1)))}, "Statement.created"),
    "body not a body": ({"body": "hello"}, "Statement.body"),
}


@pytest.mark.parametrize("case", list(STATEMENT_FAULTS))
def test_invalid_statements(case: str) -> None:
    changes, field = STATEMENT_FAULTS[case]
    with pytest.raises(InvalidMessage, match=re.escape(field)):
        statement(**changes)


def test_the_largest_sequence_numbers() -> None:
    s = statement(seq=2**53, prev="11" * 32, peer_seq=2**53, peer="22" * 32)
    assert open_b(seal(A, B.public, EK, s).envelope).statement == s


# --- Header and statement that do not match -------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"statement": hashlib.sha256(b"another statement").hexdigest()}, DecryptionFailed),
        ({"id": "f" * 32}, DecryptionFailed),
        ({"epoch": A_PAIR.key_id}, UnknownEpochKey),
    ],
)
def test_a_re_signed_header_does_not_open(changes: dict[str, Any], error: type[Exception]) -> None:
    # A (or anyone with A's key) rewrites the header and signs the envelope again. The header is the
    # HPKE info, so the original ciphertext no longer decrypts: DecryptionFailed, before any
    # comparison of the header's statement hash with the statement.
    header = msgspec.structs.replace(SEALED.header, **changes)
    forged = sign_envelope(msgspec.json.encode(header), ENVELOPE.sealed)
    assert check_envelope(forged, ROSTER).header == header  # the relay cannot tell
    with pytest.raises(error) as caught:
        open_b(forged)
    assert isinstance(caught.value, RemoteProtocolError)


def test_a_header_committing_to_another_statement() -> None:
    # Built by hand so that it decrypts: then the hash check itself refuses it.
    envelope = hand_seal(SEALED.statement_bytes, statement="ee" * 32)
    with pytest.raises(DecryptionFailed, match="does not match the hash"):
        open_b(envelope)


def test_a_statement_from_another_sender_than_its_header() -> None:
    other = msgspec.json.encode(statement(sender=C.public.key_id))
    with pytest.raises(DecodeError, match="sender, id or sequence number"):
        open_b(hand_seal(other))


def test_a_statement_with_another_seq_than_its_header() -> None:
    with pytest.raises(DecodeError, match="sender, id or sequence number"):
        open_b(hand_seal(SEALED.statement_bytes, seq=2))


def test_a_statement_with_another_id_than_its_header() -> None:
    with pytest.raises(DecodeError, match="sender, id or sequence number"):
        open_b(hand_seal(SEALED.statement_bytes, id="ff" * 16))


def test_a_statement_addressed_to_another_station_than_its_header() -> None:
    other = msgspec.json.encode(statement(recipient=C.public.key_id))
    with pytest.raises(WrongRecipient, match="statement"):
        open_b(hand_seal(other))


def test_a_statement_signed_by_a_stranger_inside() -> None:
    with pytest.raises(UnknownKey):
        open_b(hand_seal(SEALED.statement_bytes, signer=C))


def test_a_statement_signed_for_another_purpose_inside() -> None:
    signed = msgspec.json.encode(sign(A, EPOCH_KEY_LABEL, SEALED.statement_bytes))
    with pytest.raises(BadSignature):
        open_b(hand_seal(SEALED.statement_bytes, signed=signed))


@pytest.mark.parametrize("signed", [b"", b"not json", b"{}", b'{"payload":"","signatures":[]}'])
def test_a_malformed_signed_statement_inside(signed: bytes) -> None:
    with pytest.raises(DecodeError, match="signed statement"):
        open_b(hand_seal(SEALED.statement_bytes, signed=signed))


STATEMENT_JSON_FAULTS: dict[str, Callable[[bytes], bytes]] = {
    "not json": lambda b: b"not json",
    "seq 0": lambda b: b.replace(b'"seq":1', b'"seq":0'),
    "seq 1 with a prev": lambda b: b.replace(b'"prev":"' + ZERO_HASH.encode(), b'"prev":"' + b"1" * 64),
    "extra field": lambda b: b[:-1] + b',"extra":1}',
    "body junk": lambda b: b.replace(b'"kind":"notice"', b'"kind":"junk"'),
    "nonce short": lambda b: b.replace(b'"nonce":"', b'"nonce":"AAAA', 1),
}


@pytest.mark.parametrize("case", list(STATEMENT_JSON_FAULTS))
def test_a_malformed_statement_inside(case: str) -> None:
    data = STATEMENT_JSON_FAULTS[case](SEALED.statement_bytes)
    assert data != SEALED.statement_bytes
    with pytest.raises(DecodeError, match="malformed statement"):
        open_b(hand_seal(data))


# --- Bugs, documented ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "created",
    ["2026-11-26T12:00:00", "2026-11-26T13:00:00+01:00"],
    ids=["naive", "UTC+1"],
)
def test_a_statement_with_a_non_utc_time_is_refused(created: str) -> None:
    data = SEALED.statement_bytes.replace(b'"2026-11-26T12:00:00Z"', f'"{created}"'.encode())
    assert data != SEALED.statement_bytes
    with pytest.raises(DecodeError):
        open_b(hand_seal(data))


@pytest.mark.parametrize(
    "header",
    [
        ENVELOPE.header.replace(b'"suite":"m', b'"suite":"\xed'),
        ENVELOPE.header.replace(b'"id":"0', b'"id":"\xb0'),
        b'{"v":1,"\xff":1}',
    ],
    ids=["suite", "id", "field-name"],
)
def test_a_header_that_is_not_utf8_is_a_decode_error(header: bytes) -> None:
    with pytest.raises(DecodeError):
        check_envelope(sign_envelope(header, ENVELOPE.sealed), ROSTER)


def test_an_encoded_envelope_that_is_not_utf8_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        decode_envelope(ENCODED.replace(b'{"header"', b'{"h\xe8ader"'))


def test_a_statement_that_is_not_utf8_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        open_b(hand_seal(SEALED.statement_bytes.replace(b"Convoy", b"Conv\xffy")))


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda b: b.replace(b'"seq":1,', b'"seq":1,"seq":1,'), id="duplicate-key"),
        pytest.param(lambda b: b.replace(b'"seq":1,', b'"seq": 1,'), id="whitespace"),
        pytest.param(lambda b: b.replace(b'"v":1,"sender"', b'"sender"', 1)[:-1] + b',"v":1}', id="field-order"),
        pytest.param(lambda b: b.replace(b'"lang":"en"', b'"lang":"\\u0065n"'), id="escaped-letter"),
    ],
)
def test_a_signed_statement_must_be_in_canonical_form(change: Any) -> None:
    data = change(SEALED.statement_bytes)
    assert data != SEALED.statement_bytes
    # Same meaning, other bytes: refused, so that one signature has one reading for every verifier.
    with pytest.raises(DecodeError, match="canonical"):
        open_b(hand_seal(data))
