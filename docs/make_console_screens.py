"""Make the screenshots of docs/console.md from a real line, so that they show what the console does.

    .venv/bin/python docs/make_console_screens.py [OUT_DIR]     # default: docs/console/

A relay and two stations on this machine (as ``hotline demo`` makes them); station B runs in this process and sends
three notices; station A runs in the console, in an 80x24 terminal driven by Textual's pilot, and sends one. Each
screen is saved as SVG. ``tests/console/test_screens.py`` runs this into a temporary directory.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hotline.cli.console import Console
from hotline.cli.demo import start_local_line
from hotline.protocol.messages import Activity, Circle, Contact, Force, Notice, Point, Text, Vertical, Window
from hotline.station.client import StationClient
from hotline.station.setup import load_station

SCREENS = ("boards", "notice", "compose", "handover", "log", "help")


def _notice(ref: str, precedence: str, domain: str, kind: str, hours: float, text: str) -> Notice:
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=hours)
    return Notice(
        ref=ref,
        action="NEW",
        mode="EXER",
        precedence=precedence,  # type: ignore[arg-type]
        response="CONFIRM_NO_CONFLICT",
        classification="UNCLASSIFIED",
        text=Text(lang="en", body=text),
        activity=Activity(domain=domain, type=kind),  # type: ignore[arg-type]
        area=Circle(center=Point(lat=36.52, lon=37.95), radius=6.0, unit="KM"),
        vertical=Vertical(lower=0, upper=12000, unit="FT", ref="AMSL") if domain == "AIR" else None,
        window=Window(start=start, end=start + timedelta(hours=3)),
        forces=[Force(callsign="VIPER11", platform="F-16", count=2)] if domain == "AIR" else [],
        contact=Contact(callsign="VIPER11", frequency="243.0") if domain == "AIR" else None,
    )


async def _until(pilot: Any, check: Callable[[], object], timeout: float = 30) -> None:
    for _ in range(int(timeout / 0.2)):
        if check():
            return
        await pilot.pause(0.2)
    raise TimeoutError("the line did not settle")


async def make(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    saved = []
    with tempfile.TemporaryDirectory(prefix="hotline-screens-") as tmp:
        root = Path(tmp)
        local = start_local_line(root)
        b = StationClient.open(root / "station-b")
        stop = asyncio.Event()
        runner = asyncio.create_task(b.run(stop))
        a = StationClient.open(root / "station-a")
        app = Console(a, dict(load_station(root / "station-a").deadlines))
        try:
            async with app.run_test(size=(80, 24)) as pilot:

                def shot(name: str) -> None:
                    saved.append(out / f"console-{name}.svg")
                    app.save_screenshot(str(saved[-1]))

                await _until(pilot, lambda: b.station.peer_keys and a.station.peer_keys)
                b.send(_notice("GRC-2026-000417", "FLASH", "AIR", "TRANSIT", 1, "Two F-16 in transit, FL120."))
                b.send(_notice("GRC-2026-000418", "ROUTINE", "NAVAL", "EXERCISE", 20, "Naval exercise, 3 vessels."))
                b.send(_notice("GRC-2026-000419", "IMMEDIATE", "GROUND", "CONVOY", 2, "Convoy of 12 vehicles."))
                app.send_notice(_notice("TUR-2026-000123", "PRIORITY", "GROUND", "PATROL", 4, "Border patrol."))
                await _until(pilot, lambda: len(app.incoming) == 3 and app.outgoing[0].state == "RECEIVED")
                await pilot.pause(1.2)
                shot("boards")
                await pilot.press("i", "enter")
                shot("notice")
                await pilot.press("escape", "s")
                form = {
                    "area": "36.61,38.02,10KM",
                    "start": f"{datetime.now(UTC) + timedelta(hours=2):%Y-%m-%dT%H:00Z}",
                    "end": f"{datetime.now(UTC) + timedelta(hours=5):%Y-%m-%dT%H:00Z}",
                    "text": "Patrol moves east.",
                }
                for name, value in form.items():
                    app.screen.query_one(f"#{name}").value = value  # type: ignore[attr-defined]
                await pilot.pause(0.3)
                shot("compose")
                await pilot.press("escape", "h")
                shot("handover")
                await pilot.press("escape", "l")
                shot("log")
                await pilot.press("escape", "question_mark")
                shot("help")
        finally:
            stop.set()
            await asyncio.wait_for(runner, 10)
            a.close()
            b.close()
            local.stop()
    return saved


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "console"
    for path in asyncio.run(make(target)):
        print(path)
