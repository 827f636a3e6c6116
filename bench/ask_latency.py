"""`tier0 ask` latency over the sample KB's dev questions.

Prints: the wall and CPU time of a whole `tier0 ask "…"` process (Python, model, index
and intent model loaded from disk, one answer: the cold start); in-process start-up;
then per question the median, p95 and max time from question to reply, with the store
written (conversation saved, tickets opened) and as a dry run, and the dry run split
into understanding (one embedding + intent) and search. Run with `make bench`.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.assistant import IncomingMessage  # noqa: E402
from bot.config import Settings  # noqa: E402


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    dev = yaml.safe_load((ROOT / "bench/data/sample_kb_questions.yml").read_text())
    questions = [item["question"] for item in dev["answerable"]] + list(dev["unanswerable"])
    with tempfile.TemporaryDirectory() as home:
        started = time.perf_counter()
        from bot.runtime import build_tier0

        settings = Settings(_env_file=None, TIER0_HOME=home)  # type: ignore[call-arg]
        tier0 = build_tier0(settings, dry_run=True)
        cold = time.perf_counter() - started

        started = time.perf_counter()
        warm_tier0 = build_tier0(settings, dry_run=True)  # index and intent model from disk
        warm = time.perf_counter() - started
        assistant = warm_tier0.assistant

        live_tier0 = build_tier0(
            Settings(_env_file=None, TIER0_HOME=home)  # type: ignore[call-arg]
        )
        live = []
        for number, question in enumerate(questions):
            began = time.perf_counter()
            live_tier0.assistant.respond(IncomingMessage(f"bench:{number}", "bench", question))
            live.append(time.perf_counter() - began)

        process, process_cpu = [], []
        environment = {**os.environ, "TIER0_HOME": home, "HF_HUB_OFFLINE": "1"}
        for question in questions[:3]:
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            began = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "bot.cli", "ask", "--json", "--dry-run", question],
                env=environment,
                capture_output=True,
                check=True,
                cwd=ROOT,
            )
            process.append(time.perf_counter() - began)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            process_cpu.append(
                after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
            )

        totals, understanding, search = [], [], []
        for number, question in enumerate(questions):
            began = time.perf_counter()
            meaning = assistant.interpreter.understand(question)
            understood = time.perf_counter()
            tier0.knowledge.search(meaning.vector, limit=3)
            understanding.append(understood - began)
            search.append(time.perf_counter() - understood)
            began = time.perf_counter()
            assistant.respond(IncomingMessage(f"bench:{number}", "bench", question))
            totals.append(time.perf_counter() - began)

    def ms(value: float) -> str:
        return f"{value * 1000:7.1f} ms"

    print(
        f"questions: {len(questions)} (sample KB: {tier0.knowledge.article_count} articles,"
        f" {len(tier0.knowledge.chunks)} passages)"
    )
    print(f"start-up, first run (build index + train intents): {cold:6.2f} s")
    print(f"start-up, later runs (index + intents from disk): {warm:6.2f} s")
    print(
        f"`tier0 ask` as a process (3 runs):                {min(process):6.2f} s best, "
        f"{max(process):.2f} s worst (CPU {min(process_cpu):.2f} s best, "
        f"{max(process_cpu):.2f} s worst)"
    )
    for name, values in (
        ("ask, store written", live),
        ("ask, dry run", totals),
        ("  understand", understanding),
        ("  search", search),
    ):
        print(
            f"{name:22s} median {ms(statistics.median(values))}  p95 "
            f"{ms(percentile(values, 0.95))}  max {ms(max(values))}"
        )


if __name__ == "__main__":
    main()
