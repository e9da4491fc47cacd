"""Every bad input is refused with its error code, counted in the metrics, and leaves no trace in any store."""

from __future__ import annotations

import contextlib
import hashlib
import os
import ssl
import urllib.request
from datetime import UTC, datetime

import msgspec
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from hotline.protocol.envelope import ZERO_HASH, Envelope, Statement, seal
from hotline.protocol.frames import Hello, Submit, decode_relay_frame, encode_frame
from hotline.protocol.keys import AUTH_LABEL, ENVELOPE_LABEL, EpochKey, IdentityKey, Signature, Signed, open_epoch_key
from hotline.protocol.messages import FreeText
from hotline.protocol.relay import auth_payload
from hotline.store.keyfiles import load_identity, load_public_key

from .harness import Line, query, wait_until
from .test_exchange import NOTICE, listen


def tls(line: Line) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(line.path("relay") / "tls.crt"))


def dial(line: Line) -> ClientConnection:
    return connect(line.url, ssl=tls(line), compression=None, max_size=1 << 20, open_timeout=10)


def authenticate(ws: ClientConnection, identity: IdentityKey, relay_pub) -> list:
    """Answer the relay's challenge as ``identity``; return what the relay sends back at once."""
    challenge = decode_relay_frame(ws.recv(timeout=10).encode())
    sig = identity.sign(AUTH_LABEL, auth_payload(relay_pub, challenge.nonce, identity.public))
    ws.send(encode_frame(Hello(identity.public.key_id, sig, receive=False)).decode())
    return [decode_relay_frame(ws.recv(timeout=10).encode())]


def drain(ws: ClientConnection) -> None:
    """Read what the relay sends until it closes the connection."""
    while True:
        ws.recv(timeout=10)


def metrics(line: Line) -> str:
    context = tls(line)
    with urllib.request.urlopen(f"https://127.0.0.1:{line.port}/metrics", context=context, timeout=10) as r:
        return r.read().decode()


def refused_count(line: Line, code: str) -> float:
    for row in metrics(line).splitlines():
        if row.startswith(f'hotline_relay_refused_total{{code="{code}"}}'):
            return float(row.split()[-1])
    return 0.0


def snapshot(line: Line) -> dict[str, list]:
    """Everything the stores hold that a refused input could have touched."""
    out = {}
    out["relay"] = query(line.db("relay"), "SELECT idx, message_id FROM leaves") + query(
        line.db("relay"), "SELECT idx FROM queue"
    )
    for station in ("a", "b"):
        out[station] = query(line.db(station), "SELECT statement_hash FROM inbox") + query(
            line.db(station), "SELECT statement_hash FROM outbox"
        )
    return out


@pytest.fixture
def keys(line):
    relay_pub = load_public_key(str(line.path("relay") / "relay.pub"))
    a = load_identity(line.root / "keys" / "station-a.key", None)[1]
    b = load_identity(line.root / "keys" / "station-b.key", None)[1]
    return relay_pub, a, b


def test_a_strangers_key_is_refused_and_the_connection_closed(line, keys):
    relay_pub, _, _ = keys
    before = snapshot(line)
    with dial(line) as ws:
        [refusal] = authenticate(ws, IdentityKey(os.urandom(32)), relay_pub)
        assert refusal.code == "unknown-key"
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
        assert ws.close_code == 1008
    assert snapshot(line) == before
    wait_until(lambda: refused_count(line, "unknown-key") == 1, 10, "the refusal to be counted")


def test_a_station_with_a_strangers_key_is_told_by_the_command_line(line):
    result = line.hotline("keygen", "intruder", "--keys-dir", "keys", "--no-passphrase")
    assert result.returncode == 0
    (line.root / "a" / "station.json").write_text(
        (line.root / "a" / "station.json").read_text().replace("station-a.key", "intruder.key")
    )
    before = snapshot(line)
    sent = line.hotline("send", "a", "--text", "hello", "--timeout", "3")
    assert sent.returncode == 1
    assert sent.stderr.startswith("hotline: Refused: the relay refused this station (unknown-key)")
    assert len(sent.stderr.splitlines()) == 1
    assert snapshot(line)["relay"] == before["relay"]


def _epoch_key(line: Line, b_pub) -> EpochKey:
    """B's epoch key valid now, as A's station learned it."""
    now = datetime.now(UTC)
    for (signed,) in query(line.db("a"), "SELECT signed FROM peer_keys"):
        key = open_epoch_key(msgspec.json.decode(signed, type=Signed), b_pub)
        if key.valid_at(now):
            return key
    raise AssertionError("A knows no epoch key of B valid now")


def _sealed_by_a(line: Line, a: IdentityKey, b_pub, message_id: str | None = None):
    """An envelope from A to B, sealed to B's published epoch key, as A's station would make it."""
    statement = Statement(
        v=1,
        sender=a.public.key_id,
        recipient=b_pub.key_id,
        id=message_id or os.urandom(16).hex(),
        seq=1,
        prev=ZERO_HASH,
        peer=ZERO_HASH,
        peer_seq=0,
        created=datetime.now(UTC),
        nonce=os.urandom(32),
        body=FreeText(lang="en", body="not what was logged under this id"),
    )
    return seal(a, b_pub, _epoch_key(line, b_pub), statement)


def test_a_replayed_envelope_is_refused(line, keys):
    relay_pub, a, b = keys
    listener = listen(line)
    sent = line.hotline("send", "a", *NOTICE, "--wait", "received", "--timeout", "20")
    assert sent.returncode == 0, sent.stderr
    listener.terminate()
    [(envelope, logged_id)] = query(line.db("a"), "SELECT envelope, message_id FROM outbox WHERE kind = 'notice'")
    before = snapshot(line)
    # A's envelope replayed on B's connection: B is not its sender.
    with dial(line) as ws:
        authenticate(ws, b, relay_pub)
        ws.send(b'{"type":"submit","envelope":' + envelope + b"}")
        assert _codes(ws) == ["wrong-sender"]
    # Another envelope under the logged id, on A's own connection: a replay.
    with dial(line) as ws:
        authenticate(ws, a, relay_pub)
        ws.send(encode_frame(Submit(_sealed_by_a(line, a, b.public, logged_id).envelope)).decode())
        assert _codes(ws) == ["replay"]
    assert snapshot(line) == before
    assert refused_count(line, "replay") == 1
    assert refused_count(line, "wrong-sender") == 1


def _codes(ws: ClientConnection) -> list[str]:
    codes = []
    while True:
        try:
            frame = decode_relay_frame(ws.recv(timeout=2).encode())
        except TimeoutError:
            return codes
        if hasattr(frame, "code"):
            codes.append(frame.code)
            return codes


def test_an_envelope_addressed_to_the_wrong_station_is_refused(line, keys):
    relay_pub, a, b = keys
    listen(line, "b").terminate()  # B publishes its epoch keys,
    listen(line, "a").terminate()  # and A learns them
    before = snapshot(line)
    # A seals to B's epoch key but names itself as the recipient in the header it signs.
    sealed = _sealed_by_a(line, a, b.public)
    header = msgspec.json.decode(sealed.envelope.header)
    header["recipient"] = a.public.key_id
    header_bytes = msgspec.json.encode(header)
    sig = a.sign(
        ENVELOPE_LABEL, hashlib.sha256(header_bytes).digest() + hashlib.sha256(sealed.envelope.sealed).digest()
    )
    forged = Envelope(header_bytes, sealed.envelope.sealed, [Signature("ed25519", a.public.key_id, sig)])
    with dial(line) as ws:
        authenticate(ws, a, relay_pub)
        ws.send(encode_frame(Submit(forged)).decode())
        assert _codes(ws) == ["wrong-recipient"]
    assert snapshot(line) == before
    assert refused_count(line, "wrong-recipient") == 1


def test_an_oversized_frame_closes_the_connection(line, keys):
    relay_pub, a, _ = keys
    before = snapshot(line)
    with dial(line) as ws:
        authenticate(ws, a, relay_pub)
        ws.send("x" * (70 * 1024))
        with pytest.raises(ConnectionClosed):
            drain(ws)
        assert ws.close_code == 1009  # message too big
    assert snapshot(line) == before
    wait_until(lambda: refused_count(line, "frame-too-large") == 1, 10, "the refusal to be counted")


def test_a_client_that_never_authenticates_is_cut_off(line):
    line.kill_relay()
    line.relay_config(unauthenticated_seconds=1.0)
    line.start_relay()
    before = snapshot(line)
    with dial(line) as ws:
        ws.recv(timeout=10)  # the challenge, never answered
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
        assert ws.close_code == 4001
    assert snapshot(line) == before
    assert refused_count(line, "auth-timeout") == 1


def test_a_relay_certificate_that_does_not_match_is_refused(line, tmp_path):
    # Another relay's certificate, pinned by mistake (or a relay impersonated): no TLS, nothing sent.
    other = Line(tmp_path / "other", line.port, line.env)
    (tmp_path / "other").mkdir()
    made = other.hotline(
        "relay", "init", "relay", "--party", f"station-a={line.root}/keys/station-a.pub",
        "--party", f"station-b={line.root}/keys/station-b.pub", "--no-passphrase",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    (line.root / "a" / "relay-ca.pem").write_bytes((tmp_path / "other" / "relay" / "tls.crt").read_bytes())
    before = snapshot(line)
    sent = line.hotline("send", "a", "--text", "hello", "--timeout", "3")
    assert sent.returncode == 1
    assert "RelayUnreachable" in sent.stderr
    assert "CERTIFICATE_VERIFY_FAILED" in sent.stderr or "certificate verify failed" in sent.stderr
    assert snapshot(line)["relay"] == before["relay"]


def test_connections_from_one_address_are_limited_in_number_and_in_rate(line):
    line.kill_relay()
    line.relay_config(connections_per_address=4, new_connections_per_second=0.1, new_connection_burst=6)
    line.start_relay()
    before = snapshot(line)
    with contextlib.ExitStack() as held:
        for _ in range(4):
            held.enter_context(dial(line))
        with pytest.raises(InvalidStatus) as too_many:
            dial(line)
    assert too_many.value.response.status_code == 503
    assert b"too many connections from this address" in too_many.value.response.body
    wait_until(lambda: refused_count(line, "too-many-connections") == 1, 10, "the refusal to be counted")
    # Four of the six new connections allowed in a burst are spent (a refused one costs none): two more, then 429.
    with contextlib.ExitStack() as again:
        for _ in range(2):
            again.enter_context(wait_until(lambda: _dial_or_none(line), 10, "a connection once the others closed"))
        with pytest.raises(InvalidStatus) as too_fast:
            dial(line)
    assert too_fast.value.response.status_code == 429
    assert refused_count(line, "too-many-new-connections") == 1
    assert snapshot(line) == before


def _dial_or_none(line: Line) -> ClientConnection | None:
    """A connection, or None while the relay still counts the closed ones as open (503)."""
    try:
        return dial(line)
    except InvalidStatus as e:
        if e.response.status_code != 503:
            raise
        return None


def test_a_station_may_hold_only_so_many_connections_at_once(line, keys):
    relay_pub, a, _ = keys
    line.kill_relay()
    line.relay_config(connections_per_station=2)
    line.start_relay()
    before = snapshot(line)
    with dial(line) as first, dial(line) as second, dial(line) as third:
        for ws in (first, second):
            assert [type(f).__name__ for f in authenticate(ws, a, relay_pub)] == ["Welcome"]
        # The third of station A's connections authenticates as well as the others, and is then closed.
        authenticate(third, a, relay_pub)
        with pytest.raises(ConnectionClosed) as closed:
            drain(third)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1008
        # The first two are still served.
        for ws in (first, second):
            assert ws.ping().wait(10)
    assert refused_count(line, "too-many-connections") == 1
    assert snapshot(line) == before


def test_submissions_over_the_rate_limit_are_paced_in_order_not_refused(line):
    line.kill_relay()
    line.relay_config(submissions_per_second=20, submission_burst=5)
    line.start_relay()
    listener = listen(line)
    sender = line.tool("bulk-send", str(line.path("a")), "30", "TUR-PACED", "60")
    assert sender.finish(90) == 0, sender.lines()
    # Every one accepted, logged in the order sealed; none refused, by the relay or for now.
    rows = query(line.db("a"), "SELECT seq, log_index FROM accepted JOIN outbox USING (seq) WHERE kind = 'notice'")
    assert len(rows) == 30
    indices = [index for _, index in sorted(rows)]
    assert indices == sorted(indices)
    assert query(line.db("a"), "SELECT COUNT(*) FROM refused")[0][0] == 0
    assert refused_count(line, "out-of-order") == 0
    # With a burst of 5 and 20 a second, most of the 30 waited for their turn at the relay.
    assert refused_count(line, "rate-limited") >= 10
    wait_until(lambda: query(line.db("b"), "SELECT COUNT(*) FROM inbox WHERE kind = 'notice'")[0][0] == 30,
               30, "the 30 notices at B")  # fmt: skip
    listener.terminate()


def test_at_the_relays_capacity_the_oldest_unauthenticated_connection_makes_room(line):
    line.kill_relay()
    line.relay_config(max_connections=3)
    line.start_relay()
    with dial(line) as oldest, dial(line) as second, dial(line) as third:
        # A station arrives while a flood fills the relay: the flood's oldest connection is cut, the station let in.
        listener = listen(line)
        with pytest.raises(ConnectionClosed):
            drain(oldest)
        for ws in (second, third):
            assert ws.ping().wait(10)
        assert refused_count(line, "evicted-at-capacity") == 1
        # Another newcomer: the next oldest that has not authenticated makes room; the station stays.
        with dial(line) as newcomer:
            with pytest.raises(ConnectionClosed):
                drain(second)
            assert newcomer.ping().wait(10)
        assert refused_count(line, "evicted-at-capacity") == 2
        sent = line.hotline("send", "a", *NOTICE, "--wait", "received", "--timeout", "20")
        assert sent.returncode == 0, sent.stderr
    listener.terminate()


def test_at_capacity_with_only_stations_connected_a_newcomer_is_turned_away(line):
    line.kill_relay()
    line.relay_config(max_connections=2)
    line.start_relay()
    listeners = [listen(line, "a"), listen(line, "b")]
    with pytest.raises(InvalidStatus) as full:
        dial(line)
    assert full.value.response.status_code == 503
    assert b"the relay is at capacity" in full.value.response.body
    assert refused_count(line, "at-capacity") >= 1
    for listener in listeners:
        listener.terminate()
