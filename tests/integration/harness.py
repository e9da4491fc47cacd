"""Real processes on 127.0.0.1: a relay and two stations, their directories, and ways to run, kill and restart them."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


def query(db: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def count(line: Line, name: str, sql: str) -> int:
    """A ``SELECT COUNT(*) ...`` on the database of ``name`` (a station, or "relay")."""
    return int(query(line.db(name), sql)[0][0])


@dataclass
class Spawned:
    """A process started by a test, and the file its standard output goes to."""

    process: subprocess.Popen[bytes]
    out: Path

    def lines(self) -> list[str]:
        return self.out.read_text().splitlines()

    def json_lines(self, count: int, timeout: float = 30) -> list[Any]:
        """Wait for ``count`` JSON lines on standard output and return them."""
        wait_until(lambda: len(self.lines()) >= count, timeout, f"{count} lines of output")
        return [json.loads(line) for line in self.lines()[:count]]

    def finish(self, timeout: float = 120) -> int:
        return self.process.wait(timeout)

    def terminate(self) -> None:
        self.process.terminate()
        self.process.wait(10)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)


@dataclass
class Line:
    """Directories of a relay and two stations, and the processes started on them."""

    root: Path
    port: int
    env: dict[str, str]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    relay_process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"wss://127.0.0.1:{self.port}/"

    def path(self, name: str) -> Path:
        return self.root / name

    def db(self, name: str) -> Path:
        return self.root / name / ("relay.db" if name == "relay" else "station.db")

    # --- commands ---

    def hotline(
        self, *args: str, timeout: float = 60, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run one command to completion, as a user would."""
        return subprocess.run(
            [sys.executable, "-m", "hotline", *args],
            cwd=self.root,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def spawn(self, *args: str, env: dict[str, str] | None = None, module: str = "hotline") -> Spawned:
        """Start a long-running command (a listener, a heartbeat timer, a bulk sender).

        Its output goes to a file, never a pipe: a pipe nobody reads fills up and stops the process.
        """
        stem = self.root / f"{len(self.processes)}-{args[0]}"
        out = stem.with_suffix(".out")
        process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=ROOT if module != "hotline" else self.root,
            env={**self.env, **(env or {})},
            stdout=out.open("wb"),
            stderr=stem.with_suffix(".log").open("wb"),
        )
        self.processes.append(process)
        return Spawned(process, out)

    def tool(self, *args: str, env: dict[str, str] | None = None) -> Spawned:
        """A test tool from tests/integration/tools.py, as its own process."""
        return self.spawn(*args, env=env, module="tests.integration.tools")

    # --- the relay ---

    def start_relay(self, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        port_file = self.root / "relay" / "port"
        port_file.unlink(missing_ok=True)
        log = (self.root / "relay.log").open("ab")
        self.relay_process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hotline",
                "relay",
                "serve",
                str(self.root / "relay"),
                "--port-file",
                str(port_file),
            ],
            cwd=self.root,
            env={**self.env, **(env or {})},
            stdout=log,
            stderr=log,
        )
        self.processes.append(self.relay_process)
        wait_until(lambda: port_file.exists() or self.relay_process.poll() is not None, 20, "the relay to listen")
        assert self.relay_process.poll() is None, (self.root / "relay.log").read_text()
        return self.relay_process

    def kill_relay(self) -> None:
        assert self.relay_process is not None
        self.relay_process.send_signal(signal.SIGKILL)
        self.relay_process.wait(10)

    def relay_config(self, **limits: float) -> None:
        path = self.root / "relay" / "relay.json"
        config = json.loads(path.read_text())
        config.setdefault("limits", {}).update(limits)
        path.write_text(json.dumps(config))

    def station_config(self, name: str, **changes: Any) -> None:
        path = self.root / name / "station.json"
        config = json.loads(path.read_text())
        config.update(changes)
        path.write_text(json.dumps(config))

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def make_line(root: Path) -> Line:
    """Keys for two stations, a relay directory on a free port, and a directory for each station."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env["PYTHONPATH"] = str(ROOT)
    line = Line(root, free_port(), env)
    for name in ("station-a", "station-b"):
        result = line.hotline("keygen", name, "--keys-dir", "keys", "--no-passphrase")
        assert result.returncode == 0, result.stderr
    result = line.hotline(
        "relay", "init", "relay",
        "--party", "station-a=keys/station-a.pub",
        "--party", "station-b=keys/station-b.pub",
        "--port", str(line.port),
        "--no-passphrase",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for me, peer in (("a", "station-b"), ("b", "station-a")):
        result = line.hotline(
            "station", "init", me,
            "--key", f"keys/station-{me}.key",
            "--peer", f"{peer}=keys/{peer}.pub",
            "--relay", line.url,
            "--relay-ca", "relay/tls.crt",
            "--relay-key", "relay/relay.pub",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
    return line
