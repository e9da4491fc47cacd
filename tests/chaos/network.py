"""The bad network between the stations and the relay: the proxy as its own process, and the stations aimed at it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.integration.harness import ROOT, Line, wait_until


@dataclass
class ProxyProcess:
    process: subprocess.Popen[bytes]
    port: int
    out: Path
    log: Path
    summary_file: Path

    @property
    def url(self) -> str:
        # The relay's certificate names 127.0.0.1: TLS passes through the proxy and still verifies.
        return f"wss://127.0.0.1:{self.port}/"

    def stop(self) -> dict[str, Any]:
        """SIGTERM: the proxy closes every connection and prints its counts."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self.process.wait(20)
        return self.summary()

    def summary(self) -> dict[str, Any]:
        return json.loads(self.summary_file.read_text())

    def events(self, kind: str) -> list[dict[str, Any]]:
        """The proxy's log of what it did (one JSON line per cut and stall)."""
        found = []
        for text in self.log.read_text().splitlines():
            if text.startswith("{"):
                entry = json.loads(text)
                if entry.get("event") == kind:
                    found.append(entry)
        return found


def start_proxy(
    line: Line,
    seed: int,
    target_port: int | None = None,
    name: str = "proxy",
    **chaos: float | bool,
) -> ProxyProcess:
    """Start ``python -m tests.chaos.proxy`` aimed at the relay (or ``target_port``) with options ``chaos``.

    ``cut_probability=0.01`` becomes ``--cut-probability 0.01``; ``fragment=True`` becomes ``--fragment``.
    The process joins ``line.processes``, so that ``line.stop()`` ends it too.
    """
    port_file = line.root / f"{name}.port"
    summary_file = line.root / f"{name}.summary.json"
    out, log = line.root / f"{name}.out", line.root / f"{name}.log"
    args = [
        "--listen-port-file", str(port_file),
        "--target", f"127.0.0.1:{target_port or line.port}",
        "--seed", str(seed),
        "--summary-file", str(summary_file),
    ]  # fmt: skip
    for option, value in chaos.items():
        flag = "--" + option.replace("_", "-")
        if value is True:
            args.append(flag)
        elif value is not False:
            args += [flag, str(value)]
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.chaos.proxy", *args],
        cwd=ROOT,
        env=line.env,
        stdout=out.open("wb"),
        stderr=log.open("wb"),
    )
    line.processes.append(process)
    wait_until(lambda: port_file.exists() or process.poll() is not None, 20, "the proxy to listen")
    assert process.poll() is None, log.read_text()
    return ProxyProcess(process, int(port_file.read_text()), out, log, summary_file)


def aim_stations_at(line: Line, url: str, stations: tuple[str, ...] = ("a", "b")) -> None:
    """Rewrite ``relay.url`` in a/station.json and b/station.json (or only those of ``stations``)."""
    for name in stations:
        path = line.path(name) / "station.json"
        config = json.loads(path.read_text())
        config["relay"]["url"] = url
        path.write_text(json.dumps(config, indent=2) + "\n")


# What each chaos test measured, printed at the end of the run (conftest.py's pytest_terminal_summary).
FIGURES: list[tuple[str, dict[str, Any]]] = []
