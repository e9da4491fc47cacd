"""
The command line: ``hotline`` (also ``python -m hotline``).

This is the one place where errors become messages and exit codes: a
``HotlineError`` is printed as one line that says what to do next, and the
process exits 1 (usage errors exit 2, as typer does).
"""

from __future__ import annotations

import functools
import getpass
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer

from hotline.protocol.exceptions import HotlineError, KeyFileError
from hotline.protocol.keys import IdentityKey, format_fingerprint
from hotline.store.keyfiles import load_public_key, write_identity

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="A secure two-party hotline: signed, end-to-end encrypted notices through a neutral relay.",
)

P = ParamSpec("P")
R = TypeVar("R")

PASSPHRASE_ENV = "HOTLINE_PASSPHRASE"  # noqa: S105 - the name of a variable, not a secret


def fail(message: str) -> typer.Exit:
    typer.echo(f"hotline: {message}", err=True)
    return typer.Exit(1)


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn hotline's errors into one line on stderr and exit code 1."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except HotlineError as e:
            raise fail(f"{type(e).__name__}: {e}") from None

    return run


def new_passphrase() -> bytes:
    """A passphrase for a new key: from HOTLINE_PASSPHRASE, or asked twice on the terminal."""
    env = os.environ.get(PASSPHRASE_ENV)
    if env is not None:
        return env.encode()
    if not sys.stdin.isatty():
        raise KeyFileError(f"no terminal to ask a passphrase on: set {PASSPHRASE_ENV} or use --no-passphrase")
    first = getpass.getpass("Passphrase for the new key: ")
    second = getpass.getpass("Same passphrase again: ")
    if first != second:
        raise KeyFileError("the two passphrases differ: run keygen again")
    return first.encode()


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


def main() -> None:
    app()
