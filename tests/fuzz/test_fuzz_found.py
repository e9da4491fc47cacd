"""Bugs the fuzz properties found, each as the smallest input that shows it, kept now that they are fixed."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Callable

import pytest

from hotline.protocol import checkpoint as notes
from hotline.protocol.exceptions import InvalidMessage, KeyFileError, RemoteProtocolError
from hotline.protocol.frames import CheckpointFrame, Head, encode_frame
from hotline.protocol.keys import (
    IdentityKey,
    decode_key_file,
    encode_key_file,
    key_file_needs_passphrase,
    key_file_summary,
    public_key_of_file,
)
from hotline.protocol.messages import Heartbeat

from ..unit.line import Line, notice
from .harness import known_bug

WITNESS = "witness-note-with-extra-signature-lines"


def _key_file_with_invalid_utf8() -> bytes:
    good = encode_key_file(IdentityKey(bytes(32)), "station-a", None)
    return good.replace(b'"station-a"', b'"station-\xff"')


@pytest.mark.parametrize("read", [key_file_summary, public_key_of_file, key_file_needs_passphrase])
def test_key_file_with_invalid_utf8_is_a_key_file_error(read):
    with pytest.raises(KeyFileError):
        read(_key_file_with_invalid_utf8())


def test_opening_a_key_file_with_invalid_utf8_is_a_key_file_error():
    with pytest.raises(KeyFileError):
        decode_key_file(_key_file_with_invalid_utf8(), None)


def _witnessing_line() -> tuple[Line, bytes]:
    """A line where both stations cosigned the relay's latest checkpoint, and that cosigned note."""
    line = Line()
    line.connect()
    line.a.send(notice(), line.now)
    line.run()
    assert line.relay.cosigned is not None
    return line, line.relay.cosigned


def test_witnessing_a_note_that_carries_an_older_cosignature_of_ours():
    line, cosigned = _witnessing_line()
    line.tick(1)  # a cosignature made now differs from the one already in the note
    frame = encode_frame(CheckpointFrame(Head(cosigned, [])))
    with contextlib.suppress(RemoteProtocolError):  # refusing it is right, and so is cosigning its text again
        line.b.receive_frame(frame, line.now)


def test_witnessing_a_note_with_sixteen_signature_lines():
    line, _ = _witnessing_line()
    head = line.relay.checkpoints[line.relay.durable_size]
    strangers = "".join(
        f"\u2014 witness-{i} {base64.b64encode(bytes([i]) * 4 + bytes(64)).decode()}\n" for i in range(15)
    )
    note = head + strangers.encode()
    assert len(notes.parse_note(note).signatures) == 16
    frame = encode_frame(CheckpointFrame(Head(note, [])))
    with contextlib.suppress(RemoteProtocolError):  # refusing it is right too
        line.b.receive_frame(frame, line.now)


def test_heartbeat_with_a_malformed_gossiped_checkpoint():
    line = Line(raise_errors=False)
    line.connect()
    before = line.a.state.peer_seq
    line.b.send(Heartbeat(probe="00" * 16, checkpoint=b"not a checkpoint"), line.now)
    line.tick(1)
    line.run()
    errors = line.sides["a"].errors
    # Either it is taken in and nothing is raised (the bad gossip recorded some other way), or it is
    # refused before it is taken in: no confirm, no reply, the state as it was.
    if errors:
        assert all(isinstance(e, RemoteProtocolError) for e in errors)
        assert line.a.state.peer_seq == before, f"{errors[0]!r} raised after the heartbeat was taken in"
    else:
        assert line.a.state.peer_seq == before + 1


def _raised(f: Callable[..., object], *args: object) -> BaseException | None:
    try:
        f(*args)
    except Exception as e:
        return e
    return None


def test_the_known_bugs_are_what_the_properties_let_through():
    """The recogniser in ``harness.known_bug`` matches these reproductions (while they fail), and nothing else."""
    error = _raised(public_key_of_file, _key_file_with_invalid_utf8())
    assert error is None or isinstance(error, KeyFileError) or known_bug(error) == "key-file-invalid-utf8"
    line, cosigned = _witnessing_line()
    line.tick(1)
    frame = encode_frame(CheckpointFrame(Head(cosigned, [])))
    error = _raised(line.b.receive_frame, frame, line.now)
    assert error is None or isinstance(error, RemoteProtocolError) or known_bug(error) == WITNESS
    assert known_bug(ValueError("anything else")) is None
    assert known_bug(InvalidMessage("built wrong")) is None
