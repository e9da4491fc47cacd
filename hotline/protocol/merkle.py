"""
The relay's Merkle log: RFC 6962 / RFC 9162 tree hashes and their proofs.

Hashing. A leaf is hashed as SHA-256(0x00 || data) and an inner node as
SHA-256(0x01 || left || right). The two prefixes keep leaves and nodes in
separate domains, so nobody can present an inner node as a leaf (or the
reverse) and claim a second preimage. The tree over n leaves splits at the
largest power of two below n, so every tree is a row of perfect subtrees and
an append never changes a hash that has already been handed out.

Proof rules. A verifier is fed by the other side, so everything is checked
before any hashing: hashes are ``bytes`` of exactly 32, sizes and indices are
``int`` from 0 to 2**63 - 1, and a proof is a list or tuple of exactly the
length its sizes imply. That bound on sizes (a signed 64-bit integer, as
databases store it, and more entries than any log will hold) keeps every
honest proof within 64 hashes: the tree is at most 63 levels deep, and a
consistency proof takes at most one hash per level plus one. So a longer
proof is refused unread, and a crafted proof costs at most a few dozen hashes
and can neither hang nor allocate. A mismatch of any kind raises
``ProofError``; nothing here answers ``False``, which a caller could forget
to test. Hashes are compared with ``hmac.compare_digest`` so a forger learns
nothing from timing. The checks are those of RFC 9162 sections 2.1.3.2 and
2.1.4.2, computed as transparency-dev/merkle does (the hashes inside the
lowest common subtree, then those along the right border), which makes the
exact proof length known before the first hash.

An inclusion proof binds the leaf, its index and the root. It does not bind
the size on its own (a leaf can sit on the same path in trees of two sizes):
the size and the root must come together, from one signed checkpoint.

The empty tree. A consistency proof from size 0 is always refused, even to
size 0. The empty tree is a prefix of every tree, so such a "proof" is empty
and proves nothing; accepting it would let a witness start from a state
nobody signed. A witness starts from the first checkpoint it verifies
instead. This matches the transparency-dev test vectors. Equal non-zero sizes
need an empty proof and equal roots.

``Tree`` keeps every perfect subtree hash, one contiguous ``bytearray`` per
level, so it can answer for any past size without keeping old snapshots: a
million leaves take about 70 MB (64 bytes a leaf, plus the slack of growing
arrays), half of what the same hashes would take as ``bytes`` objects. ``root``, ``inclusion_proof`` and
``consistency_proof`` at module level are plain transcriptions of RFC 9162
section 2.1, kept as the reference that ``Tree`` is tested against.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence

from hotline.protocol.exceptions import ProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MAX_PROOF_LENGTH",
    "MAX_TREE_SIZE",
    "Tree",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

# A tree of at most 2**63 - 1 leaves is at most 63 levels deep: an inclusion
# proof has at most 63 hashes, a consistency proof at most 64 (one per level
# and the seed). Anything longer is refused before it is looked at. RFC 9162
# allows uint64 sizes, but a consistency proof near 2**64 would need 65.
MAX_PROOF_LENGTH = 64
MAX_TREE_SIZE = 2**63 - 1

_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """The RFC 6962 hash of one log entry: SHA-256(0x00 || data)."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The RFC 6962 hash of an inner node: SHA-256(0x01 || left || right)."""
    return _sha256(b"\x01" + left + right).digest()


# --- reference functions (RFC 9162 section 2.1, over a list of leaf hashes) ---


def _check_leaves(leaf_hashes: Sequence[bytes]) -> None:
    for h in leaf_hashes:
        if not isinstance(h, bytes) or len(h) != HASH_SIZE:
            raise ValueError(f"a leaf hash must be {HASH_SIZE} bytes, got {h!r:.80}")


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """The Merkle tree hash (MTH) of already-hashed leaves; ``EMPTY_ROOT`` for none."""
    _check_leaves(leaf_hashes)
    level = list(leaf_hashes)
    if not level:
        return EMPTY_ROOT
    sha = _sha256
    # Pairing from the left and carrying an odd last node up unchanged builds
    # exactly the RFC split-at-the-largest-power-of-two tree, without recursion.
    while len(level) > 1:
        paired = [sha(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) & 1:
            paired.append(level[-1])
        level = paired
    return level[0]


def _split(n: int) -> int:
    """The largest power of two strictly below ``n`` (n >= 2): where RFC 6962 splits a tree."""
    return 1 << ((n - 1).bit_length() - 1)


def _path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    # PATH(m, D[n]) of RFC 9162 section 2.1.3.1; the depth is at most 64.
    n = len(leaves)
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*_path(m, leaves[:k]), root(leaves[k:])]
    return [*_path(m - k, leaves[k:]), root(leaves[:k])]


def _subproof(m: int, leaves: Sequence[bytes], whole: bool) -> list[bytes]:
    # SUBPROOF(m, D[n], b) of RFC 9162 section 2.1.4.1; the depth is at most 64.
    n = len(leaves)
    if m == n:
        return [] if whole else [root(leaves)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, leaves[:k], whole), root(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], False), root(leaves[:k])]


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int, size: int | None = None) -> list[bytes]:
    """The inclusion proof of leaf ``index`` in the tree of the first ``size`` leaves (default: all)."""
    if size is None:
        size = len(leaf_hashes)
    if not 0 <= size <= len(leaf_hashes):
        raise ValueError(f"size {size} is outside 0..{len(leaf_hashes)}")
    if not 0 <= index < size:
        raise IndexError(f"leaf index {index} is not in a tree of size {size}")
    _check_leaves(leaf_hashes)
    return _path(index, leaf_hashes[:size])


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int, new_size: int) -> list[bytes]:
    """The proof that the tree of ``old_size`` leaves is a prefix of the one of ``new_size``.

    ``old_size`` must be at least 1 (see the module docstring); equal sizes give an empty proof.
    """
    if not 1 <= old_size <= new_size <= len(leaf_hashes):
        raise ValueError(
            f"consistency needs 1 <= old_size <= new_size <= {len(leaf_hashes)}, "
            f"got old_size {old_size} and new_size {new_size}"
        )
    _check_leaves(leaf_hashes)
    return _subproof(old_size, leaf_hashes[:new_size], True)


# --- verification (what the other side sends us) ---


def _check_hash(value: object, what: str) -> bytes:
    if not isinstance(value, bytes):
        raise ProofError(f"{what} must be bytes, got {type(value).__name__}")
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} must be {HASH_SIZE} bytes, got {len(value)}")
    return value


def _check_size(value: object, what: str) -> int:
    # bool is an int to Python, but True is no tree size.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProofError(f"{what} must be an int, got {type(value).__name__}")
    if not 0 <= value <= MAX_TREE_SIZE:
        raise ProofError(f"{what} {value} is outside 0..2**63-1")
    return value


def _check_proof(proof: object, want: int, what: str) -> tuple[bytes, ...]:
    # Only real lists and tuples: their len() is cheap and truthful, unlike an
    # arbitrary Sequence, which could raise or lie.
    if not isinstance(proof, list | tuple):
        raise ProofError(f"{what} must be a list or tuple of hashes, got {type(proof).__name__}")
    if len(proof) > MAX_PROOF_LENGTH:
        raise ProofError(f"{what} has {len(proof)} hashes, more than the {MAX_PROOF_LENGTH} any tree needs")
    if len(proof) != want:
        raise ProofError(f"{what} has {len(proof)} hashes where exactly {want} are needed")
    for i, p in enumerate(proof):
        if not isinstance(p, bytes) or len(p) != HASH_SIZE:
            # Raises; the message is built only on failure, as this loop is hot.
            _check_hash(p, f"{what} hash {i}")
    return tuple(proof)


def _decompose(index: int, size: int) -> tuple[int, int]:
    """How many proof hashes of leaf ``index`` in a tree of ``size`` lie below and on the right border.

    The ``inner`` hashes are siblings inside the perfect subtree that holds
    both the leaf and the last leaf; the ``border`` ones are the perfect
    subtrees to its left, one per set bit of the index above that level.
    """
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner, border


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    # Bit i of the index says whether the node at height i is a right child,
    # so whether its sibling (the proof hash) goes on the left.
    sha = _sha256
    for i, h in enumerate(proof):
        seed = sha(b"\x01" + h + seed).digest() if (index >> i) & 1 else sha(b"\x01" + seed + h).digest()
    return seed


def _chain_inner_right(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    # Only the siblings on the left belong to the old tree.
    sha = _sha256
    for i, h in enumerate(proof):
        if (index >> i) & 1:
            seed = sha(b"\x01" + h + seed).digest()
    return seed


def _chain_border(seed: bytes, proof: Sequence[bytes]) -> bytes:
    sha = _sha256
    for h in proof:
        seed = sha(b"\x01" + h + seed).digest()
    return seed


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` leaves with hash ``root``.

    This is the RFC 9162 section 2.1.3.2 check, with the proof length fixed
    in advance (see the module docstring). Raises ``ProofError`` if anything is wrong; returns nothing.
    """
    index = _check_size(index, "leaf index")
    size = _check_size(size, "tree size")
    if size == 0:
        raise ProofError("the empty tree has no leaves to prove")
    if index >= size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    leaf = _check_hash(leaf_hash, "leaf hash")
    want_root = _check_hash(root, "root")
    inner, border = _decompose(index, size)
    hashes = _check_proof(proof, inner + border, "inclusion proof")
    got = _chain_border(_chain_inner(leaf, hashes[:inner], index), hashes[inner:])
    if not hmac.compare_digest(got, want_root):
        raise ProofError(f"inclusion proof of leaf {index} does not lead to the root of the tree of size {size}")


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> None:
    """Check that the tree of ``old_size`` leaves and ``old_root`` is a prefix of the newer one.

    This is the RFC 9162 section 2.1.4.2 check, with the proof length fixed
    in advance. ``old_size`` 0 is refused (see the module docstring). Raises
    ``ProofError`` if anything is wrong; returns nothing.
    """
    old_size = _check_size(old_size, "old tree size")
    new_size = _check_size(new_size, "new tree size")
    if old_size == 0:
        raise ProofError("a consistency proof from the empty tree proves nothing; start from a signed checkpoint")
    if old_size > new_size:
        raise ProofError(f"the old tree size {old_size} is larger than the new one {new_size}")
    old = _check_hash(old_root, "old root")
    new = _check_hash(new_root, "new root")
    if old_size == new_size:
        _check_proof(proof, 0, "consistency proof between equal sizes")
        if not hmac.compare_digest(old, new):
            raise ProofError(f"two different roots for the same tree size {old_size}")
        return

    # Both trees share the perfect subtree that ends the old tree; the proof
    # starts from its hash, unless the old tree is that subtree and the old
    # root already is the hash.
    shift = (old_size & -old_size).bit_length() - 1
    inner, border = _decompose(old_size - 1, new_size)
    inner -= shift
    with_seed = old_size != 1 << shift
    hashes = _check_proof(proof, int(with_seed) + inner + border, "consistency proof")
    if with_seed:
        seed, hashes = hashes[0], hashes[1:]
    else:
        seed = old
    mask = (old_size - 1) >> shift
    got_old = _chain_border(_chain_inner_right(seed, hashes[:inner], mask), hashes[inner:])
    if not hmac.compare_digest(got_old, old):
        raise ProofError(f"consistency proof does not lead to the old root of size {old_size}")
    got_new = _chain_border(_chain_inner(seed, hashes[:inner], mask), hashes[inner:])
    if not hmac.compare_digest(got_new, new):
        raise ProofError(f"consistency proof does not lead to the new root of size {new_size}")


# --- the incremental tree ---


class Tree:
    """An append-only Merkle tree that answers for its current size and every past one.

    Level ``k`` holds, in one ``bytearray``, the hash of every perfect subtree
    of ``2**k`` leaves completed so far, in order: level 0 is the leaf hashes.
    A past tree is a row of perfect subtrees, all of them stored, so a root or
    a proof at any past size costs O(log n) lookups and a few hashes.
    """

    __slots__ = ("_levels", "_size")

    def __init__(self) -> None:
        # Every level up front (MAX_TREE_SIZE needs 63 above the leaves) so
        # append never has to test whether a level exists.
        self._levels: list[bytearray] = [bytearray() for _ in range(64)]
        self._size = 0

    @classmethod
    def from_leaf_hashes(cls, leaf_hashes: Iterable[bytes]) -> Tree:
        """A tree holding ``leaf_hashes`` in order."""
        tree = cls()
        append = tree.append
        for h in leaf_hashes:
            append(h)
        return tree

    @property
    def size(self) -> int:
        """The number of leaves."""
        return self._size

    def append(self, leaf_hash: bytes) -> int:
        """Add a leaf hash (see ``leaf_hash()``); returns its index."""
        if type(leaf_hash) is not bytes or len(leaf_hash) != HASH_SIZE:
            raise ValueError(f"a leaf hash must be {HASH_SIZE} bytes, got {leaf_hash!r:.80}")
        index = self._size
        levels = self._levels
        levels[0] += leaf_hash
        self._size = index + 1
        # Each trailing 1 bit of the index is a perfect subtree this leaf
        # completes; its two halves are the last 64 bytes of the level below.
        # A loop, not recursion, with locals only: this runs a million times.
        n = index
        level = 0
        sha = _sha256
        while n & 1:
            lower = levels[level]
            level += 1
            n >>= 1
            levels[level] += sha(b"\x01" + lower[-64:]).digest()
        return index

    def leaf_hash(self, index: int) -> bytes:
        """The leaf hash at ``index``."""
        if not 0 <= index < self._size:
            raise IndexError(f"leaf index {index} is not in a tree of size {self._size}")
        start = index * HASH_SIZE
        return bytes(self._levels[0][start : start + HASH_SIZE])

    def _size_or_current(self, size: int | None, what: str) -> int:
        if size is None:
            return self._size
        if not 0 <= size <= self._size:
            raise ValueError(f"{what} {size} is outside 0..{self._size}")
        return size

    def _range_hash(self, start: int, end: int) -> bytes:
        """MTH of leaves ``start..end-1``, where ``start`` is aligned to a power of two >= the count.

        Every subtree in an RFC proof is of that form. The range is a row of
        perfect subtrees, one per set bit of its length, largest first; they
        are folded from the right as the RFC tree nests them.
        """
        levels = self._levels
        sha = _sha256
        count = end - start
        result = b""
        while count:
            low = count & -count
            level = low.bit_length() - 1
            end -= low
            count -= low
            at = (end >> level) * HASH_SIZE
            node = bytes(levels[level][at : at + HASH_SIZE])
            result = sha(b"\x01" + node + result).digest() if result else node
        return result

    def _path(self, level: int, position: int, size: int) -> list[bytes]:
        """The siblings, bottom up, of the node ``position`` of ``level`` up to the root of tree ``size``.

        This is PATH of RFC 9162 section 2.1.3.1 read from the bottom (the
        order the RFC lists it in). At each level the sibling is a stored
        perfect subtree, or the unfinished right edge of the tree, or missing
        (the node is the right edge and rises alone). Only one sibling can be
        the unfinished edge: past it, the path runs along the edge.
        """
        levels = self._levels
        proof: list[bytes] = []
        last = (size - 1) >> level
        while last:
            sibling = position ^ 1
            first = sibling << level
            if first + (1 << level) <= size:
                at = sibling * HASH_SIZE
                proof.append(bytes(levels[level][at : at + HASH_SIZE]))
            elif first < size:
                proof.append(self._range_hash(first, size))
            position >>= 1
            last >>= 1
            level += 1
        return proof

    def root(self, size: int | None = None) -> bytes:
        """The root of the tree of the first ``size`` leaves (default: all)."""
        size = self._size_or_current(size, "tree size")
        if size == 0:
            return EMPTY_ROOT
        return self._range_hash(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """The RFC 9162 inclusion proof of leaf ``index`` in the tree of ``size`` leaves (default: all)."""
        size = self._size_or_current(size, "tree size")
        if not 0 <= index < size:
            raise IndexError(f"leaf index {index} is not in a tree of size {size}")
        return self._path(0, index, size)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """The RFC 9162 proof that the tree of ``old_size`` is a prefix of that of ``new_size``.

        ``new_size`` defaults to the current size.

        ``old_size`` must be at least 1 (see the module docstring); equal
        sizes give an empty proof.
        """
        new_size = self._size_or_current(new_size, "new tree size")
        if not 1 <= old_size <= new_size:
            raise ValueError(f"consistency needs 1 <= old_size <= {new_size}, got {old_size}")
        if old_size == new_size:
            return []
        # SUBPROOF of RFC 9162 section 2.1.4.1 comes down to this: the largest
        # perfect subtree that ends the old tree, then its path in the new
        # tree. The subtree's hash is left out when it is the old tree
        # itself, as the verifier holds that root already.
        level = (old_size & -old_size).bit_length() - 1
        position = (old_size - 1) >> level
        proof = self._path(level, position, new_size)
        if position:
            at = position * HASH_SIZE
            proof.insert(0, bytes(self._levels[level][at : at + HASH_SIZE]))
        return proof
