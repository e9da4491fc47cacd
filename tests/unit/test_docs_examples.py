"""The examples of docs/protocol.md: regenerated here, verified with hotline's own code, and compared.

docs/make_examples.py writes them into a temporary directory. Every example must
verify (signatures, decryption, hashes, proofs), and every file that does not
depend on HPKE's internal randomness must equal the committed one in
docs/examples/ byte for byte: if this fails after a change to the protocol,
run ``.venv/bin/python docs/make_examples.py`` and update docs/protocol.md.
"""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import msgspec
import pytest

from hotline.protocol import checkpoint as notes
from hotline.protocol import merkle
from hotline.protocol.envelope import check_envelope, decode_envelope, open_envelope
from hotline.protocol.frames import (
    Accepted,
    Challenge,
    CheckpointFrame,
    Cosign,
    Cosigned,
    Deliver,
    Hello,
    Keys,
    Proof,
    Publish,
    Submit,
    Welcome,
    decode_relay_frame,
    decode_station_frame,
)
from hotline.protocol.keys import (
    AUTH_LABEL,
    Signed,
    decode_key_file,
    format_fingerprint,
    open_epoch_key,
    parse_public_key,
)
from hotline.protocol.messages import Heartbeat, HeartbeatReply, decode_body
from hotline.protocol.relay import auth_payload

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "examples"

# Not compared byte for byte: pyca/cryptography's HPKE draws a fresh ephemeral key inside Suite.encrypt,
# so the sealed bytes differ on every run, and so does everything computed from them.
EXCLUDED = {
    "envelope.json": "holds the sealed bytes (enc || ciphertext) and the sender's signature over their hash",
    "leaf-input.hex": "holds SHA-256(sealed) and the envelope signature",
    "leaf-hash.hex": "the hash of that leaf input",
    "checkpoint.txt": "the root covers leaf hashes, so the root and the relay's signature change",
    "cosigned-checkpoint.txt": "the same checkpoint, and cosignatures over its text",
    "bodies/heartbeat.json": "gossips a checkpoint",
    "bodies/heartbeat-reply.json": "gossips a checkpoint, and answers the hash of a heartbeat that does",
    "frames/welcome.json": "carries a checkpoint and a consistency proof",
    "frames/submit.json": "carries the envelope",
    "frames/accepted.json": "carries a checkpoint and tree hashes",
    "frames/deliver.json": "carries an envelope, a checkpoint and tree hashes",
    "frames/checkpoint.json": "carries a checkpoint",
    "frames/cosign.json": "a cosignature over a checkpoint's text",
    "frames/cosigned.json": "carries a cosigned checkpoint",
    "frames/proof.json": "tree hashes",
}


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_examples", ROOT / "docs" / "make_examples.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building the class
    spec.loader.exec_module(module)
    return module


make_examples = _load_script()


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("examples")
    make_examples.main(out)
    return out


def files_under(directory: Path) -> set[str]:
    return {p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()}


def read(directory: Path, name: str) -> bytes:
    return (directory / name).read_bytes()


def relay_frame(directory: Path, name: str) -> object:
    return decode_relay_frame(read(directory, f"frames/{name}.json"))


def station_frame(directory: Path, name: str) -> object:
    return decode_station_frame(read(directory, f"frames/{name}.json"))


# --- reproducible ---------------------------------------------------------------------------------


def test_the_excluded_files_are_those_the_script_names():
    assert set(EXCLUDED) == set(make_examples.RANDOMIZED)


def test_the_committed_examples_are_exactly_the_generated_ones(fresh: Path):
    assert files_under(COMMITTED) == files_under(fresh)


@pytest.mark.parametrize("name", sorted(files_under(COMMITTED) - set(EXCLUDED)))
def test_reproducible_example_equals_the_committed_one(fresh: Path, name: str):
    assert read(fresh, name) == read(COMMITTED, name), (
        f"docs/examples/{name} is out of date: run .venv/bin/python docs/make_examples.py"
    )


@pytest.mark.parametrize("name", sorted(EXCLUDED))
def test_excluded_example_really_changes_from_run_to_run(fresh: Path, name: str):
    # If one of these stops changing, it no longer depends on the HPKE randomness: compare it instead.
    assert read(fresh, name) != read(COMMITTED, name)


# --- every example verifies (both the fresh ones and the committed ones) --------------------------

WHERE = ["fresh", "committed"]


@pytest.fixture(params=WHERE)
def examples(request: pytest.FixtureRequest, fresh: Path) -> Path:
    return fresh if request.param == "fresh" else COMMITTED


def test_public_key_and_fingerprint(examples: Path):
    a = make_examples.identity("a").public
    assert parse_public_key(read(examples, "public-key.txt").decode()) == a
    printed = read(examples, "fingerprint.txt").decode()
    assert printed == format_fingerprint(a.fingerprint) + "\n"
    assert printed.replace(" ", "").strip() == a.fingerprint.hex()


def test_key_file_opens_with_its_passphrase(examples: Path):
    name, key = decode_key_file(read(examples, "key-file.json"), make_examples.PASSPHRASE)
    assert name == "station-a"
    assert key.seed == make_examples.IDENTITY_SEEDS["a"]


def test_signed_epoch_key_opens_with_station_b_public_key(examples: Path):
    signed = msgspec.json.decode(read(examples, "epoch-key.json"), type=Signed)
    key = open_epoch_key(signed, make_examples.identity("b").public)
    assert signed.payload == read(examples, "epoch-key-payload.json")
    assert key.public == make_examples.epoch_pair("b").public_bytes
    assert len(key.public) == 1184 + 32
    header = msgspec.json.decode(read(examples, "header.json"))
    assert header["epoch"] == key.key_id


def test_envelope_opens_with_station_b_keys(examples: Path):
    a, b = make_examples.identity("a").public, make_examples.identity("b").public
    pair = make_examples.epoch_pair("b")
    envelope = decode_envelope(read(examples, "envelope.json"))
    when = datetime(2026, 11, 26, 12, 0, 30, tzinfo=UTC)
    opened = open_envelope(envelope, b, a, {pair.key_id: pair}, when)
    assert envelope.header == read(examples, "header.json")
    assert opened.statement_bytes == read(examples, "statement.json")
    assert opened.signed_statement == read(examples, "signed-statement.json")
    assert opened.statement_hash == opened.header.statement
    assert len(envelope.sealed) == 1120 + len(opened.signed_statement) + 16
    # The leaf: u32 len(header) || header || SHA-256(sealed) || signature, hashed as RFC 6962 says.
    leaf = bytes.fromhex(read(examples, "leaf-input.hex").decode())
    assert leaf == opened.leaf_input
    assert merkle.leaf_hash(leaf).hex() + "\n" == read(examples, "leaf-hash.hex").decode()


def test_checkpoint_opens_with_the_relay_key_and_holds_the_notice(examples: Path):
    relay = make_examples.identity("relay").public.raw
    origin = make_examples.ORIGIN
    cp, _ = notes.open_checkpoint(read(examples, "checkpoint.txt"), origin, origin, relay)
    assert cp.size == 1
    assert cp.root == bytes.fromhex(read(examples, "leaf-hash.hex").decode())  # a tree of one leaf


def test_cosignatures_verify(examples: Path):
    relay = make_examples.identity("relay").public.raw
    origin = make_examples.ORIGIN
    data = read(examples, "cosigned-checkpoint.txt")
    _, note = notes.open_checkpoint(data, origin, origin, relay)
    for n in ("a", "b"):
        notes.verify_cosignature(note, f"station-{n}", make_examples.identity(n).public.raw)
    assert note.text == notes.parse_note(read(examples, "checkpoint.txt")).text


def test_every_frame_type_decodes(examples: Path):
    for kind in make_examples.FRAME_TYPES:
        data = read(examples, f"frames/{kind}.json")
        frame = decode_station_frame(data) if kind in make_examples.STATION_FRAMES else decode_relay_frame(data)
        assert msgspec.json.decode(data)["type"] == kind
        assert type(frame).__struct_config__.tag == kind


def test_hello_answers_the_challenge(examples: Path):
    challenge = relay_frame(examples, "challenge")
    hello = station_frame(examples, "hello")
    assert isinstance(challenge, Challenge)
    assert isinstance(hello, Hello)
    relay, b = make_examples.identity("relay").public, make_examples.identity("b").public
    assert challenge.relay == relay.key_id
    assert hello.station == b.key_id
    b.verify(AUTH_LABEL, auth_payload(relay, challenge.nonce, b), hello.signature)


def test_submitted_envelope_is_the_example_envelope(examples: Path):
    submit = station_frame(examples, "submit")
    assert isinstance(submit, Submit)
    assert submit.envelope == decode_envelope(read(examples, "envelope.json"))


def test_delivery_and_acceptance_prove_inclusion(examples: Path):
    relay = make_examples.identity("relay").public.raw
    origin = make_examples.ORIGIN
    stations = {k.key_id: k for k in (make_examples.identity(n).public for n in ("a", "b"))}
    deliver = relay_frame(examples, "deliver")
    accepted = relay_frame(examples, "accepted")
    assert isinstance(deliver, Deliver)
    assert isinstance(accepted, Accepted)
    checked = check_envelope(deliver.envelope, stations)
    leaf = merkle.leaf_hash(checked.leaf_input)
    assert checked.header.id == accepted.id
    assert deliver.index == accepted.index
    for index, head, proof in (
        (deliver.index, deliver.head, deliver.inclusion),
        (accepted.index, accepted.head, accepted.inclusion),
    ):
        cp, _ = notes.open_checkpoint(head.checkpoint, origin, origin, relay)
        merkle.verify_inclusion(leaf, index, cp.size, proof, cp.root)
    assert 0 <= deliver.prev < deliver.index


def test_cosign_frame_is_station_a_cosignature_of_the_checkpoint(examples: Path):
    cosign = station_frame(examples, "cosign")
    assert isinstance(cosign, Cosign)
    note = notes.parse_note(read(examples, "checkpoint.txt"))
    assert cosign.size == notes.Checkpoint.parse(note.text).size
    line = notes.NoteSignature("station-a", cosign.signature[:4], cosign.signature[4:])
    a = make_examples.identity("a").public.raw
    notes.verify_cosignature(notes.add_signatures(note, line), "station-a", a)


def test_checkpoint_cosigned_welcome_and_proof_frames_verify(examples: Path):
    relay = make_examples.identity("relay").public.raw
    origin = make_examples.ORIGIN
    checkpoint = relay_frame(examples, "checkpoint")
    cosigned = relay_frame(examples, "cosigned")
    welcome = relay_frame(examples, "welcome")
    proof = relay_frame(examples, "proof")
    prove = station_frame(examples, "prove")
    assert isinstance(checkpoint, CheckpointFrame)
    assert isinstance(cosigned, Cosigned)
    assert isinstance(welcome, Welcome)
    assert isinstance(proof, Proof)
    notes.open_checkpoint(checkpoint.head.checkpoint, origin, origin, relay)
    assert cosigned.checkpoint == read(examples, "cosigned-checkpoint.txt")
    assert welcome.head is not None
    new, _ = notes.open_checkpoint(welcome.head.checkpoint, origin, origin, relay)
    # B asked to compare A's gossip (the checkpoint in A's heartbeat) with its own head.
    heartbeat = decode_body(read(examples, "bodies/heartbeat.json"))
    reply = decode_body(read(examples, "bodies/heartbeat-reply.json"))
    assert isinstance(heartbeat, Heartbeat)
    assert isinstance(reply, HeartbeatReply)
    assert heartbeat.checkpoint is not None
    assert reply.probe == heartbeat.probe
    old, _ = notes.open_checkpoint(heartbeat.checkpoint, origin, origin, relay)
    assert (prove.old, prove.new) == (proof.old, proof.new) == (old.size, new.size)  # type: ignore[attr-defined]
    merkle.verify_consistency(old.size, new.size, old.root, new.root, proof.consistency)


def test_keys_and_publish_carry_station_a_epoch_key(examples: Path):
    a = make_examples.identity("a").public
    keys = relay_frame(examples, "keys")
    publish = station_frame(examples, "publish")
    assert isinstance(keys, Keys)
    assert isinstance(publish, Publish)
    assert keys.station == a.key_id
    assert keys.keys == publish.keys
    [signed] = keys.keys
    assert open_epoch_key(signed, a).public == make_examples.epoch_pair("a").public_bytes


# --- the specification quotes the reproducible examples as they are --------------------------------


def test_protocol_md_quotes_the_reproducible_examples():
    spec = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    header = msgspec.json.decode(read(COMMITTED, "header.json"))
    quoted = [
        read(COMMITTED, "fingerprint.txt").decode().strip(),
        read(COMMITTED, "public-key.txt").decode().strip(),
        msgspec.json.decode(read(COMMITTED, "key-file.json"))["secret"],
        header["id"],
        header["epoch"],
        header["statement"],
        make_examples.ORIGIN,
    ]
    for value in quoted:
        assert value in spec, f"docs/protocol.md does not quote {value!r}: update it from docs/examples/"
    for name in files_under(COMMITTED):
        top = name.split("/")[0]
        assert f"`{top}" in spec or f"`{name}`" in spec, f"docs/protocol.md does not mention {name}"
