"""The command line."""

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="A secure two-party hotline.")


@app.callback()
def _root() -> None:
    """A secure two-party hotline for military deconfliction."""


def main() -> None:
    app()
