"""How well the NLU understands held-out messages: per-intent precision, recall and F1, the
intents it confuses most, and entity precision, recall and F1.

Used by `tier0 nlu eval` and by the benchmarks in bench/.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from nlu.classifier import FALLBACK_INTENT, ClassifierConfig, IntentClassifier, IntentPrediction
from nlu.embedding import Embedder
from nlu.entities import Entity
from nlu.training_data import IntentExample, TrainingData


@dataclass(frozen=True)
class Scores:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class ConfusedPair:
    intent: str
    predicted: str
    count: int


@dataclass(frozen=True)
class Mistake:
    text: str
    intent: str
    predicted: str
    confidence: float


@dataclass
class IntentReport:
    examples: int
    accuracy: float
    macro_f1: float
    weighted_f1: float
    fallback_rate: float  # share of messages answered with `nlu_fallback`
    per_intent: dict[str, Scores]
    confused_pairs: list[ConfusedPair]
    mistakes: list[Mistake] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EntityReport:
    examples: int
    precision: float
    recall: float
    f1: float
    per_entity: dict[str, Scores]

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _scores(true_positive: int, predicted: int, actual: int) -> Scores:
    precision = true_positive / predicted if predicted else 0.0
    recall = true_positive / actual if actual else 0.0
    return Scores(round(precision, 4), round(recall, 4), round(_f1(precision, recall), 4), actual)


def intent_report(
    examples: Sequence[IntentExample],
    predictions: Sequence[IntentPrediction],
    *,
    top_confusions: int = 10,
    mistakes_kept: int = 200,
) -> IntentReport:
    """Compare what was predicted with what was meant; `nlu_fallback` counts as wrong."""
    truth = [example.intent for example in examples]
    predicted = [prediction.name for prediction in predictions]
    intents = sorted(set(truth) | set(predicted))
    per_intent: dict[str, Scores] = {}
    for intent in intents:
        true_positive = sum(1 for t, p in zip(truth, predicted, strict=True) if t == p == intent)
        per_intent[intent] = _scores(true_positive, predicted.count(intent), truth.count(intent))
    real = {name: s for name, s in per_intent.items() if s.support > 0}
    total = max(len(truth), 1)
    confusions = Counter((t, p) for t, p in zip(truth, predicted, strict=True) if t != p)
    mistakes = [
        Mistake(example.text, example.intent, prediction.name, prediction.confidence)
        for example, prediction in zip(examples, predictions, strict=True)
        if example.intent != prediction.name
    ]
    return IntentReport(
        examples=len(truth),
        accuracy=round(sum(t == p for t, p in zip(truth, predicted, strict=True)) / total, 4),
        macro_f1=round(float(np.mean([s.f1 for s in real.values()])) if real else 0.0, 4),
        weighted_f1=round(sum(s.f1 * s.support for s in real.values()) / total, 4),
        fallback_rate=round(predicted.count(FALLBACK_INTENT) / total, 4),
        per_intent=per_intent,
        confused_pairs=[
            ConfusedPair(t, p, count) for (t, p), count in confusions.most_common(top_confusions)
        ],
        mistakes=mistakes[:mistakes_kept],
    )


def entity_report(
    examples: Sequence[IntentExample],
    extract: Callable[[str], Sequence[Entity]],
    *,
    entity_types: set[str] | None = None,
) -> EntityReport:
    """Exact-span scoring: an entity counts when its type, start and end all match an
    annotation. Only the types in `entity_types` (by default: those annotated in
    `examples`) are scored, since a data set cannot grade what it never annotates."""
    return score_entities(
        [(example, extract(example.text)) for example in examples], entity_types=entity_types
    )


def score_entities(
    found: Sequence[tuple[IntentExample, Sequence[Entity]]],
    *,
    entity_types: set[str] | None = None,
) -> EntityReport:
    """`entity_report` for entities already found: each example beside what was found in it."""
    types = entity_types or {a.entity for e, _ in found for a in e.entities}
    counts: dict[str, list[int]] = {t: [0, 0, 0] for t in sorted(types)}  # tp, predicted, real
    for example, entities in found:
        gold = {(a.entity, a.start, a.end) for a in example.entities if a.entity in types}
        spans = {(e.entity, e.start, e.end) for e in entities if e.entity in types}
        for entity, _, _ in gold:
            counts[entity][2] += 1
        for key in spans:
            counts[key[0]][1] += 1
            if key in gold:
                counts[key[0]][0] += 1
    tp, predicted, real = (sum(c[i] for c in counts.values()) for i in range(3))
    overall = _scores(tp, predicted, real)
    return EntityReport(
        examples=len(found),
        precision=overall.precision,
        recall=overall.recall,
        f1=overall.f1,
        per_entity={name: _scores(*c) for name, c in counts.items()},
    )


def predict_examples(
    classifier: IntentClassifier,
    examples: Sequence[IntentExample],
    embedder: Embedder,
    vectors: npt.NDArray[np.float32] | None = None,
) -> list[IntentPrediction]:
    texts = [example.text for example in examples]
    if vectors is None:
        vectors = embedder.embed(texts)
    return classifier.predict_many(vectors, texts)


def cross_validation_folds(data: TrainingData, folds: int, seed: int = 0) -> list[list[int]]:
    """Stratified folds: each intent's examples are dealt round-robin, after a shuffle."""
    if folds < 2:
        raise ValueError("cross-validation needs at least 2 folds")
    rng = np.random.default_rng(seed)
    by_intent: dict[str, list[int]] = {}
    for index, example in enumerate(data.examples):
        by_intent.setdefault(example.intent, []).append(index)
    result: list[list[int]] = [[] for _ in range(folds)]
    offset = 0
    for intent in sorted(by_intent):
        for position, index in enumerate(rng.permutation(by_intent[intent])):
            result[(position + offset) % folds].append(int(index))
        offset += len(by_intent[intent])
    return result


def _fold_training_data(data: TrainingData, held_out: Sequence[int]) -> TrainingData:
    """Everything but the held-out examples, with the data's synonyms, regexes and lookups."""
    held = set(held_out)
    return TrainingData(
        [example for i, example in enumerate(data.examples) if i not in held],
        data.synonyms,
        data.regexes,
        data.lookups,
    )


def cross_validate_entities(
    data: TrainingData, folds: int
) -> list[tuple[IntentExample, list[Entity]]]:
    """Every example's entities found as the assistant would find them (lookups, regexes,
    built-in patterns, the tagger when the fold has enough annotations), by extractors
    built without it, on the same folds as `cross_validate`."""
    from nlu.entities import EntityExtractor
    from nlu.tagger import MIN_ANNOTATED_EXAMPLES, EntityTagger, annotated_examples

    found: list[tuple[IntentExample, list[Entity]]] = []
    for held_out in cross_validation_folds(data, folds):
        train = _fold_training_data(data, held_out)
        tagger = (
            EntityTagger.train(train)
            if train.entity_names and annotated_examples(train) >= MIN_ANNOTATED_EXAMPLES
            else None
        )
        extractor = EntityExtractor.from_training_data(train, tagger=tagger)
        for index in held_out:
            example = data.examples[index]
            found.append((example, list(extractor.extract(example.text))))
    return found


def cross_validate(
    data: TrainingData,
    embedder: Embedder,
    folds: int,
    *,
    config: ClassifierConfig | None = None,
) -> tuple[list[IntentExample], list[IntentPrediction]]:
    """Every example predicted by a model that did not train on it."""
    vectors = embedder.embed([example.text for example in data.examples])
    examples: list[IntentExample] = []
    predictions: list[IntentPrediction] = []
    for held_out in cross_validation_folds(data, folds):
        held = set(held_out)
        train_index = [i for i in range(len(data.examples)) if i not in held]
        train = _fold_training_data(data, held_out)
        model = IntentClassifier.train(train, embedder, config=config, vectors=vectors[train_index])
        test = [data.examples[i] for i in held_out]
        examples.extend(test)
        predictions.extend(predict_examples(model, test, embedder, vectors[held_out]))
    return examples, predictions
