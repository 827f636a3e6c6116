"""The worker: runs tier0's background jobs on a schedule (``tier0 worker``).

A ``Job`` is a name, an interval and a function. The ``Scheduler`` runs each job when it
falls due, one at a time in its own thread, and keeps going when a job fails (the failure
is logged and the job runs again at its next turn), so one broken job never stops
notification delivery. Several workers may run at once (on several hosts): every job
must be safe to run concurrently with itself, as outbox delivery is (leases, see
``tickets.outbox``).

Jobs come from ``standard_jobs`` (outbox delivery) plus any the caller adds: the SLA
checks and auto-close of the ticket domain are registered the same way::

    scheduler = Scheduler([*standard_jobs(context), Job("sla checks", 60.0, check_slas)])
    scheduler.run_forever()           # tier0 worker
    scheduler.start_in_background()   # inside tier0 run
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tickets.delivery import DeliveryRound, OutboxDelivery

logger = logging.getLogger(__name__)


@dataclass
class Job:
    """Something to run every ``interval`` seconds; its return value is logged if truthy."""

    name: str
    interval: float
    run: Callable[[], Any]

    def __post_init__(self) -> None:
        if self.interval <= 0:
            raise ValueError(f"job {self.name!r} needs a positive interval, not {self.interval}")


@dataclass
class JobStats:
    runs: int = 0
    failures: int = 0
    last_error: str | None = None
    last_result: Any = None


@dataclass
class Scheduler:
    """Runs jobs when due until stopped. ``monotonic`` is injectable for tests."""

    jobs: Sequence[Job]
    monotonic: Callable[[], float] = time.monotonic
    stats: dict[str, JobStats] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        names = [job.name for job in self.jobs]
        if len(set(names)) != len(names):
            raise ValueError(f"job names must be unique: {names}")
        self.stats = {job.name: JobStats() for job in self.jobs}
        self._next_run = {job.name: 0.0 for job in self.jobs}

    def run_due(self) -> list[str]:
        """Run every job that is due now; the names of those that ran."""
        now = self.monotonic()
        ran: list[str] = []
        for job in self.jobs:
            if self._stop.is_set():
                break
            if self._next_run[job.name] > now:
                continue
            self._run(job)
            ran.append(job.name)
            # Measured from the end of the run, so a slow run does not cause a burst.
            self._next_run[job.name] = self.monotonic() + job.interval
        return ran

    def seconds_until_next(self) -> float:
        if not self.jobs:
            return 60.0
        return max(0.0, min(self._next_run.values()) - self.monotonic())

    def run_forever(self) -> None:
        """Run jobs as they fall due until ``stop()`` (or Ctrl-C in the caller)."""
        logger.info("worker started: %s", ", ".join(job.name for job in self.jobs))
        while not self._stop.is_set():
            self.run_due()
            self._stop.wait(min(self.seconds_until_next(), 5.0))
        logger.info("worker stopped")

    def start_in_background(self) -> threading.Thread:
        """Run the loop in a daemon thread (inside ``tier0 run``); returns the thread."""
        thread = threading.Thread(target=self.run_forever, name="tier0-worker", daemon=True)
        self._thread = thread
        thread.start()
        return thread

    def stop(self, timeout: float | None = 10.0) -> None:
        """Ask the loop to stop after the job it is running, and wait for it."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self, job: Job) -> None:
        stats = self.stats[job.name]
        stats.runs += 1
        try:
            result = job.run()
        except Exception as error:
            stats.failures += 1
            stats.last_error = f"{type(error).__name__}: {error}"
            logger.exception("job %r failed; it runs again in %ss", job.name, job.interval)
            return
        stats.last_result = result
        if result:
            logger.info("job %r: %s", job.name, result)


def delivery_job(delivery: OutboxDelivery, interval: float) -> Job:
    """Outbox delivery: every ``interval`` seconds, deliver all that is due."""

    def deliver() -> DeliveryRound | None:
        outcome = delivery.deliver_all_due()
        return outcome if outcome.claimed else None

    return Job("outbox delivery", interval, deliver)
