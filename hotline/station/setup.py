"""
A station's directory: who it is, who its peer is, which relay it uses.

``hotline station init DIR`` makes it::

    DIR/station.json    settings: the station's name and key file, the pinned peer and relay keys, the relay URL
    DIR/relay-ca.pem    the relay's TLS certificate, pinned (the only one trusted for the relay)
    DIR/station.db      outbox, inbox, evidence, witness state, epoch keys (SQLite)
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated, Final
from urllib.parse import urlsplit

import msgspec

from hotline.protocol.exceptions import KeyFileError
from hotline.protocol.keys import PublicKey, parse_public_key
from hotline.protocol.messages import DEFAULT_DEADLINES
from hotline.store.station import StationStore

__all__ = ["StationFile", "init_station", "load_station"]

CONFIG: Final = "station.json"
NameText = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")]


class Peer(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: NameText
    key: str


class RelayLink(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    url: str
    key: str


class StationFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The settings in station.json."""

    name: NameText
    key_file: str
    peer: Peer
    relay: RelayLink
    deadlines: dict[str, int] = msgspec.field(default_factory=lambda: dict(DEFAULT_DEADLINES))
    heartbeat_warning: float = 2.0
    heartbeat_critical: float = 5.0

    @property
    def peer_key(self) -> PublicKey:
        return parse_public_key(self.peer.key)

    @property
    def relay_key(self) -> PublicKey:
        return parse_public_key(self.relay.key)


def load_station(directory: Path) -> StationFile:
    path = directory / CONFIG
    try:
        return msgspec.json.decode(path.read_bytes(), type=StationFile)
    except FileNotFoundError:
        raise KeyFileError(f"{path}: no such file: run 'hotline station init {directory} ...' first") from None
    except msgspec.DecodeError as e:
        raise KeyFileError(f"{path}: {e}") from None


def init_station(
    directory: Path,
    name: str,
    key_file: Path,
    peer_name: str,
    peer_key: PublicKey,
    relay_url: str,
    relay_ca: Path,
    relay_key: PublicKey,
) -> StationFile:
    """Make a station's directory; the key file stays where it is, referred to by its absolute path."""
    parts = urlsplit(relay_url)
    if parts.scheme != "wss" or not parts.hostname:
        raise KeyFileError(f"the relay URL must be wss://HOST:PORT/ (TLS is required), not {relay_url!r}")
    if not relay_ca.is_file():
        raise KeyFileError(f"{relay_ca}: no such file (the relay's tls.crt)")
    if peer_name == name:
        raise KeyFileError("the peer needs another name than this station's")
    directory.mkdir(parents=True, exist_ok=True)
    if (directory / CONFIG).exists():
        raise KeyFileError(f"{directory / CONFIG} already exists: this directory holds a station already")
    shutil.copyfile(relay_ca, directory / "relay-ca.pem")
    config = StationFile(
        name=name,
        key_file=str(key_file.resolve()),
        peer=Peer(peer_name, peer_key.text()),
        relay=RelayLink(relay_url, relay_key.text()),
    )
    (directory / CONFIG).write_bytes(msgspec.json.format(msgspec.json.encode(config)) + b"\n")
    StationStore(directory / "station.db").close()
    return config
