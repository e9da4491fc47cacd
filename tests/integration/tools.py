"""Test tools run as their own processes: ``python -m tests.integration.tools bulk-send DIR COUNT PREFIX``."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hotline.protocol.messages import Activity, Circle, Notice, Point, Text, Window
from hotline.station.client import StationClient


def notice(ref: str, precedence: str = "ROUTINE") -> Notice:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    return Notice(
        ref=ref,
        action="NEW",
        mode="TEST",
        precedence=precedence,  # type: ignore[arg-type]
        response="INFO_ONLY",
        classification="UNCLASSIFIED",
        text=Text(lang="en", body=f"Test notice {ref}."),
        activity=Activity(domain="GROUND", type="PATROL"),
        area=Circle(center=Point(lat=36.5, lon=37.9), radius=5.0, unit="KM"),
        window=Window(start=start, end=start + timedelta(hours=1)),
    )


async def bulk_send(directory: Path, count: int, prefix: str, timeout: float) -> dict[str, object]:
    """Seal ``count`` notices into the outbox, then stay connected until the relay has accepted them all."""
    c = StationClient.open(directory, receive=False)
    stop = asyncio.Event()
    runner = asyncio.create_task(c.run(stop))
    started = time.monotonic()
    try:
        await asyncio.wait_for(c.authenticated.wait(), timeout)
        await c.wait_for(lambda _: True if c.station.peer_keys else None, timeout)
        for i in range(count):
            c.send(notice(f"{prefix}-{i:06d}"))
            if i % 50 == 49:
                await asyncio.sleep(0)  # let accepted frames in while sealing
        print(json.dumps({"sealed": count}), flush=True)

        accepted = await c.wait_for(lambda _: nothing_pending(c), timeout)
        return {"accepted": accepted, "seconds": time.monotonic() - started}
    finally:
        stop.set()
        await asyncio.wait_for(runner, 10)
        c.close()


def nothing_pending(c: StationClient) -> bool | None:
    """True once the relay has accepted everything this station sealed (whichever process sealed it)."""
    return True if c.store.conn.execute("SELECT COUNT(*) FROM pending").fetchone()[0] == 0 else None


async def drain(directory: Path, timeout: float) -> dict[str, object]:
    """Connect until nothing sealed is waiting for the relay and nothing owed is unanswered."""
    c = StationClient.open(directory, receive=True)
    stop = asyncio.Event()
    runner = asyncio.create_task(c.run(stop))
    started = time.monotonic()
    try:

        def settled(_: object) -> bool | None:
            owed = c.store.conn.execute("SELECT COUNT(*) FROM owed").fetchone()[0]
            return True if nothing_pending(c) and owed == 0 and c.authenticated.is_set() else None

        done = await c.wait_for(settled, timeout)
        return {"drained": bool(done), "seconds": time.monotonic() - started}
    finally:
        stop.set()
        await asyncio.wait_for(runner, 10)
        c.close()


def main() -> int:
    command, *args = sys.argv[1:]
    if command == "bulk-send":
        directory, count, prefix = Path(args[0]), int(args[1]), args[2]
        timeout = float(args[3]) if len(args) > 3 else 120.0
        result = asyncio.run(bulk_send(directory, count, prefix, timeout))
        print(json.dumps(result), flush=True)
        return 0 if result["accepted"] else 1
    if command == "drain":
        result = asyncio.run(drain(Path(args[0]), float(args[1]) if len(args) > 1 else 60.0))
        print(json.dumps(result), flush=True)
        return 0 if result["drained"] else 1
    print(f"unknown tool {command}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
