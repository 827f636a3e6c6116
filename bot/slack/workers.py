"""A bounded pool of threads for the slow part of Slack requests.

Bolt acknowledges a request first; understanding the message, searching, writing the
store and calling Slack happen here. The queue is bounded so a burst cannot grow
memory without limit: an event that finds it full stays in the inbox and is picked up
by the sweeper once there is room.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)

Job = Callable[[], None]
LOWEST_PRIORITY = 19


def lower_priority(task_id: int, by: int) -> None:
    """Lower a task's CPU priority by `by` nice steps (to 19 at most); `task_id` 0 is
    the calling process. Raises OSError (or AttributeError off Unix) when it cannot."""
    now = os.getpriority(os.PRIO_PROCESS, task_id)
    os.setpriority(os.PRIO_PROCESS, task_id, min(LOWEST_PRIORITY, now + by))


class WorkerPool:
    def __init__(
        self,
        workers: int = 4,
        capacity: int = 2000,
        name: str = "slack-work",
        *,
        niceness: int = 0,
    ) -> None:
        """`niceness` > 0 lowers the workers' CPU priority (Linux) so the threads that
        acknowledge Slack's requests win the CPU when both want it."""
        if workers < 1 or capacity < 1:
            raise ValueError("a worker pool needs at least one worker and one queue slot")
        self._niceness = niceness
        self._jobs: queue.Queue[Job | None] = queue.Queue(maxsize=capacity)
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{n}", daemon=True)
            for n in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, job: Job) -> bool:
        """Queue a job; False when the queue is full (the caller keeps the work)."""
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            return False
        return True

    @property
    def size(self) -> int:
        """How many threads run jobs."""
        return len(self._threads)

    @property
    def backlog(self) -> int:
        return self._jobs.qsize()

    def join(self) -> None:
        """Wait until every queued job has run (tests, shutdown)."""
        self._jobs.join()

    def stop(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join(timeout=10)

    def _work(self) -> None:
        if self._niceness:
            try:
                # On Linux a thread is a task of its own: this renices only this worker.
                # Relative to where it starts, so a process already niced (an answering
                # process, a benchmark under `nice`) is never raised back up.
                lower_priority(threading.get_native_id(), self._niceness)
            except (AttributeError, OSError):
                logger.info("cannot lower the Slack workers' priority here; running as is")
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                job()
            except Exception:
                logger.exception("a Slack job failed")
            finally:
                self._jobs.task_done()
