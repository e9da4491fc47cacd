"""What every command shares: the typer app, error reporting, passphrases."""

from __future__ import annotations

import functools
import getpass
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import typer

from hotline.protocol.exceptions import HotlineError, KeyFileError, WrongPassphrase
from hotline.store.keyfiles import needs_passphrase

# Commands say what matters themselves; library warnings stay out of their one-line errors.
logging.getLogger("hotline").addHandler(logging.NullHandler())

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    # A traceback with local variables could print a passphrase or a key: plain tracebacks only.
    pretty_exceptions_enable=False,
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


def passphrase_for(path: Path) -> bytes | None:
    """The passphrase of an existing key file: none if unencrypted, else HOTLINE_PASSPHRASE or the terminal."""
    if not needs_passphrase(path):
        return None
    env = os.environ.get(PASSPHRASE_ENV)
    if env is not None:
        return env.encode()
    if not sys.stdin.isatty():
        raise WrongPassphrase(f"{path} is protected by a passphrase: set {PASSPHRASE_ENV} or run from a terminal")
    return getpass.getpass(f"Passphrase for {path}: ").encode()
