"""A DynamoDB read its caller may give up on is counted once (shop.aspects.tally), whichever
comes first, the answer or the caller; a late answer on the caller's own thread counts as the
timeout it is served as. tests/test_guard.py shows the same through a real late DynamoDB."""
from __future__ import annotations

import threading

from shop.aspects.tally import ReadTally


def _tally(hold=False):
    counted = []
    return ReadTally(lambda seconds, failed: counted.append((seconds, failed)), hold), counted


def test_given_up_before_the_answer_counts_one_failure_and_ignores_the_answer():
    tally, counted = _tally()
    tally.settle(0.3, late=True)
    tally.answered(0.8, failed=False)
    assert counted == [(0.3, True)]


def test_an_answer_in_time_counts_once_and_the_caller_adds_nothing():
    tally, counted = _tally()
    tally.answered(0.02, failed=False)
    tally.settle(0.3, late=True)  # the caller's timer ran out just after the answer came
    assert counted == [(0.02, False)]


def test_on_the_callers_thread_the_caller_judges_the_answer():
    late, counted = _tally(hold=True)
    late.answered(0.45, failed=False)
    assert counted == []  # held until the caller says whether it was in time
    late.settle(0.45, late=True)
    on_time, counted_in_time = _tally(hold=True)
    on_time.answered(0.01, failed=False)
    on_time.settle(0.01, late=False)
    assert counted == [(0.45, True)] and counted_in_time == [(0.01, False)]


def test_an_answer_and_a_give_up_racing_count_exactly_once():
    for _ in range(200):
        tally, counted = _tally()
        go = threading.Barrier(2)
        threads = [threading.Thread(target=lambda: (go.wait(), tally.answered(0.3, False))),
                   threading.Thread(target=lambda: (go.wait(), tally.settle(0.3, late=True)))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(counted) == 1
