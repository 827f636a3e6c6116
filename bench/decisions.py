"""What the assistant decides for the sample KB's dev questions (a dry run: nothing stored).

Answerable questions should get their article; unanswerable ones should be escalated
(offered a ticket) rather than answered; requests that need a person should open a
ticket. Prints the share of each decision per set and the misses with -v.
"""

from __future__ import annotations

import sys
import tempfile
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.assistant import Decision, IncomingMessage, Reply  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.runtime import build_tier0  # noqa: E402


def main() -> None:
    dev = yaml.safe_load((ROOT / "bench/data/sample_kb_questions.yml").read_text())
    verbose = "-v" in sys.argv
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(_env_file=None, TIER0_HOME=home)  # type: ignore[call-arg]
        assistant = build_tier0(settings, dry_run=True).assistant

        def ask(question: str) -> Reply:
            return assistant.respond(IncomingMessage("bench", "bench", question))

        sets = {
            "answerable": [(item["question"], item["article"]) for item in dev["answerable"]],
            "unanswerable": [(question, None) for question in dev["unanswerable"]],
            "needs_human": [(question, None) for question in dev["needs_human"]],
        }
        wanted = {
            "answerable": Decision.ANSWER,
            "unanswerable": Decision.ESCALATE,
            "needs_human": Decision.TICKET,
        }
        for name, items in sets.items():
            decisions: Counter[str] = Counter()
            correct = 0
            for question, article in items:
                reply = ask(question)
                decisions[reply.decision.value] += 1
                right = reply.decision is wanted[name] and (
                    article is None or reply.articles[0].article_id == article
                )
                correct += right
                if verbose and not right:
                    got = reply.articles[0].article_id if reply.articles else "-"
                    print(
                        f"  [{name}] {question!r}: {reply.decision.value} {got}"
                        f" (want {article or wanted[name].value})"
                    )
            shares = ", ".join(f"{d} {n / len(items):.0%}" for d, n in decisions.most_common())
            print(
                f"{name:13s} {len(items):4d} questions  correct {correct / len(items):6.1%}"
                f"  ({shares})"
            )


if __name__ == "__main__":
    main()
