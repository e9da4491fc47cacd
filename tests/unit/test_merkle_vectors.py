"""hotline.protocol.merkle against the transparency-dev/merkle test vectors (an oracle nobody here wrote).

The files are copies, see tests/vectors/README.md for where they come from.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import TypedDict

import pytest

from hotline.protocol.exceptions import ProofError
from hotline.protocol.merkle import Tree, leaf_hash, root, verify_consistency, verify_inclusion

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "transparency-dev-merkle"
TESTDATA = VECTORS / "testdata"

INCLUSION = sorted(TESTDATA.glob("inclusion/**/*.json"))
CONSISTENCY = sorted(TESTDATA.glob("consistency/**/*.json"))

# Where the project is stricter than the vectors, on purpose. Every hash must
# be 32 bytes: this vector has two equal 12-byte "roots" of size 1 pass, as
# the Go code only compares the bytes. test_equal_sizes_with_real_roots keeps
# the case itself (equal sizes, empty proof, equal roots) covered.
STRICTER = {"consistency/additional/sizes-are-equal-one-and-proof-is-empty.json"}


def _id(path: Path) -> str:
    return path.relative_to(TESTDATA).as_posix()


def _b64(value: str) -> bytes:
    # "" decodes to b"", which the verifier must refuse like any wrong length.
    return base64.b64decode(value, validate=True)


def _proof(value: list[str] | None) -> list[bytes]:
    return [_b64(p) for p in value or []]


class Reference(TypedDict):
    leaf_inputs_hex: list[str]
    root_hashes_hex_by_size: list[str]


def _reference() -> Reference:
    data: Reference = json.loads((VECTORS / "reference-tree.json").read_text(encoding="utf-8"))
    return data


def test_every_vector_file_is_found() -> None:
    # A lost or renamed file must fail here rather than quietly shrink the suite.
    assert len(INCLUSION) == 98
    assert len(CONSISTENCY) == 98
    assert set(STRICTER) <= {_id(p) for p in CONSISTENCY}


@pytest.mark.parametrize("path", INCLUSION, ids=_id)
def test_inclusion_vector(path: Path) -> None:
    v = json.loads(path.read_text(encoding="utf-8"))
    args = (_b64(v["leafHash"]), v["leafIdx"], v["treeSize"], _proof(v["proof"]), _b64(v["root"]))
    if v["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*args)
    else:
        assert verify_inclusion(*args) is None  # type: ignore[func-returns-value]


@pytest.mark.parametrize("path", CONSISTENCY, ids=_id)
def test_consistency_vector(path: Path) -> None:
    v = json.loads(path.read_text(encoding="utf-8"))
    args = (v["size1"], v["size2"], _b64(v["root1"]), _b64(v["root2"]), _proof(v["proof"]))
    if v["wantErr"] or _id(path) in STRICTER:
        with pytest.raises(ProofError):
            verify_consistency(*args)
    else:
        assert verify_consistency(*args) is None  # type: ignore[func-returns-value]


def test_equal_sizes_with_real_roots() -> None:
    """The case of the STRICTER vector, with 32-byte roots: accepted."""
    r = root([leaf_hash(b"")])
    assert verify_consistency(1, 1, r, r, []) is None  # type: ignore[func-returns-value]
    with pytest.raises(ProofError):
        verify_consistency(1, 1, r, r, [r])


def test_reference_roots_with_root() -> None:
    ref = _reference()
    leaves = [leaf_hash(bytes.fromhex(x)) for x in ref["leaf_inputs_hex"]]
    assert len(ref["root_hashes_hex_by_size"]) == 9
    for size, want in enumerate(ref["root_hashes_hex_by_size"]):
        assert root(leaves[:size]).hex() == want, size


def test_reference_roots_with_tree() -> None:
    ref = _reference()
    leaves = [leaf_hash(bytes.fromhex(x)) for x in ref["leaf_inputs_hex"]]
    wants = ref["root_hashes_hex_by_size"]
    growing = Tree()
    for size, want in enumerate(wants):
        # Grown one leaf at a time, asked at its current size...
        assert growing.root().hex() == want, size
        if size < len(leaves):
            assert growing.append(leaves[size]) == size
    # ...and, once full, asked for every past size.
    full = Tree.from_leaf_hashes(leaves)
    for size, want in enumerate(wants):
        assert full.root(size).hex() == want, size
