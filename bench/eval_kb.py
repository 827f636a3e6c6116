"""Answer quality on the dev question sets (`make eval`): retrieval and the decision.

For each knowledge base (the bundled sample, and the public it-kb in ../shared/data) it
prints Hit@1, Hit@3 and MRR on answerable questions for dense only, BM25 only and the
two fused (weighted score and reciprocal-rank fusion), then the decision the assistant
takes (dry run) on every question: answer / escalate / ticket.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.assistant import Assistant, Decision, IncomingMessage, intent_confidences  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.runtime import build_tier0, embedder_name  # noqa: E402
from knowledge.answerability import (  # noqa: E402
    BUNDLED_CALIBRATION,
    FEATURES,
    AnswerCalibration,
    answer_features,
)
from knowledge.articles import load_articles  # noqa: E402
from knowledge.index import Fusion, KnowledgeIndex, RetrievalMode, load_or_build_index  # noqa: E402
from knowledge.lexical import expand_query  # noqa: E402
from nlu.classifier import IntentClassifier  # noqa: E402
from nlu.embedding import shared_embedder  # noqa: E402
from nlu.training_data import BUNDLED_NLU_DATA, load_training_data  # noqa: E402
from nlu.understanding import Interpreter, Understanding  # noqa: E402


def shared_data() -> Path:
    override = os.environ.get("TIER0_SHARED_DATA")
    return Path(override) if override else (ROOT / ".." / "shared" / "data").resolve()


@dataclass(frozen=True)
class DevSet:
    name: str
    kb_dir: Path
    answerable: list[tuple[str, str]]
    unanswerable: list[str]
    needs_human: list[str]


def load_dev_set(name: str, kb_dir: Path, questions: Path) -> DevSet:
    dev = yaml.safe_load(questions.read_text(encoding="utf-8"))
    return DevSet(
        name,
        kb_dir,
        [(item["question"], item["article"]) for item in dev["answerable"]],
        list(dev["unanswerable"]),
        list(dev["needs_human"]),
    )


def dev_sets() -> list[DevSet]:
    sets = [
        load_dev_set(
            "sample KB", ROOT / "knowledge/sample_kb", ROOT / "bench/data/sample_kb_questions.yml"
        )
    ]
    it_kb = shared_data() / "it-kb" / "articles"
    if it_kb.is_dir():
        sets.append(load_dev_set("it-kb", it_kb, ROOT / "bench/data/it_kb_questions.yml"))
    else:
        print(f"(it-kb not found at {it_kb}; set TIER0_SHARED_DATA)")
    return sets


def ranking_figures(ranks: Sequence[int | None]) -> tuple[float, float, float]:
    n = len(ranks)
    hit1 = sum(r == 1 for r in ranks) / n
    hit3 = sum(r is not None and r <= 3 for r in ranks) / n
    mrr = sum(1.0 / r for r in ranks if r is not None) / n
    return hit1, hit3, mrr


def rank_of(
    index: KnowledgeIndex, meaning: Understanding, gold: str, mode: RetrievalMode
) -> int | None:
    hits = index.search(
        meaning.vector,
        limit=10,
        query_text=expand_query(meaning.text, meaning.normalized_text),
        mode=mode,
    )
    ids = [hit.article_id for hit in hits]
    return ids.index(gold) + 1 if gold in ids else None


@dataclass
class Asked:
    kb: str
    kind: str  # answerable / unanswerable / needs_human
    question: str
    gold: str | None
    features: dict[str, float]
    label: int  # 1 when answering with the best article is right
    decision: Decision | None = None
    answered_with: str | None = None

    @property
    def right(self) -> bool:
        if self.kind == "answerable":
            return self.decision is Decision.ANSWER and self.answered_with == self.gold
        if self.kind == "unanswerable":
            return self.decision in {Decision.ESCALATE, Decision.TICKET}
        return self.decision is Decision.TICKET


def fit_calibration(items: Sequence[Asked], trained_on: str) -> AnswerCalibration:
    x = np.array([[item.features[name] for name in FEATURES] for item in items])
    y = np.array([item.label for item in items])
    model = LogisticRegression(C=10.0, max_iter=2000).fit(x, y)
    probabilities = model.predict_proba(x)[:, 1]
    # The threshold with the most right calls on the training questions.
    candidates = np.linspace(0.05, 0.95, 91)
    accuracy = [np.mean((probabilities >= t) == (y == 1)) for t in candidates]
    threshold = float(candidates[int(np.argmax(accuracy))])
    return AnswerCalibration(
        tuple(float(w) for w in model.coef_[0]), float(model.intercept_[0]), threshold, trained_on
    )


def ask_all(assistant: Assistant, dev: DevSet) -> list[Asked]:
    items: list[Asked] = []
    kinds = [("answerable", q, g) for q, g in dev.answerable]
    kinds += [("unanswerable", q, None) for q in dev.unanswerable]
    kinds += [("needs_human", q, None) for q in dev.needs_human]
    for kind, question, gold in kinds:
        meaning = assistant.interpreter.understand(question)
        hits = assistant.knowledge.search(
            meaning.vector, limit=3, query_text=expand_query(meaning.text, meaning.normalized_text)
        )
        label = int(kind == "answerable" and bool(hits) and hits[0].article_id == gold)
        features = answer_features(hits, intent_confidences(meaning))
        items.append(Asked(dev.name, kind, question, gold, features, label))
    return items


def decide(assistant: Assistant, items: Sequence[Asked]) -> None:
    for number, item in enumerate(items):
        reply = assistant.respond(IncomingMessage(f"eval-{number}", "eval", item.question))
        item.decision = reply.decision
        item.answered_with = reply.articles[0].article_id if reply.articles else None


def decision_table(label: str, items: Sequence[Asked]) -> str:
    def share(kind: str) -> str:
        chosen = [item for item in items if item.kind == kind]
        return f"{sum(item.right for item in chosen) / len(chosen):6.1%}" if chosen else "     -"

    overall = sum(item.right for item in items) / len(items)
    return (
        f"  {label:22s} {share('answerable')} {share('unanswerable')}"
        f" {share('needs_human')} {overall:6.1%}"
    )


def evaluate_decisions(args: argparse.Namespace, sets: Sequence[DevSet]) -> None:
    print("\nDecisions (dry run of the assistant). answered right = the right article;")
    print("escalated = unanswerable not answered; ticket = needs-human opened a ticket.")
    print("Calibration: 5-fold cross-validation over both sets pooled (stratified by set and")
    print("kind); each fold's model and threshold are fitted on the other four folds.")
    with tempfile.TemporaryDirectory() as scratch:
        assistants: dict[str, Assistant] = {}
        for dev in sets:
            settings = Settings(  # type: ignore[call-arg]
                _env_file=None, TIER0_HOME=Path(scratch) / dev.name, TIER0_KB_DIR=dev.kb_dir
            )
            assistants[dev.name] = build_tier0(settings, dry_run=True).assistant
        final: dict[RetrievalMode, list[Asked]] = {}
        for mode in (RetrievalMode.DENSE, RetrievalMode.LEXICAL, RetrievalMode.HYBRID):
            items: list[Asked] = []
            for dev in sets:
                assistants[dev.name].knowledge.text_mode = mode
                items += ask_all(assistants[dev.name], dev)
            strata = [f"{item.kb}/{item.kind}" for item in items]
            folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=5)
            for train, test in folds.split(np.zeros(len(items)), strata):
                calibration = fit_calibration([items[i] for i in train], f"fold, {mode.value}")
                for name, assistant in assistants.items():
                    assistant.calibration = calibration
                    decide(assistant, [items[i] for i in test if items[i].kb == name])
            final[mode] = items
        for dev in sets:
            print(f"\n  {dev.name:22s} {'answer':>6s} {'escal.':>6s} {'ticket':>6s} {'right':>6s}")
            for mode, items in final.items():
                print(decision_table(f"{mode.value}", [i for i in items if i.kb == dev.name]))
        print(
            f"\n  {'both, pooled':22s} {'answer':>6s} {'escal.':>6s} {'ticket':>6s} {'right':>6s}"
        )
        for mode, items in final.items():
            print(decision_table(f"{mode.value}", items))

        hybrid = final[RetrievalMode.HYBRID]
        if len(sets) > 1:
            print("\n  across knowledge bases (hybrid): fitted on one set, decided on the other")
            for train_kb, test_kb in ((sets[0].name, sets[1].name), (sets[1].name, sets[0].name)):
                calibration = fit_calibration([i for i in hybrid if i.kb == train_kb], train_kb)
                assistant = assistants[test_kb]
                assistant.knowledge.text_mode = RetrievalMode.HYBRID
                assistant.calibration = calibration
                held = [
                    Asked(i.kb, i.kind, i.question, i.gold, i.features, i.label)
                    for i in hybrid
                    if i.kb == test_kb
                ]
                decide(assistant, held)
                print(decision_table(f"{train_kb} -> {test_kb}", held))
        if args.verbose:
            for item in hybrid:
                if not item.right:
                    print(
                        f"     wrong [{item.kb}/{item.kind}] {item.question!r}: "
                        f"{item.decision} {item.answered_with} (want {item.gold or item.kind})"
                    )
        if args.calibrate:
            calibration = fit_calibration(hybrid, "bench/eval_kb.py: both dev sets, hybrid")
            BUNDLED_CALIBRATION.write_text(json.dumps(calibration.as_dict(), indent=2) + "\n")
            print(f"\nwrote {BUNDLED_CALIBRATION} (fitted on all {len(hybrid)} questions)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="list the misses")
    parser.add_argument("--sweep", action="store_true", help="sweep the dense weight")
    parser.add_argument("--only", help="evaluate only the knowledge base with this name")
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="write knowledge/calibration.json, fitted on all dev questions",
    )
    parser.add_argument("--no-decisions", action="store_true", help="retrieval figures only")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)  # one short question at a time: threads only wait on each other
    embedder = shared_embedder()
    data = load_training_data([BUNDLED_NLU_DATA])
    interpreter = Interpreter(embedder, IntentClassifier.train(data, embedder), data.synonyms)
    sets = [dev for dev in dev_sets() if not args.only or dev.name == args.only]
    for dev in sets:
        articles = load_articles(dev.kb_dir)
        with tempfile.TemporaryDirectory() as home:
            index, _ = load_or_build_index(articles, Path(home), embedder, embedder_name(embedder))
        meanings = [(interpreter.understand(q), gold) for q, gold in dev.answerable]
        print(
            f"\n{dev.name}: {len(articles)} articles, {index.chunk_count} passages; "
            f"{len(dev.answerable)} answerable, {len(dev.unanswerable)} unanswerable, "
            f"{len(dev.needs_human)} needs-human questions"
        )
        print(f"  {'retrieval':22s} {'Hit@1':>6s} {'Hit@3':>6s} {'MRR':>6s}")
        variants: list[tuple[str, RetrievalMode, Fusion, float]] = [
            ("dense only", RetrievalMode.DENSE, Fusion.WEIGHTED, 0.0),
            ("BM25 only", RetrievalMode.LEXICAL, Fusion.WEIGHTED, 0.0),
            ("hybrid, RRF", RetrievalMode.HYBRID, Fusion.RRF, 0.0),
        ]
        weights = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8] if args.sweep else [index.dense_weight]
        variants += [
            (f"hybrid, weighted {w:.1f}", RetrievalMode.HYBRID, Fusion.WEIGHTED, w) for w in weights
        ]
        for label, mode, fusion, weight in variants:
            index.fusion, index.dense_weight = fusion, weight or index.dense_weight
            ranks = [rank_of(index, meaning, gold, mode) for meaning, gold in meanings]
            hit1, hit3, mrr = ranking_figures(ranks)
            print(f"  {label:22s} {hit1:6.1%} {hit3:6.1%} {mrr:6.3f}")
            if args.verbose and label.startswith("hybrid, weighted"):
                for (meaning, gold), rank in zip(meanings, ranks, strict=True):
                    if rank != 1:
                        top = index.search(
                            meaning.vector,
                            limit=1,
                            query_text=expand_query(meaning.text, meaning.normalized_text),
                        )
                        got = top[0].article_id
                        print(f"     miss {meaning.text!r}: want {gold} ({rank}), got {got}")

    if not args.no_decisions:
        evaluate_decisions(args, sets)


if __name__ == "__main__":
    main()
