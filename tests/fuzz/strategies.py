"""Hypothesis strategies for everything the network or a file can bring to hotline, valid and mutated.

Structure-aware: each strategy starts from real values (``corpus.py`` makes them
with hotline's own code from fixed seeds) and mutates them at the level a fault
or an attacker would:

- bytes: bit flips, bytes set, inserted or deleted, truncation, duplicated runs;
- JSON: one field replaced by a confusing value (a string for an int, huge and
  negative ints, ``NaN``/``Infinity``/``1e400`` tokens, floats, ``null``, deep
  nesting, very long strings, huge or non-canonical base64, invalid UTF-8, lone
  surrogates, times in other zones or impossible), fields deleted, renamed,
  added, swapped, duplicated (a key twice), moved from another frame, the tag
  changed; then re-encoded compactly, spaced, ASCII-escaped or reordered;
- JSON inside base64 (envelope headers, signed payloads) and notes inside base64
  (checkpoints) are decoded, mutated in their own terms and encoded again;
- signed notes line by line: sizes up to and past 2**64, roots, origins,
  extension lines, signature lines (missing, repeated, too many, another key);
- Merkle proofs for trees of up to 2**63 - 1 leaves, from a reference tree whose
  leaves are all equal but one, so that any root and proof is a few dozen hashes.

What ``test_fuzz.py`` draws from:

- frames: ``frames_of(kind)`` and ``one_field_mutated_frames(kind)`` for each of
  the 15 frame types (``STATION_KINDS``, ``RELAY_KINDS``), ``station_frames()``,
  ``relay_frames()`` (all types, mutated, sent the wrong way, junk);
- ``envelopes()``, ``headers()``, ``statements()``, ``signed_statements()``,
  ``bodies()`` (the unit tests' valid bodies too), ``epoch_key_payloads()``,
  ``signed_epoch_keys()``, ``key_files()``, ``public_key_lines()``, ``vkeys()``,
  ``notes_()`` (checkpoints and cosigned notes), ``leaves()`` (log entries);
- Merkle: ``inclusion_cases()`` and ``consistency_cases()`` (correct proofs at
  any size), ``proofs()``, ``big_sizes()`` and ``any_objects()`` (crafted ones);
- hostile parties, who sign with their own key so that what they make passes
  the signature check and reaches the checks after it: ``relay_signed_notes()``
  and ``relay_signed_heads()`` (a relay), ``station_signed_frames()`` (an
  authenticated station), ``peer_signed_keys()`` (a peer's epoch keys);
  ``corpus.relay_made()`` adds the deliveries a relay can forge for each state.

Primitives to build more: ``byte_mutations``, ``json_mutations``,
``one_field_mutated``, ``inner_mutations``, ``note_mutations``, ``confusing``,
``emit`` (JSON with ``Raw`` tokens and ``Pairs`` for duplicate keys).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
from hypothesis import strategies as st

from hotline.protocol import checkpoint as notes
from hotline.protocol import merkle
from hotline.protocol.envelope import SUITE, Envelope, Header
from hotline.protocol.frames import (
    CheckpointFrame,
    Cosign,
    Cosigned,
    Head,
    Submit,
    Welcome,
    encode_frame,
)
from hotline.protocol.keys import ENVELOPE_LABEL, EPOCH_KEY_LABEL, Signature, sign

from ..unit import strategies as valid
from .corpus import ORIGIN, Corpus, corpus

# --- JSON that can say anything --------------------------------------------------------------------


class Raw(bytes):
    """Bytes written into the JSON as they are: tokens no encoder makes (NaN, 1e400, invalid UTF-8...)."""


class Pairs(list):  # type: ignore[type-arg]
    """An object as a list of (key, value) pairs, so that a key can appear twice."""


@dataclass(frozen=True)
class Style:
    spaced: bool = False
    ascii_only: bool = False
    order: str = "kept"  # kept, reversed, sorted


COMPACT = Style()


def emit(value: Any, style: Style = COMPACT) -> bytes:
    """Encode a JSON tree that may hold ``Raw`` tokens and ``Pairs`` objects."""
    comma, colon = (b", ", b": ") if style.spaced else (b",", b":")
    if isinstance(value, Raw):
        return bytes(value)
    if value is None:
        return b"null"
    if value is True:
        return b"true"
    if value is False:
        return b"false"
    if isinstance(value, int):
        return str(value).encode()
    if isinstance(value, float):
        return json.dumps(value).encode()  # NaN and Infinity as the tokens they are
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=style.ascii_only).encode("utf-8", "surrogatepass")
    if isinstance(value, Pairs | dict):
        pairs = list(value) if isinstance(value, Pairs) else list(value.items())
        if style.order == "reversed":
            pairs.reverse()
        elif style.order == "sorted":
            pairs.sort(key=lambda kv: str(kv[0]))
        inner = comma.join(emit(str(k), style) + colon + emit(v, style) for k, v in pairs)
        return b"{" + inner + b"}"
    if isinstance(value, list | tuple):
        return b"[" + comma.join(emit(v, style) for v in value) + b"]"
    raise TypeError(f"cannot emit {type(value).__name__}")


styles = st.builds(
    Style,
    spaced=st.booleans(),
    ascii_only=st.booleans(),
    order=st.sampled_from(["kept", "kept", "reversed", "sorted"]),
)

Path = tuple[Any, ...]


def paths(tree: Any, prefix: Path = ()) -> Iterator[Path]:
    """Every position in a JSON tree, the root included, parents before children."""
    yield prefix
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from paths(v, (*prefix, k))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from paths(v, (*prefix, i))


def get(tree: Any, path: Path) -> Any:
    for step in path:
        tree = tree[step]
    return tree


def put(tree: Any, path: Path, value: Any) -> Any:
    """The tree with the value at ``path`` replaced (copying only along the path)."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(tree, dict):
        new = dict(tree)
        new[head] = put(tree[head], rest, value)
        return new
    new_list = list(tree)
    new_list[head] = put(tree[head], rest, value)
    return new_list


# --- confusing values ------------------------------------------------------------------------------

INTERESTING_INTS = [
    0,
    1,
    -1,
    2,
    255,
    256,
    2**31 - 1,
    2**31,
    2**32,
    2**53,
    2**53 + 1,
    2**62,
    2**62 + 1,
    2**63 - 1,
    2**63,
    2**64 - 1,
    2**64,
    -(2**63),
    -(2**63) - 1,
    10**100,
]
RAW_TOKENS = [
    b"NaN",
    b"-NaN",
    b"Infinity",
    b"-Infinity",
    b"1e400",
    b"-1e400",
    b"1e-400",
    b"-0",
    b"-0.0",
    b"0.0",
    b"1.0",
    b"1E2",
    b"01",
    b"+1",
    b"0x10",
    b".5",
    b"1.",
    b"1e",
    b"nul",
    b"True",
    b"undefined",
    b"",
    b"[",
    b"{",
    b'"',
    b'"unterminated',
    b"[1,]",
    b'{"a":1,}',
    b"/* comment */ 1",
    b"\x00",
    b'"\\x41"',
    b'"\\u00"',
    b'"\\uZZZZ"',
    b'"tab\there"',
    b'"nl\nhere"',
    b"9" * 400,
    b"-" + b"9" * 400,
    b"1" + b"0" * 30 + b".5",
]
INVALID_STRINGS = [
    b'"\xff"',
    b'"\xfe\xff"',
    b'"\x80abc"',
    b'"\xc0\xaf"',  # overlong '/'
    b'"\xe0\x80\xaf"',
    b'"\xed\xa0\x80"',  # an encoded surrogate
    b'"\xf4\x90\x80\x80"',  # past U+10FFFF
    b'"\xf8\x88\x80\x80\x80"',
    b'"abc\xc3"',  # cut in the middle of a character
    b'"\\ud800"',
    b'"\\udc00"',
    b'"\\udc00\\ud800"',
    b'"\\ud800\\u0041"',
    b'"\\u0000"',
    b'"a\\u0000b"',
    b'"\\u2028\\u2029"',
    b'"\xef\xbb\xbf"',  # a byte order mark
]
TIMES = [
    "2026-11-26T12:00:30Z",
    "2026-11-26T12:00:30+00:00",
    "2026-11-26T12:00:30+01:00",
    "2026-11-26T12:00:30-00:00",
    "2026-11-26T12:00:30",
    "2026-11-26T12:00:30.5Z",
    "2026-11-26T12:00:30.000000Z",
    "2026-11-26T12:00:30.1234567Z",
    "2026-11-26T23:59:60Z",
    "2026-02-30T12:00:00Z",
    "2026-13-01T00:00:00Z",
    "2026-11-26T24:00:00Z",
    "0000-01-01T00:00:00Z",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59.999999Z",
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+23:59",
    "10000-01-01T00:00:00Z",
    "2026-11-26t12:00:30z",
    "2026-11-26 12:00:30Z",
    "2026-11-26",
    "12:00:30Z",
    "+2026-11-26T12:00:30Z",
    "2026-11-26T12:00:30+24:00",
    "2026-11-26T12:00:30+99:99",
    "",
]
HUGE = [63, 64, 65, 200, 201, 500, 501, 1000, 4096, 4097, 20481, 32769, 65537]
DEPTHS = [32, 100, 256, 1000, 10000, 100000]


def _nested(depth: int, kind: str) -> Raw:
    if kind == "list":
        return Raw(b"[" * depth + b"]" * depth)
    if kind == "object":
        return Raw(b'{"a":' * depth + b"1" + b"}" * depth)
    return Raw(b'{"type":"confirm","index":' * depth + b"0" + b"}" * depth)


deep_values = st.builds(_nested, st.sampled_from(DEPTHS), st.sampled_from(["list", "object", "tagged"]))
long_strings = st.builds(
    lambda n, ch: ch * n, st.sampled_from(HUGE), st.sampled_from(["A", "0", "f", "é", "\U0001f600"])
)
huge_base64 = st.builds(lambda n: base64.b64encode(b"\x00" * n).decode(), st.sampled_from(HUGE))


def b64_variants(data: bytes) -> st.SearchStrategy[Any]:
    """Spellings of ``data`` in base64: canonical, unpadded, URL-safe, non-canonical last bits, junk."""
    good = base64.b64encode(data).decode()
    options: list[Any] = [good, good.rstrip("="), base64.urlsafe_b64encode(data).decode(), " " + good, good + "\n"]
    options += [good + "=", good + "==", "=" + good, good.replace("A", "*", 1), good[:-1], good + "A"]
    if good.endswith("=") and len(good) >= 2:
        last = good.rstrip("=")[-1]
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        twin = alphabet[(alphabet.index(last) + 1) % 64]
        options.append(good.rstrip("=")[:-1] + twin + good[len(good.rstrip("=")) :])
    options.append(Raw(b'"' + good.encode() + b'\\u0000"'))
    return st.sampled_from(options)


@st.composite
def byte_mutations(draw: st.DrawFn, data: bytes, max_ops: int = 4) -> bytes:
    """``data`` with a few byte-level mutations: flips, sets, inserts, deletions, truncation, repeats."""
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, max_ops))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "repeat", "splice"]))
        n = len(buf)
        pos = draw(st.integers(0, max(n - 1, 0)))
        if op == "flip" and n:
            buf[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and n:
            buf[pos] = draw(st.sampled_from(b'\x00\xff\x80\x7f\xc0"\\{}[],:0-9eE+.nt \n\t/='))
        elif op == "insert":
            chunk = draw(
                st.sampled_from([b"\x00", b"\xff", b'"', b"\\", b"{", b"}", b"[", b"]", b",", b":", b"0", b"-"])
                | st.sampled_from(RAW_TOKENS + INVALID_STRINGS)
                | st.binary(max_size=8)
            )
            buf[pos:pos] = chunk
        elif op == "delete" and n:
            del buf[pos : pos + draw(st.integers(1, 16))]
        elif op == "truncate":
            del buf[pos:]
        elif op == "repeat" and n:
            end = min(n, pos + draw(st.integers(1, 64)))
            buf[pos:pos] = buf[pos:end] * draw(st.integers(1, 3))
        elif op == "splice" and n:
            other = draw(st.integers(0, n - 1))
            end = min(n, other + draw(st.integers(1, 32)))
            buf[pos:pos] = buf[other:end]
    return bytes(buf)


def _is_hex(s: str) -> bool:
    return bool(s) and all(c in "0123456789abcdef" for c in s)


def _b64(s: str) -> bytes | None:
    if len(s) < 4 or len(s) % 4:
        return None
    try:
        return base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        return None


@st.composite
def confusing(draw: st.DrawFn, original: Any, depth: int = 0) -> Any:
    """A value to put where ``original`` was: related to it (near, respelled, re-encoded) or of another type."""
    generic = st.one_of(
        st.sampled_from(INTERESTING_INTS),
        st.sampled_from(RAW_TOKENS).map(Raw),
        st.sampled_from(INVALID_STRINGS).map(Raw),
        st.sampled_from([None, True, False, "", [], {}, 0.5, -0.0, 1e308, 5e-324]),
        st.text(max_size=12),
        long_strings,
        huge_base64,
        deep_values,
        st.sampled_from(TIMES),
    )
    related: list[st.SearchStrategy[Any]] = []
    if isinstance(original, bool):
        related.append(st.sampled_from([not original, int(original), str(original).lower(), None]))
    elif isinstance(original, int):
        related.append(st.integers(original - 2, original + 2))
        related.append(st.sampled_from([float(original), str(original), -original, original * 2**32]))
        related.append(st.sampled_from([Raw(f"{original}.0".encode()), Raw(f"{original}e0".encode())]))
    elif isinstance(original, float):
        related.append(st.floats(allow_nan=False, allow_infinity=False))
        related.append(st.sampled_from([Raw(b"NaN"), Raw(b"Infinity"), int(original), str(original)]))
    elif isinstance(original, str):
        decoded = _b64(original)
        if decoded is not None and depth < 2:
            related.append(st.deferred(lambda: inner_mutations(decoded, depth + 1)).flatmap(b64_variants))
            related.append(b64_variants(decoded))
            related.append(byte_mutations(decoded).map(lambda b: base64.b64encode(b).decode()))
        if _is_hex(original):
            related.append(
                st.sampled_from(
                    [
                        original.upper(),
                        original[:-1],
                        original + "0",
                        original[:-1] + "g",
                        "0" * len(original),
                        " " + original,
                        original + "\n",
                    ]
                )
            )
        if original[:4].isdigit() and "T" in original:
            related.append(st.sampled_from(TIMES))
        related.append(
            st.sampled_from([original.upper(), original.lower(), original + "x", original[:-1], original * 2, ""])
        )
        related.append(st.sampled_from([Raw(json.dumps(original, ensure_ascii=True).encode())]))
    elif isinstance(original, list):
        if original:
            first = original[0]
            related.append(
                st.sampled_from([[], original[:-1], original + original, [first] * 65, [first] * 5, original[::-1]])
            )
        related.append(st.sampled_from([[None], [[]], [{}], [0], [""]]))
    elif isinstance(original, dict):
        related.append(st.sampled_from([{}, [], [original], {"": original}]))
    strategy = st.one_of(*related, generic) if related else generic
    return draw(strategy)


# --- JSON mutations ---------------------------------------------------------------------------------

TAGS = {
    "type": [
        "hello",
        "submit",
        "confirm",
        "cosign",
        "publish",
        "prove",
        "challenge",
        "welcome",
        "accepted",
        "refused",
        "deliver",
        "checkpoint",
        "cosigned",
        "keys",
        "proof",
    ],
    "kind": ["notice", "ack", "heartbeat", "heartbeat-reply", "text", "hotline-identity-key"],
    "shape": ["circle", "polygon", "corridor"],
}


@functools.cache
def field_pool() -> dict[str, list[Any]]:
    """Every value of every named field in the corpus, to move a field from one document into another."""
    c = corpus()
    pool: dict[str, list[Any]] = {}
    docs: list[bytes] = [*c.envelopes, *c.statements, *c.headers, *c.bodies, *c.epoch_key_payloads, *c.epoch_keys]
    for frames in (*c.station_frames.values(), *c.relay_frames.values()):
        docs += frames
    docs += c.key_files
    for doc in docs:
        tree = json.loads(doc)
        for path in paths(tree):
            if path and isinstance(path[-1], str):
                values = pool.setdefault(path[-1], [])
                value = get(tree, path)
                if value not in values and len(values) < 12:
                    values.append(value)
    return pool


@st.composite
def tree_mutation(draw: st.DrawFn, tree: Any, depth: int = 0) -> Any:
    """One structural or value mutation somewhere in a JSON tree."""
    where = draw(st.sampled_from(list(paths(tree))))
    here = get(tree, where)
    ops = ["replace", "replace", "replace"]
    if where and isinstance(where[-1], str):
        ops += ["transplant", "rename"]
    if isinstance(here, dict):
        ops += ["delete", "add", "duplicate", "swap", "retag"] if here else ["add"]
    if isinstance(here, list):
        ops += ["grow", "shrink"]
    op = draw(st.sampled_from(ops))
    if op == "replace":
        return put(tree, where, draw(confusing(here, depth)))
    if op == "transplant":
        pool = field_pool().get(where[-1], [])
        if pool:
            return put(tree, where, draw(st.sampled_from(pool)))
        return put(tree, where, draw(confusing(here, depth)))
    if op == "rename":
        parent = get(tree, where[:-1])
        new_name = draw(st.sampled_from([where[-1].upper(), where[-1] + "_", "", " " + where[-1], "\u00e9", "type"]))
        pairs = Pairs((new_name if k == where[-1] else k, v) for k, v in parent.items())
        return put(tree, where[:-1], pairs)
    if op == "delete":
        key = draw(st.sampled_from(list(here)))
        return put(tree, where, {k: v for k, v in here.items() if k != key})
    if op == "add":
        name = draw(st.sampled_from(["extra", "v", "type", "kind", "__proto__", "id", ""]) | st.text(max_size=8))
        if name in here:
            return put(tree, where, Pairs([*here.items(), (name, draw(confusing(here[name], depth)))]))
        return put(tree, where, {**here, name: draw(confusing(None, depth))})
    if op == "duplicate":
        # The same key twice: first the original then a changed value, or the other way round.
        key = draw(st.sampled_from(list(here)))
        other = draw(confusing(here[key], depth))
        first, second = (here[key], other) if draw(st.booleans()) else (other, here[key])
        pairs = Pairs((k, first if k == key else v) for k, v in here.items())
        pairs.append((key, second))
        return put(tree, where, pairs)
    if op == "swap":
        keys = list(here)
        k1, k2 = draw(st.sampled_from(keys)), draw(st.sampled_from(keys))
        return put(tree, where, {**here, k1: here[k2], k2: here[k1]})
    if op == "retag":
        tags = [t for t in TAGS if t in here]
        if tags:
            tag = tags[0]
            return put(tree, where, {**here, tag: draw(st.sampled_from(TAGS[tag]) | confusing(here[tag], depth))})
        return put(tree, where, {**here, "type": draw(st.sampled_from(TAGS["type"]))})
    if op == "grow":
        item = here[0] if here else None
        return put(tree, where, [*here, *([item] * draw(st.sampled_from([1, 4, 60, 70, 200])))])
    # shrink
    return put(tree, where, here[: draw(st.integers(0, max(len(here) - 1, 0)))])


@st.composite
def json_mutations(draw: st.DrawFn, data: bytes, depth: int = 0, max_ops: int = 3) -> bytes:
    """``data`` (JSON) decoded, mutated once or a few times in its structure, and encoded again."""
    tree = json.loads(data)
    for _ in range(draw(st.integers(1, max_ops))):
        tree = draw(tree_mutation(tree, depth))
    return emit(tree, draw(styles))


@st.composite
def one_field_mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` (JSON) with exactly one field, at any depth, replaced by a confusing value; compact otherwise."""
    tree = json.loads(data)
    where = draw(st.sampled_from([p for p in paths(tree) if p]))
    return emit(put(tree, where, draw(confusing(get(tree, where)))))


@st.composite
def inner_mutations(draw: st.DrawFn, data: bytes, depth: int = 1) -> bytes:
    """Mutations of what a base64 field holds, in its own terms: JSON, a signed note, or plain bytes."""
    if data[:1] == b"{":
        try:
            tree = json.loads(data)
        except (ValueError, RecursionError):
            return draw(byte_mutations(data))
        if _depth(tree) > 40:  # what an earlier mutation nested deeply stays as it is, mangled
            return draw(byte_mutations(data))
        return draw(json_mutations(data, depth, max_ops=2) | one_field_mutated(data))
    if b"\n\n\xe2\x80\x94 " in data:
        return draw(note_mutations(data))
    return draw(byte_mutations(data))


def _depth(tree: Any) -> int:
    if isinstance(tree, dict):
        return 1 + max(map(_depth, tree.values()), default=0)
    if isinstance(tree, list):
        return 1 + max(map(_depth, tree), default=0)
    return 0


def mutated(pool: Sequence[bytes], json_doc: bool = True) -> st.SearchStrategy[bytes]:
    """The values of ``pool`` as they are, with one field changed, with a few JSON changes, or byte-mangled."""
    base = st.sampled_from(list(pool))
    options = [base, base.flatmap(byte_mutations)]
    if json_doc:
        options += [base.flatmap(one_field_mutated), base.flatmap(json_mutations), base.flatmap(one_field_mutated)]
    return st.one_of(*options)


def junk() -> st.SearchStrategy[bytes]:
    """Bytes with no structure, and JSON of the wrong shape."""
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
        max_leaves=12,
    )
    return st.one_of(
        st.binary(max_size=64),
        json_values.map(emit),
        st.dictionaries(st.sampled_from(["type", "kind", "index", "head", "envelope"]), json_values, max_size=4).map(
            emit
        ),
        deep_values.map(bytes),
        st.sampled_from(RAW_TOKENS + INVALID_STRINGS),
    )


# --- frames -----------------------------------------------------------------------------------------

STATION_KINDS = ("Hello", "Submit", "Confirm", "Cosign", "Publish", "Prove")
RELAY_KINDS = ("Challenge", "Welcome", "Accepted", "Refusal", "Deliver", "CheckpointFrame", "Cosigned", "Keys", "Proof")


def _frames(kind: str) -> list[bytes]:
    c = corpus()
    return c.station_frames.get(kind) or c.relay_frames[kind]


def one_field_mutated_frames(kind: str) -> st.SearchStrategy[bytes]:
    """Valid frames of one type (a class name of ``hotline.protocol.frames``) with exactly one field changed."""
    return st.sampled_from(_frames(kind)).flatmap(one_field_mutated)


def frames_of(kind: str) -> st.SearchStrategy[bytes]:
    """Frames of one type: as sent, or with one field mutated."""
    return st.one_of(st.sampled_from(_frames(kind)), one_field_mutated_frames(kind))


def station_frames(extra: Sequence[bytes] = ()) -> st.SearchStrategy[bytes]:
    """What a station (or anyone who reached the relay) can send the relay."""
    c = corpus()
    pool = [f for kind in STATION_KINDS for f in c.station_frames[kind]] + list(extra)
    wrong_way = [f for kind in RELAY_KINDS for f in c.relay_frames[kind][:2]]
    return st.one_of(
        st.one_of(*(frames_of(kind) for kind in STATION_KINDS)),
        mutated(pool),
        st.sampled_from(wrong_way),
        junk(),
    )


def relay_frames(extra: Sequence[bytes] = ()) -> st.SearchStrategy[bytes]:
    """What the relay (or anyone between it and the station) can send a station."""
    c = corpus()
    pool = [f for kind in RELAY_KINDS for f in c.relay_frames[kind]] + list(extra)
    wrong_way = [f for kind in STATION_KINDS for f in c.station_frames[kind][:2]]
    return st.one_of(
        st.one_of(*(frames_of(kind) for kind in RELAY_KINDS)),
        mutated(pool),
        st.sampled_from(wrong_way),
        junk(),
    )


# --- envelopes, statements, bodies, keys --------------------------------------------------------------


def envelopes() -> st.SearchStrategy[bytes]:
    return st.one_of(mutated(corpus().envelopes), junk())


def headers() -> st.SearchStrategy[bytes]:
    return st.one_of(mutated(corpus().headers), junk())


def statements() -> st.SearchStrategy[bytes]:
    return st.one_of(mutated(corpus().statements), junk())


def signed_statements() -> st.SearchStrategy[bytes]:
    return mutated(corpus().signed_statements)


def bodies() -> st.SearchStrategy[bytes]:
    """Bodies of every kind, valid (from the corpus and from the unit tests' strategies) and mutated."""
    generated = valid.bodies.map(lambda b: emit(json.loads(_encode(b))))
    return st.one_of(
        mutated(corpus().bodies),
        generated,
        generated.flatmap(one_field_mutated),
        generated.flatmap(json_mutations),
        junk(),
    )


def _encode(value: object) -> bytes:
    return msgspec.json.encode(value)


def epoch_key_payloads() -> st.SearchStrategy[bytes]:
    return st.one_of(mutated(corpus().epoch_key_payloads), junk())


@st.composite
def signed_epoch_keys(draw: st.DrawFn, name: str | None = None, resigned: bool = False) -> tuple[bytes, str]:
    """``Signed`` epoch keys and the station whose pinned key opens them (``a`` or ``b``).

    Either the container is mutated (the signature then mostly fails), or the
    payload is mutated and signed again by the station itself, so that the
    mutation reaches the checks behind the signature.
    """
    c = corpus()
    name = name or draw(st.sampled_from(["a", "b"]))
    how = "resigned" if resigned else draw(st.sampled_from(["container", "resigned", "resigned", "other"]))
    if how == "container":
        return draw(mutated(c.epoch_keys)), name
    payload = draw(mutated(c.epoch_key_payloads))
    signer = c.identities[name if how == "resigned" else ("b" if name == "a" else "a")]
    return _encode(sign(signer, EPOCH_KEY_LABEL, payload)), name


@st.composite
def key_files(draw: st.DrawFn) -> bytes:
    c = corpus()
    return draw(st.one_of(mutated(c.key_files), junk()))


@st.composite
def public_key_lines(draw: st.DrawFn) -> str:
    good = draw(st.sampled_from(corpus().public_keys))
    key = base64.b64decode(good.removeprefix("ed25519:"))
    choice = draw(st.sampled_from(["as-is", "b64", "text", "bytes"]))
    if choice == "as-is":
        return good
    if choice == "b64":
        spelled = draw(b64_variants(key))
        return "ed25519:" + (spelled.decode("latin-1") if isinstance(spelled, bytes) else spelled)
    if choice == "bytes":
        return "ed25519:" + base64.b64encode(draw(byte_mutations(key))).decode()
    prefix = draw(st.sampled_from(["ed25519:", "ED25519:", "ed25519", "ed448:", "", " ed25519:", "ed25519: "]))
    tail = draw(st.sampled_from(["", "\n", " \t\r\n", "\x00", "\u00a0", "\u3000", "=", " x"]))
    body = good.removeprefix("ed25519:")
    return draw(st.sampled_from([prefix + body + tail, prefix + body[::-1], draw(st.text(max_size=60))]))


@st.composite
def vkeys(draw: st.DrawFn) -> str:
    good = draw(st.sampled_from(corpus().vkeys))
    name, kid, key = good.split("+", 2)
    options = [
        good,
        f"{name}+{kid.upper()}+{key}",
        f"{name}+{kid[:-1]}0+{key}",
        f"{name} +{kid}+{key}",
        f"{name}+{kid}+{key.rstrip('=')}",
        f"{name}+{kid}",
        f"{'n' * 300}+{kid}+{key}",
        f"+{kid}+{key}",
        f"{name}+{kid}+{key}+{key}",
        f"{name}+{kid}+" + base64.b64encode(b"\x02" + base64.b64decode(key)[1:]).decode(),
        f"{name}+{kid}+" + base64.b64encode(base64.b64decode(key)[:-1]).decode(),
    ]
    return draw(st.sampled_from(options) | st.text(max_size=80) | st.sampled_from(options).map(_mangle_text))


def _mangle_text(text: str) -> str:
    return text.replace("+", "\u00e9", 1)


# --- signed notes and checkpoints ------------------------------------------------------------------

EM = "\u2014 "
SIZES = ["0", "1", "00", "01", "-1", "+1", " 1", "1 ", "1.0", "1e3", "\u0661", str(2**62), str(2**63 - 1)]
SIZES += [str(2**63), str(2**64), "9" * 19, "9" * 20, "18446744073709551616", ""]


@st.composite
def note_line(draw: st.DrawFn, lines: list[str]) -> str:
    """A line to put in a note: a checkpoint header line or a signature line, good, borrowed or broken."""
    kind = draw(st.sampled_from(["size", "root", "origin", "extension", "signature", "borrowed", "control"]))
    if kind == "size":
        return draw(st.sampled_from(SIZES))
    if kind == "root":
        return draw(
            st.sampled_from(
                [
                    base64.b64encode(bytes(32)).decode(),
                    base64.b64encode(bytes(31)).decode(),
                    base64.b64encode(bytes(33)).decode(),
                    base64.b64encode(bytes(32)).decode().rstrip("="),
                    base64.urlsafe_b64encode(b"\xff" * 32).decode(),
                    "",
                ]
            )
            | st.binary(min_size=32, max_size=32).map(lambda b: base64.b64encode(b).decode())
        )
    if kind == "origin":
        return draw(st.sampled_from([ORIGIN, ORIGIN + " ", ORIGIN.upper(), "o" * 256, "", "\u00e9" * 200]))
    if kind == "extension":
        return draw(st.text(max_size=40).filter(lambda s: "\n" not in s))
    if kind == "borrowed" and lines:
        return draw(st.sampled_from(lines))
    if kind == "control":
        return draw(st.sampled_from(["\r", "a\tb", "\x00", "\x7f", "\x1b[0m", "\u2028", "\ufeff"]))
    name = draw(st.sampled_from(["station-a", "station-b", ORIGIN, "", "a+b", "a b", "n" * 256, "\u00e9"]))
    sig = draw(st.binary(max_size=90))
    prefix = draw(st.sampled_from([EM, EM, "\u2014", "- ", "-- ", "\u2013 ", EM + " "]))
    return f"{prefix}{name} {base64.b64encode(sig).decode()}"


@st.composite
def note_mutations(draw: st.DrawFn, data: bytes) -> bytes:
    """A signed note changed line by line (or byte by byte)."""
    text = data.decode("utf-8")
    lines = text.split("\n")
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["replace", "insert", "delete", "repeat", "many", "crlf", "bytes"]))
        i = draw(st.integers(0, max(len(lines) - 1, 0)))
        if op == "replace" and lines:
            lines[i] = draw(note_line(lines))
        elif op == "insert":
            lines.insert(i, draw(note_line(lines)))
        elif op == "delete" and lines:
            del lines[i]
        elif op == "repeat" and lines:
            lines.insert(i, lines[i])
        elif op == "many":
            count = draw(st.sampled_from([14, 15, 16, 17, 40]))
            lines[-1:-1] = [draw(note_line(lines)) for _ in range(count)]
        elif op == "crlf":
            return "\r\n".join(lines).encode()
        else:
            return draw(byte_mutations("\n".join(lines).encode()))
    return "\n".join(lines).encode("utf-8", "surrogatepass")


def notes_() -> st.SearchStrategy[bytes]:
    """Checkpoint notes, signed by the relay alone or cosigned by both stations, as sent and mutated."""
    c = corpus()
    pool = c.checkpoints + c.cosigned
    base = st.sampled_from(pool)
    return st.one_of(
        base, base.flatmap(note_mutations), base.flatmap(byte_mutations), junk(), st.binary(max_size=100).map(_noteish)
    )


def _noteish(b: bytes) -> bytes:
    return b + b"\n\n" + EM.encode() + b"x " + base64.b64encode(b) + b"\n"


@st.composite
def signature_lines(draw: st.DrawFn, cosigned: Sequence[str]) -> str:
    """A well-formed signature line: a station's real cosignature (of some checkpoint), or another key's."""
    if cosigned and draw(st.booleans()):
        return draw(st.sampled_from(list(cosigned)))
    name = draw(
        st.sampled_from(["station-a", "station-b", ORIGIN, "witness.example/w1"])
        | st.from_regex(r"[a-z]{1,8}", fullmatch=True)
    )
    signature = draw(st.binary(min_size=4 + 64, max_size=4 + 72))
    return f"{EM}{name} {base64.b64encode(signature).decode()}"


def _signer(line: str) -> tuple[str, bytes]:
    """The key (name and key ID) a well-formed signature line names."""
    name, _, signature = line.removeprefix(EM).partition(" ")
    return name, base64.b64decode(signature)[:4]


@st.composite
def relay_signed_notes(draw: st.DrawFn, c: Corpus | None = None) -> bytes:
    """Checkpoint notes that carry a good relay signature over a crafted text, and extra signature lines.

    A hostile relay signs what it likes: these pass the signature check and reach
    every check after it (origin, size, root, consistency, cosignatures). The
    latest checkpoints are drawn most, as a station's head is one of them.
    """
    c = c or corpus()
    relay = c.relay_identity
    assert relay is not None
    by_size = sorted(c.checkpoints, key=lambda n: notes.Checkpoint.parse(notes.parse_note(n).text).size)
    real = draw(st.sampled_from(by_size[-2:]) | st.sampled_from(by_size))
    cp = notes.Checkpoint.parse(notes.parse_note(real).text)
    size = draw(
        st.sampled_from([cp.size, cp.size, cp.size, cp.size - 1, cp.size + 1, 0, 1, 2**62, 2**63 - 1])
        | st.integers(0, 2**63 - 1)
    )
    root = draw(
        st.sampled_from([cp.root, cp.root, cp.root, bytes(32), merkle.EMPTY_ROOT]) | st.binary(min_size=32, max_size=32)
    )
    origin = draw(st.sampled_from([ORIGIN, ORIGIN, ORIGIN, "relay.example/other"]))
    extensions = draw(
        st.lists(st.sampled_from(["ext", "x" * 200, "\u00e9t\u00e9", "- extension"]), max_size=2) | st.just([])
    )
    text = notes.Checkpoint(origin, max(size, 0), root, tuple(extensions)).body()
    if draw(st.booleans()):
        text = cp.body()  # the real checkpoint: only the signature lines are crafted
    signature = notes.sign_note(text, ORIGIN, relay.signing_key).line()
    cosigned = [line for note in c.cosigned for line in note.decode().split("\n") if line.startswith(EM + "station")]
    count = draw(st.sampled_from([0, 0, 1, 1, 2, 3, 14, 15, 15, 16]))
    extra = [draw(signature_lines(cosigned)) for _ in range(count)]
    if draw(st.integers(0, 9)):
        extra = list({_signer(line): line for line in extra}.values())  # one line per key, mostly
    if draw(st.integers(0, 9)) == 0:
        extra.append(draw(note_line(extra)))  # and a broken one
    sigs = [signature, *[line + "\n" for line in extra]]
    if draw(st.integers(0, 3)) == 0:
        sigs.reverse()
    return (text + "\n" + "".join(sigs)).encode("utf-8", "surrogatepass")


@st.composite
def relay_signed_heads(draw: st.DrawFn) -> bytes:
    """Frames that carry a head (or a cosigned note) with a relay-signed crafted checkpoint."""
    c = corpus()
    note = draw(relay_signed_notes(c))
    proof = draw(st.lists(st.binary(min_size=32, max_size=32), max_size=3) | st.sampled_from([[bytes(32)] * 64, []]))
    head = Head(note, proof)
    kind = draw(st.sampled_from(["checkpoint", "welcome", "cosigned", "accepted", "deliver"]))
    if kind == "checkpoint":
        return encode_frame(CheckpointFrame(head))
    if kind == "welcome":
        return encode_frame(Welcome("relay", datetime(2026, 11, 26, 12, tzinfo=UTC), head))
    if kind == "cosigned":
        return encode_frame(Cosigned(note))
    # Put the head into a real accepted or deliver frame.
    frame = json.loads(draw(st.sampled_from(c.relay_frames["Accepted" if kind == "accepted" else "Deliver"])))
    frame["head"] = json.loads(_encode(head))
    return emit(frame)


# --- log leaves --------------------------------------------------------------------------------------


@st.composite
def leaves(draw: st.DrawFn) -> bytes:
    """Log entries (``u32 len || header || SHA-256(sealed) || signature``), as stored and mutated."""
    leaf = draw(st.sampled_from(corpus().leaves))
    n = int.from_bytes(leaf[:4], "big")
    header, rest = leaf[4 : 4 + n], leaf[4 + n :]
    how = draw(st.sampled_from(["as-is", "bytes", "header", "prefix", "tail"]))
    if how == "as-is":
        return leaf
    if how == "bytes":
        return draw(byte_mutations(leaf))
    if how == "header":
        new = draw(json_mutations(header) | one_field_mutated(header))
        fix = draw(st.booleans())
        return (len(new) if fix else n).to_bytes(4, "big") + new + rest
    if how == "prefix":
        value = draw(st.sampled_from([0, 1, n - 1, n + 1, 2**31, 2**32 - 1]))
        return value.to_bytes(4, "big") + leaf[4:]
    return leaf[: 4 + n] + draw(st.binary(max_size=100))


# --- Merkle proofs at any size ------------------------------------------------------------------------

LEAF = merkle.leaf_hash(b"every leaf but one")
SPECIAL = merkle.leaf_hash(b"the one leaf")


def _split(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


@functools.lru_cache(maxsize=4096)
def _uniform(count: int) -> bytes:
    """MTH of ``count`` leaves that are all LEAF."""
    if count == 1:
        return LEAF
    k = _split(count)
    return merkle.node_hash(_uniform(k), _uniform(count - k))


def mth(start: int, count: int, special: int) -> bytes:
    """MTH of leaves ``start .. start + count - 1``, all LEAF but the one at ``special`` (RFC 9162 2.1.1)."""
    if not start <= special < start + count:
        return _uniform(count)
    if count == 1:
        return SPECIAL
    k = _split(count)
    return merkle.node_hash(mth(start, k, special), mth(start + k, count - k, special))


def inclusion_path(m: int, start: int, n: int, special: int) -> list[bytes]:
    """PATH(m, D[start:start+n]) of RFC 9162 2.1.3.1, over the same leaves."""
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*inclusion_path(m, start, k, special), mth(start + k, n - k, special)]
    return [*inclusion_path(m - k, start + k, n - k, special), mth(start, k, special)]


def subproof(m: int, start: int, n: int, whole: bool, special: int) -> list[bytes]:
    """SUBPROOF(m, D[start:start+n], b) of RFC 9162 2.1.4.1, over the same leaves."""
    if m == n:
        return [] if whole else [mth(start, n, special)]
    k = _split(n)
    if m <= k:
        return [*subproof(m, start, k, whole, special), mth(start + k, n - k, special)]
    return [*subproof(m - k, start + k, n - k, False, special), mth(start, k, special)]


def big_sizes(lo: int = 1) -> st.SearchStrategy[int]:
    near = [2**k + d for k in range(64) for d in (-1, 0, 1)]
    near = [n for n in near if lo <= n <= merkle.MAX_TREE_SIZE]
    return st.one_of(
        st.integers(lo, 64), st.sampled_from(near), st.integers(lo, merkle.MAX_TREE_SIZE), st.just(merkle.MAX_TREE_SIZE)
    )


@dataclass(frozen=True)
class InclusionCase:
    leaf: bytes
    index: int
    size: int
    proof: list[bytes]
    root: bytes


@dataclass(frozen=True)
class ConsistencyCase:
    old_size: int
    new_size: int
    old_root: bytes
    new_root: bytes
    proof: list[bytes]


@st.composite
def inclusion_cases(draw: st.DrawFn) -> InclusionCase:
    """A correct inclusion proof in a tree of up to 2**63 - 1 leaves."""
    size = draw(big_sizes())
    index = draw(st.sampled_from([0, size - 1, size // 2]) | st.integers(0, size - 1))
    return InclusionCase(SPECIAL, index, size, inclusion_path(index, 0, size, index), mth(0, size, index))


@st.composite
def consistency_cases(draw: st.DrawFn) -> ConsistencyCase:
    """A correct consistency proof between two trees of up to 2**63 - 1 leaves."""
    new = draw(big_sizes())
    old = draw(st.sampled_from([1, new, new - 1 or 1, new // 2 or 1]) | st.integers(1, new))
    special = draw(st.sampled_from([old - 1, new - 1, 0]) | st.integers(0, new - 1))
    proof = subproof(old, 0, new, True, special)
    return ConsistencyCase(old, new, mth(0, old, special), mth(0, new, special), proof)


def any_objects() -> st.SearchStrategy[Any]:
    """Values of the wrong type, for the functions that check what they are given."""
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.sampled_from(INTERESTING_INTS),
        st.floats(),
        st.text(max_size=8),
        st.binary(max_size=40),
        st.lists(st.binary(min_size=32, max_size=32), max_size=3),
        st.just(math.inf),
        st.just(bytearray(32)),
        st.just(memoryview(bytes(32))),
    )


def proofs() -> st.SearchStrategy[Any]:
    """Crafted proofs: of every length up to past the limit, with hashes of the wrong length or type."""
    h = st.binary(min_size=32, max_size=32)
    return st.one_of(
        st.lists(h, max_size=70),
        st.lists(h, max_size=5).map(tuple),
        st.lists(st.binary(max_size=40) | st.text(max_size=3) | st.none() | st.just(bytearray(32)), max_size=5),
        st.sampled_from([[bytes(32)] * 64, [bytes(32)] * 65, [bytes(32)] * 100_000, "", b"", None, {}, set()]),
        st.binary(max_size=64),
    )


# --- hostile stations and peers --------------------------------------------------------------------

hex32s = st.binary(min_size=16, max_size=16).map(bytes.hex)
hex64s = st.binary(min_size=32, max_size=32).map(bytes.hex)
TIMESTAMPS = [0, 1, 1_795_000_000, 2**32, 2**63 - 1, 2**63, 2**64 - 1]


@st.composite
def station_signed_frames(draw: st.DrawFn, who: str, last_seq: int, checkpoints: Sequence[tuple[int, bytes]]) -> bytes:
    """Frames a hostile (authenticated) station signs with its own key, to get past the relay's signature checks.

    Submissions of crafted canonical headers (sequence numbers around the next,
    ids already logged, itself or a stranger as recipient, sealed bytes of any
    size up to past the limit), its own epoch keys with any content, and
    cosignatures of the relay's checkpoints (or none) at any timestamp.
    """
    c = corpus()
    me = c.identities[who]
    other = c.identities["b" if who == "a" else "a"]
    kind = draw(st.sampled_from(["submit", "submit", "publish", "cosign"]))
    if kind == "submit":
        logged_ids = [json.loads(h)["id"] for h in c.headers]
        header = Header(
            1,
            SUITE,
            draw(hex32s | st.sampled_from(logged_ids)),
            me.public.key_id,
            draw(st.sampled_from([other.public.key_id, other.public.key_id, me.public.key_id]) | hex64s),
            draw(st.sampled_from([last_seq + 1, last_seq + 1, last_seq, last_seq + 2, 1, 0, 2**53, 2**53 + 1])),
            draw(hex32s),
            draw(hex64s),
        )
        header_bytes = _encode(header)
        if draw(st.integers(0, 4)) == 0:
            header_bytes = draw(one_field_mutated(header_bytes))
        sealed = draw(st.binary(max_size=64) | st.sampled_from([b"\x00" * 32768, b"\x00" * 32769, b"\x00" * 47000]))
        message = hashlib.sha256(header_bytes).digest() + hashlib.sha256(sealed).digest()
        signatures = [Signature("ed25519", me.public.key_id, me.sign(ENVELOPE_LABEL, message))]
        extra = draw(
            st.sampled_from(
                [
                    [],
                    [Signature("ml-dsa-65", me.public.key_id, b"\x00" * 3309)],
                    [Signature("ed25519", other.public.key_id, bytes(64))],
                    [Signature("ed25519", "0" * 64, bytes(64))],
                    [Signature("ed25519", me.public.key_id, bytes(64))],
                ]
            )
        )
        signatures = [*extra, *signatures] if draw(st.booleans()) else [*signatures, *extra]
        return encode_frame(Submit(Envelope(header_bytes, sealed, signatures[:5])))
    if kind == "publish":
        count = draw(st.sampled_from([1, 1, 2, 8, 9]))
        keys = [json.loads(draw(signed_epoch_keys(who, resigned=True))[0]) for _ in range(count)]
        return emit({"type": "publish", "keys": keys})
    size, note = draw(st.sampled_from(list(checkpoints))) if checkpoints else (0, b"")
    size = draw(st.sampled_from([size, size, size + 1, 0, 2**62]))
    timestamp = draw(st.sampled_from(TIMESTAMPS))
    name = draw(st.sampled_from([f"station-{who}", f"station-{who}", "station-x"]))
    text = notes.parse_note(note).text if note else "x\n"
    kid = notes.key_id(name, notes.COSIGNATURE_V1, me.public.raw)
    signed = me.signing_key.sign(f"cosignature/v1\ntime {timestamp}\n{text}".encode()).signature
    signature = kid + timestamp.to_bytes(8, "big") + signed
    return encode_frame(Cosign(size, signature))


@st.composite
def peer_signed_keys(draw: st.DrawFn, peer: str) -> bytes:
    """``keys`` frames whose keys the peer itself signed, with any content, for the station to check."""
    c = corpus()
    station = draw(st.sampled_from([c.identities[peer].public.key_id] * 3) | hex64s)
    count = draw(st.sampled_from([0, 1, 1, 2, 8, 9]))
    keys = [json.loads(draw(signed_epoch_keys(peer, resigned=True))[0]) for _ in range(count)]
    return emit({"type": "keys", "station": station, "keys": keys})
