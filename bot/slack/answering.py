"""Answering the Slack events the ack path stored: claim from the inbox, run the listeners.

In HTTP mode the process that acknowledges Slack's deliveries only verifies and stores
them (`bot.slack.intake`). The answers (understanding, search, tickets, replies) are
worked out here, in a separate process by default (`tier0 serve --http` starts one), so
answer work never holds the GIL the acks need. Any number of answering processes,
on any replica, can share one store: each event goes to the one whose inbox claim wins.

An event is claimed only when the worker pool has room for it, so a claimed event starts
within moments, well inside its lease; the rest wait in the inbox, where a crash cannot
lose them.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence

from bot.slack.inbox import SlackInbox, StaleEvent
from bot.slack.workers import WorkerPool

logger = logging.getLogger(__name__)

# With nothing woken (events stored by another process), look for new ones this often.
POLL_SECONDS = 0.05


class EventAnswering:
    def __init__(
        self,
        inbox: SlackInbox,
        workers: WorkerPool,
        dispatch: Callable[[StaleEvent], None],
        *,
        poll_seconds: float = POLL_SECONDS,
        ahead: int | None = None,
    ) -> None:
        """`dispatch` hands one claimed event to the listeners (which queue its work on
        `workers`); `ahead` is how many claimed events may wait in the pool's queue."""
        self._inbox = inbox
        self._workers = workers
        self._dispatch = dispatch
        self._poll_seconds = poll_seconds
        self._ahead = ahead if ahead is not None else max(2, workers.size)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def wake(self, *_: object) -> None:
        """An event was just stored in this process: look now rather than at the next poll."""
        self._wake.set()

    def answer_waiting(self) -> int:
        """Claim and dispatch what the pool has room for; returns how many."""
        room = self._ahead - self._workers.backlog
        claimed = self._inbox.claim_waiting(room)
        for event in claimed:
            try:
                self._dispatch(event)
            except Exception:
                # Claimed but not started: the lease runs out and the sweep tries again.
                logger.exception("could not dispatch Slack event %s", event.event_id)
        return len(claimed)

    def run(self, stop: threading.Event | None = None) -> None:
        """Answer until `stop` (or `self.stop()`) is set."""
        stopping = stop or self._stop
        while not stopping.is_set() and not self._stop.is_set():
            try:
                claimed = self.answer_waiting()
            except Exception:
                logger.exception("could not read the Slack inbox; trying again")
                claimed = 0
            if claimed and self._workers.backlog < self._ahead:
                continue  # more may be waiting
            self._wake.wait(self._poll_seconds)
            self._wake.clear()

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="slack-answering", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


def parent_gone(parent_pid: int) -> bool:
    """Whether the process that started this one has exited (we were re-parented)."""
    return os.getppid() != parent_pid


# A child that dies is started again after this pause (not in a tight loop).
RESTART_PAUSE_SECONDS = 2.0


class AnsweringProcesses:
    """The answering processes `tier0 serve --http` runs beside itself, kept running.

    Each is `tier0 answer-events --exit-with <this pid>`: it leaves when this process
    does, however this one ends. One that dies is started again; what it had claimed is
    taken over by the sweep when its lease runs out.
    """

    def __init__(self, count: int, command: Sequence[str] | None = None) -> None:
        self._command = list(command or self.default_command())
        self._children: list[subprocess.Popen[bytes] | None] = [None] * count
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    @staticmethod
    def default_command() -> list[str]:
        return [sys.executable, "-m", "bot.cli", "answer-events", "--exit-with", str(os.getpid())]

    @property
    def pids(self) -> list[int]:
        return [child.pid for child in self._children if child is not None]

    def start(self) -> None:
        for slot in range(len(self._children)):
            self._children[slot] = subprocess.Popen(self._command)
        self._watcher = threading.Thread(target=self._watch, name="answering-watch", daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        while not self._stopping.wait(0.5):
            for slot, child in enumerate(self._children):
                if child is None or child.poll() is None:
                    continue
                logger.error(
                    "the Slack answering process %s exited (%s); starting another",
                    child.pid,
                    child.returncode,
                )
                time.sleep(RESTART_PAUSE_SECONDS)
                if not self._stopping.is_set():
                    self._children[slot] = subprocess.Popen(self._command)

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        for child in self._children:
            if child is not None and child.poll() is None:
                child.terminate()
        for child in self._children:
            if child is None:
                continue
            try:
                child.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                child.kill()
