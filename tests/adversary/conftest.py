from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.harness import Line

from .harness import copy_line, make_template, start_lying_relay


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Keys and directories for a relay and two stations, made once (``make_line``) and copied for each test."""
    return make_template(tmp_path_factory.mktemp("template"))


@pytest.fixture
def lying(template: Path, tmp_path: Path) -> Iterator[Callable[..., Line]]:
    """Start a line whose relay lies: ``lying("drop", after=1, deadlines={...})``; everything stops at the end."""
    started: list[Line] = []

    def start(
        lie: str, after: int | None = None, to: str | None = None, hold: float | None = None, **a: object
    ) -> Line:
        line = copy_line(template, tmp_path / f"line{len(started)}")
        started.append(line)
        if a:
            line.station_config("a", **a)
        start_lying_relay(line, lie, after=after, to=to, hold=hold)
        return line

    yield start
    for line in started:
        line.stop()
