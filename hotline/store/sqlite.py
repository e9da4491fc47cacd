"""
SQLite as hotline uses it: WAL, ``synchronous=FULL``, schema versions, and one writer with group commit.

Everything hotline promises (an accepted submission, a stored delivery, the
witness state) is committed with ``synchronous=FULL``: the commit returns only
after the write-ahead log is on disk. The ``Writer`` runs all writes to one
database on one thread, off the event loop, and puts every write that is
waiting into the same transaction, so that many concurrent submissions share one
fsync (group commit).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from hotline import failpoints
from hotline.protocol.exceptions import StoreError

__all__ = ["Migration", "Writer", "connect", "migrate", "store_error"]

Migration = str

# How long a writer waits for another process's transaction before giving up (stations share a file).
BUSY_TIMEOUT_MS: Final = 30_000


def connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    """Open a database with the settings every hotline database uses."""
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
    else:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    pages = failpoints.store_max_pages()
    if pages is not None:
        conn.execute(f"PRAGMA max_page_count={pages}")
    return conn


def store_error(error: sqlite3.Error, path: Path) -> StoreError:
    """SQLite's refusal of a write, as a ``StoreError`` that says what to do next."""
    name = getattr(error, "sqlite_errorname", "")
    if name == "SQLITE_FULL":
        what = "the disk is full: free space on it"
    elif name.startswith("SQLITE_READONLY"):
        what = "the database cannot be written (read-only file, directory or disk): check its permissions"
    elif name.startswith("SQLITE_IOERR"):
        what = "the disk reported an I/O error: check the disk"
    elif name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        what = "the database file is damaged: restore it from a backup (docs/operations.md)"
    elif name == "SQLITE_BUSY":
        what = f"another process held the database for over {BUSY_TIMEOUT_MS // 1000} s: find it"
    else:
        what = str(error)
    return StoreError(f"{path}: {what}, then try again; nothing of this was stored ({name or type(error).__name__})")


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration], what: str) -> int:
    """Bring the schema to the latest version, one migration per version, each in its own transaction.

    ``PRAGMA user_version`` records the version. A database newer than this
    program is refused rather than misread.
    """
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(migrations):
        raise RuntimeError(
            f"the {what} database is at schema version {version}, newer than this hotline knows "
            f"({len(migrations)}): upgrade hotline"
        )
    for number in range(version, len(migrations)):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(migrations[number]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version={number + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return len(migrations)


def _statements(script: str) -> list[str]:
    """Split a migration into statements; triggers hold semicolons inside BEGIN ... END."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                statements.append(current.strip())
            current = ""
    if current.strip():
        raise ValueError(f"incomplete SQL statement in a migration: {current.strip()[:60]}")
    return statements


Done = Callable[[object, BaseException | None], None]


@dataclass
class _Job:
    work: Callable[[sqlite3.Connection], object]
    done: Done
    loop: asyncio.AbstractEventLoop
    result: object = None
    error: BaseException | None = None


@dataclass
class Stats:
    """What the writer did, for the metrics: transactions, jobs, and the time commits took."""

    transactions: int = 0
    jobs: int = 0
    commit_seconds: list[float] = field(default_factory=list)


class Writer:
    """One thread that performs every write to one database, many writes to a transaction.

    It fails closed: once a transaction has failed, every later job fails with the same
    error, untried. The caller's state has moved past what is on disk (a relay has logged in
    memory the entries that did not commit), and a later transaction built on that state
    would store, say, entry n + 1 without entry n.
    """

    def __init__(self, path: Path, max_batch: int = 512) -> None:
        self.path = path
        self.conn = connect(path)
        self.max_batch = max_batch
        self.failed: StoreError | None = None
        self.stats = Stats()
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=f"writer:{path.name}", daemon=True)
        self._thread.start()

    def submit(self, work: Callable[[sqlite3.Connection], object], done: Done) -> None:
        """Run ``work(conn)`` inside a transaction shared with whatever else is waiting.

        Then ``done(result, error)`` is called on the caller's event loop: only after the
        transaction is committed to disk, or with the exception if it failed (every job of
        a failed transaction gets it). The jobs of one transaction are answered in order, in
        one callback of the loop, so that the caller can act once for all of them.
        """
        self._jobs.put(_Job(work, done, asyncio.get_running_loop()))

    def close(self) -> None:
        """Finish what is queued, then stop the thread and close the database."""
        self._jobs.put(None)
        self._thread.join()
        self.conn.close()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._jobs.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stopping = True
                    break
                batch.append(job)
            self._commit(batch)

    def _commit(self, batch: list[_Job]) -> None:
        if self.failed is None:  # else fail closed: every job gets the first failure, untried
            self._transaction(batch)
        answers: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        for job in batch:
            job.error = self.failed
            answers.setdefault(job.loop, []).append(job)
        for loop, jobs in answers.items():
            # One wake-up of the loop per transaction: its jobs are answered together, in order.
            loop.call_soon_threadsafe(_answer, jobs)

    def _transaction(self, batch: list[_Job]) -> None:
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job in batch:
                job.result = job.work(conn)
            start = time.perf_counter()
            conn.execute("COMMIT")
            self.stats.commit_seconds.append(time.perf_counter() - start)
            del self.stats.commit_seconds[:-1024]
            self.stats.transactions += 1
            self.stats.jobs += len(batch)
        except BaseException as e:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):  # what failed is what is reported
                    conn.execute("ROLLBACK")
            self.failed = _as_store_error(e, self.path)


def _as_store_error(error: BaseException, path: Path) -> StoreError:
    if isinstance(error, StoreError):
        return error
    if isinstance(error, sqlite3.Error):
        failure = store_error(error, path)
    else:
        failure = StoreError(f"{path}: a transaction failed ({type(error).__name__}: {error}); nothing of it stored")
    failure.__cause__ = error
    return failure


def _answer(jobs: list[_Job]) -> None:
    for job in jobs:
        job.done(job.result, job.error)
