"""
Every error hotline raises, as one tree.

A verification failure raises one of these; nothing in hotline answers a
failed check with ``False``. Faults of the other side (the peer station, the
relay, a file or a bundle handed to us) are kept apart from our own::

    HotlineError
    ├── LocalProtocolError            we were asked to break the protocol
    │   ├── InvalidMessage            a message we are building is not valid
    │   ├── NoEpochKey                the peer has no epoch key valid now
    │   └── StateError                not allowed in the current state
    ├── RemoteProtocolError           what came from outside is wrong
    │   ├── DecodeError               not well formed, or over a limit
    │   ├── VerificationError         a cryptographic check failed
    │   │   ├── BadSignature
    │   │   ├── DecryptionFailed
    │   │   ├── ProofError            a Merkle proof does not verify
    │   │   └── CheckpointError       a checkpoint is malformed or unsigned
    │   ├── UnknownKey                signed by a key nobody pinned (a stranger)
    │   ├── WrongRecipient            addressed to another station
    │   ├── WrongSender               submitted by another station than its sender
    │   ├── EpochKeyError
    │   │   ├── ExpiredEpochKey       sealed to an epoch key outside its window
    │   │   └── UnknownEpochKey       sealed to an epoch key we do not hold
    │   ├── ClockSkew                 a time too far from ours
    │   ├── SequenceError             order and completeness (DESIGN S3)
    │   │   ├── DuplicateMessage      the same delivery again (harmless)
    │   │   ├── ReplayedMessage       an old message presented as new
    │   │   ├── ReorderedMessage      delivered before one the relay holds
    │   │   ├── DroppedMessage        the sender's chain shows a missing message
    │   │   └── ChainBroken           the hash chain does not link
    │   ├── SplitView                 the relay showed two inconsistent histories
    │   ├── UnprovenCheckpoint        the relay did not prove two checkpoints one history in time
    │   ├── AuthenticationFailed      the challenge was not answered correctly
    │   ├── OutOfOrder                submitted ahead of the sender's previous statement
    │   └── Refused                   the relay refused what we sent
    ├── KeyFileError                  a key file cannot be used
    │   ├── InsecureKeyFile           readable by group or others
    │   └── WrongPassphrase
    ├── LineError                     the line is not working (the I/O layer's verdict)
    │   ├── RelayUnreachable          no authenticated connection to the relay
    │   └── TimedOut                  no answer within the time allowed
    └── StoreError                    our own database cannot be written (disk full, read-only, damaged)

Each class has a ``code``: the short name the relay sends when it refuses
something, and the label its metrics count refusals by.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationFailed",
    "BadSignature",
    "ChainBroken",
    "CheckpointError",
    "ClockSkew",
    "DecodeError",
    "DecryptionFailed",
    "DroppedMessage",
    "DuplicateMessage",
    "EpochKeyError",
    "ExpiredEpochKey",
    "HotlineError",
    "InsecureKeyFile",
    "InvalidMessage",
    "KeyFileError",
    "LineError",
    "LocalProtocolError",
    "NoEpochKey",
    "OutOfOrder",
    "ProofError",
    "Refused",
    "RelayUnreachable",
    "RemoteProtocolError",
    "ReorderedMessage",
    "ReplayedMessage",
    "SequenceError",
    "SplitView",
    "StateError",
    "StoreError",
    "TimedOut",
    "UnknownEpochKey",
    "UnknownKey",
    "UnprovenCheckpoint",
    "VerificationError",
    "WrongPassphrase",
    "WrongRecipient",
    "WrongSender",
    "error_for_code",
]


class HotlineError(Exception):
    """Base of every error hotline raises."""

    code = "error"


class LocalProtocolError(HotlineError):
    """Our side was asked to do something the protocol forbids."""

    code = "local-protocol-error"


class InvalidMessage(LocalProtocolError, ValueError):
    """A message being built fails validation: a field is missing, too long or out of range."""

    code = "invalid-message"


class NoEpochKey(LocalProtocolError):
    """There is no epoch key of the peer valid now, so nothing can be sealed to it."""

    code = "no-epoch-key"


class StateError(LocalProtocolError):
    """The action is not allowed in the current state (for example, sending before authenticating)."""

    code = "state"


class RemoteProtocolError(HotlineError):
    """What came from the network, a file or a bundle breaks the protocol."""

    code = "remote-protocol-error"


class DecodeError(RemoteProtocolError):
    """Input is not well formed, fails the schema, or is over a limit."""

    code = "malformed"


class VerificationError(RemoteProtocolError):
    """A cryptographic check failed."""

    code = "verification"


class BadSignature(VerificationError):
    """A signature does not verify over the exact bytes and purpose label."""

    code = "bad-signature"


class DecryptionFailed(VerificationError):
    """HPKE decryption failed: the ciphertext or its header was changed, or the key is wrong."""

    code = "decryption-failed"


class ProofError(VerificationError):
    """A Merkle inclusion or consistency proof does not verify."""

    code = "bad-proof"


class CheckpointError(VerificationError):
    """A checkpoint or cosignature is malformed, or lacks a required signature."""

    code = "bad-checkpoint"


class UnknownKey(RemoteProtocolError):
    """Signed by a key that is not pinned: a stranger."""

    code = "unknown-key"


class WrongRecipient(RemoteProtocolError):
    """Addressed to another station than the one opening it."""

    code = "wrong-recipient"


class WrongSender(RemoteProtocolError):
    """An envelope submitted on another station's connection than its sender's."""

    code = "wrong-sender"


class EpochKeyError(RemoteProtocolError):
    """An epoch key cannot be used."""

    code = "epoch-key"


class ExpiredEpochKey(EpochKeyError):
    """Sealed to an epoch key outside its validity window."""

    code = "expired-epoch-key"


class UnknownEpochKey(EpochKeyError):
    """Sealed to an epoch key this station does not hold (never made, or already erased)."""

    code = "unknown-epoch-key"


class ClockSkew(RemoteProtocolError):
    """A time stamp is further from our clock than the protocol allows."""

    code = "clock-skew"


class SequenceError(RemoteProtocolError):
    """A message breaks the per-sender order: sequence number or hash chain."""

    code = "sequence"


class DuplicateMessage(SequenceError):
    """The same delivery again, at the same log index: harmless, already stored."""

    code = "duplicate"


class ReplayedMessage(SequenceError):
    """A message already received, presented again as a new one (another log index or a resubmission)."""

    code = "replay"


class ReorderedMessage(SequenceError):
    """Delivered ahead of an earlier message that the relay itself says it holds for us."""

    code = "reordered"


class DroppedMessage(SequenceError):
    """The sender's sequence shows a message that the relay never delivered nor declared."""

    code = "dropped"


class ChainBroken(SequenceError):
    """The statement does not link to the previous one by hash: the sender's history was altered."""

    code = "chain-broken"


class SplitView(RemoteProtocolError):
    """Two checkpoints signed by the relay that cannot both be true: the relay forked the log.

    ``evidence`` holds the two signed checkpoints, which together are portable proof.
    """

    code = "split-view"

    def __init__(self, message: str, evidence: tuple[bytes, ...] = ()) -> None:
        super().__init__(message)
        self.evidence = evidence


class UnprovenCheckpoint(RemoteProtocolError):
    """The relay was asked to prove that a checkpoint from elsewhere and ours are one history, and did not in time.

    Not proof of a fork (a relay may be slow or broken), but what a relay hiding one
    would do. ``evidence`` holds the two signed checkpoints.
    """

    code = "unproven"

    def __init__(self, message: str, evidence: tuple[bytes, ...] = ()) -> None:
        super().__init__(message)
        self.evidence = evidence


class AuthenticationFailed(RemoteProtocolError):
    """The authentication challenge was not answered correctly."""

    code = "auth-failed"


class OutOfOrder(RemoteProtocolError):
    """A submission whose sequence number is not the next the relay expects from its sender.

    The relay logs each sender's statements in their own order; the sender
    submits the missing one first, then this one again.
    """

    code = "out-of-order"


class Refused(RemoteProtocolError):
    """The relay refused what we sent; ``refusal`` is its error code."""

    code = "refused"

    def __init__(self, message: str, refusal: str = "refused") -> None:
        super().__init__(message)
        self.refusal = refusal


class KeyFileError(HotlineError):
    """A key file cannot be used: wrong format, permissions or passphrase."""

    code = "key-file"


class InsecureKeyFile(KeyFileError):
    """A private key file is readable by its group or by others."""

    code = "insecure-key-file"


class WrongPassphrase(KeyFileError):
    """The passphrase does not open the key file."""

    code = "wrong-passphrase"


class LineError(HotlineError):
    """The line does not work now: nothing was violated, but nothing got through either."""

    code = "line"


class RelayUnreachable(LineError):
    """No authenticated connection to the relay could be made."""

    code = "unreachable"


class TimedOut(LineError):
    """What was waited for did not come within the time allowed."""

    code = "timeout"


class StoreError(HotlineError):
    """Our own database refused a write: the disk is full, read-only or failing, or the file is damaged.

    What the write was part of did not happen: nothing of it was stored, sent or answered.
    """

    code = "store"


def _codes() -> dict[str, type[HotlineError]]:
    found: dict[str, type[HotlineError]] = {}
    pending: list[type[HotlineError]] = [HotlineError]
    while pending:
        cls = pending.pop()
        found[cls.code] = cls
        pending.extend(cls.__subclasses__())
    return found


_BY_CODE = _codes()


def error_for_code(code: str) -> type[HotlineError]:
    """The error class for a refusal code received from the relay; unknown codes map to ``Refused``."""
    return _BY_CODE.get(code, Refused)
