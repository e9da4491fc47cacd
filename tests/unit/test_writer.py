"""The store's writer: group commit, answers only after the commit, a failed transaction fails all its jobs."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest

from hotline.store.sqlite import Writer, connect


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


async def test_a_failing_job_fails_its_whole_transaction_and_the_writer_goes_on(writer):
    def fail(conn: sqlite3.Connection) -> None:
        raise sqlite3.IntegrityError("refused")

    answers = await _submit_held(writer, [_insert(1), fail, _insert(2)])
    assert [type(error) for _, error, _ in answers] == [sqlite3.IntegrityError] * 3
    assert _rows(writer) == []  # rolled back: nothing of it on disk
    [(result, error, seen)] = await _submit_held(writer, [_insert(3)])
    assert (result, error, seen) == (3, None, [3])
