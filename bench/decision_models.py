"""Other decision models than the shipped logistic one, judged offline on stored features.

`bench/eval_kb.py --dump-items DIR` writes the dev questions' decision features, labels
and the decisions no model takes (catalog offers, statuses, small talk) to DIR/dev.json;
this replays the repeated 5-fold cross-validation of eval_kb (same folds, same scoring,
same threshold choice) with each candidate model, so that a variant is judged by the mean
over shuffles of the folds, never by one split. `--held-out` additionally scores each
variant fitted on all dev questions on DIR/heldout.json: read it once, at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import (
    KBinsDiscretizer,
    PolynomialFeatures,
    StandardScaler,
)

from knowledge.answerability import FEATURES

FEATURES_KEY = "features"
ANSWER, ESCALATE, TICKET = 0, 1, 2
LABELS = {"answer": ANSWER, "escalate": ESCALATE, "ticket": TICKET}


@dataclass(frozen=True)
class Item:
    kb: str
    kind: str
    gold: str | None
    label: int
    best_article: str | None
    fixed: str | None
    x: np.ndarray


def load_items(path: Path, features: Sequence[str]) -> list[Item]:
    rows = json.loads(path.read_text(encoding="utf-8"))
    return [
        Item(
            row["kb"],
            row["kind"],
            row["gold"],
            LABELS[row["label"]],
            row["best_article"],
            row["fixed"],
            np.array([row[FEATURES_KEY][name] for name in features], dtype=float),
        )
        for row in rows
    ]


def chosen(probabilities: np.ndarray, threshold: float) -> np.ndarray:
    """The decision per row, as AnswerCalibration.decide takes it."""
    other = np.where(probabilities[:, TICKET] > probabilities[:, ESCALATE], TICKET, ESCALATE)
    return np.where(probabilities[:, ANSWER] >= threshold, ANSWER, other)


def right(item: Item, decision: str) -> bool:
    if item.kind == "answerable":
        return decision == "catalog" or (decision == "answer" and item.best_article == item.gold)
    if item.kind == "unanswerable":
        return decision in {"escalate", "ticket"}
    return decision in {"ticket", "catalog"}


NAMES = ("answer", "escalate", "ticket")
Model = Callable[[], object]  # an unfitted sklearn classifier with predict_proba


def best_threshold(probabilities: np.ndarray, y: np.ndarray, unanswerable: np.ndarray) -> float:
    def right_calls(threshold: float) -> int:
        decided = chosen(probabilities, threshold)
        return int(np.sum((decided == y) | (unanswerable & (decided == TICKET))))

    candidates = [float(t) for t in np.linspace(0.2, 0.8, 61)]
    return max(candidates, key=lambda t: (right_calls(t), -abs(t - 0.5)))


@dataclass(frozen=True)
class Variant:
    name: str
    make: Model
    # Tune the answer threshold on inner cross-validated probabilities rather than on the
    # training fit's own (a flexible model is over-confident on what it was fitted on).
    inner_threshold: bool = False


def fit(variant: Variant, items: Sequence[Item]) -> tuple[object, float]:
    kept = [i for i in items if not (i.kind == "answerable" and i.label != ANSWER)]
    x = np.array([i.x for i in kept])
    y = np.array([i.label for i in kept])
    model = variant.make()
    model.fit(x, y)  # type: ignore[attr-defined]
    if variant.inner_threshold:
        inner = StratifiedKFold(n_splits=4, shuffle=True, random_state=0)
        probabilities = cross_val_predict(variant.make(), x, y, cv=inner, method="predict_proba")
    else:
        probabilities = model.predict_proba(x)  # type: ignore[attr-defined]
    unanswerable = np.array([i.kind == "unanswerable" for i in kept])
    return model, best_threshold(probabilities, y, unanswerable)


def decide(model: object, threshold: float, items: Sequence[Item]) -> list[str]:
    probabilities = model.predict_proba(np.array([i.x for i in items]))  # type: ignore[attr-defined]
    decided = chosen(probabilities, threshold)
    return [item.fixed or NAMES[d] for item, d in zip(items, decided, strict=True)]


def repeated_cv(variant: Variant, items: Sequence[Item], seeds: int) -> list[float]:
    strata = [f"{item.kb}/{item.kind}" for item in items]
    rates: list[float] = []
    for seed in range(seeds):
        folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
        hits = 0
        for train, test in folds.split(np.zeros(len(items)), strata):
            model, threshold = fit(variant, [items[i] for i in train])
            tested = [items[i] for i in test]
            hits += sum(
                right(item, d)
                for item, d in zip(tested, decide(model, threshold, tested), strict=True)
            )
        rates.append(hits / len(items))
    return rates


class Averaged:
    """The weighted mean of several models' probabilities (equal weights by default)."""

    def __init__(self, *makers: Model, weights: Sequence[float] = ()) -> None:
        self.models = [make() for make in makers]
        self.weights = list(weights) or [1.0] * len(self.models)

    def fit(self, x: np.ndarray, y: np.ndarray) -> Averaged:
        for model in self.models:
            model.fit(x, y)  # type: ignore[attr-defined]
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        stacked = [m.predict_proba(x) for m in self.models]  # type: ignore[attr-defined]
        return np.average(stacked, axis=0, weights=self.weights)


def logistic(c: float = 1.0) -> Model:
    return lambda: LogisticRegression(C=c, max_iter=5000)


def boosting(depth: int, iterations: int, l2: float, rate: float = 0.1, leaf: int = 20) -> Model:
    return lambda: HistGradientBoostingClassifier(
        max_depth=depth,
        max_iter=iterations,
        l2_regularization=l2,
        learning_rate=rate,
        min_samples_leaf=leaf,
        early_stopping=False,
        random_state=0,
    )


def interactions(c: float) -> Model:
    return lambda: make_pipeline(
        StandardScaler(),
        PolynomialFeatures(degree=2, interaction_only=True, include_bias=False),
        LogisticRegression(C=c, max_iter=5000),
    )


def binned(c: float, bins: int) -> Model:
    # Quantile bins, one-hot, next to the raw features: a step per range of a score.
    from sklearn.compose import ColumnTransformer

    return lambda: make_pipeline(
        ColumnTransformer(
            [
                ("raw", "passthrough", slice(0, None)),
                (
                    "bins",
                    KBinsDiscretizer(
                        n_bins=bins, encode="onehot", strategy="quantile", subsample=None
                    ),
                    slice(0, 5),  # the search scores and margins; the rest are 0/1 or intents
                ),
            ]
        ),
        LogisticRegression(C=c, max_iter=5000),
    )


def variants() -> list[Variant]:
    # Session 5: none beat the shipped logistic model (89.4 % mean, sd 0.5, over 10
    # shuffles); the trees and forests alone lose about 2 points, the binned and pairwise
    # logistic models 0.2 to 2, and blends approach the logistic model as its share grows.
    found = [Variant("logistic C=1 (shipped)", logistic(1.0))]
    for depth, iterations, l2, rate in (
        (2, 30, 1.0, 0.1),
        (2, 60, 1.0, 0.1),
        (2, 100, 5.0, 0.1),
        (3, 30, 1.0, 0.1),
        (3, 60, 5.0, 0.1),
        (2, 200, 10.0, 0.05),
    ):
        make = boosting(depth, iterations, l2, rate)
        label = f"boosting d{depth} it{iterations} l2={l2:g} lr{rate:g}"
        found.append(Variant(label, make))
        if iterations == 60:
            found.append(Variant(label + " +inner thr", make, inner_threshold=True))
    for c in (0.05, 0.2, 1.0):
        found.append(Variant(f"logistic pairwise interactions C={c:g}", interactions(c)))
    for c, bins in ((0.3, 4), (1.0, 4), (1.0, 6)):
        found.append(Variant(f"logistic + {bins} quantile bins C={c:g}", binned(c, bins)))
    for depth, iterations in ((2, 60), (3, 30)):
        label = f"mean(logistic, boosting d{depth} it{iterations})"
        found.append(Variant(label, blend(boosting(depth, iterations, 1.0), 0.5)))
    # Second round: an additive model (stumps: one feature per tree, a GAM), slower and
    # coarser boosting, a shallow forest, and the logistic model leaning less on boosting.
    for iterations, rate in ((50, 0.1), (150, 0.05), (300, 0.05)):
        found.append(
            Variant(
                f"round2 stumps (additive) it{iterations} lr{rate:g}",
                boosting(1, iterations, 1.0, rate),
            )
        )
    found.append(
        Variant("round2 boosting d2 it40 lr0.05 leaf40 l2=5", boosting(2, 40, 5.0, 0.05, 40))
    )
    for depth in (3, 5):
        found.append(Variant(f"round2 forest d{depth} 100 trees", forest(depth)))
    for weight in (0.2, 0.35):
        label = f"round2 {1 - weight:g}*logistic + {weight:g}*"
        found.append(Variant(label + "stumps it150", blend(boosting(1, 150, 1.0, 0.05), weight)))
        found.append(Variant(label + "forest d5", blend(forest(5), weight)))
    return found


def blend(other: Model, weight: float) -> Model:
    """The logistic model's probabilities, mixed with `weight` of another model's."""
    return lambda: Averaged(logistic(1.0), other, weights=(1 - weight, weight))


def forest(depth: int) -> Model:
    return lambda: RandomForestClassifier(
        n_estimators=100, max_depth=depth, min_samples_leaf=5, random_state=0, n_jobs=1
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path, help="where eval_kb --dump-items wrote")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--only", help="run the variants whose name contains this")
    parser.add_argument("--held-out", action="store_true", help="also score held-out (once)")
    args = parser.parse_args()
    items = load_items(args.folder / "dev.json", FEATURES)
    unseen = load_items(args.folder / "heldout.json", FEATURES) if args.held_out else []
    for variant in variants():
        if args.only and args.only not in variant.name:
            continue
        started = time.process_time()
        rates = repeated_cv(variant, items, args.repeats)
        line = (
            f"{variant.name:48s} mean {np.mean(rates):6.1%} sd {np.std(rates):5.1%}"
            f" min {min(rates):6.1%} max {max(rates):6.1%}"
            f"  ({time.process_time() - started:5.1f} s CPU)"
        )
        if unseen:
            model, threshold = fit(variant, items)
            decided = decide(model, threshold, unseen)
            held = sum(right(i, d) for i, d in zip(unseen, decided, strict=True)) / len(unseen)
            line += f"  held out {held:6.1%}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
