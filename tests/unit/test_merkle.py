"""Properties and edge cases of hotline.protocol.merkle.

The module-level reference functions transcribe RFC 9162 directly; Tree is
checked against them, and both against the verifiers. The published vectors
are in test_merkle_vectors.py.
"""

from __future__ import annotations

import hashlib
import time
import tracemalloc
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.protocol.exceptions import ProofError, VerificationError
from hotline.protocol.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    MAX_PROOF_LENGTH,
    MAX_TREE_SIZE,
    Tree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

MAX_LEAVES = 300

# The leaves, the tree built from them, and two numbers (an index and a size, or two sizes).
Case = tuple[list[bytes], Tree, int, int]


def _leaves(n: int, salt: bytes = b"") -> list[bytes]:
    return [leaf_hash(salt + i.to_bytes(4, "big")) for i in range(n)]


def _flip(value: bytes, bit: int) -> bytes:
    bit %= len(value) * 8
    out = bytearray(value)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def _inclusion_length(index: int, size: int) -> int:
    # Independent of the proofs: the depth of the leaf's path in the RFC tree.
    depth = 0
    lo, hi = 0, size
    while hi - lo > 1:
        k = 1 << ((hi - lo - 1).bit_length() - 1)
        lo, hi = (lo, lo + k) if index < lo + k else (lo + k, hi)
        depth += 1
    return depth


def _consistency_length(old: int, new: int) -> int:
    # Walks SUBPROOF(m, D[n], true) of RFC 9162 counting its hashes.
    count, lo, hi, whole = 0, 0, new, True
    while old != hi:
        k = 1 << ((hi - lo - 1).bit_length() - 1)
        if old <= lo + k:
            hi = lo + k
        else:
            lo, whole = lo + k, False
        count += 1
    return count + (0 if whole else 1)


LEAVES = _leaves(64)
TREE = Tree.from_leaf_hashes(LEAVES)
ROOTS = [root(LEAVES[:m]) for m in range(65)]

salts = st.binary(max_size=8)


@st.composite
def tree_index_size(draw: st.DrawFn) -> Case:
    """A tree of 1..MAX_LEAVES leaves, a past size m and an index below m."""
    n = draw(st.integers(1, MAX_LEAVES))
    leaves = _leaves(n, draw(salts))
    m = draw(st.integers(1, n))
    i = draw(st.integers(0, m - 1))
    return leaves, Tree.from_leaf_hashes(leaves), i, m


@st.composite
def tree_two_sizes(draw: st.DrawFn) -> Case:
    """A tree of 1..MAX_LEAVES leaves and two past sizes 1 <= old <= new."""
    n = draw(st.integers(1, MAX_LEAVES))
    leaves = _leaves(n, draw(salts))
    new = draw(st.integers(1, n))
    old = draw(st.integers(1, new))
    return leaves, Tree.from_leaf_hashes(leaves), old, new


# --- hashing ---


def test_hashes_are_rfc_6962() -> None:
    assert HASH_SIZE == 32
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT
    assert leaf_hash(b"").hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    assert node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()
    # The prefixes keep a leaf apart from a node made of the same bytes.
    assert leaf_hash(a + b) != node_hash(a, b)


def test_root_of_none_and_one() -> None:
    assert root([]) == EMPTY_ROOT
    assert Tree().root() == EMPTY_ROOT
    assert Tree().size == 0
    h = leaf_hash(b"x")
    assert root([h]) == h
    assert Tree.from_leaf_hashes([h]).root() == h
    assert Tree.from_leaf_hashes([h]).root(0) == EMPTY_ROOT


# --- exhaustive on small trees ---


def test_every_proof_of_every_small_tree() -> None:
    for n in range(1, 65):
        for i in range(n):
            proof = TREE.inclusion_proof(i, n)
            assert proof == inclusion_proof(LEAVES, i, n)
            assert len(proof) == _inclusion_length(i, n)
            verify_inclusion(LEAVES[i], i, n, proof, ROOTS[n])
        for m in range(1, n + 1):
            proof = TREE.consistency_proof(m, n)
            assert proof == consistency_proof(LEAVES, m, n)
            assert len(proof) == _consistency_length(m, n)
            verify_consistency(m, n, ROOTS[m], ROOTS[n], proof)
        assert TREE.root(n) == ROOTS[n]


# --- properties on random trees ---


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, MAX_LEAVES), salt=salts, data=st.data())
def test_every_index_verifies_at_sampled_sizes(n: int, salt: bytes, data: st.DataObject) -> None:
    leaves = _leaves(n, salt)
    tree = Tree.from_leaf_hashes(leaves)
    for i in range(n):
        for m in {n, data.draw(st.integers(i + 1, n), label=f"size for {i}")}:
            verify_inclusion(leaves[i], i, m, tree.inclusion_proof(i, m), tree.root(m))


@settings(max_examples=150, deadline=None)
@given(case=tree_two_sizes())
def test_consistency_verifies_between_any_sizes(case: Case) -> None:
    leaves, tree, old, new = case
    proof = tree.consistency_proof(old, new)
    assert proof == consistency_proof(leaves, old, new)
    verify_consistency(old, new, root(leaves[:old]), root(leaves[:new]), proof)
    if new == tree.size:
        assert tree.consistency_proof(old) == proof


@settings(max_examples=150, deadline=None)
@given(case=tree_index_size())
def test_tree_matches_reference(case: Case) -> None:
    leaves, tree, i, m = case
    assert tree.size == len(leaves)
    assert tree.root(m) == root(leaves[:m])
    assert tree.root() == root(leaves)
    assert tree.leaf_hash(i) == leaves[i]
    proof = tree.inclusion_proof(i, m)
    assert proof == inclusion_proof(leaves, i, m)
    assert tree.inclusion_proof(i) == inclusion_proof(leaves, i)
    verify_inclusion(leaves[i], i, m, proof, tree.root(m))


@settings(max_examples=150, deadline=None)
@given(case=tree_index_size(), target=st.integers(0, 1000), bit=st.integers(0, 255))
def test_inclusion_refuses_any_bit_flip(case: Case, target: int, bit: int) -> None:
    leaves, tree, i, m = case
    leaf, proof, r = leaves[i], tree.inclusion_proof(i, m), tree.root(m)
    where = target % (len(proof) + 2)
    if where == len(proof):
        leaf = _flip(leaf, bit)
    elif where == len(proof) + 1:
        r = _flip(r, bit)
    else:
        proof[where] = _flip(proof[where], bit)
    with pytest.raises(ProofError):
        verify_inclusion(leaf, i, m, proof, r)


@settings(max_examples=150, deadline=None)
@given(case=tree_two_sizes(), target=st.integers(0, 1000), bit=st.integers(0, 255))
def test_consistency_refuses_any_bit_flip(case: Case, target: int, bit: int) -> None:
    _, tree, old, new = case
    proof, old_root, new_root = tree.consistency_proof(old, new), tree.root(old), tree.root(new)
    where = target % (len(proof) + 2)
    if where == len(proof):
        old_root = _flip(old_root, bit)
    elif where == len(proof) + 1:
        new_root = _flip(new_root, bit)
    else:
        proof[where] = _flip(proof[where], bit)
    with pytest.raises(ProofError):
        verify_consistency(old, new, old_root, new_root, proof)


@settings(max_examples=150, deadline=None)
@given(case=tree_index_size(), data=st.data())
def test_inclusion_refuses_another_index_or_size(case: Case, data: st.DataObject) -> None:
    leaves, tree, i, m = case
    proof = tree.inclusion_proof(i, m)
    other = data.draw(st.integers(-2, m + 2).filter(lambda j: j != i), label="other index")
    with pytest.raises(ProofError):
        verify_inclusion(leaves[i], other, m, proof, tree.root(m))
    # A claimed size comes with its own root (both from one checkpoint).
    others = [s for s in range(i + 1, tree.size + 1) if s != m]
    if others:
        size = data.draw(st.sampled_from(others), label="other size")
        with pytest.raises(ProofError):
            verify_inclusion(leaves[i], i, size, proof, tree.root(size))


@settings(max_examples=150, deadline=None)
@given(case=tree_two_sizes(), data=st.data())
def test_consistency_refuses_other_sizes(case: Case, data: st.DataObject) -> None:
    _, tree, old, new = case
    proof = tree.consistency_proof(old, new)
    # Each claimed size comes with its own root (both from one checkpoint).
    if tree.size == 1:
        return
    other_old = data.draw(st.integers(1, tree.size).filter(lambda s: s != old), label="other old")
    other_new = data.draw(st.integers(1, tree.size).filter(lambda s: s != new), label="other new")
    with pytest.raises(ProofError):
        verify_consistency(other_old, new, tree.root(other_old), tree.root(new), proof)
    with pytest.raises(ProofError):
        verify_consistency(old, other_new, tree.root(old), tree.root(other_new), proof)


def test_inclusion_proof_alone_does_not_bind_the_size() -> None:
    """Documented limit: leaf 0 has the same path in trees of 3 and 4 leaves.

    So a verifier must take the size and the root from the same signed
    checkpoint; with the honest root of size 4 the proof is refused.
    """
    proof = TREE.inclusion_proof(0, 3)
    verify_inclusion(LEAVES[0], 0, 4, proof, ROOTS[3])
    with pytest.raises(ProofError):
        verify_inclusion(LEAVES[0], 0, 4, proof, ROOTS[4])


# --- garbage from the other side ---

sizes = st.one_of(
    st.integers(0, 2**63),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, 1, 2, 2**62, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -1]),
)
anything = st.one_of(st.none(), st.booleans(), st.floats(), st.text(max_size=4), st.binary(max_size=4))
hashes = st.one_of(st.binary(min_size=32, max_size=32), st.binary(max_size=40), anything)
proofs = st.one_of(
    st.lists(st.binary(min_size=32, max_size=32), max_size=70),
    st.lists(hashes, max_size=70),
    st.tuples(st.binary(min_size=32, max_size=32)),
    anything,
)


def _refused_promptly(call: Callable[..., None], *args: object) -> bool:
    start = time.perf_counter()
    try:
        call(*args)
    except ProofError:
        accepted = False
    else:
        accepted = True
    assert time.perf_counter() - start < 1.0
    return not accepted


@settings(max_examples=400, deadline=None)
@given(leaf=hashes, index=st.one_of(sizes, anything), size=st.one_of(sizes, anything), proof=proofs, r=hashes)
def test_garbage_inclusion_raises_only_proof_error(
    leaf: object, index: object, size: object, proof: object, r: object
) -> None:
    if not _refused_promptly(verify_inclusion, leaf, index, size, proof, r):
        # The one way random input can verify: a lone leaf that is its own root.
        assert isinstance(proof, list | tuple)
        assert (index, size, len(proof), leaf) == (0, 1, 0, r)


@settings(max_examples=400, deadline=None)
@given(old=st.one_of(sizes, anything), new=st.one_of(sizes, anything), r1=hashes, r2=hashes, proof=proofs)
def test_garbage_consistency_raises_only_proof_error(
    old: object, new: object, r1: object, r2: object, proof: object
) -> None:
    if not _refused_promptly(verify_consistency, old, new, r1, r2, proof):
        # The one way random input can verify: equal sizes, equal roots, no proof.
        assert old == new
        assert proof in ([], ())
        assert r1 == r2


@settings(max_examples=200, deadline=None)
@given(data=st.data(), size=st.integers(1, MAX_TREE_SIZE))
def test_random_proofs_of_the_right_length_at_huge_sizes(data: st.DataObject, size: int) -> None:
    index = data.draw(st.integers(0, size - 1), label="index")
    old = data.draw(st.integers(1, size), label="old size")
    h32 = st.binary(min_size=32, max_size=32)
    n = _inclusion_length(index, size)
    proof = data.draw(st.lists(h32, min_size=n, max_size=n), label="inclusion proof")
    leaf, r = data.draw(h32, label="leaf"), data.draw(h32, label="root")
    if size > 1 or leaf != r:
        assert _refused_promptly(verify_inclusion, leaf, index, size, proof, r)
    n = _consistency_length(old, size)
    proof = data.draw(st.lists(h32, min_size=n, max_size=n), label="consistency proof")
    r1, r2 = data.draw(h32, label="old root"), data.draw(h32, label="new root")
    if old != size or r1 != r2:
        assert _refused_promptly(verify_consistency, old, size, r1, r2, proof)


# --- explicit edge cases of the verifiers ---

H = leaf_hash(b"h")


def test_proof_error_is_a_verification_error() -> None:
    with pytest.raises(VerificationError):
        verify_inclusion(H, 0, 0, [], H)


def test_single_leaf_tree() -> None:
    verify_inclusion(H, 0, 1, [], H)
    verify_consistency(1, 1, H, H, [])
    verify_consistency(1, 1, H, H, ())
    with pytest.raises(ProofError, match="exactly 0"):
        verify_inclusion(H, 0, 1, [H], H)
    with pytest.raises(ProofError, match="does not lead"):
        verify_inclusion(H, 0, 1, [], leaf_hash(b"other"))


@pytest.mark.parametrize(
    ("index", "size", "match"),
    [
        (0, 0, "empty tree"),
        (1, 0, "empty tree"),
        (1, 1, "not in a tree"),
        (8, 8, "not in a tree"),
        (9, 8, "not in a tree"),
        (-1, 8, "outside"),
        (0, -1, "outside"),
        (0, 2**63, "outside"),
        (0, 2**64, "outside"),
        (2**63, 2**63 - 1, "outside"),
        (True, 8, "must be an int"),
        (0, True, "must be an int"),
        (0.0, 8, "must be an int"),
        ("0", 8, "must be an int"),
        (None, 8, "must be an int"),
    ],
)
def test_inclusion_bad_index_or_size(index: object, size: object, match: str) -> None:
    with pytest.raises(ProofError, match=match):
        verify_inclusion(H, index, size, [], H)  # type: ignore[arg-type]


def test_inclusion_at_the_largest_size() -> None:
    # The longest honest inclusion proof has 63 hashes, each checked.
    assert MAX_TREE_SIZE == 2**63 - 1
    with pytest.raises(ProofError, match="does not lead"):
        verify_inclusion(H, 0, MAX_TREE_SIZE, [H] * 63, H)
    with pytest.raises(ProofError, match="exactly 63"):
        verify_inclusion(H, 0, MAX_TREE_SIZE, [H] * 64, H)
    with pytest.raises(ProofError, match="exactly 62"):
        verify_inclusion(H, MAX_TREE_SIZE - 1, MAX_TREE_SIZE, [H] * 63, H)


def test_proof_lengths() -> None:
    proof = TREE.inclusion_proof(5, 8)
    verify_inclusion(LEAVES[5], 5, 8, proof, ROOTS[8])
    with pytest.raises(ProofError, match="exactly 3"):
        verify_inclusion(LEAVES[5], 5, 8, proof[:-1], ROOTS[8])
    with pytest.raises(ProofError, match="exactly 3"):
        verify_inclusion(LEAVES[5], 5, 8, [*proof, proof[0]], ROOTS[8])
    with pytest.raises(ProofError, match="exactly 3"):
        verify_inclusion(LEAVES[5], 5, 8, [], ROOTS[8])
    # 64 is allowed in principle (then only the exact length counts), 65 never.
    with pytest.raises(ProofError, match="exactly 3"):
        verify_inclusion(LEAVES[5], 5, 8, [H] * MAX_PROOF_LENGTH, ROOTS[8])
    with pytest.raises(ProofError, match="more than the 64"):
        verify_inclusion(LEAVES[5], 5, 8, [H] * 65, ROOTS[8])
    with pytest.raises(ProofError, match="more than the 64"):
        verify_consistency(3, 8, ROOTS[3], ROOTS[8], [H] * 65)


def test_huge_proof_is_refused_before_it_is_read() -> None:
    proof = [b"not even a hash"] * 1_000_000
    start = time.perf_counter()
    with pytest.raises(ProofError, match="more than"):
        verify_inclusion(H, 0, MAX_TREE_SIZE, proof, H)
    with pytest.raises(ProofError, match="more than"):
        verify_consistency(1, MAX_TREE_SIZE, H, H, proof)
    assert time.perf_counter() - start < 0.1


@pytest.mark.parametrize(
    "bad",
    [b"", b"\x00" * 31, b"\x00" * 33, bytearray(32), memoryview(bytes(32)), "a" * 32, None, 0, [H]],
    ids=["empty", "31", "33", "bytearray", "memoryview", "str", "None", "int", "list"],
)
def test_wrong_hashes_are_refused(bad: object) -> None:
    proof = TREE.inclusion_proof(5, 8)
    with pytest.raises(ProofError, match="leaf hash"):
        verify_inclusion(bad, 5, 8, proof, ROOTS[8])  # type: ignore[arg-type]
    with pytest.raises(ProofError, match="root"):
        verify_inclusion(LEAVES[5], 5, 8, proof, bad)  # type: ignore[arg-type]
    with pytest.raises(ProofError, match="hash 1"):
        verify_inclusion(LEAVES[5], 5, 8, [proof[0], bad, proof[2]], ROOTS[8])  # type: ignore[list-item]
    cproof = TREE.consistency_proof(3, 8)
    with pytest.raises(ProofError, match="old root"):
        verify_consistency(3, 8, bad, ROOTS[8], cproof)  # type: ignore[arg-type]
    with pytest.raises(ProofError, match="new root"):
        verify_consistency(3, 8, ROOTS[3], bad, cproof)  # type: ignore[arg-type]
    with pytest.raises(ProofError, match="hash 0"):
        verify_consistency(3, 8, ROOTS[3], ROOTS[8], [bad, *cproof[1:]])  # type: ignore[list-item]
    with pytest.raises(ProofError, match="old root"):
        verify_consistency(1, 1, bad, bad, [])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad",
    [None, b"", H, "proof", iter([H]), range(3), {H: H}, {H}],
    ids=["None", "bytes", "hash", "str", "iterator", "range", "dict", "set"],
)
def test_proof_must_be_a_list_or_tuple(bad: object) -> None:
    with pytest.raises(ProofError, match="list or tuple"):
        verify_inclusion(H, 0, 1, bad, H)  # type: ignore[arg-type]
    with pytest.raises(ProofError, match="list or tuple"):
        verify_consistency(1, 1, H, H, bad)  # type: ignore[arg-type]
    with pytest.raises(ProofError, match="list or tuple"):
        verify_consistency(3, 8, ROOTS[3], ROOTS[8], bad)  # type: ignore[arg-type]


def test_consistency_from_the_empty_tree_is_refused() -> None:
    # Project rule: nothing is consistent with size 0, not even size 0.
    for new in (0, 1, 8):
        with pytest.raises(ProofError, match="empty tree"):
            verify_consistency(0, new, EMPTY_ROOT, ROOTS[new], [])
    with pytest.raises(ProofError, match="empty tree"):
        verify_consistency(0, 8, EMPTY_ROOT, ROOTS[8], TREE.consistency_proof(1, 8))


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        (2, 1, "larger than"),
        (8, 7, "larger than"),
        (-1, 8, "outside"),
        (1, -1, "outside"),
        (1, 2**63, "outside"),
        (2**63, 2**63, "outside"),
        (False, 8, "must be an int"),
        (1, 8.0, "must be an int"),
    ],
)
def test_consistency_bad_sizes(old: object, new: object, match: str) -> None:
    with pytest.raises(ProofError, match=match):
        verify_consistency(old, new, ROOTS[1], ROOTS[8], TREE.consistency_proof(1, 8))  # type: ignore[arg-type]


def test_consistency_equal_sizes() -> None:
    verify_consistency(8, 8, ROOTS[8], ROOTS[8], [])
    with pytest.raises(ProofError, match="exactly 0"):
        verify_consistency(8, 8, ROOTS[8], ROOTS[8], [ROOTS[8]])
    with pytest.raises(ProofError, match="two different roots"):
        verify_consistency(8, 8, ROOTS[8], ROOTS[7], [])


def test_consistency_wrong_roots_and_lengths() -> None:
    # 3 -> 8 carries a seed hash; 4 -> 8 starts from the old root itself.
    for old in (3, 4):
        proof = TREE.consistency_proof(old, 8)
        verify_consistency(old, 8, ROOTS[old], ROOTS[8], proof)
        # From a power of two the old root is the seed itself, so a wrong
        # one shows only in the new root.
        with pytest.raises(ProofError, match="old root" if old == 3 else "new root"):
            verify_consistency(old, 8, ROOTS[5], ROOTS[8], proof)
        with pytest.raises(ProofError, match="new root"):
            verify_consistency(old, 8, ROOTS[old], ROOTS[7], proof)
        with pytest.raises(ProofError, match="exactly"):
            verify_consistency(old, 8, ROOTS[old], ROOTS[8], proof[1:])
        with pytest.raises(ProofError, match="exactly"):
            verify_consistency(old, 8, ROOTS[old], ROOTS[8], [*proof, H])
        with pytest.raises(ProofError, match="exactly"):
            verify_consistency(old, 8, ROOTS[old], ROOTS[8], [])


def test_consistency_at_the_largest_sizes() -> None:
    # The longest honest consistency proofs have exactly MAX_PROOF_LENGTH hashes.
    for old in (3, 2**62 + 1, MAX_TREE_SIZE - 2):
        assert _consistency_length(old, MAX_TREE_SIZE) == MAX_PROOF_LENGTH
        with pytest.raises(ProofError, match="does not lead"):
            verify_consistency(old, MAX_TREE_SIZE, H, H, [H] * MAX_PROOF_LENGTH)
    with pytest.raises(ProofError, match="does not lead"):
        verify_consistency(1, MAX_TREE_SIZE, H, H, [H] * _consistency_length(1, MAX_TREE_SIZE))


# --- the Tree and the reference functions: local misuse is not a ProofError ---


def test_tree_append_returns_indices_and_keeps_leaves() -> None:
    tree = Tree()
    for i, h in enumerate(LEAVES[:10]):
        assert tree.append(h) == i
        assert tree.size == i + 1
    assert [tree.leaf_hash(i) for i in range(10)] == LEAVES[:10]
    assert Tree.from_leaf_hashes(iter(LEAVES[:10])).root() == tree.root() == ROOTS[10]


@pytest.mark.parametrize(
    "bad",
    [b"", b"\x00" * 31, b"\x00" * 33, bytearray(32), "a" * 32, None, 7],
    ids=["empty", "31", "33", "bytearray", "str", "None", "int"],
)
def test_tree_append_refuses_non_hashes(bad: object) -> None:
    tree = Tree.from_leaf_hashes(LEAVES[:3])
    with pytest.raises(ValueError, match="32 bytes"):
        tree.append(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="32 bytes"):
        root([*LEAVES[:3], bad])  # type: ignore[list-item]
    # A refused append leaves the tree as it was.
    assert tree.size == 3
    assert tree.root() == ROOTS[3]


def test_tree_index_and_size_misuse() -> None:
    tree = Tree.from_leaf_hashes(LEAVES[:8])
    for index in (-1, 8):
        with pytest.raises(IndexError):
            tree.leaf_hash(index)
        with pytest.raises(IndexError):
            tree.inclusion_proof(index)
    for size in (-1, 9):
        with pytest.raises(ValueError, match="outside"):
            tree.root(size)
        with pytest.raises(ValueError, match="outside"):
            tree.inclusion_proof(0, size)
        with pytest.raises(ValueError, match="outside"):
            tree.consistency_proof(1, size)
    with pytest.raises(IndexError):
        tree.inclusion_proof(0, 0)
    with pytest.raises(IndexError):
        tree.inclusion_proof(5, 5)
    for old, new in ((0, 8), (0, 0), (5, 4), (-1, 8)):
        with pytest.raises(ValueError, match="old_size"):
            tree.consistency_proof(old, new)
    with pytest.raises(ValueError, match="old_size"):
        tree.consistency_proof(9)
    assert tree.consistency_proof(8) == []
    assert tree.consistency_proof(3, 3) == []
    assert tree.inclusion_proof(0, 1) == []
    with pytest.raises(IndexError):
        Tree().inclusion_proof(0)


def test_reference_misuse() -> None:
    leaves = LEAVES[:8]
    with pytest.raises(ValueError, match="outside"):
        inclusion_proof(leaves, 0, 9)
    with pytest.raises(ValueError, match="outside"):
        inclusion_proof(leaves, 0, -1)
    for index in (-1, 8):
        with pytest.raises(IndexError):
            inclusion_proof(leaves, index)
    with pytest.raises(IndexError):
        inclusion_proof(leaves, 0, 0)
    for old, new in ((0, 8), (0, 0), (5, 4), (1, 9)):
        with pytest.raises(ValueError, match="old_size"):
            consistency_proof(leaves, old, new)
    with pytest.raises(ValueError, match="32 bytes"):
        inclusion_proof([*leaves, b"short"], 0)
    with pytest.raises(ValueError, match="32 bytes"):
        consistency_proof([*leaves, b"short"], 1, 9)
    assert consistency_proof(leaves, 8, 8) == []


def test_tree_memory_is_compact() -> None:
    # Two levels' worth of 32-byte hashes per leaf, plus bytearray slack:
    # far from the ~140 bytes per leaf a list of bytes objects would take.
    n = 1 << 15
    leaves = _leaves(n)
    tracemalloc.start()
    try:
        tree = Tree.from_leaf_hashes(leaves)
        current, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert tree.size == n
    assert current < n * 80
    assert tree.root() == root(leaves)
