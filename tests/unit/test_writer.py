"""The store's writer: group commit, answers only after the commit, a failed transaction fails all its jobs
and every later one; SQLite's refusals as ``StoreError``."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest

from hotline.protocol.exceptions import StoreError
from hotline.store.sqlite import Writer, connect, store_error


@pytest.fixture
def writer(tmp_path):
    conn = connect(tmp_path / "w.db")
    conn.execute("CREATE TABLE t (n INTEGER PRIMARY KEY)")
    conn.close()
    w = Writer(tmp_path / "w.db")
    yield w
    w.close()


def _rows(writer: Writer) -> list[int]:
    conn = sqlite3.connect(writer.conn.execute("PRAGMA database_list").fetchone()[2])
    try:
        return [n for (n,) in conn.execute("SELECT n FROM t ORDER BY n")]
    finally:
        conn.close()


async def _submit_held(writer: Writer, works: list) -> list[tuple[object, BaseException | None, list[int]]]:
    """Hold the writer in a first transaction while ``works`` queue up, so that they share the next one."""
    started, release = threading.Event(), threading.Event()

    def hold(_: sqlite3.Connection) -> None:
        started.set()
        release.wait(5)

    writer.submit(hold, lambda *_: None)
    assert await asyncio.to_thread(started.wait, 5)
    answers: list[tuple[object, BaseException | None, list[int]]] = []
    everything = asyncio.get_running_loop().create_future()

    def done(result: object, error: BaseException | None) -> None:
        # What another connection sees at the moment of the answer: the commit is already on disk.
        answers.append((result, error, _rows(writer)))
        if len(answers) == len(works) and not everything.done():
            everything.set_result(None)

    for work in works:
        writer.submit(work, done)
    release.set()
    await asyncio.wait_for(everything, 10)
    return answers


def _insert(n: int):
    def work(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO t (n) VALUES (?)", (n,))
        return n

    return work


async def test_jobs_waiting_together_share_one_commit_and_are_answered_in_order_after_it(writer):
    answers = await _submit_held(writer, [_insert(n) for n in range(5)])
    assert [result for result, _, _ in answers] == [0, 1, 2, 3, 4]
    assert all(error is None for _, error, _ in answers)
    # Every answer came after the one commit of all five: each saw all of them on disk.
    assert all(seen == [0, 1, 2, 3, 4] for _, _, seen in answers)
    assert (writer.stats.transactions, writer.stats.jobs) == (2, 6)  # the holding job, then the five


async def test_a_failing_job_fails_its_whole_transaction_and_every_later_one(writer):
    def fail(conn: sqlite3.Connection) -> None:
        raise sqlite3.IntegrityError("refused")

    answers = await _submit_held(writer, [_insert(1), fail, _insert(2)])
    assert [type(error) for _, error, _ in answers] == [StoreError] * 3
    assert isinstance(answers[0][1].__cause__, sqlite3.IntegrityError)
    assert _rows(writer) == []  # rolled back: nothing of it on disk
    # Fail closed: the caller's state has moved past what is on disk, so nothing later is written either.
    later = asyncio.get_running_loop().create_future()
    writer.submit(_insert(3), lambda result, error: later.set_result((result, error)))
    assert await asyncio.wait_for(later, 10) == (None, answers[0][1])
    assert _rows(writer) == []


async def test_a_full_disk_is_a_store_error_that_says_so_and_stores_nothing(tmp_path):
    conn = connect(tmp_path / "full.db")
    conn.execute("CREATE TABLE t (n INTEGER PRIMARY KEY, b BLOB)")
    conn.close()
    w = Writer(tmp_path / "full.db")
    try:
        pages = w.conn.execute("PRAGMA page_count").fetchone()[0]
        w.conn.execute(f"PRAGMA max_page_count={pages + 2}")  # as a disk with room for two more pages

        def big(n: int):
            def work(conn: sqlite3.Connection) -> int:
                conn.execute("INSERT INTO t (n, b) VALUES (?, ?)", (n, b"x" * 3000))
                return n

            return work

        answers = await _submit_held(w, [big(n) for n in range(10)])
        errors = {error for _, error, _ in answers}
        assert len(errors) == 1
        [error] = errors
        assert isinstance(error, StoreError)
        assert "the disk is full: free space on it, then try again; nothing of this was stored (SQLITE_FULL)" in str(
            error
        )
        assert str(tmp_path / "full.db") in str(error)
        assert _rows(w) == []
    finally:
        w.close()


def test_each_kind_of_refusal_says_what_to_do(tmp_path):
    path = tmp_path / "x.db"

    def refusal(name: str) -> sqlite3.Error:
        e = sqlite3.OperationalError("refused")
        e.sqlite_errorname = name  # type: ignore[attr-defined]
        return e

    advice = {
        "SQLITE_FULL": "the disk is full",
        "SQLITE_READONLY_DBMOVED": "cannot be written",
        "SQLITE_IOERR_FSYNC": "I/O error",
        "SQLITE_CORRUPT": "restore it from a backup",
        "SQLITE_NOTADB": "restore it from a backup",
        "SQLITE_BUSY": "another process held the database",
        "SQLITE_MISUSE": "refused",
    }
    for name, words in advice.items():
        message = str(store_error(refusal(name), path))
        assert words in message, (name, message)
        assert message.startswith(f"{path}: ")
        assert message.endswith(f"({name})")
