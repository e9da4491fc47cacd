"""Benchmarks of hotline.protocol.merkle at 1,000,000 leaves.

Each figure is compared with raw hashlib doing the same hashes, so the ratio
is the price of the Python around them. The machine is shared and noisy:
the big append is timed best of three, the proofs best of three means.

Run through the bench runner, or alone: ``python bench/merkle_bench.py``.
"""

from __future__ import annotations

import hashlib
import random
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import TypeVar

from hotline.protocol.merkle import Tree, leaf_hash, verify_consistency, verify_inclusion

N = 1_000_000
PROOFS = 2_000
REPEATS = 3
APPEND_RATIO_TARGET = 3.0
PROOF_TARGET_US = 100.0
MEMORY_TARGET_MB = 100.0

T = TypeVar("T")


def _timed(fn: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def _row(
    name: str, value: float, unit: str, baseline: str, baseline_value: float, target: str, ok: bool
) -> dict[str, object]:
    return {
        "name": name,
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "baseline_value": baseline_value,
        "ratio": value / baseline_value,
        "target": target,
        "ok": ok,
    }


def _append_all(data: list[bytes]) -> tuple[Tree, bytes]:
    tree = Tree()
    append = tree.append
    lh = leaf_hash
    for d in data:
        append(lh(d))
    return tree, tree.root()


def _hashlib_all(data: list[bytes]) -> bytes:
    # The same n leaf hashes and n - 1 node hashes, level by level, in
    # comprehensions: as cheap as Python makes a Merkle root.
    sha = hashlib.sha256
    level = [sha(b"\x00" + d).digest() for d in data]
    while len(level) > 1:
        paired = [sha(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) & 1:
            paired.append(level[-1])
        level = paired
    return level[0]


def _raw_hashes(chains: list[list[bytes]]) -> float:
    """Seconds for hashlib to do one node hash per element of each chain, in a tight loop."""
    sha = hashlib.sha256
    seed = bytes(32)
    start = time.perf_counter()
    for chain in chains:
        r = seed
        for h in chain:
            r = sha(b"\x01" + h + r).digest()
    return time.perf_counter() - start


def _consistency_hash_count(old: int, new: int) -> int:
    """How many node hashes verify_consistency does for old < new (both roots are rebuilt)."""
    shift = (old & -old).bit_length() - 1
    inner = ((old - 1) ^ (new - 1)).bit_length()
    border = ((old - 1) >> inner).bit_count()
    inner -= shift
    mask = (old - 1) >> shift
    return inner + (mask & ((1 << inner) - 1)).bit_count() + 2 * border


def _bench_append(data: list[bytes]) -> tuple[dict[str, object], Tree]:
    ours: list[float] = []
    theirs: list[float] = []
    tree = Tree()
    for _ in range(REPEATS):
        # Interleaved, so a noisy neighbour hurts both sides alike.
        seconds, (tree, got) = _timed(lambda: _append_all(data))
        ours.append(seconds)
        seconds, want = _timed(lambda: _hashlib_all(data))
        theirs.append(seconds)
        if got != want:
            raise AssertionError("Tree and the hashlib baseline disagree on the root")
    value, base = min(ours), min(theirs)
    row = _row(
        f"merkle: append {N:,} leaves (tree.append(leaf_hash(data)), then root)",
        value,
        "s",
        f"hashlib: the same {2 * N - 1:,} leaf and node hashes in a tight loop",
        base,
        f"ratio <= {APPEND_RATIO_TARGET}",
        value / base <= APPEND_RATIO_TARGET,
    )
    return row, tree


def _bench_inclusion(tree: Tree, rng: random.Random) -> dict[str, object]:
    size = tree.size
    root = tree.root()
    cases = [(i, tree.leaf_hash(i)) for i in (rng.randrange(size) for _ in range(PROOFS))]

    def run() -> None:
        for i, leaf in cases:
            verify_inclusion(leaf, i, size, tree.inclusion_proof(i), root)

    value = min(_timed(run)[0] for _ in range(REPEATS)) / PROOFS * 1e6
    chains = [tree.inclusion_proof(i) for i, _ in cases]
    base = min(_raw_hashes(chains) for _ in range(REPEATS)) / PROOFS * 1e6
    hashes = sum(map(len, chains)) / PROOFS
    return _row(
        f"merkle: inclusion proof made + verified at {size:,} leaves (mean of {PROOFS:,} random indices)",
        value,
        "us",
        f"hashlib: the {hashes:.1f} node hashes the verification does",
        base,
        f"< {PROOF_TARGET_US:.0f} us",
        value < PROOF_TARGET_US,
    )


def _bench_consistency(tree: Tree, rng: random.Random) -> dict[str, object]:
    pairs = []
    for _ in range(PROOFS):
        old, new = sorted(rng.sample(range(1, tree.size + 1), 2))
        # The verifier holds both roots already, from two signed checkpoints.
        pairs.append((old, new, tree.root(old), tree.root(new)))

    def run() -> None:
        for old, new, old_root, new_root in pairs:
            verify_consistency(old, new, old_root, new_root, tree.consistency_proof(old, new))

    value = min(_timed(run)[0] for _ in range(REPEATS)) / PROOFS * 1e6
    chains = []
    for old, new, _, _ in pairs:
        proof = tree.consistency_proof(old, new)
        count = _consistency_hash_count(old, new)
        chains.append((proof * (count // len(proof) + 1))[:count])
    base = min(_raw_hashes(chains) for _ in range(REPEATS)) / PROOFS * 1e6
    hashes = sum(map(len, chains)) / PROOFS
    return _row(
        f"merkle: consistency proof made + verified at {tree.size:,} leaves (mean of {PROOFS:,} size pairs)",
        value,
        "us",
        f"hashlib: the {hashes:.1f} node hashes the verification does",
        base,
        f"< {PROOF_TARGET_US:.0f} us",
        value < PROOF_TARGET_US,
    )


def _bench_memory(tree: Tree) -> dict[str, object]:
    leaves = [tree.leaf_hash(i) for i in range(tree.size)]
    tracemalloc.start()
    try:
        copy = Tree.from_leaf_hashes(leaves)
        current, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    if copy.root() != tree.root():
        raise AssertionError("rebuilt tree has another root")
    value = current / 1e6
    # What the same 2n - 1 hashes cost as bytes objects in a list (computed, not timed).
    per_hash = sys.getsizeof(bytes(32)) + 8
    base = (2 * tree.size - 1) * per_hash / 1e6
    return _row(
        f"merkle: memory of a Tree of {tree.size:,} leaves (tracemalloc)",
        value,
        "MB",
        "a list of the same 2n-1 hashes as bytes objects (computed)",
        base,
        f"< {MEMORY_TARGET_MB:.0f} MB",
        value < MEMORY_TARGET_MB,
    )


def run() -> list[dict[str, object]]:
    """Every merkle benchmark, one row each."""
    rng = random.Random(6962)  # fixed: the same indices and sizes every run
    data = [i.to_bytes(8, "big") for i in range(N)]
    append_row, tree = _bench_append(data)
    del data
    return [append_row, _bench_inclusion(tree, rng), _bench_consistency(tree, rng), _bench_memory(tree)]


def _print(rows: list[dict[str, object]]) -> None:
    for row in rows:
        print(
            f"{'ok  ' if row['ok'] else 'FAIL'} {row['name']}\n"
            f"     {row['value']:.3f} {row['unit']} vs {row['baseline_value']:.3f} {row['unit']} "
            f"({row['baseline']}), ratio {row['ratio']:.2f}, target {row['target']}"
        )


if __name__ == "__main__":
    _print(run())
