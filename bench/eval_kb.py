"""Answer quality on the dev question sets (`make eval`): retrieval and the decision.

For each knowledge base (the bundled sample, and the public it-kb in ../shared/data) it
prints Hit@1, Hit@3 and MRR on answerable questions for dense only, BM25 only, the two
fused (weighted score and reciprocal-rank fusion), the fused ranking re-ranked by the
titles' words, and by their words and meaning (knowledge/ranking.py, what the assistant
uses), then the decision the assistant takes (dry run) on every question: answer /
escalate / ticket (or a service-catalog offer, scored as Asked.right says), 5-fold
cross-validated on the dev sets, and on the held-out questions (bench/data/*_heldout.yml)
with the calibration fitted on the dev sets.
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

from bot.assistant import Assistant, Decision, IncomingMessage, message_features  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.runtime import build_tier0, embedder_name  # noqa: E402
from knowledge.answerability import (  # noqa: E402
    BUNDLED_CALIBRATION,
    FEATURES,
    OUTCOMES,
    AnswerCalibration,
    Outcome,
)
from knowledge.articles import load_articles  # noqa: E402
from knowledge.index import (  # noqa: E402
    Fusion,
    KnowledgeIndex,
    RetrievalMode,
    SearchHit,
    load_or_build_index,
)
from knowledge.lexical import expand_query  # noqa: E402
from knowledge.ranking import RERANK_DEPTH, TitleMeanings, rerank  # noqa: E402
from nlu.classifier import ClassifierConfig, IntentClassifier  # noqa: E402
from nlu.embedding import shared_embedder  # noqa: E402
from nlu.training_data import BUNDLED_NLU_DATA, load_training_data  # noqa: E402
from nlu.understanding import Interpreter, Understanding  # noqa: E402

# How hard the decision model is pulled towards zero weights: the dev sets hold a few
# hundred questions for 19 features, so it is kept fairly strong.
C_REGULARISATION = 1.0
DECISION_COLUMNS = f"{'answer':>6s} {'escal.':>6s} {'ticket':>6s} {'right':>6s} {'catalog':>7s}"


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


def dev_sets(held_out: bool = False) -> list[DevSet]:
    """The dev question sets (tuned on), or the held-out ones (only ever reported)."""
    suffix = "heldout" if held_out else "questions"
    sets = [
        load_dev_set(
            "sample KB", ROOT / "knowledge/sample_kb", ROOT / f"bench/data/sample_kb_{suffix}.yml"
        )
    ]
    it_kb = shared_data() / "it-kb" / "articles"
    if it_kb.is_dir():
        sets.append(load_dev_set("it-kb", it_kb, ROOT / f"bench/data/it_kb_{suffix}.yml"))
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
    index: KnowledgeIndex,
    meaning: Understanding,
    gold: str,
    mode: RetrievalMode,
    titles: TitleMeanings | None = None,
    title_words: bool = False,
) -> int | None:
    ids = [hit.article_id for hit in ranked(index, meaning, mode, titles, title_words)]
    return ids.index(gold) + 1 if gold in ids else None


def ranked(
    index: KnowledgeIndex,
    meaning: Understanding,
    mode: RetrievalMode = RetrievalMode.HYBRID,
    titles: TitleMeanings | None = None,
    title_words: bool = False,
) -> list[SearchHit]:
    """The hits of one question; re-ranked by the titles' words, and their meanings when
    given, as the assistant re-ranks."""
    query_text = expand_query(meaning.text, meaning.normalized_text)
    hits = index.search(meaning.vector, limit=RERANK_DEPTH, query_text=query_text, mode=mode)
    if not title_words:
        return hits
    return rerank(hits, query_text, meaning.vector, titles)


@dataclass
class Asked:
    kb: str
    kind: str  # answerable / unanswerable / needs_human
    question: str
    gold: str | None
    features: dict[str, float]
    label: Outcome  # what would be right, given the best article found
    decision: Decision | None = None
    answered_with: str | None = None
    best_article: str | None = None  # what an answer would give
    # The decision taken whatever the calibrated model says (a catalog offer, a status,
    # small talk, an outage ticket), or None where the model decides.
    fixed: Decision | None = None

    @property
    def right(self) -> bool:
        # A service-catalog offer (Decision.CATALOG) is only made to a message that names a
        # catalog item and asks for it ("need a figma editor seat", "we need a new shared
        # mailbox"); its form becomes a request the item's fulfilment team works, so it
        # counts as right where an article or a ticket would: for an answerable request
        # (the form is the self-service answer the article would point to) and for one
        # that needs a person. It is not an escalation of an unanswerable question.
        # The tables show how many decisions were catalog offers (`catalog`).
        if self.kind == "answerable":
            return self.decision is Decision.CATALOG or (
                self.decision is Decision.ANSWER and self.answered_with == self.gold
            )
        if self.kind == "unanswerable":
            return self.decision in {Decision.ESCALATE, Decision.TICKET}
        return self.decision in {Decision.TICKET, Decision.CATALOG}


def fit_calibration(items: Sequence[Asked], trained_on: str) -> AnswerCalibration:
    # An answerable question whose article the search did not put first is neither a
    # good "answer" example nor a true "escalate" one: it teaches the model nothing but
    # noise about retrieval, so it is left out of the fit (it still counts when scored).
    kept = [
        item
        for item in items
        if not (item.kind == "answerable" and item.label is not Outcome.ANSWER)
    ]
    x = np.array([[item.features[name] for name in FEATURES] for item in kept])
    y = np.array([OUTCOMES.index(item.label) for item in kept])
    model = LogisticRegression(C=C_REGULARISATION, max_iter=5000).fit(x, y)
    probabilities = model.predict_proba(x)
    weights = tuple(tuple(float(w) for w in row) for row in model.coef_)
    bias = tuple(float(b) for b in model.intercept_)

    def right_calls(threshold: float) -> int:
        calibration = AnswerCalibration(weights, bias, threshold)
        return sum(
            _chosen(calibration, p) is item.label
            or (item.kind == "unanswerable" and _chosen(calibration, p) is Outcome.TICKET)
            for item, p in zip(kept, probabilities, strict=True)
        )

    # The answer threshold with the most right calls on the training questions.
    candidates = [float(t) for t in np.linspace(0.2, 0.8, 61)]
    threshold = max(candidates, key=lambda t: (right_calls(t), -abs(t - 0.5)))
    return AnswerCalibration(weights, bias, threshold, trained_on)


def _chosen(calibration: AnswerCalibration, probabilities: np.ndarray) -> Outcome:
    by_outcome = dict(zip(OUTCOMES, probabilities.tolist(), strict=True))
    if by_outcome[Outcome.ANSWER] >= calibration.threshold:
        return Outcome.ANSWER
    if by_outcome[Outcome.TICKET] > by_outcome[Outcome.ESCALATE]:
        return Outcome.TICKET
    return Outcome.ESCALATE


def ask_all(assistant: Assistant, dev: DevSet) -> list[Asked]:
    items: list[Asked] = []
    kinds: list[tuple[str, str, str | None]] = [("answerable", q, g) for q, g in dev.answerable]
    kinds += [("unanswerable", q, None) for q in dev.unanswerable]
    kinds += [("needs_human", q, None) for q in dev.needs_human]
    for kind, question, gold in kinds:
        meaning = assistant.interpreter.understand(question)
        hits = assistant.search_understood(meaning)
        if kind == "answerable":
            found = bool(hits) and hits[0].article_id == gold
            label = Outcome.ANSWER if found else Outcome.ESCALATE
        else:
            label = Outcome.ESCALATE if kind == "unanswerable" else Outcome.TICKET
        features = message_features(hits, meaning)
        best = hits[0].article_id if hits else None
        items.append(Asked(dev.name, kind, question, gold, features, label, best_article=best))
    return items


def decide(assistant: Assistant, items: Sequence[Asked]) -> None:
    for number, item in enumerate(items):
        reply = assistant.respond(IncomingMessage(f"eval-{number}", "eval", item.question))
        item.decision = reply.decision
        item.answered_with = reply.articles[0].article_id if reply.articles else None


def find_fixed_decisions(assistant: Assistant, items: Sequence[Asked]) -> None:
    """Mark the messages whose decision the calibrated model does not take: asked once
    with a model that always answers and once with one that never does, they get the
    same reply."""
    zeros = tuple(tuple(0.0 for _ in FEATURES) for _ in OUTCOMES)
    always = AnswerCalibration(zeros, (0.0, 0.0, 0.0), threshold=0.0)
    never = AnswerCalibration(zeros, (0.0, 1.0, 0.0), threshold=2.0)  # escalate, never answer
    chosen: list[list[Decision | None]] = []
    for calibration in (always, never):
        assistant.calibration = calibration
        copies = [Asked(i.kb, i.kind, i.question, i.gold, i.features, i.label) for i in items]
        decide(assistant, copies)
        chosen.append([copy.decision for copy in copies])
    for item, first, second in zip(items, *chosen, strict=True):
        item.fixed = first if first == second else None


def repeated_cv(items: Sequence[Asked], seeds: int) -> list[float]:
    """The cross-validated right-decision rate for each of `seeds` shuffles of the folds,
    replayed from the stored features: a single split moves by about a point when one
    question changes fold."""
    strata = [f"{item.kb}/{item.kind}" for item in items]
    rates: list[float] = []
    for seed in range(seeds):
        folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
        replayed: list[Asked] = []
        for train, test in folds.split(np.zeros(len(items)), strata):
            calibration = fit_calibration([items[i] for i in train], f"seed {seed}")
            for i in test:
                item = items[i]
                decision = item.fixed or Decision(calibration.decide(item.features).value)
                answered = item.best_article if decision is Decision.ANSWER else None
                replayed.append(
                    Asked(
                        item.kb,
                        item.kind,
                        item.question,
                        item.gold,
                        item.features,
                        item.label,
                        decision,
                        answered,
                    )
                )
        rates.append(sum(item.right for item in replayed) / len(replayed))
    return rates


def dump_items(path: Path, items: Sequence[Asked]) -> None:
    """The questions' stored features, labels and fixed decisions, for trying other
    decision models offline (bench/decision_models.py) without asking the assistant."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "kb": item.kb,
            "kind": item.kind,
            "question": item.question,
            "gold": item.gold,
            "features": item.features,
            "label": item.label.value,
            "best_article": item.best_article,
            "fixed": item.fixed.value if item.fixed else None,
        }
        for item in items
    ]
    path.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")


def decision_table(label: str, items: Sequence[Asked]) -> str:
    def share(kind: str) -> str:
        chosen = [item for item in items if item.kind == kind]
        return f"{sum(item.right for item in chosen) / len(chosen):6.1%}" if chosen else "     -"

    overall = sum(item.right for item in items) / len(items)
    catalog = sum(item.decision is Decision.CATALOG for item in items)
    return (
        f"  {label:22s} {share('answerable')} {share('unanswerable')}"
        f" {share('needs_human')} {overall:6.1%} {catalog:7d}"
    )


def intent_config(args: argparse.Namespace) -> ClassifierConfig:
    if not args.adapt_layers:
        return ClassifierConfig()
    return ClassifierConfig(adapt_last_layer=True, adapted_layers=args.adapt_layers)


def evaluate_decisions(
    args: argparse.Namespace,
    sets: Sequence[DevSet],
    held_out: Sequence[DevSet],
    intents: IntentClassifier,
) -> None:
    print("\nDecisions (dry run of the assistant). answered right = the right article;")
    print("escalated = unanswerable not answered; ticket = needs-human opened a ticket.")
    print("catalog = how many were offered a service-catalog form: right for an answerable")
    print("or needs-human request (the form is fulfilled by a person), wrong otherwise.")
    print("Calibration: 5-fold cross-validation over both sets pooled (stratified by set and")
    print("kind); each fold's model and threshold are fitted on the other four folds.")
    with tempfile.TemporaryDirectory() as scratch:
        assistants: dict[str, Assistant] = {}
        for dev in sets:
            settings = Settings(  # type: ignore[call-arg]
                _env_file=None, TIER0_HOME=Path(scratch) / dev.name, TIER0_KB_DIR=dev.kb_dir
            )
            if args.adapt_layers:
                # Saved where the assistant looks, with the options it keeps on a start.
                intents.save(settings.nlu_model_dir)
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
            print(f"\n  {dev.name:22s} {DECISION_COLUMNS}")
            for mode, items in final.items():
                print(decision_table(f"{mode.value}", [i for i in items if i.kb == dev.name]))
        print(f"\n  {'both, pooled':22s} {DECISION_COLUMNS}")
        for mode, items in final.items():
            print(decision_table(f"{mode.value}", items))

        hybrid = final[RetrievalMode.HYBRID]
        if args.repeats:
            for name, assistant in assistants.items():
                assistant.knowledge.text_mode = RetrievalMode.HYBRID
                find_fixed_decisions(assistant, [i for i in hybrid if i.kb == name])
            if args.dump_items:
                dump_items(args.dump_items / "dev.json", hybrid)
            rates = repeated_cv(hybrid, args.repeats)
            print(
                f"\n  hybrid, pooled, right decision over {args.repeats} shuffles of the folds:"
                f" mean {np.mean(rates):.1%}, sd {np.std(rates):.1%},"
                f" min {min(rates):.1%}, max {max(rates):.1%}"
            )
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
        shipped = fit_calibration(hybrid, "bench/eval_kb.py: both dev sets, hybrid")
        if held_out:
            print("\n  held out (never tuned on; calibration fitted on all dev questions, hybrid)")
            print(f"  {'':22s} {DECISION_COLUMNS}")
            unseen: list[Asked] = []
            for dev in held_out:
                assistant = assistants[dev.name]
                assistant.knowledge.text_mode = RetrievalMode.HYBRID
                assistant.calibration = shipped
                asked = ask_all(assistant, dev)
                decide(assistant, asked)
                print(decision_table(dev.name, asked))
                if args.dump_items:
                    find_fixed_decisions(assistant, asked)
                    assistant.calibration = shipped
                unseen += asked
            print(decision_table("both, pooled", unseen))
            if args.dump_items:
                dump_items(args.dump_items / "heldout.json", unseen)
        if args.verbose:
            for item in hybrid:
                if not item.right:
                    print(
                        f"     wrong [{item.kb}/{item.kind}] {item.question!r}: "
                        f"{item.decision} {item.answered_with} (want {item.gold or item.kind})"
                    )
        if args.calibrate:
            BUNDLED_CALIBRATION.write_text(json.dumps(shipped.as_dict(), indent=2) + "\n")
            print(f"\nwrote {BUNDLED_CALIBRATION} (fitted on all {len(hybrid)} dev questions)")


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
    parser.add_argument(
        "--repeats",
        type=int,
        default=10,
        help="shuffles of the folds for the repeated cross-validation (0: none)",
    )
    parser.add_argument(
        "--dump-items",
        type=Path,
        help="write the hybrid questions' features and fixed decisions to this folder",
    )
    parser.add_argument("--no-decisions", action="store_true", help="retrieval figures only")
    parser.add_argument(
        "--adapt-layers",
        type=int,
        choices=(0, 1, 2),
        default=0,
        help="the intent model as `tier0 nlu train --adapt-layers N` trains it (0: shipped)",
    )
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)  # one short question at a time: threads only wait on each other
    embedder = shared_embedder()
    data = load_training_data([BUNDLED_NLU_DATA])
    intents = IntentClassifier.train(data, embedder, config=intent_config(args))
    interpreter = Interpreter(embedder, intents, data.synonyms)
    sets = [dev for dev in dev_sets() if not args.only or dev.name == args.only]
    held_out = [dev for dev in dev_sets(held_out=True) if not args.only or dev.name == args.only]
    unseen = {dev.name: dev for dev in held_out}
    for dev in sets:
        articles = load_articles(dev.kb_dir)
        with tempfile.TemporaryDirectory() as home:
            index, _ = load_or_build_index(articles, Path(home), embedder, embedder_name(embedder))
        meanings = [(interpreter.understand(q), gold) for q, gold in dev.answerable]
        held_meanings = [
            (interpreter.understand(q), gold)
            for q, gold in (unseen[dev.name].answerable if dev.name in unseen else [])
        ]
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
        default_weight = index.dense_weight
        variants.append(("hybrid + title words", RetrievalMode.HYBRID, Fusion.WEIGHTED, 0.0))
        variants.append(("hybrid + titles (bot)", RetrievalMode.HYBRID, Fusion.WEIGHTED, 0.0))
        title_meanings = TitleMeanings(embedder)
        title_meanings.keep_only(article.title for article in articles if article.searchable)
        for label, mode, fusion, weight in variants:
            index.fusion, index.dense_weight = fusion, weight or default_weight
            words = label.startswith("hybrid + title")
            titles = title_meanings if label.startswith("hybrid + titles") else None
            ranks = [rank_of(index, m, gold, mode, titles, words) for m, gold in meanings]
            hit1, hit3, mrr = ranking_figures(ranks)
            line = f"  {label:22s} {hit1:6.1%} {hit3:6.1%} {mrr:6.3f}"
            if held_meanings:
                held = [rank_of(index, m, gold, mode, titles, words) for m, gold in held_meanings]
                line += "   held out {:6.1%} {:6.1%} {:6.3f}".format(*ranking_figures(held))
            print(line)
            if args.verbose and titles is not None:
                for (meaning, gold), rank in zip(meanings, ranks, strict=True):
                    if rank != 1:
                        got = ranked(index, meaning, mode, titles, words)[0].article_id
                        print(f"     miss {meaning.text!r}: want {gold} ({rank}), got {got}")

    if not args.no_decisions:
        evaluate_decisions(args, sets, held_out, intents)


if __name__ == "__main__":
    main()
