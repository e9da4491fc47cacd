"""
A relay's directory: its identity key, its TLS certificate, its roster and its settings.

``hotline relay init DIR`` makes it; ``hotline relay serve DIR`` runs from it::

    DIR/relay.json      settings and the roster (names and public keys of the two stations)
    DIR/relay.key       the relay's identity key, which signs checkpoints (mode 0600)
    DIR/relay.pub       its public half, for the stations (--relay-key)
    DIR/tls.key         the TLS private key (mode 0600)
    DIR/tls.crt         the self-signed TLS certificate, for the stations (--relay-ca)
    DIR/relay.db        the log and the queues (SQLite)
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path
from typing import Annotated, Final

import msgspec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hotline.protocol.exceptions import KeyFileError
from hotline.protocol.keys import IdentityKey, PublicKey, parse_public_key
from hotline.protocol.relay import StationEntry
from hotline.store.keyfiles import write_identity

__all__ = ["Limits", "RelayConfig", "init_relay", "load_config"]

CONFIG: Final = "relay.json"
NameText = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")]


class Limits(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What one party may ask of the relay (DESIGN section 10)."""

    frame_bytes: int = 64 * 1024
    connections_per_address: int = 16
    new_connections_per_second: float = 5.0
    new_connection_burst: int = 20
    connections_per_station: int = 8
    # A station authenticates in four round trips (TCP, TLS 1.3, the upgrade, challenge and hello): over a
    # geostationary satellite hop with a lost packet or two that is several seconds. And a flood's idle connections
    # cost memory while they wait but a TLS handshake each time they are cut and opened again: a short deadline
    # buys the relay no memory and costs it CPU.
    unauthenticated_seconds: float = 30.0
    submissions_per_second: float = 1000.0
    submission_burst: int = 2000
    # Open connections in all. At the cap, the oldest one that has not authenticated makes room for a new one:
    # a flood from many addresses cannot exhaust the relay's memory or descriptors, nor keep a station out
    # (a station authenticates within a second or so; the flood's connections wait for their deadline).
    max_connections: int = 2000


class Party(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: NameText
    key: str


class RelayConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    host: str
    port: int
    stations: list[Party]
    limits: Limits = Limits()

    def roster(self) -> list[StationEntry]:
        return [StationEntry(p.name, parse_public_key(p.key)) for p in self.stations]


def load_config(directory: Path) -> RelayConfig:
    path = directory / CONFIG
    try:
        return msgspec.json.decode(path.read_bytes(), type=RelayConfig)
    except FileNotFoundError:
        raise KeyFileError(f"{path}: no such file: run 'hotline relay init {directory}' first") from None
    except msgspec.DecodeError as e:
        raise KeyFileError(f"{path}: {e}") from None


def _certificate(hosts: list[str], now: dt.datetime) -> tuple[bytes, bytes]:
    """A self-signed ECDSA P-256 certificate for ``hosts`` (names or addresses), and its key, as PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"hotline relay {hosts[0]}")])
    alt: list[x509.GeneralName] = []
    for host in hosts:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2 * 365))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def init_relay(
    directory: Path,
    parties: list[tuple[str, PublicKey]],
    host: str,
    port: int,
    hosts: list[str],
    passphrase: bytes | None,
) -> RelayConfig:
    """Make a relay's directory: identity key, TLS certificate and key, settings with the roster."""
    if len(parties) != 2 or parties[0][1] == parties[1][1] or parties[0][0] == parties[1][0]:
        raise KeyFileError("a relay serves exactly two stations, with different names and keys (--party twice)")
    directory.mkdir(parents=True, exist_ok=True)
    if (directory / CONFIG).exists():
        raise KeyFileError(f"{directory / CONFIG} already exists: this directory holds a relay already")
    identity = IdentityKey(os.urandom(32))
    write_identity(directory, "relay", identity, passphrase)
    cert, tls_key = _certificate(hosts, dt.datetime.now(dt.UTC))
    fd = os.open(directory / "tls.key", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(tls_key)
    (directory / "tls.crt").write_bytes(cert)
    config = RelayConfig(
        host=host,
        port=port,
        stations=[Party(name, key.text()) for name, key in parties],
    )
    (directory / CONFIG).write_bytes(msgspec.json.format(msgspec.json.encode(config)) + b"\n")
    return config
