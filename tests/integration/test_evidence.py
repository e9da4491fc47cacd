"""Evidence for a third party: ``hotline log export`` from a real exchange, ``hotline audit verify`` with the keys.

One exchange (a relay and two stations on 127.0.0.1) for the module: A sends two notices; B answers the first
READ_UNDERSTOOD and the second CONFLICT. A bundle of the first verifies with nothing but the three public keys,
discloses nothing of the second, and every way of changing it is refused with its reason.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from hotline.protocol import checkpoint as notes
from hotline.protocol.evidence import Bundle, seal_bundle, verify_bundle
from hotline.protocol.exceptions import VerificationError
from hotline.protocol.keys import STATEMENT_LABEL, format_fingerprint, sign
from hotline.store.keyfiles import load_identity, load_public_key

from .harness import Line, make_line, query, wait_until
from .test_exchange import NOTICE, connected

WHY = "Our convoy holds the M4 until 18:00Z."


def _logged_size(line: Line) -> int:
    (logged,) = query(line.db("a"), "SELECT logged FROM witness")[0]
    return notes.Checkpoint.parse(notes.parse_note(bytes(logged)).text).size if logged else 0


@pytest.fixture(scope="module")
def exchanged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Line]:
    line = make_line(tmp_path_factory.mktemp("evidence"))
    line.start_relay()
    try:
        line.spawn("listen", "b", "--json")
        connected(line, "b")
        line.spawn("listen", "a", "--json")
        connected(line, "a")
        second = [*NOTICE]
        second[1] = "TUR-2026-000002"
        for args in (NOTICE, tuple(second)):
            sent = line.hotline("send", "a", *args, "--wait", "received")
            assert sent.returncode == 0, sent.stderr
        assert line.hotline("ack", "b", "TUR-2026-000001").returncode == 0
        conflict = line.hotline("ack", "b", "TUR-2026-000002", "--level", "conflict", "--comment", WHY)
        assert conflict.returncode == 0, conflict.stderr
        logged = lambda: query(line.db("relay"), "SELECT COUNT(*) FROM leaves")[0][0]  # noqa: E731
        wait_until(lambda: logged() == 6 and _logged_size(line) == 6, 30, "both answers in the cosigned log")
        yield line
    finally:
        line.stop()


def keys(line: Line) -> dict[str, Any]:
    return {
        "stations": {n: load_public_key(str(line.root / "keys" / f"{n}.pub")) for n in ("station-a", "station-b")},
        "relay": load_public_key(str(line.root / "relay" / "relay.pub")),
    }


@pytest.fixture(scope="module")
def bundle(exchanged: Line) -> bytes:
    out = exchanged.root / "TUR-2026-000001.evidence"
    made = exchanged.hotline("log", "export", "a", "--ref", "TUR-2026-000001", "-o", str(out))
    assert made.returncode == 0, made.stderr
    assert "3 statements disclosed, proven in a log of 6 entries" in made.stdout
    return out.read_bytes()


def test_a_third_party_verifies_the_timeline_with_the_three_public_keys(exchanged, bundle):
    verified = exchanged.hotline(
        "audit", "verify", str(exchanged.root / "TUR-2026-000001.evidence"),
        "--key", "station-a=keys/station-a.pub", "--key", "station-b=keys/station-b.pub",
        "--relay-key", "relay/relay.pub",
    )  # fmt: skip
    assert verified.returncode == 0, verified.stderr
    lines = verified.stdout.splitlines()
    assert "signed by the relay and cosigned by station-a and station-b" in lines[0]
    assert "station-a signed NEW notice TUR-2026-000001, FLASH, to station-b" in lines[1]
    assert "station-b signed RECEIVED" in lines[2]
    assert "station-b signed READ_UNDERSTOOD" in lines[3]
    assert "(within the deadline, by its signed time)" in lines[3]
    assert all(line.startswith("verified  [log ") for line in lines[1:4])
    # The second notice and its CONFLICT are not disclosed: neither its ref nor its text is in the bundle.
    assert b"TUR-2026-000002" not in bundle
    assert WHY.encode() not in bundle
    assert "TUR-2026-000002" not in verified.stdout


def test_the_disputed_conflict_can_be_disclosed_alone(exchanged):
    out = exchanged.root / "TUR-2026-000002.evidence"
    assert exchanged.hotline("log", "export", "b", "--ref", "TUR-2026-000002", "-o", str(out)).returncode == 0
    verified = verify_bundle(out.read_bytes(), **keys(exchanged))
    timeline = "\n".join(verified.timeline())
    assert "station-b signed CONFLICT" in timeline
    assert WHY in timeline
    assert "TUR-2026-000001" not in timeline


def test_an_export_that_matches_nothing_is_refused_and_writes_nothing(exchanged):
    out = exchanged.root / "nothing.evidence"
    made = exchanged.hotline("log", "export", "a", "--ref", "TUR-2026-999999", "-o", str(out))
    assert made.returncode == 1
    assert "no notice in the cosigned log matches" in made.stderr
    assert not out.exists()


# --- every way of changing a bundle is refused ----------------------------------------------------------------


def refused(exchanged: Line, data: bytes, reason: str = "") -> str:
    with pytest.raises(VerificationError) as e:
        verify_bundle(data, **keys(exchanged))
    assert reason in str(e.value), str(e.value)
    return str(e.value)


def test_every_single_byte_changed_is_refused(exchanged, bundle):
    verify_bundle(bundle, **keys(exchanged))  # the original holds
    step = max(1, len(bundle) // 1500)
    for position in range(0, len(bundle), step):
        changed = bytearray(bundle)
        changed[position] ^= 0x01
        refused(exchanged, bytes(changed))


def resealed(exchanged: Line, bundle: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    """The bundle changed, and signed again by its exporter: only the change itself can be caught."""
    data = json.loads(bundle)
    change(data)
    _, identity = load_identity(exchanged.root / "keys" / "station-a.key", None)
    decoded = msgspec.json.decode(json.dumps(data).encode(), type=Bundle)
    return seal_bundle(decoded, identity)


def test_an_entry_taken_out_is_refused(exchanged, bundle):
    data = json.loads(bundle)
    del data["entries"][1]
    refused(exchanged, msgspec.json.encode(data), "not as station-a exported it (an entry added, removed or changed)")
    refused(exchanged, resealed(exchanged, bundle, lambda d: d["leaf_hashes"].pop(3)), "leaf hashes")


def test_two_entries_swapped_are_refused(exchanged, bundle):
    def swap(d: dict[str, Any]) -> None:
        d["entries"][0], d["entries"][1] = d["entries"][1], d["entries"][0]

    refused(exchanged, resealed(exchanged, bundle, swap), "not in log order")

    def swap_places(d: dict[str, Any]) -> None:
        first, second = d["entries"][0], d["entries"][1]
        first["index"], second["index"] = second["index"], first["index"]
        d["entries"][0], d["entries"][1] = second, first

    refused(exchanged, resealed(exchanged, bundle, swap_places), "not the entry logged at that index")


def test_keys_swapped_or_a_strangers_key_are_refused(exchanged, bundle):
    given = keys(exchanged)
    a, b = given["stations"]["station-a"], given["stations"]["station-b"]
    with pytest.raises(VerificationError, match="another key"):
        verify_bundle(bundle, {"station-a": b, "station-b": a}, given["relay"])
    with pytest.raises(VerificationError, match="another key"):
        verify_bundle(bundle, given["stations"], a)
    stranger = load_public_key(str(exchanged.root / "relay" / "relay.pub"))
    with pytest.raises(VerificationError):
        verify_bundle(bundle, {"station-a": a, "station-b": stranger}, given["relay"])

    def swap_named(d: dict[str, Any]) -> None:
        d["keys"][0]["key"], d["keys"][1]["key"] = d["keys"][1]["key"], d["keys"][0]["key"]

    refused(exchanged, resealed(exchanged, bundle, swap_named), "another key")


def test_a_checkpoint_missing_a_cosignature_is_refused(exchanged, bundle):
    def drop_b(d: dict[str, Any]) -> None:
        note = base64.b64decode(d["checkpoint"]).decode()
        d["checkpoint"] = base64.b64encode(
            "\n".join(line for line in note.split("\n") if not line.startswith("— station-b ")).encode()
        ).decode()

    refused(exchanged, resealed(exchanged, bundle, drop_b), "not cosigned by station-b")


def test_a_statement_signed_again_by_the_other_station_is_refused(exchanged, bundle):
    _, b = load_identity(exchanged.root / "keys" / "station-b.key", None)

    def resign(d: dict[str, Any]) -> None:
        entry = d["entries"][0]  # A's notice
        signed = json.loads(base64.b64decode(entry["signed_statement"]))
        payload = base64.b64decode(signed["payload"])
        entry["signed_statement"] = base64.b64encode(msgspec.json.encode(sign(b, STATEMENT_LABEL, payload))).decode()

    refused(exchanged, resealed(exchanged, bundle, resign), "log index 0")


def test_a_bundle_from_another_log_is_refused(exchanged, bundle, tmp_path):
    (tmp_path / "other").mkdir()
    other = make_line(tmp_path / "other")
    relay = load_public_key(str(other.root / "relay" / "relay.pub"))
    with pytest.raises(VerificationError, match="another key for relay"):
        verify_bundle(bundle, keys(exchanged)["stations"], relay)

    def named_other_relay(d: dict[str, Any]) -> None:
        d["keys"][2]["key"], d["keys"][2]["fingerprint"] = relay.text(), format_fingerprint(relay.fingerprint)

    # Even when the bundle names that relay, its checkpoint is not one that relay signed.
    with pytest.raises(VerificationError, match="checkpoint"):
        verify_bundle(resealed(exchanged, bundle, named_other_relay), keys(exchanged)["stations"], relay)


def test_not_a_bundle_is_refused_with_a_clear_reason(exchanged, tmp_path):
    for data in (b"", b"{}", b"[1,2]", b'{"format":"hotline-evidence/v2"}', Path(__file__).read_bytes()):
        refused(exchanged, data, "not a hotline-evidence/v1 bundle")


def test_the_command_line_says_why_and_exits_1(exchanged, bundle):
    data = json.loads(bundle)
    del data["entries"][2]
    (exchanged.root / "cut.evidence").write_bytes(msgspec.json.encode(data))
    args = ["--key", "station-a=keys/station-a.pub", "--key", "station-b=keys/station-b.pub"]
    cut = exchanged.hotline("audit", "verify", "cut.evidence", *args, "--relay-key", "relay/relay.pub")
    assert cut.returncode == 1
    assert cut.stderr.startswith("hotline: VerificationError: the bundle is not as station-a exported it")
    assert cut.stdout == ""
    wrong = exchanged.hotline("audit", "verify", "cut.evidence", "--key", "station-a", "--relay-key", "relay/relay.pub")
    assert wrong.returncode == 2
    assert "give NAME=PUB" in wrong.stderr
