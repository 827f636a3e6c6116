"""The worker runs each job on its schedule and survives a job that fails."""

from __future__ import annotations

import threading

import pytest

from tickets.worker import Job, Scheduler


class Ticker:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_each_job_runs_when_its_interval_has_passed() -> None:
    ticker = Ticker()
    runs: list[str] = []
    scheduler = Scheduler(
        [
            Job("delivery", 5, lambda: runs.append("delivery")),
            Job("sla", 60, lambda: runs.append("sla")),
        ],
        monotonic=ticker,
    )

    for second in range(0, 121):
        ticker.now = float(second)
        scheduler.run_due()

    assert runs.count("delivery") == 25  # at 0, 5, …, 120
    assert runs.count("sla") == 3  # at 0, 60, 120


def test_a_failing_job_is_retried_at_its_next_turn_and_does_not_stop_the_others() -> None:
    ticker = Ticker()
    delivered: list[float] = []

    def broken() -> None:
        raise RuntimeError("SLA table missing")

    scheduler = Scheduler(
        [Job("sla", 10, broken), Job("delivery", 10, lambda: delivered.append(ticker.now))],
        monotonic=ticker,
    )
    for second in (0, 10, 20):
        ticker.now = float(second)
        scheduler.run_due()

    assert delivered == [0.0, 10.0, 20.0]
    assert scheduler.stats["sla"].failures == 3
    assert scheduler.stats["sla"].last_error == "RuntimeError: SLA table missing"


def test_the_background_worker_runs_jobs_until_stopped() -> None:
    ran = threading.Event()
    scheduler = Scheduler([Job("delivery", 0.05, ran.set)])

    thread = scheduler.start_in_background()
    assert ran.wait(5)
    scheduler.stop()

    assert not thread.is_alive()


def test_jobs_need_a_positive_interval_and_unique_names() -> None:
    with pytest.raises(ValueError, match="positive interval"):
        Job("delivery", 0, lambda: None)
    with pytest.raises(ValueError, match="unique"):
        Scheduler([Job("a", 1, lambda: None), Job("a", 2, lambda: None)])
