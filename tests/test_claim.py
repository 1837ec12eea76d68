"""The run folder's claim (bench.runner.claim): one live run per folder, also when two start at the same moment."""

import multiprocessing as mp
import os

import pytest

from bench.errors import BenchError
from bench.runner import CLAIM_FILE, claim

FORK = mp.get_context("fork")


def _hold_with_empty_file(folder, holding, release):
    with claim(folder):
        (folder / CLAIM_FILE).write_text("")  # as if caught between creating the claim file and writing its pid
        holding.set()
        release.wait(30)


def test_a_claim_still_being_written_is_not_taken_as_stale(tmp_path):
    holding, release = FORK.Event(), FORK.Event()
    holder = FORK.Process(target=_hold_with_empty_file, args=(tmp_path, holding, release))
    holder.start()
    try:
        assert holding.wait(30)
        with pytest.raises(BenchError, match="in use by another run"):
            with claim(tmp_path):
                pass
    finally:
        release.set()
        holder.join(30)
    assert holder.exitcode == 0


def _race(folder, barrier, wins):
    barrier.wait(30)
    try:
        with claim(folder):
            wins.put(os.getpid())
            barrier.wait(30)  # hold the claim until every claimer has tried
    except BenchError:
        barrier.wait(30)


def test_of_concurrent_claimers_exactly_one_wins(tmp_path):
    n = 6
    for _ in range(3):
        barrier, wins = FORK.Barrier(n), FORK.Queue()
        procs = [FORK.Process(target=_race, args=(tmp_path, barrier, wins)) for _ in range(n)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        assert [p.exitcode for p in procs] == [0] * n
        won = []
        while not wins.empty():
            won.append(wins.get())
        assert len(won) == 1, won
        assert not (tmp_path / CLAIM_FILE).exists()  # released by the winner


def _die_holding(folder):
    with claim(folder):
        os._exit(9)  # kill -9 alike: no cleanup, the claim file stays


def test_a_claim_left_by_a_dead_process_is_taken_over(tmp_path):
    p = FORK.Process(target=_die_holding, args=(tmp_path,))
    p.start()
    p.join(30)
    assert p.exitcode == 9 and (tmp_path / CLAIM_FILE).read_text().isdigit()
    with claim(tmp_path):
        assert (tmp_path / CLAIM_FILE).read_text() == str(os.getpid())
