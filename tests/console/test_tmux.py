"""Two consoles in real terminals (tmux), a relay between them: a notice composed and sent in one, opened and
acknowledged in the other, and the acknowledgement seen in the first.

``hotline console`` runs as the officers run it, each in an 80x24 terminal of its own; the test reads the screens
with ``tmux capture-pane`` and types with ``tmux send-keys``. Skipped where tmux is not installed.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.integration.harness import Line, wait_until

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Terminals:
    """A private tmux server: one window per console."""

    def __init__(self, line: Line) -> None:
        self.line = line
        self.socket = f"hotline-test-{line.port}"

    def tmux(self, *args: str) -> str:
        done = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True)
        return done.stdout

    def open(self, name: str, *command: str) -> None:
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.line.env.items() if k in ("PYTHONPATH", "PATH"))
        shell = f"cd {shlex.quote(str(self.line.root))} && env {env} TERM=xterm-256color {shlex.join(command)}"
        if name == "a":
            self.tmux("new-session", "-d", "-s", "line", "-n", name, "-x", "80", "-y", "24", shell)
        else:
            self.tmux("new-window", "-t", "line", "-n", name, shell)

    def screen(self, name: str) -> str:
        return self.tmux("capture-pane", "-p", "-t", f"line:{name}")

    def keys(self, name: str, *keys: str) -> None:
        """Each key (or string) on its own, a moment apart, as a person types: in one burst, a terminal's
        input reaches the app as one read, and a Tab in it is taken as text rather than as a move."""
        for key in keys:
            self.tmux("send-keys", "-t", f"line:{name}", key)
            time.sleep(0.05)

    def wait_for(self, name: str, text: str, timeout: float = 30) -> str:
        def shown() -> str | None:
            screen = self.screen(name)
            return screen if text in screen else None

        try:
            return wait_until(shown, timeout, f"{text!r} on {name}")
        except AssertionError as e:
            raise AssertionError(f"{e}; the screen:\n{self.screen(name)}") from None

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, check=False)


@pytest.fixture
def terminals(line: Line) -> Iterator[Terminals]:
    made = Terminals(line)
    try:
        yield made
    finally:
        made.close()


def test_two_consoles_a_notice_composed_sent_opened_and_read_back(line, terminals):
    for name in ("a", "b"):
        terminals.open(name, sys.executable, "-m", "hotline", "console", name)
    for name in ("a", "b"):
        terminals.wait_for(name, "relay: connected")
    # A's officer composes a notice in the console: s, then the fields in the form's order (Tab between them).
    terminals.keys("a", "s")
    terminals.wait_for("a", "ctrl+s to send")
    terminals.keys("a", "TUR-2026-000009")
    terminals.keys("a", *["Tab"] * 7, "36.52,37.95,6KM", "Tab", "2026-11-26T14:00Z", "Tab", "2026-11-26T17:00Z")
    terminals.keys("a", *["Tab"] * 7, "Convoy on the M4.")
    terminals.wait_for("a", "ready to send")
    terminals.keys("a", "C-s")
    terminals.wait_for("a", "y: send")
    terminals.keys("a", "y")
    screen_b = terminals.wait_for("b", "TUR-2026-000009")
    assert "ROUT" in screen_b
    assert "GND CONVOY" in screen_b
    terminals.wait_for("a", "RECEIVED")
    # B's officer opens it and reads it back.
    terminals.keys("b", "i", "Enter")
    opened = terminals.wait_for("b", "text (en): Convoy on the M4.")
    assert "u: READ_UNDERSTOOD" in opened
    terminals.keys("b", "u")
    terminals.wait_for("b", "READ_UNDERSTOOD")
    screen_a = terminals.wait_for("a", "READ_UNDERSTOOD", timeout=30)
    assert "TUR-2026-000009" in screen_a
    # Both quit with q: the windows close, and with them the session.
    for name in ("a", "b"):
        terminals.keys(name, "q")

    def gone() -> bool:
        command = ["tmux", "-L", terminals.socket, "has-session", "-t", "line"]
        alive = subprocess.run(command, capture_output=True, check=False)
        return alive.returncode != 0

    wait_until(gone, 15, "both consoles to quit")
