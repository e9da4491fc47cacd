"""Tests for hotline.protocol.keys: fingerprints, signatures with purpose labels, key files, epoch keys."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import stat
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import nacl.pwhash
import nacl.secret
import pytest
from cryptography.hazmat.primitives import hpke
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline.protocol.exceptions import (
    BadSignature,
    DecodeError,
    HotlineError,
    InsecureKeyFile,
    InvalidMessage,
    KeyFileError,
    UnknownKey,
    WrongPassphrase,
)
from hotline.protocol.keys import (
    AUTH_LABEL,
    DEFAULT_AHEAD,
    DEFAULT_EPOCH,
    DEFAULT_GRACE,
    ENVELOPE_LABEL,
    EPOCH_KEY_LABEL,
    EPOCH_PUBLIC_SIZE,
    HPKE_INFO_LABEL,
    KEM_NAME,
    MAX_MEMLIMIT,
    MAX_OPSLIMIT,
    STATEMENT_LABEL,
    EpochKey,
    EpochKeyPair,
    Hex64,
    IdentityKey,
    PublicKey,
    Signature,
    Signed,
    check_key_file_mode,
    decode_key_file,
    encode_key_file,
    epoch_key_id,
    epoch_windows,
    erasable,
    fingerprint,
    format_fingerprint,
    key_file_needs_passphrase,
    open_epoch_key,
    open_signed,
    parse_public_key,
    public_key_of_file,
    sign,
)

PROPERTY = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])

A = IdentityKey(bytes([1]) * 32)
B = IdentityKey(bytes([2]) * 32)
C = IdentityKey(bytes([3]) * 32)
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
NOT_BEFORE = T0 - timedelta(hours=1)
NOT_AFTER = T0 + timedelta(hours=2)
PAIR = EpochKeyPair(bytes(96), NOT_BEFORE, NOT_AFTER)
LABELS = (STATEMENT_LABEL, ENVELOPE_LABEL, EPOCH_KEY_LABEL, AUTH_LABEL, HPKE_INFO_LABEL)

# The cheapest argon2id that libsodium accepts, so key files cost microseconds in tests.
FAST: dict[str, Any] = {
    "salt": bytes(range(16)),
    "nonce": bytes(range(24)),
    "opslimit": nacl.pwhash.argon2id.OPSLIMIT_MIN,
    "memlimit": nacl.pwhash.argon2id.MEMLIMIT_MIN,
}
PASSPHRASE = b"correct horse battery staple"

seeds = st.binary(min_size=32, max_size=32)
# Real labels are fixed ASCII constants without NUL; the NUL separator is unambiguous only for those.
labels = st.text(st.characters(min_codepoint=1, max_codepoint=127), min_size=1, max_size=24).map(str.encode)
payloads = st.binary(max_size=200)


def _flip(value: bytes, bit: int) -> bytes:
    bit %= len(value) * 8
    out = bytearray(value)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


# --- Fingerprints and public keys ------------------------------------------------------------------


def test_fingerprint_is_sha256_of_the_raw_key() -> None:
    assert fingerprint(A.public.raw) == hashlib.sha256(A.public.raw).digest()
    assert A.public.fingerprint == fingerprint(A.public.raw)
    assert A.public.key_id == hashlib.sha256(A.public.raw).hexdigest()


@PROPERTY
@given(st.binary(min_size=32, max_size=32))
def test_format_fingerprint_reads_aloud_in_16_groups(fp: bytes) -> None:
    text = format_fingerprint(fp)
    groups = text.split(" ")
    assert len(groups) == 16
    assert all(re.fullmatch("[0-9a-f]{4}", g) for g in groups)
    assert text.replace(" ", "") == fp.hex()
    assert "  " not in text
    assert text == text.strip()


@PROPERTY
@given(seeds)
def test_public_key_text_round_trips(seed: bytes) -> None:
    public = IdentityKey(seed).public
    text = public.text()
    assert text.startswith("ed25519:")
    assert parse_public_key(text) == public
    assert parse_public_key(f"  {text}\n") == public
    assert base64.b64decode(text.removeprefix("ed25519:")) == public.raw


@pytest.mark.parametrize(
    "text",
    [
        "",
        "ed25519:",
        "ssh-ed25519 " + base64.b64encode(bytes(32)).decode(),
        "ED25519:" + base64.b64encode(bytes(32)).decode(),
        "x25519:" + base64.b64encode(bytes(32)).decode(),
        base64.b64encode(bytes(32)).decode(),
        "ed25519:not base64!",
        "ed25519:" + base64.b64encode(bytes(32)).decode()[:-1],
        "ed25519:" + base64.urlsafe_b64encode(b"\xff" * 32).decode(),
        "ed25519:" + base64.b64encode(bytes(32)).decode().replace("A", "Á", 1),
        "ed25519:" + base64.b64encode(bytes(31)).decode(),
        "ed25519:" + base64.b64encode(bytes(33)).decode(),
        "ed25519:" + base64.b64encode(bytes(64)).decode(),
    ],
)
def test_parse_public_key_refuses(text: str) -> None:
    with pytest.raises(DecodeError):
        parse_public_key(text)


@pytest.mark.parametrize("raw", [b"short", bytes(31), bytes(33), b"", "x" * 32, bytearray(32)])
def test_public_key_must_be_32_bytes(raw: Any) -> None:
    with pytest.raises(InvalidMessage, match="32 bytes"):
        PublicKey(raw)


def test_public_keys_compare_by_raw_bytes() -> None:
    assert PublicKey(A.public.raw) == A.public
    assert A.public != B.public
    assert "_verify_key" not in repr(A.public)


def test_identity_key() -> None:
    assert A.seed == bytes([1]) * 32
    assert bytes(A.signing_key.verify_key) == A.public.raw
    assert repr(A).startswith("IdentityKey(" + format_fingerprint(A.public.fingerprint)[:19])
    assert A.seed.hex() not in repr(A)
    for seed in (b"", bytes(31), bytes(33)):
        with pytest.raises(InvalidMessage):
            IdentityKey(seed)


# --- Signatures with purpose labels ----------------------------------------------------------------


@PROPERTY
@given(seeds, labels, payloads)
def test_a_signature_verifies_under_its_own_label(seed: bytes, label: bytes, payload: bytes) -> None:
    key = IdentityKey(seed)
    signature = key.sign(label, payload)
    assert len(signature) == 64
    key.public.verify(label, payload, signature)


@PROPERTY
@given(labels, labels, payloads)
def test_a_signature_does_not_verify_under_another_label(label: bytes, other: bytes, payload: bytes) -> None:
    if label == other:
        other += b"x"
    with pytest.raises(BadSignature):
        A.public.verify(other, payload, A.sign(label, payload))


@pytest.mark.parametrize("label", LABELS)
def test_no_protocol_label_accepts_another_ones_signature(label: bytes) -> None:
    signature = A.sign(label, b"payload")
    for other in LABELS:
        if other == label:
            A.public.verify(other, b"payload", signature)
        else:
            with pytest.raises(BadSignature):
                A.public.verify(other, b"payload", signature)


def test_the_label_is_not_just_a_prefix_of_the_payload() -> None:
    # label || 0x00 || payload: moving bytes between label and payload changes the signed message.
    with pytest.raises(BadSignature):
        A.public.verify(b"hotline/v1", b"/statement", A.sign(b"hotline/v1/statement", b""))


@PROPERTY
@given(payloads.filter(bool), st.integers(min_value=0))
def test_a_flipped_bit_in_the_payload_is_refused(payload: bytes, bit: int) -> None:
    signature = A.sign(STATEMENT_LABEL, payload)
    with pytest.raises(BadSignature):
        A.public.verify(STATEMENT_LABEL, _flip(payload, bit), signature)


@PROPERTY
@given(payloads, st.integers(min_value=0, max_value=511))
def test_a_flipped_bit_in_the_signature_is_refused(payload: bytes, bit: int) -> None:
    signature = A.sign(STATEMENT_LABEL, payload)
    with pytest.raises(BadSignature):
        A.public.verify(STATEMENT_LABEL, payload, _flip(signature, bit))


@pytest.mark.parametrize("length", [0, 63, 65, 128])
def test_a_signature_of_the_wrong_length_is_refused(length: int) -> None:
    signature = (A.sign(STATEMENT_LABEL, b"x") * 2)[:length]
    with pytest.raises(BadSignature, match=f"got {length}"):
        A.public.verify(STATEMENT_LABEL, b"x", signature)


def test_another_keys_signature_is_refused() -> None:
    with pytest.raises(BadSignature):
        B.public.verify(STATEMENT_LABEL, b"x", A.sign(STATEMENT_LABEL, b"x"))


# --- sign / open_signed -----------------------------------------------------------------------------


def test_open_signed_returns_the_signer_and_payload() -> None:
    signed = sign(A, STATEMENT_LABEL, b"payload")
    assert signed.signatures == [Signature("ed25519", A.public.key_id, signed.signatures[0].sig)]
    signer, payload = open_signed(signed, STATEMENT_LABEL, [B.public, A.public])
    assert signer == A.public
    assert payload == b"payload"
    # And it survives its wire form.
    back = msgspec.json.decode(msgspec.json.encode(signed), type=Signed)
    assert open_signed(back, STATEMENT_LABEL, [A.public]) == (A.public, b"payload")


def test_open_signed_refuses_a_stranger() -> None:
    with pytest.raises(UnknownKey, match=C.public.key_id[:16]):
        open_signed(sign(C, STATEMENT_LABEL, b"x"), STATEMENT_LABEL, [A.public, B.public])
    with pytest.raises(UnknownKey):
        open_signed(sign(C, STATEMENT_LABEL, b"x"), STATEMENT_LABEL, [])


def test_open_signed_refuses_the_wrong_label() -> None:
    with pytest.raises(BadSignature):
        open_signed(sign(A, ENVELOPE_LABEL, b"x"), STATEMENT_LABEL, [A.public])


def test_open_signed_skips_other_algorithms() -> None:
    good = sign(A, STATEMENT_LABEL, b"x").signatures[0]
    future = Signature("ml-dsa-65", A.public.key_id, b"\x00" * 3309)
    signed = Signed(b"x", [future, good])
    assert open_signed(signed, STATEMENT_LABEL, [A.public]) == (A.public, b"x")


def test_open_signed_with_only_other_algorithms_is_a_bad_signature() -> None:
    future = Signature("ml-dsa-65", A.public.key_id, b"\x00" * 3309)
    with pytest.raises(BadSignature, match="no Ed25519"):
        open_signed(Signed(b"x", [future]), STATEMENT_LABEL, [A.public])


def test_open_signed_passes_a_stranger_for_a_known_signer() -> None:
    stranger = sign(C, STATEMENT_LABEL, b"x").signatures[0]
    good = sign(A, STATEMENT_LABEL, b"x").signatures[0]
    assert open_signed(Signed(b"x", [stranger, good]), STATEMENT_LABEL, [A.public]) == (A.public, b"x")


def test_open_signed_refuses_a_bad_signature_from_a_known_key() -> None:
    good = sign(A, STATEMENT_LABEL, b"x").signatures[0]
    forged = Signature("ed25519", A.public.key_id, _flip(good.sig, 7))
    with pytest.raises(BadSignature):
        open_signed(Signed(b"x", [forged]), STATEMENT_LABEL, [A.public])
    with pytest.raises(BadSignature):
        open_signed(Signed(b"y", [good]), STATEMENT_LABEL, [A.public])
    # A's signature presented under B's name is B's bad signature.
    with pytest.raises(BadSignature):
        open_signed(Signed(b"x", [Signature("ed25519", B.public.key_id, good.sig)]), STATEMENT_LABEL, [B.public])


# --- Key files ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def protected() -> bytes:
    return encode_key_file(A, "station-a", PASSPHRASE, **FAST)


@pytest.fixture(scope="module")
def clear() -> bytes:
    return encode_key_file(A, "station-a", None)


def _edit(data: bytes, change: Callable[[dict[str, Any]], object]) -> bytes:
    doc = json.loads(data)
    change(doc)
    return json.dumps(doc).encode()


def _no_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("argon2id ran on a key file that should have been refused first")

    monkeypatch.setattr(nacl.pwhash.argon2id, "kdf", refuse)


def test_key_file_round_trips(protected: bytes) -> None:
    name, key = decode_key_file(protected, PASSPHRASE)
    assert name == "station-a"
    assert key.seed == A.seed
    assert key.public == A.public
    assert key_file_needs_passphrase(protected)


def test_key_file_format(protected: bytes) -> None:
    assert protected.endswith(b"}\n")
    doc = json.loads(protected)
    assert doc["kind"] == "hotline-identity-key"
    assert doc["v"] == 1
    assert doc["alg"] == "ed25519"
    assert base64.b64decode(doc["public"]) == A.public.raw
    assert doc["kdf"] == {
        "opslimit": FAST["opslimit"],
        "memlimit": FAST["memlimit"],
        "salt": base64.b64encode(FAST["salt"]).decode(),
        "alg": "argon2id13",
    }
    # The seed is sealed: nonce, then the 32-byte seed and a 16-byte tag.
    sealed = base64.b64decode(doc["secret"])
    assert len(sealed) == 24 + 32 + 16
    assert A.seed not in sealed


def test_key_file_is_deterministic_given_salt_and_nonce(protected: bytes) -> None:
    assert encode_key_file(A, "station-a", PASSPHRASE, **FAST) == protected
    other = encode_key_file(A, "station-a", PASSPHRASE, **{**FAST, "nonce": bytes(24)})
    assert other != protected
    assert decode_key_file(other, PASSPHRASE)[1].seed == A.seed


@pytest.mark.parametrize("passphrase", [b"wrong", PASSPHRASE + b" ", PASSPHRASE[:-1], b"\x00"])
def test_wrong_passphrase(protected: bytes, passphrase: bytes) -> None:
    with pytest.raises(WrongPassphrase, match="does not open"):
        decode_key_file(protected, passphrase)


def test_no_passphrase_for_a_protected_file(protected: bytes) -> None:
    with pytest.raises(WrongPassphrase, match="none was given"):
        decode_key_file(protected, None)


def test_unprotected_key_file(clear: bytes) -> None:
    assert not key_file_needs_passphrase(clear)
    assert json.loads(clear)["kdf"] is None
    name, key = decode_key_file(clear, None)
    assert (name, key.seed) == ("station-a", A.seed)
    # A passphrase given for a file that has none is not needed, and not an error.
    assert decode_key_file(clear, b"anything")[1].public == A.public


def test_empty_passphrase_is_refused() -> None:
    with pytest.raises(InvalidMessage, match="empty passphrase"):
        encode_key_file(A, "station-a", b"", **FAST)


@pytest.mark.parametrize("which", ["protected", "clear"])
def test_public_key_that_does_not_match_the_seed(which: str, request: pytest.FixtureRequest) -> None:
    data = request.getfixturevalue(which)
    forged = _edit(data, lambda d: d.update(public=base64.b64encode(B.public.raw).decode()))
    with pytest.raises(KeyFileError, match="does not match") as caught:
        decode_key_file(forged, PASSPHRASE)
    assert type(caught.value) is KeyFileError


def test_a_clear_seed_of_the_wrong_length(clear: bytes) -> None:
    data = _edit(clear, lambda d: d.update(secret=base64.b64encode(bytes(31)).decode()))
    with pytest.raises(KeyFileError, match="wrong length"):
        decode_key_file(data, None)


def test_a_sealed_seed_of_the_wrong_length(protected: bytes) -> None:
    # Sealed with the right passphrase, so it opens; then the seed inside is 31 bytes.
    key = nacl.pwhash.argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE,
        PASSPHRASE,
        FAST["salt"],
        opslimit=FAST["opslimit"],
        memlimit=FAST["memlimit"],
    )
    sealed = bytes(nacl.secret.SecretBox(key).encrypt(bytes(31), bytes(24)))
    data = _edit(protected, lambda d: d.update(secret=base64.b64encode(sealed).decode()))
    with pytest.raises(KeyFileError, match="wrong length"):
        decode_key_file(data, PASSPHRASE)


@pytest.mark.parametrize("secret", [b"", b"short", bytes(40)])
def test_a_truncated_sealed_seed_is_a_wrong_passphrase(protected: bytes, secret: bytes) -> None:
    # Too short for nonce and tag: secretbox cannot tell this from a wrong passphrase.
    data = _edit(protected, lambda d: d.update(secret=base64.b64encode(secret).decode()))
    with pytest.raises(WrongPassphrase):
        decode_key_file(data, PASSPHRASE)


GARBAGE: dict[str, Callable[[bytes], bytes]] = {
    "empty": lambda d: b"",
    "not json": lambda d: b"this is not a key file",
    "truncated": lambda d: d[: len(d) // 2],
    "one byte short": lambda d: d.rstrip()[:-1],
    "a list": lambda d: b"[]",
    "null": lambda d: b"null",
    "binary": lambda d: bytes(range(256)),
    "wrong kind": lambda d: _edit(d, lambda x: x.update(kind="hotline-epoch-key")),
    "version 2": lambda d: _edit(d, lambda x: x.update(v=2)),
    "rsa": lambda d: _edit(d, lambda x: x.update(alg="rsa")),
    "unknown field": lambda d: _edit(d, lambda x: x.update(comment="mine")),
    "missing secret": lambda d: _edit(d, lambda x: x.pop("secret")),
    "empty name": lambda d: _edit(d, lambda x: x.update(name="")),
    "65-char name": lambda d: _edit(d, lambda x: x.update(name="x" * 65)),
    "public 31 bytes": lambda d: _edit(d, lambda x: x.update(public=base64.b64encode(bytes(31)).decode())),
    "public not base64": lambda d: _edit(d, lambda x: x.update(public="!!!")),
    "secret over 128 bytes": lambda d: _edit(d, lambda x: x.update(secret=base64.b64encode(bytes(129)).decode())),
    "kdf scrypt": lambda d: _edit(d, lambda x: x["kdf"].update(alg="scrypt")),
    "salt 15 bytes": lambda d: _edit(d, lambda x: x["kdf"].update(salt=base64.b64encode(bytes(15)).decode())),
    "kdf a string": lambda d: _edit(d, lambda x: x.update(kdf="argon2id")),
    "opslimit a string": lambda d: _edit(d, lambda x: x["kdf"].update(opslimit="1")),
}


@pytest.mark.parametrize("case", list(GARBAGE))
def test_garbage_key_files_are_refused(case: str, protected: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    data = GARBAGE[case](protected)
    _no_kdf(monkeypatch)
    with pytest.raises(KeyFileError, match="not a hotline identity key file") as caught:
        decode_key_file(data, PASSPHRASE)
    assert type(caught.value) is KeyFileError
    with pytest.raises(KeyFileError):
        key_file_needs_passphrase(data)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("memlimit", MAX_MEMLIMIT + 1),
        ("memlimit", 1 << 40),
        ("memlimit", 8191),
        ("memlimit", 0),
        ("opslimit", MAX_OPSLIMIT + 1),
        ("opslimit", 2**63),
        ("opslimit", 0),
        ("opslimit", -1),
    ],
)
def test_kdf_limits_are_refused_before_the_kdf_runs(
    field: str, value: int, protected: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _edit(protected, lambda d: d["kdf"].update({field: value}))
    _no_kdf(monkeypatch)
    with pytest.raises(KeyFileError, match=field) as caught:
        decode_key_file(data, PASSPHRASE)
    assert type(caught.value) is KeyFileError


def test_the_kdf_limits_at_the_bound_are_read(protected: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    # At the bounds the file parses and argon2id is asked to run with them (stubbed: 1 GiB is slow).
    asked: list[tuple[int, int]] = []

    def fake_kdf(size: int, passphrase: bytes, salt: bytes, *, opslimit: int, memlimit: int) -> bytes:
        asked.append((opslimit, memlimit))
        return bytes(size)

    data = _edit(protected, lambda d: d["kdf"].update(opslimit=MAX_OPSLIMIT, memlimit=MAX_MEMLIMIT))
    monkeypatch.setattr(nacl.pwhash.argon2id, "kdf", fake_kdf)
    with pytest.raises(WrongPassphrase):
        decode_key_file(data, PASSPHRASE)
    assert asked == [(MAX_OPSLIMIT, MAX_MEMLIMIT)]


def test_public_key_of_file(protected: bytes, clear: bytes) -> None:
    assert public_key_of_file(protected) == A.public
    assert public_key_of_file(clear) == A.public
    # It reads the declaration only: a file that declares B's key says B, and opening it says no.
    forged = _edit(protected, lambda d: d.update(public=base64.b64encode(B.public.raw).decode()))
    assert public_key_of_file(forged) == B.public
    with pytest.raises(KeyFileError, match="does not match"):
        decode_key_file(forged, PASSPHRASE)
    with pytest.raises(KeyFileError):
        public_key_of_file(b"garbage")


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o700, 0o200, 0o000])
def test_private_key_file_modes_accepted(mode: int) -> None:
    check_key_file_mode(stat.S_IFREG | mode)


@pytest.mark.parametrize("mode", [0o640, 0o644, 0o604, 0o660, 0o601, 0o610, 0o666, 0o777])
def test_private_key_file_modes_refused(mode: int) -> None:
    with pytest.raises(InsecureKeyFile, match="chmod 600") as caught:
        check_key_file_mode(stat.S_IFREG | mode)
    assert f"{mode:o}" in str(caught.value)
    assert isinstance(caught.value, KeyFileError)


@settings(max_examples=600, deadline=None)
@given(st.integers(min_value=0, max_value=0o777), st.sampled_from([0, stat.S_IFREG, stat.S_IFLNK]))
def test_key_file_mode_accepted_iff_no_group_or_other_bits(mode: int, kind: int) -> None:
    if mode & 0o077 == 0:
        check_key_file_mode(kind | mode)
    else:
        with pytest.raises(InsecureKeyFile, match="chmod 600"):
            check_key_file_mode(kind | mode)


# --- Epoch keys -------------------------------------------------------------------------------------------


def _resign(change: Callable[[dict[str, Any]], object], signer: IdentityKey = A) -> Signed:
    """A's published epoch key with its payload changed, then signed again: only the payload is wrong."""
    doc = json.loads(msgspec.json.encode(PAIR.public(A.public)))
    change(doc)
    return sign(signer, EPOCH_KEY_LABEL, json.dumps(doc).encode())


def test_epoch_key_opens_with_its_stations_key() -> None:
    key = open_epoch_key(PAIR.signed_public(A), A.public)
    assert key.key_id == PAIR.key_id == epoch_key_id(PAIR.public_bytes)
    assert len(key.key_id) == 32
    assert key.station == A.public.key_id
    assert key.kem == KEM_NAME
    assert key.public == PAIR.public_bytes
    assert len(key.public) == EPOCH_PUBLIC_SIZE
    assert (key.not_before, key.not_after) == (NOT_BEFORE, NOT_AFTER)
    assert key == PAIR.public(A.public)
    assert isinstance(key.hpke_public_key(), hpke.MLKEM768X25519PublicKey)


def test_epoch_key_window_is_half_open() -> None:
    key = PAIR.public(A.public)
    assert key.valid_at(NOT_BEFORE)
    assert key.valid_at(T0)
    assert key.valid_at(NOT_AFTER - timedelta(microseconds=1))
    assert not key.valid_at(NOT_AFTER)
    assert not key.valid_at(NOT_BEFORE - timedelta(microseconds=1))


def test_epoch_key_pair_encrypts_to_its_public_half() -> None:
    suite = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
    key = open_epoch_key(PAIR.signed_public(A), A.public)
    sealed = suite.encrypt(b"secret", key.hpke_public_key(), info=b"info")
    assert suite.decrypt(sealed, PAIR.hpke_private_key(), info=b"info") == b"secret"


def test_epoch_key_pairs_differ_by_seed() -> None:
    other = EpochKeyPair(bytes([1]) * 96, NOT_BEFORE, NOT_AFTER)
    assert other.key_id != PAIR.key_id
    assert "seed" not in repr(PAIR)
    assert bytes(96).hex() not in repr(PAIR)


@pytest.mark.parametrize("seed", [b"", bytes(95), bytes(97), bytes(64)])
def test_epoch_key_pair_seed_length(seed: bytes) -> None:
    with pytest.raises(InvalidMessage, match="96 bytes"):
        EpochKeyPair(seed, NOT_BEFORE, NOT_AFTER)


def test_epoch_key_of_another_station_is_unknown() -> None:
    with pytest.raises(UnknownKey):
        open_epoch_key(PAIR.signed_public(A), B.public)


def test_epoch_key_naming_another_station_than_its_signer() -> None:
    signed = sign(A, EPOCH_KEY_LABEL, msgspec.json.encode(PAIR.public(B.public)))
    with pytest.raises(UnknownKey, match="another station"):
        open_epoch_key(signed, A.public)


def test_epoch_key_signed_for_another_purpose() -> None:
    signed = sign(A, STATEMENT_LABEL, msgspec.json.encode(PAIR.public(A.public)))
    with pytest.raises(BadSignature):
        open_epoch_key(signed, A.public)


PLUS_ONE = timezone(timedelta(hours=1))
BAD_WINDOWS = {
    "empty": (T0, T0),
    "reversed": (T0, T0 - timedelta(seconds=1)),
    "naive": (T0.replace(tzinfo=None), NOT_AFTER),
    "naive end": (NOT_BEFORE, NOT_AFTER.replace(tzinfo=None)),
    "UTC+1": (T0.astimezone(PLUS_ONE), NOT_AFTER),
}


@pytest.mark.parametrize("case", list(BAD_WINDOWS))
def test_epoch_key_bad_window_refused_when_built(case: str) -> None:
    not_before, not_after = BAD_WINDOWS[case]
    with pytest.raises(ValueError, match=r"UTC|after it starts"):
        EpochKey(1, A.public.key_id, KEM_NAME, PAIR.public_bytes, not_before, not_after)
    with pytest.raises(ValueError, match=r"UTC|after it starts"):
        EpochKeyPair(bytes(96), not_before, not_after).signed_public(A)


EPOCH_PAYLOAD_FAULTS: dict[str, Callable[[dict[str, Any]], object]] = {
    "empty window": lambda d: d.update(not_after=d["not_before"]),
    "reversed window": lambda d: d.update(not_before="2026-11-26T15:00:00Z"),
    "naive time": lambda d: d.update(not_before="2026-11-26T11:00:00"),
    "UTC+1": lambda d: d.update(not_after="2026-11-26T15:00:00+01:00"),
    "not a time": lambda d: d.update(not_after="later"),
    "public too short": lambda d: d.update(public=base64.b64encode(bytes(1215)).decode()),
    "public too long": lambda d: d.update(public=base64.b64encode(bytes(1217)).decode()),
    "public not ML-KEM": lambda d: d.update(
        public=base64.b64encode(b"\xff" * 1184 + PAIR.public_bytes[1184:]).decode()
    ),
    "other kem": lambda d: d.update(kem="x25519"),
    "version 2": lambda d: d.update(v=2),
    "station not hex": lambda d: d.update(station="A" * 64),
    "unknown field": lambda d: d.update(expires="never"),
    "missing field": lambda d: d.pop("not_after"),
}


@pytest.mark.parametrize("case", list(EPOCH_PAYLOAD_FAULTS))
def test_epoch_key_bad_payload_refused_when_decoded(case: str) -> None:
    with pytest.raises(DecodeError):
        open_epoch_key(_resign(EPOCH_PAYLOAD_FAULTS[case]), A.public)


@pytest.mark.parametrize("payload", [b"", b"not json", b"[]", b"null"])
def test_epoch_key_payload_not_an_object(payload: bytes) -> None:
    with pytest.raises(DecodeError, match="malformed epoch key"):
        open_epoch_key(sign(A, EPOCH_KEY_LABEL, payload), A.public)


def test_epoch_key_not_ml_kem_is_a_decode_error() -> None:
    bad = b"\xff" * 1184 + PAIR.public_bytes[1184:]
    key = EpochKey(1, A.public.key_id, KEM_NAME, bad, NOT_BEFORE, NOT_AFTER)
    with pytest.raises(DecodeError, match="ML-KEM"):
        key.hpke_public_key()
    with pytest.raises(DecodeError, match="ML-KEM"):
        open_epoch_key(sign(A, EPOCH_KEY_LABEL, msgspec.json.encode(key)), A.public)


@PROPERTY
@given(st.integers(min_value=0))
def test_epoch_key_any_flipped_bit_is_refused(bit: int) -> None:
    signed = PAIR.signed_public(A)
    tampered = Signed(_flip(signed.payload, bit), signed.signatures)
    with pytest.raises(BadSignature):
        open_epoch_key(tampered, A.public)


def test_epoch_windows_default() -> None:
    windows = epoch_windows(T0 + timedelta(minutes=30))
    assert len(windows) == DEFAULT_AHEAD
    assert windows[0] == (T0, T0 + DEFAULT_EPOCH)
    assert windows[-1][1] == T0 + DEFAULT_AHEAD * DEFAULT_EPOCH
    assert all(start.tzinfo is UTC and end.tzinfo is UTC for start, end in windows)
    # A pair per window: each builds and publishes.
    first = EpochKeyPair(bytes(96), *windows[0])
    assert open_epoch_key(first.signed_public(A), A.public).valid_at(T0)


def test_epoch_windows_on_a_boundary_start_there() -> None:
    assert epoch_windows(T0, ahead=1) == [(T0, T0 + DEFAULT_EPOCH)]
    assert epoch_windows(T0 - timedelta(microseconds=1), ahead=1) == [(T0 - DEFAULT_EPOCH, T0)]
    day = datetime(2026, 11, 26, tzinfo=UTC)
    assert epoch_windows(T0, timedelta(days=1), 2) == [
        (day, day + timedelta(days=1)),
        (day + timedelta(days=1), day + timedelta(days=2)),
    ]


@pytest.mark.parametrize(
    ("length", "ahead"),
    [
        (timedelta(0), 1),
        (timedelta(hours=-1), 1),
        (timedelta(milliseconds=999), 1),
        (DEFAULT_EPOCH, 0),
        (DEFAULT_EPOCH, -1),
    ],
)
def test_epoch_windows_refuses(length: timedelta, ahead: int) -> None:
    with pytest.raises(InvalidMessage, match="positive time"):
        epoch_windows(T0, length, ahead)


@PROPERTY
@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
    st.integers(min_value=1, max_value=7 * 86400),
    st.integers(min_value=1, max_value=5),
)
def test_epoch_windows_cover_now_and_follow_each_other(now: datetime, seconds: int, ahead: int) -> None:
    length = timedelta(seconds=seconds)
    windows = epoch_windows(now, length, ahead)
    assert len(windows) == ahead
    assert windows[0][0] <= now < windows[0][1]
    for (_, end), (following, _) in itertools.pairwise(windows):
        assert end == following
    for start, end in windows:
        assert end - start == length
        assert int(start.timestamp()) % seconds == 0
    # Two stations with clocks apart within the same window cut the same windows.
    assert epoch_windows(windows[0][0], length, ahead) == windows


def test_erasable_after_window_and_grace() -> None:
    old = EpochKeyPair(bytes([1]) * 96, T0 - timedelta(days=9), T0 - DEFAULT_GRACE)
    recent = EpochKeyPair(bytes([2]) * 96, T0 - timedelta(days=8), T0 - DEFAULT_GRACE + timedelta(seconds=1))
    current = PAIR
    assert erasable([old, recent, current], T0) == [old.key_id]
    assert erasable([old, recent, current], T0 + timedelta(seconds=1)) == [old.key_id, recent.key_id]
    assert erasable([old, recent, current], T0, grace=timedelta(0)) == [old.key_id, recent.key_id]
    assert erasable([], T0) == []


# --- Bugs, documented -------------------------------------------------------------------------------


def test_epoch_key_bad_window_is_an_invalid_message() -> None:
    with pytest.raises(HotlineError):
        EpochKeyPair(bytes(96), T0, T0).signed_public(A)


def test_verify_with_a_binary_label_raises_bad_signature() -> None:
    with pytest.raises(BadSignature):
        A.public.verify(b"\x80", b"x", A.sign(b"\x81", b"x"))


@pytest.mark.parametrize(
    "changes",
    [{"name": ""}, {"name": "x" * 65}, {"opslimit": MAX_OPSLIMIT + 1}],
    ids=["empty-name", "long-name", "opslimit"],
)
def test_encode_key_file_refuses_what_decode_would_refuse(changes: dict[str, Any]) -> None:
    args = {**FAST, **changes}
    name = args.pop("name", "station-a")
    with pytest.raises(InvalidMessage):
        encode_key_file(A, name, PASSPHRASE, **args)


@pytest.mark.parametrize(
    "changes",
    [{"salt": b""}, {"nonce": b""}, {"salt": bytes(15)}, {"nonce": bytes(23)}],
    ids=["default-salt", "default-nonce", "short-salt", "short-nonce"],
)
def test_encode_key_file_salt_and_nonce_are_checked(changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidMessage):
        encode_key_file(A, "station-a", PASSPHRASE, **{**FAST, **changes})


def test_hex64_refuses_a_trailing_newline() -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(json.dumps(A.public.key_id + "\n").encode(), type=Hex64)


def test_epoch_windows_refuses_a_naive_now() -> None:
    with pytest.raises(InvalidMessage):
        epoch_windows(T0.replace(tzinfo=None))
