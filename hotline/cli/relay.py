"""``hotline relay init`` and ``hotline relay serve``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hotline.cli.common import app, fail, new_passphrase, passphrase_for, reports_errors
from hotline.protocol.keys import PublicKey, format_fingerprint
from hotline.store.keyfiles import load_public_key

relay_app = typer.Typer(no_args_is_help=True, help="Run the relay: the neutral party between the two stations.")
app.add_typer(relay_app, name="relay")


def parse_party(text: str) -> tuple[str, PublicKey]:
    name, sep, key = text.partition("=")
    if not sep or not name or not key:
        raise typer.BadParameter("give a party as NAME=PUB, PUB being a .pub file or a key line 'ed25519:...'")
    return name, load_public_key(key)


@relay_app.command("init")
@reports_errors
def init(
    directory: Annotated[Path, typer.Argument(help="The relay's directory (created).")],
    party: Annotated[list[str], typer.Option(help="A station, NAME=PUB; give it twice.")],
    host: Annotated[str, typer.Option(help="The address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The TCP port to listen on (0: any free port).")] = 8443,
    hostname: Annotated[
        list[str] | None, typer.Option(help="A name or address the stations use to reach the relay (repeatable).")
    ] = None,
    no_passphrase: Annotated[
        bool, typer.Option("--no-passphrase", help="Store the relay's key unencrypted (a service with no terminal).")
    ] = False,
) -> None:
    """Make the relay's identity key, TLS certificate and roster of the two stations."""
    from hotline.relay.setup import init_relay

    parties = [parse_party(p) for p in party]
    hosts = list(hostname or []) + [h for h in ("localhost", "127.0.0.1") if h not in (hostname or [])]
    passphrase = None if no_passphrase else new_passphrase()
    config = init_relay(directory, parties, host, port, hosts, passphrase)
    relay_key = load_public_key(str(directory / "relay.pub"))
    typer.echo(f"relay directory: {directory}")
    typer.echo(f"stations: {', '.join(p.name for p in config.stations)}")
    typer.echo(f"listens on {config.host}:{config.port}; certificate for {', '.join(hosts)}")
    typer.echo(f"give each station {directory / 'relay.pub'} and {directory / 'tls.crt'}; relay key fingerprint:")
    typer.echo(f"  {format_fingerprint(relay_key.fingerprint)}")


@relay_app.command("serve")
@reports_errors
def serve(
    directory: Annotated[Path, typer.Argument(help="The relay's directory.")],
    port_file: Annotated[
        Path | None, typer.Option(help="Write the port listened on to this file once ready (for scripts and tests).")
    ] = None,
) -> None:
    """Run the relay until SIGTERM. Health: GET /healthz; metrics: GET /metrics. Logs are JSON lines on stderr."""
    from hotline.relay.server import run

    if not (directory / "relay.json").exists():
        raise fail(f"{directory / 'relay.json'}: no such file: run 'hotline relay init {directory}' first")
    run(directory, passphrase_for(directory / "relay.key"), port_file)
