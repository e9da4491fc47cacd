from __future__ import annotations

from tests.chaos.network import FIGURES
from tests.integration.conftest import line  # noqa: F401 - the same line: relay running, stations set up


def pytest_terminal_summary(terminalreporter) -> None:
    if FIGURES:
        terminalreporter.section("a bad network, a flood")
        for name, figures in FIGURES:
            terminalreporter.write_line(f"{name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
