"""
The command line: ``hotline`` (also ``python -m hotline``).

This is the one place where errors become messages and exit codes: a
``HotlineError`` is printed as one line that says what to do next, and the
process exits 1 (usage errors exit 2, as typer does).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from hotline.cli.common import app, fail, new_passphrase, reports_errors
from hotline.protocol.keys import IdentityKey, format_fingerprint
from hotline.store.keyfiles import load_public_key, write_identity


@app.command()
@reports_errors
def keygen(
    name: Annotated[str, typer.Argument(help="The key's name, e.g. station-a or relay.")],
    keys_dir: Annotated[Path, typer.Option(help="Where to write NAME.key and NAME.pub.")] = Path("keys"),
    no_passphrase: Annotated[
        bool,
        typer.Option("--no-passphrase", help="Store the key unencrypted (only for an unattended timer)."),
    ] = False,
) -> None:
    """Make an identity key: NAME.key (private, mode 0600) and NAME.pub (to hand to the other parties)."""
    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum() or len(name) > 64:
        raise fail("a key name is up to 64 letters, digits, '-', '_' or '.'")
    passphrase = None if no_passphrase else new_passphrase()
    key = IdentityKey(os.urandom(32))
    private, public = write_identity(keys_dir, name, key, passphrase)
    typer.echo(f"private key: {private}{'' if passphrase else ' (NOT encrypted)'}")
    typer.echo(f"public key:  {public}")
    typer.echo("fingerprint, to read aloud at the key ceremony:")
    typer.echo(f"  {format_fingerprint(key.public.fingerprint)}")


@app.command()
@reports_errors
def fingerprint(
    key: Annotated[str, typer.Argument(help="A .pub or .key file, or a public key line 'ed25519:...'.")],
) -> None:
    """Print a key's fingerprint in groups of four, to compare aloud at the key ceremony."""
    typer.echo(format_fingerprint(load_public_key(key).fingerprint))


# The other commands register themselves on the app.
from hotline.cli import demo, relay, station  # noqa: E402, F401


def main() -> None:
    app()
