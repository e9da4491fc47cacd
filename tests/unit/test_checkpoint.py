"""Tests for hotline.protocol.checkpoint: C2SP signed notes, checkpoints and cosignatures."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey, VerifyKey

from hotline.protocol.checkpoint import (
    COSIGNATURE_V1,
    ED25519,
    MAX_NAME_LENGTH,
    MAX_NOTE_SIZE,
    MAX_SIGNATURES,
    Checkpoint,
    Note,
    NoteSignature,
    add_signatures,
    cosign,
    key_id,
    open_checkpoint,
    parse_note,
    parse_vkey,
    sign_checkpoint,
    sign_note,
    verify_cosignature,
    verify_note,
    vkey,
)
from hotline.protocol.exceptions import (
    BadSignature,
    CheckpointError,
    DecodeError,
    InvalidMessage,
    RemoteProtocolError,
)

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "c2sp"

ORIGIN = "relay.hotline.example/log"
LOG = ORIGIN
W1 = "station-a.hotline.example/witness"
W2 = "station-b.hotline.example/witness"
LOG_KEY = SigningKey(bytes(32))
W1_KEY = SigningKey(bytes([1]) * 32)
W2_KEY = SigningKey(bytes([2]) * 32)
OTHER_KEY = SigningKey(bytes([3]) * 32)
LOG_PK = LOG_KEY.verify_key.encode()
W1_PK = W1_KEY.verify_key.encode()
W2_PK = W2_KEY.verify_key.encode()
ROOT = bytes(range(32))
T1 = 1_700_000_000
T2 = 1_700_000_042

CRYPTO = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _cosigned() -> bytes:
    """A checkpoint signed by the log and cosigned by both witnesses."""
    cp = Checkpoint(ORIGIN, 5, ROOT)
    _, note = open_checkpoint(sign_checkpoint(cp, LOG, LOG_KEY), ORIGIN, LOG, LOG_PK)
    return add_signatures(note, cosign(note, W1, W1_KEY, T1), cosign(note, W2, W2_KEY, T2)).encode()


def _open_all(data: bytes) -> tuple[Checkpoint, int, int]:
    cp, note = open_checkpoint(data, ORIGIN, LOG, LOG_PK)
    return cp, verify_cosignature(note, W1, W1_PK), verify_cosignature(note, W2, W2_PK)


def _open_and_verify_w1(data: bytes, log_pk: bytes) -> int:
    _, note = open_checkpoint(data, ORIGIN, LOG, log_pk)
    return verify_cosignature(note, W1, W1_PK)


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def _line(name: str, raw: bytes) -> str:
    return f"\u2014 {name} {_b64(raw)}\n"


seeds = st.binary(min_size=32, max_size=32)
names = st.text(
    alphabet=st.characters(exclude_categories=("Zs", "Zl", "Zp", "Cc", "Cs"), exclude_characters="+"),
    min_size=1,
    max_size=40,
).filter(lambda n: not any(c.isspace() for c in n))
sizes = st.integers(min_value=0, max_value=2**63 - 1)
timestamps = st.integers(min_value=0, max_value=2**63 - 1)
roots = st.binary(min_size=32, max_size=32)


# -- C2SP vectors -----------------------------------------------------------------------------------


def test_c2sp_signed_note_example_verifies() -> None:
    vector = json.loads((VECTORS / "signed-note-example.json").read_text(encoding="utf-8"))
    assert vector["expect"] == "valid"
    name, sig_type, public_key = parse_vkey(vector["vkey"])
    assert (name, sig_type) == ("example.com/foo", ED25519)
    assert key_id(name, ED25519, public_key) == bytes.fromhex("530d903a")
    assert vkey(name, public_key) == vector["vkey"]
    data = (vector["note_text"] + "\n" + vector["signature_line"]).encode()
    note = parse_note(data)
    assert note.text == vector["note_text"]
    assert note.encode() == data
    verify_note(note, name, public_key)


def test_c2sp_signed_note_example_text_file_matches_json() -> None:
    lines = [
        line
        for line in (VECTORS / "signed-note-example.txt").read_text(encoding="utf-8").splitlines(True)
        if not line.startswith("#")
    ]
    name, _, public_key = parse_vkey(lines[0].rstrip("\n"))
    verify_note(parse_note("".join(lines[1:]).encode()), name, public_key)


def _example() -> tuple[str, str, bytes, bytes]:
    vector = json.loads((VECTORS / "signed-note-example.json").read_text(encoding="utf-8"))
    name, _, public_key = parse_vkey(vector["vkey"])
    return vector["note_text"], vector["signature_line"], public_key, name.encode()


@pytest.mark.parametrize(
    "text",
    ["This is an example message!\n", "This is an example message.\n\n", "this is an example message.\n"],
)
def test_c2sp_signed_note_example_refuses_changed_text(text: str) -> None:
    _, sig_line, public_key, _ = _example()
    with pytest.raises(BadSignature):
        verify_note(parse_note((text + "\n" + sig_line).encode()), "example.com/foo", public_key)


def test_c2sp_signed_note_example_refuses_changed_signature() -> None:
    text, sig_line, public_key, _ = _example()
    raw = bytearray(base64.b64decode(sig_line.split(" ")[2]))
    raw[10] ^= 0x01
    forged = _line("example.com/foo", bytes(raw))
    with pytest.raises(BadSignature):
        verify_note(parse_note((text + "\n" + forged).encode()), "example.com/foo", public_key)


def test_c2sp_signed_note_example_refuses_every_bit_flip() -> None:
    text, sig_line, public_key, _ = _example()
    data = (text + "\n" + sig_line).encode()
    for bit in range(len(data) * 8):
        with pytest.raises(RemoteProtocolError):
            verify_note(parse_note(_flip(data, bit)), "example.com/foo", public_key)


def test_c2sp_cosigned_checkpoint_format_example_parses() -> None:
    raw = (VECTORS / "checkpoint-cosigned-format-example.txt").read_text(encoding="utf-8")
    data = "".join(line for line in raw.splitlines(True) if not line.startswith("#")).encode()
    note = parse_note(data)
    assert note.encode() == data
    assert [s.name for s in note.signatures] == ["example.com/behind-the-sofa", "witness.example.com/w1"]
    cp = Checkpoint.parse(note.text)
    assert cp.origin == "example.com/behind-the-sofa"
    assert cp.size == 20852163
    assert cp.root == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert cp.extensions == ()
    assert cp.body() == note.text
    log_sig, cosig = note.signatures
    assert len(log_sig.signature) == 64
    assert len(cosig.signature) == 8 + 64
    # The spec's worked example of the cosigned message uses this same timestamp.
    assert int.from_bytes(cosig.signature[:8], "big") == 1679315147


# -- round trips ------------------------------------------------------------------------------------


def test_sign_open_cosign_verify_round_trip() -> None:
    cp = Checkpoint(ORIGIN, 5, ROOT)
    signed = sign_checkpoint(cp, LOG, LOG_KEY)
    assert signed == f"{ORIGIN}\n5\n{_b64(ROOT)}\n\n".encode() + parse_note(signed).signatures[0].line().encode()
    opened, note = open_checkpoint(signed, ORIGIN, LOG, LOG_PK)
    assert opened == cp
    assert note.text == cp.body()
    both = add_signatures(note, cosign(note, W1, W1_KEY, T1), cosign(note, W2, W2_KEY, T2))
    assert [s.name for s in both.signatures] == [LOG, W1, W2]
    assert _open_all(both.encode()) == (cp, T1, T2)


def test_cosignature_signs_the_c2sp_message() -> None:
    cp = Checkpoint(ORIGIN, 5, ROOT)
    note = parse_note(sign_checkpoint(cp, LOG, LOG_KEY))
    sig = cosign(note, W1, W1_KEY, T1)
    assert sig.key_id == key_id(W1, COSIGNATURE_V1, W1_PK)
    assert sig.signature[:8] == T1.to_bytes(8, "big")
    message = f"cosignature/v1\ntime {T1}\n{ORIGIN}\n5\n{_b64(ROOT)}\n".encode()
    VerifyKey(W1_PK).verify(message, sig.signature[8:])
    # Only the note text is signed: existing signature lines change nothing.
    assert cosign(add_signatures(note, sig), W1, W1_KEY, T1) == sig


def test_note_signature_is_plain_ed25519_over_the_text() -> None:
    sig = sign_note("hello\n", "a.example/k", LOG_KEY)
    assert sig.key_id == key_id("a.example/k", ED25519, LOG_PK)
    VerifyKey(LOG_PK).verify(b"hello\n", sig.signature)


@CRYPTO
@given(seeds, seeds, seeds, names, names, names, sizes, roots, timestamps, timestamps)
def test_round_trip_with_any_keys(
    log_seed: bytes,
    w1_seed: bytes,
    w2_seed: bytes,
    origin: str,
    w1: str,
    w2: str,
    size: int,
    root: bytes,
    t1: int,
    t2: int,
) -> None:
    assume(w1 != w2)
    log_key, w1_key, w2_key = SigningKey(log_seed), SigningKey(w1_seed), SigningKey(w2_seed)
    cp = Checkpoint(origin, size, root)
    opened, note = open_checkpoint(sign_checkpoint(cp, origin, log_key), origin, origin, log_key.verify_key.encode())
    assert opened == cp
    both = add_signatures(note, cosign(note, w1, w1_key, t1), cosign(note, w2, w2_key, t2))
    again = parse_note(both.encode())
    assert again == both
    assert verify_cosignature(again, w1, w1_key.verify_key.encode()) == t1
    assert verify_cosignature(again, w2, w2_key.verify_key.encode()) == t2


@given(names, sizes, roots, st.lists(st.text(min_size=1).filter(lambda s: all(c >= " " for c in s)), max_size=3))
def test_checkpoint_body_round_trip(origin: str, size: int, root: bytes, extensions: list[str]) -> None:
    cp = Checkpoint(origin, size, root, tuple(extensions))
    assert Checkpoint.parse(cp.body()) == cp


# -- tampering --------------------------------------------------------------------------------------


def test_every_bit_flip_of_a_cosigned_checkpoint_is_refused() -> None:
    data = _cosigned()
    assert _open_all(data)[1:] == (T1, T2)
    for bit in range(len(data) * 8):
        with pytest.raises(RemoteProtocolError):
            _open_all(_flip(data, bit))


@CRYPTO
@given(seeds, sizes, roots, timestamps, st.data())
def test_any_bit_flip_is_refused(seed: bytes, size: int, root: bytes, ts: int, data: st.DataObject) -> None:
    key = SigningKey(seed)
    signed = sign_checkpoint(Checkpoint(ORIGIN, size, root), LOG, key)
    note = parse_note(signed)
    encoded = add_signatures(note, cosign(note, W1, W1_KEY, ts)).encode()
    bit = data.draw(st.integers(min_value=0, max_value=len(encoded) * 8 - 1))
    # Refused as a RemoteProtocolError (a HotlineError); any other exception escapes and fails.
    with pytest.raises(RemoteProtocolError):
        _open_and_verify_w1(_flip(encoded, bit), key.verify_key.encode())


@CRYPTO
@given(roots, roots, timestamps)
def test_cosignature_over_another_checkpoint_fails(root_a: bytes, root_b: bytes, ts: int) -> None:
    assume(root_a != root_b)
    note_a = parse_note(sign_checkpoint(Checkpoint(ORIGIN, 7, root_a), LOG, LOG_KEY))
    note_b = parse_note(sign_checkpoint(Checkpoint(ORIGIN, 7, root_b), LOG, LOG_KEY))
    moved = add_signatures(note_b, cosign(note_a, W1, W1_KEY, ts))
    with pytest.raises(BadSignature):
        verify_cosignature(moved, W1, W1_PK)


def test_cosignature_with_another_timestamp_fails() -> None:
    note = parse_note(sign_checkpoint(Checkpoint(ORIGIN, 7, ROOT), LOG, LOG_KEY))
    sig = cosign(note, W1, W1_KEY, T1)
    changed = NoteSignature(W1, sig.key_id, T2.to_bytes(8, "big") + sig.signature[8:])
    with pytest.raises(BadSignature):
        verify_cosignature(add_signatures(note, changed), W1, W1_PK)


@CRYPTO
@given(seeds)
def test_checkpoint_signed_by_another_key_fails(seed: bytes) -> None:
    assume(seed != bytes(32))
    signed = sign_checkpoint(Checkpoint(ORIGIN, 3, ROOT), LOG, SigningKey(seed))
    with pytest.raises(CheckpointError, match="not signed by"):
        open_checkpoint(signed, ORIGIN, LOG, LOG_PK)


@CRYPTO
@given(st.binary(min_size=4, max_size=4))
def test_right_name_other_key_id_is_ignored(other_id: bytes) -> None:
    real_id = key_id(LOG, ED25519, LOG_PK)
    assume(other_id != real_id)
    body = Checkpoint(ORIGIN, 3, ROOT).body()
    valid = sign_note(body, LOG, LOG_KEY)
    note = Note(body, (NoteSignature(LOG, other_id, valid.signature),))
    with pytest.raises(CheckpointError, match="not signed"):
        verify_note(note, LOG, LOG_PK)
    # Ignored, not fatal: the real line alongside it still verifies.
    verify_note(add_signatures(note, valid), LOG, LOG_PK)


def test_right_key_id_other_name_is_ignored() -> None:
    body = Checkpoint(ORIGIN, 3, ROOT).body()
    valid = sign_note(body, LOG, LOG_KEY)
    note = Note(body, (NoteSignature("impostor.example/log", valid.key_id, valid.signature),))
    with pytest.raises(CheckpointError, match="not signed"):
        verify_note(note, LOG, LOG_PK)


def test_known_key_with_invalid_signature_is_bad_signature() -> None:
    body = Checkpoint(ORIGIN, 3, ROOT).body()
    kid = key_id(LOG, ED25519, LOG_PK)
    for value in (bytes(64), b"\x01" * 63, b"\x01" * 65):
        with pytest.raises(BadSignature):
            open_checkpoint(Note(body, (NoteSignature(LOG, kid, value),)).encode(), ORIGIN, LOG, LOG_PK)


def test_signature_types_are_not_confused() -> None:
    note = parse_note(sign_checkpoint(Checkpoint(ORIGIN, 3, ROOT), LOG, LOG_KEY))
    # A plain note signature by the witness key is not a cosignature ...
    plain = add_signatures(note, sign_note(note.text, W1, W1_KEY))
    with pytest.raises(CheckpointError, match="not signed"):
        verify_cosignature(plain, W1, W1_PK)
    # ... and a cosignature by the log key is not a log signature.
    body = note.text
    only_cosigned = Note(body, (cosign(note, LOG, LOG_KEY, T1),))
    with pytest.raises(CheckpointError, match="not signed"):
        verify_note(only_cosigned, LOG, LOG_PK)


def test_open_checkpoint_refuses_another_origin() -> None:
    signed = sign_checkpoint(Checkpoint("other.example/log", 3, ROOT), LOG, LOG_KEY)
    with pytest.raises(CheckpointError, match="origin"):
        open_checkpoint(signed, ORIGIN, LOG, LOG_PK)


def test_open_checkpoint_refuses_signed_text_that_is_not_a_checkpoint() -> None:
    text = "hello\n"
    with pytest.raises(DecodeError):
        open_checkpoint(Note(text, (sign_note(text, LOG, LOG_KEY),)).encode(), ORIGIN, LOG, LOG_PK)


def test_missing_cosignature() -> None:
    _, note = open_checkpoint(sign_checkpoint(Checkpoint(ORIGIN, 3, ROOT), LOG, LOG_KEY), ORIGIN, LOG, LOG_PK)
    with pytest.raises(CheckpointError, match=f"not signed by {W1}"):
        verify_cosignature(note, W1, W1_PK)


def test_cosignature_of_wrong_length_is_bad_signature() -> None:
    note = parse_note(sign_checkpoint(Checkpoint(ORIGIN, 3, ROOT), LOG, LOG_KEY))
    short = NoteSignature(W1, key_id(W1, COSIGNATURE_V1, W1_PK), bytes(71))
    with pytest.raises(BadSignature):
        verify_cosignature(add_signatures(note, short), W1, W1_PK)


def test_cosignature_timestamp_beyond_2_63_is_refused() -> None:
    note = parse_note(sign_checkpoint(Checkpoint(ORIGIN, 3, ROOT), LOG, LOG_KEY))
    ts = 2**63
    signature = W1_KEY.sign(f"cosignature/v1\ntime {ts}\n".encode() + note.text.encode()).signature
    sig = NoteSignature(W1, key_id(W1, COSIGNATURE_V1, W1_PK), ts.to_bytes(8, "big") + signature)
    with pytest.raises(CheckpointError, match="timestamp"):
        verify_cosignature(add_signatures(note, sig), W1, W1_PK)


@pytest.mark.parametrize("ts", [0, 2**63 - 1])
def test_cosignature_timestamp_bounds(ts: int) -> None:
    note = parse_note(sign_checkpoint(Checkpoint(ORIGIN, 3, ROOT), LOG, LOG_KEY))
    assert verify_cosignature(add_signatures(note, cosign(note, W1, W1_KEY, ts)), W1, W1_PK) == ts


@pytest.mark.parametrize("ts", [-1, 2**63])
def test_cosign_refuses_timestamp_out_of_range(ts: int) -> None:
    note = parse_note(sign_checkpoint(Checkpoint(ORIGIN, 3, ROOT), LOG, LOG_KEY))
    with pytest.raises(InvalidMessage):
        cosign(note, W1, W1_KEY, ts)


def test_cosign_refuses_a_note_that_is_not_a_checkpoint() -> None:
    note = Note("hello\n", (sign_note("hello\n", LOG, LOG_KEY),))
    with pytest.raises(InvalidMessage, match="not a checkpoint"):
        cosign(note, W1, W1_KEY, T1)


@pytest.mark.parametrize("public_key", [b"", bytes(31), bytes(33)])
def test_verifiers_refuse_a_public_key_of_wrong_size(public_key: bytes) -> None:
    note = parse_note(_cosigned())
    with pytest.raises(InvalidMessage):
        verify_note(note, LOG, public_key)
    with pytest.raises(InvalidMessage):
        verify_cosignature(note, W1, public_key)


# -- add_signatures ---------------------------------------------------------------------------------


def test_add_signatures_keeps_order_and_skips_identical_lines() -> None:
    note = parse_note(sign_checkpoint(Checkpoint(ORIGIN, 3, ROOT), LOG, LOG_KEY))
    c1, c2 = cosign(note, W1, W1_KEY, T1), cosign(note, W2, W2_KEY, T2)
    merged = add_signatures(note, c2, c1, c2)
    assert [s.name for s in merged.signatures] == [LOG, W2, W1]
    assert add_signatures(merged, c1, note.signatures[0]) == merged
    assert add_signatures(note) == note


def test_add_signatures_refuses_a_second_signature_from_the_same_key() -> None:
    note = parse_note(sign_checkpoint(Checkpoint(ORIGIN, 3, ROOT), LOG, LOG_KEY))
    with pytest.raises(InvalidMessage, match="another signature"):
        add_signatures(note, cosign(note, W1, W1_KEY, T1), cosign(note, W1, W1_KEY, T2))


def test_add_signatures_refuses_more_than_the_limit() -> None:
    note = parse_note(sign_checkpoint(Checkpoint(ORIGIN, 3, ROOT), LOG, LOG_KEY))
    extra = [cosign(note, f"w{i}.example/witness", W1_KEY, T1) for i in range(MAX_SIGNATURES)]
    assert len(add_signatures(note, *extra[:-1]).signatures) == MAX_SIGNATURES
    with pytest.raises(InvalidMessage):
        add_signatures(note, *extra)


# -- parsing and limits -----------------------------------------------------------------------------


@given(st.binary(max_size=600))
def test_random_bytes_raise_only_decode_error(data: bytes) -> None:
    try:
        note = parse_note(data)
    except DecodeError:
        return
    assert note.encode() == data


fragments = st.sampled_from(
    [
        "\n",
        "\n\n",
        "\u2014 ",
        "\u2014",
        " ",
        "a",
        "name.example/k",
        "+",
        "\t",
        "\r",
        "=",
        "AAAA",
        "AAAAAAAA",
        "AAAAAAA=",
        "AAAAAAB=",
        "\u00a0",
        "\u2003",
        "\ufeff",
        "\xff",
        "0",
        "01",
        _b64(bytes(68)),
        _b64(bytes(4)),
    ]
)


@given(st.lists(fragments, max_size=30).map("".join))
def test_structured_garbage_raises_only_decode_error(text: str) -> None:
    data = text.encode()
    try:
        note = parse_note(data)
    except DecodeError:
        return
    assert note.encode() == data


@given(st.text(max_size=200))
def test_checkpoint_parse_raises_only_decode_error(text: str) -> None:
    try:
        cp = Checkpoint.parse(text)
    except DecodeError:
        return
    assert cp.body() == text


@given(st.lists(st.sampled_from(["o\n", "1\n", "0\n", "01\n", f"{_b64(ROOT)}\n", "x\n", "\n", "AAAA\n"]), max_size=6))
def test_checkpoint_parse_structured_garbage(lines: list[str]) -> None:
    text = "".join(lines)
    try:
        cp = Checkpoint.parse(text)
    except DecodeError:
        return
    assert cp.body() == text


def _signed_note_with_lines(count: int) -> bytes:
    body = Checkpoint(ORIGIN, 3, ROOT).body()
    lines = "".join(_line(f"k{i}.example/key", bytes(4) + bytes(64)) for i in range(count))
    return (body + "\n" + lines).encode()


def test_sixteen_signature_lines_accepted_seventeen_refused() -> None:
    assert len(parse_note(_signed_note_with_lines(MAX_SIGNATURES)).signatures) == MAX_SIGNATURES
    with pytest.raises(DecodeError, match="more than 16"):
        parse_note(_signed_note_with_lines(MAX_SIGNATURES + 1))


def test_note_object_refuses_seventeen_signatures() -> None:
    sigs = tuple(NoteSignature(f"k{i}.example/key", bytes(4), bytes(64)) for i in range(MAX_SIGNATURES + 1))
    with pytest.raises(InvalidMessage):
        Note("text\n", sigs)


def _note_of_size(total: int) -> bytes:
    tail = "\n" + _line("k.example/key", bytes(68))
    filler = total - len(tail.encode()) - 1
    return ("a" * filler + "\n" + tail).encode()


def test_note_size_limit() -> None:
    at_limit = _note_of_size(MAX_NOTE_SIZE)
    assert len(at_limit) == MAX_NOTE_SIZE
    parse_note(at_limit)
    with pytest.raises(DecodeError, match="larger than"):
        parse_note(_note_of_size(MAX_NOTE_SIZE + 1))


def test_note_object_refuses_oversized_encoding() -> None:
    text = "a" * (MAX_NOTE_SIZE - 10) + "\n"
    with pytest.raises(InvalidMessage, match="larger than"):
        Note(text, (NoteSignature("k.example/key", bytes(4), bytes(64)),))


@pytest.mark.parametrize("control", ["\x00", "\x01", "\t", "\r", "\x0b", "\x0c", "\x1b", "\x1f"])
def test_control_characters_refused(control: str) -> None:
    good = Note("text\n", (NoteSignature("k.example/key", bytes(4), bytes(64)),)).encode().decode()
    for bad in (
        good.replace("text", f"te{control}xt"),
        good.replace("k.example", f"k{control}.example"),
        good.replace("\n\n", f"\n{control}\n"),
        good + control,
    ):
        with pytest.raises(DecodeError):
            parse_note(bad.encode())
    with pytest.raises(InvalidMessage):
        sign_note(f"a{control}b\n", LOG, LOG_KEY)


GOOD_SIG = _b64(bytes(68))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfe\n\n", "UTF-8"),
        (b"text\n\n\xe2\x80 k AAAAAAAA\n", "UTF-8"),  # truncated em dash
        (("text\n\n\u2014 k " + GOOD_SIG).encode(), "newline"),
        (("text\n\u2014 k " + GOOD_SIG + "\n").encode(), "blank line"),
        (b"text\n\n", "no signatures"),
        (b"text\n\n\n", "no signatures"),
        (("text\n\n-- k " + GOOD_SIG + "\n").encode(), "em dash"),
        (("text\n\n\u2014k " + GOOD_SIG + "\n").encode(), "em dash"),
        (("text\n\n\u2014 k\n").encode(), "no space"),
        (("text\n\n\u2014 k+1 " + GOOD_SIG + "\n").encode(), "key name"),
        (("text\n\n\u2014  " + GOOD_SIG + "\n").encode(), "empty"),
        (("text\n\n\u2014 k\u00a0x " + GOOD_SIG + "\n").encode(), "key name"),
        (("text\n\n\u2014 k " + GOOD_SIG + " \n").encode(), "base64"),
        (("text\n\n\u2014 k " + GOOD_SIG[:-1] + "\n").encode(), "base64"),
        (("text\n\n\u2014 k " + GOOD_SIG.rstrip("=") + "\n").encode(), "base64"),
        (("text\n\n\u2014 k " + GOOD_SIG.replace("A", "-", 1) + "\n").encode(), "base64"),
        (("text\n\n\u2014 k AAAAAB==\n").encode(), "canonical"),
        (("text\n\n\u2014 k " + _b64(bytes(4)) + "\n").encode(), "too short"),
        (("text\n\n\u2014 k " + GOOD_SIG + "\n\u2014 k " + GOOD_SIG + "\n").encode(), "same key"),
    ],
)
def test_malformed_notes(data: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        parse_note(data)


def test_text_may_contain_blank_lines_the_last_one_separates() -> None:
    text = "one\n\ntwo\n\n"
    sig = sign_note(text, LOG, LOG_KEY)
    note = parse_note(Note(text, (sig,)).encode())
    assert note.text == text
    verify_note(note, LOG, LOG_PK)


@pytest.mark.parametrize(
    "size",
    ["01", "00", "-1", "+1", " 1", "1 ", "1_000", "\u0661", "\uff11", "", "0x1", "9223372036854775808"],
)
def test_checkpoint_size_must_be_plain_decimal(size: str) -> None:
    with pytest.raises(DecodeError):
        Checkpoint.parse(f"{ORIGIN}\n{size}\n{_b64(ROOT)}\n")


@pytest.mark.parametrize(("size", "value"), [("0", 0), ("9223372036854775807", 2**63 - 1), ("10", 10)])
def test_checkpoint_size_bounds(size: str, value: int) -> None:
    assert Checkpoint.parse(f"{ORIGIN}\n{size}\n{_b64(ROOT)}\n").size == value


@pytest.mark.parametrize("root", [bytes(31), bytes(33), b""])
def test_checkpoint_root_must_be_32_bytes(root: bytes) -> None:
    with pytest.raises(InvalidMessage, match="root"):
        Checkpoint(ORIGIN, 1, root)
    with pytest.raises(DecodeError, match="root"):
        Checkpoint.parse(f"{ORIGIN}\n1\n{_b64(root)}\n")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"{ORIGIN}\n1\n{_b64(ROOT)}", "newline"),
        (f"{ORIGIN}\n1\n", "three lines"),
        ("\n", "three lines"),
        (f"\n1\n{_b64(ROOT)}\n", "origin is empty"),
        (f"{ORIGIN}\n1\n{_b64(ROOT)[:-1]}\n", "base64"),
        (f"{ORIGIN}\n1\n{_b64(ROOT)}\n\next\n", "extension line is empty"),
        (f"{ORIGIN}\n1\n{_b64(ROOT)}\nex\tt\n", "control"),
        (f"{'o' * 256}\n1\n{_b64(ROOT)}\n", "longer than"),
    ],
)
def test_malformed_checkpoints(text: str, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        Checkpoint.parse(text)


def test_checkpoint_keeps_extension_lines() -> None:
    text = f"{ORIGIN}\n1\n{_b64(ROOT)}\nextension one\n\u2014 two\n"
    cp = Checkpoint.parse(text)
    assert cp.extensions == ("extension one", "\u2014 two")
    assert cp.body() == text
    _, note = open_checkpoint(sign_checkpoint(cp, LOG, LOG_KEY), ORIGIN, LOG, LOG_PK)
    assert verify_cosignature(add_signatures(note, cosign(note, W1, W1_KEY, T1)), W1, W1_PK) == T1


@pytest.mark.parametrize(
    ("origin", "size", "extensions"),
    [
        ("", 0, ()),
        ("o" * (MAX_NAME_LENGTH + 1), 0, ()),
        ("a\nb", 0, ()),
        (ORIGIN, -1, ()),
        (ORIGIN, 2**63, ()),
        (ORIGIN, 0, ("",)),
        (ORIGIN, 0, ("a\nb",)),
    ],
)
def test_checkpoint_validates_on_creation(origin: str, size: int, extensions: tuple[str, ...]) -> None:
    with pytest.raises(InvalidMessage):
        Checkpoint(origin, size, ROOT, extensions)


def test_checkpoint_origin_at_length_limit() -> None:
    cp = Checkpoint("o" * MAX_NAME_LENGTH, 0, ROOT)
    assert Checkpoint.parse(cp.body()) == cp


# -- names, key IDs, vkeys ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["", "a b", "a+b", "a\tb", "a\u00a0b", "a\u2003b", "a\u3000b", "a\x01b", "a" * 256, "\u00e9" * 128],
)
def test_invalid_key_names(name: str) -> None:
    with pytest.raises(InvalidMessage):
        key_id(name, ED25519, LOG_PK)
    with pytest.raises(InvalidMessage):
        sign_note("text\n", name, LOG_KEY)
    with pytest.raises(InvalidMessage):
        NoteSignature(name, bytes(4), bytes(64))


def test_key_name_at_length_limit() -> None:
    name = "a" * MAX_NAME_LENGTH
    assert len(key_id(name, ED25519, LOG_PK)) == 4
    note = Note("text\n", (sign_note("text\n", name, LOG_KEY),))
    verify_note(parse_note(note.encode()), name, LOG_PK)


@pytest.mark.parametrize("sig_type", [-1, 256])
def test_key_id_type_must_be_a_byte(sig_type: int) -> None:
    with pytest.raises(InvalidMessage):
        key_id(LOG, sig_type, LOG_PK)


def test_key_id_depends_on_type_name_and_key() -> None:
    ids = {
        key_id(LOG, ED25519, LOG_PK),
        key_id(LOG, COSIGNATURE_V1, LOG_PK),
        key_id(W1, ED25519, LOG_PK),
        key_id(LOG, ED25519, W1_PK),
    }
    assert len(ids) == 4


@pytest.mark.parametrize(("key_id_value", "signature"), [(b"abc", bytes(64)), (bytes(5), bytes(64)), (bytes(4), b"")])
def test_note_signature_validates_on_creation(key_id_value: bytes, signature: bytes) -> None:
    with pytest.raises(InvalidMessage):
        NoteSignature(LOG, key_id_value, signature)


def test_note_validates_on_creation() -> None:
    sig = NoteSignature(LOG, bytes(4), bytes(64))
    with pytest.raises(InvalidMessage, match="at least one"):
        Note("text\n", ())
    with pytest.raises(InvalidMessage, match="same key"):
        Note("text\n", (sig, sig))
    with pytest.raises(InvalidMessage, match="newline"):
        Note("text", (sig,))
    with pytest.raises(InvalidMessage, match="newline"):
        Note("", (sig,))


def test_sign_note_refuses_bad_text() -> None:
    with pytest.raises(InvalidMessage, match="newline"):
        sign_note("no newline", LOG, LOG_KEY)
    with pytest.raises(InvalidMessage, match="larger than"):
        sign_note("a" * MAX_NOTE_SIZE + "\n", LOG, LOG_KEY)


@pytest.mark.parametrize("sig_type", [ED25519, COSIGNATURE_V1])
def test_vkey_round_trip(sig_type: int) -> None:
    text = vkey(W1, W1_PK, sig_type)
    name, hex_id, _ = text.split("+", 2)
    assert (name, hex_id) == (W1, key_id(W1, sig_type, W1_PK).hex())
    assert parse_vkey(text) == (W1, sig_type, W1_PK)


def test_vkey_default_type_is_ed25519() -> None:
    assert parse_vkey(vkey(LOG, LOG_PK))[1] == ED25519


def test_vkey_accepts_uppercase_key_id() -> None:
    name, kid, key = vkey(LOG, LOG_PK).split("+", 2)
    assert parse_vkey(f"{name}+{kid.upper()}+{key}") == (LOG, ED25519, LOG_PK)


def test_vkey_refuses_bad_inputs() -> None:
    with pytest.raises(InvalidMessage):
        vkey(LOG, LOG_PK, 0x02)
    with pytest.raises(InvalidMessage):
        vkey(LOG, bytes(31))
    with pytest.raises(InvalidMessage):
        vkey("a b", LOG_PK)


def _vkey_parts() -> tuple[str, str, str]:
    name, kid, key = vkey(LOG, LOG_PK).split("+", 2)
    return name, kid, key


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda n, k, b: f"{n}+{k}", "not <name>"),
        (lambda n, k, b: n, "not <name>"),
        (lambda n, k, b: f"+{k}+{b}", "empty"),
        (lambda n, k, b: f"a b+{k}+{b}", "key name"),
        (lambda n, k, b: f"{n}+{k[:7]}+{b}", "8 hex"),
        (lambda n, k, b: f"{n}+{k}0+{b}", "8 hex"),
        (lambda n, k, b: f"{n}+{k[:7]}g+{b}", "8 hex"),
        (lambda n, k, b: f"{n}+{k[:2]} {k[3:]}+{b}", "8 hex"),
        (lambda n, k, b: f"{n}+{k}+{b[:-1]}", "base64"),
        (lambda n, k, b: f"{n}+{k}+{_b64(bytes([2]) + LOG_PK)}", "Ed25519"),
        (lambda n, k, b: f"{n}+{k}+{_b64(bytes([1]) + LOG_PK[:31])}", "Ed25519"),
        (lambda n, k, b: f"{n}+{k}+{_b64(bytes([1]) + LOG_PK + b'x')}", "Ed25519"),
        (lambda n, k, b: f"{n}+{k}+{_b64(bytes([4]) + LOG_PK)}", "does not match"),
        (lambda n, k, b: f"{n}+{bytes(4).hex()}+{b}", "does not match"),
        (lambda n, k, b: f"{W1}+{k}+{b}", "does not match"),
        (lambda n, k, b: f"{'a' * 400}+{k}+{b}", "too long"),
    ],
)
def test_parse_vkey_refuses_malformed(mangle: Callable[[str, str, str], str], message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        parse_vkey(mangle(*_vkey_parts()))
