"""Intent classification, with "I don't know" as a first-class answer.

Features: the shared sentence embedding (what a message means) next to TF-IDF word and
character n-grams (the exact words it uses). One linear model over both: a one-vs-rest
linear SVM, which beat logistic regression on the public benchmarks (bench/nlu_bench.py)
and trains in seconds. Its scores become confidences by a softmax that also weighs
"none of these" (see `confidences`), with a temperature fitted on held-back training
examples, so a confidence means what it says.

"I don't know" follows Rasa's FallbackClassifier: below a confidence threshold, or when
the top two intents are too close to call, the intent becomes `nlu_fallback`. Both
thresholds are tuned on the held-back examples (a wrong answer costs as much as a right
one gains; an "I don't know" costs nothing) and saved with the model. An out-of-scope
intent in the data (`out_of_scope`, `oos`) is learnt like any other and answered as is;
with `ClassifierConfig.min_out_of_scope_recall` the thresholds instead catch at least
that share of the held-back out-of-scope examples with the most in-scope ones right, and
the whole accuracy/recall curve is kept in the training report. Examples kept apart from
the training data (a validation split) can replace the held-back fold (`validation=`).
"""

from __future__ import annotations

import time
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from nlu import model_files
from nlu.adaptation import AdaptationConfig, AdaptedLayers
from nlu.embedding import Embedder, TokenStateEmbedder
from nlu.features import DEFAULT_NGRAMS, LexicalFeatures, NgramSpec
from nlu.training_data import TrainingData

FALLBACK_INTENT = "nlu_fallback"
OUT_OF_SCOPE_INTENTS = ("out_of_scope", "oos")
MODEL_FORMAT_VERSION = 2
# The model's files (nlu/model_files.py names each save's data files after these): the
# JSON, the arrays, and the adapted encoder layers as an ONNX graph (its checksum in the
# JSON; models without it, older or adapted without ONNX, answer in numpy).
META_FILE = "model.json"
WEIGHTS_FILE = "weights.npz"
ADAPTED_GRAPH_FILE = "adapted_top.onnx"
_MODEL_FILE_KINDS = {"weights": WEIGHTS_FILE, "adapted_graph": ADAPTED_GRAPH_FILE}
# Used only when the data is too small to hold any examples back: Rasa's defaults.
UNTUNED_THRESHOLD = 0.3
UNTUNED_AMBIGUITY = 0.1
_MIN_EXAMPLES_TO_TUNE = 20
_THRESHOLDS = np.round(np.arange(0.0, 0.951, 0.025), 3)
# An out-of-scope recall target is met as closely as the held-back data allows.
_FINE_THRESHOLDS = np.round(np.arange(0.0, 0.991, 0.01), 3)
_AMBIGUITIES = np.array([0.0, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3])
_TEMPERATURES = np.geomspace(0.05, 10.0, 47)


@dataclass(frozen=True)
class RankedIntent:
    name: str
    confidence: float


@dataclass(frozen=True)
class IntentPrediction:
    """The chosen intent (maybe `nlu_fallback`) and every intent ranked by confidence."""

    name: str
    confidence: float
    ranking: tuple[RankedIntent, ...]

    @property
    def is_fallback(self) -> bool:
        return self.name == FALLBACK_INTENT


@dataclass(frozen=True)
class ClassifierConfig:
    """How the classifier is built; the defaults are what the benchmarks chose."""

    lexical: bool = True
    ngrams: tuple[NgramSpec, ...] = DEFAULT_NGRAMS
    min_df: int = 1
    embedding_weight: float = 1.0
    regularization: float = 1.0  # the SVM's C
    # How much an intent's nearest training example counts next to the SVM (0 = not at all).
    neighbour_weight: float = 0.0
    holdout_fraction: float = 0.2
    seed: int = 0
    # When the data has an out-of-scope intent: catch at least this share of the held-back
    # out-of-scope examples (as `oos` or "I don't know") and, within that, answer as many
    # in-scope ones right as possible. None: the help desk's pay-off (`tune_fallback`).
    min_out_of_scope_recall: float | None = None
    # Read the intents from a copy of the encoder's top layers fine-tuned on them
    # (nlu/adaptation.py) instead of from the shared sentence vector. Off: the last layer
    # alone gained nothing on HWU64's test set; the top two (`adapted_layers=2`) gained
    # about half a point on each benchmark's test set at the same parse cost, but move
    # the confidences the answer calibration was fitted on (docs/nlu-accuracy.md).
    adapt_last_layer: bool = False
    adaptation_epochs: int = 3
    # How many of the encoder's top layers the adapted copy holds (1: the last layer).
    adapted_layers: int = 1

    def as_json(self) -> dict[str, Any]:
        values = asdict(self)
        values["ngrams"] = [[s.analyzer, s.low, s.high] for s in self.ngrams]
        return values

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> ClassifierConfig:
        ngrams = tuple(NgramSpec(str(a), int(lo), int(hi)) for a, lo, hi in values["ngrams"])
        return cls(**{**values, "ngrams": ngrams})


@dataclass(frozen=True)
class FallbackPolicy:
    """When to say "I don't know", and how scores become confidences."""

    threshold: float
    ambiguity: float
    temperature: float = 1.0
    tuned_on: int = 0  # held-back examples the values were chosen on; 0 = not tuned


@dataclass(frozen=True)
class OperatingPoint:
    """What a pair of fallback thresholds does on held-back examples."""

    threshold: float
    ambiguity: float
    in_scope_accuracy: float  # in-scope examples answered with their own intent
    out_of_scope_recall: float  # out-of-scope examples answered out-of-scope or "I don't know"


@dataclass
class TrainingReport:
    examples: int = 0
    intents: int = 0
    seconds: float = 0.0
    held_out: int = 0
    held_out_accuracy: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class NearestExamples:
    """The training examples' embeddings grouped by intent, so a message can be compared
    with each intent's closest example: a wording the SVM's one plane per intent blurs
    away ("lost card" next to "stolen card") is still remembered example by example."""

    def __init__(self, vectors: npt.NDArray[np.float32], offsets: npt.NDArray[np.int64]) -> None:
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.offsets = np.asarray(offsets, dtype=np.int64)  # intent i: rows offsets[i]:offsets[i+1]
        counts = np.diff(self.offsets)
        self._present = np.flatnonzero(counts > 0)
        self._starts = self.offsets[:-1][self._present]

    @classmethod
    def of(
        cls, vectors: npt.NDArray[np.float32], targets: npt.NDArray[np.int64], intent_count: int
    ) -> NearestExamples:
        order = np.argsort(targets, kind="stable")
        counts = np.bincount(targets, minlength=intent_count)
        # Kept at the half precision they are saved in, so a loaded model scores the same.
        kept = vectors[order].astype(np.float16).astype(np.float32)
        return cls(kept, np.concatenate([[0], np.cumsum(counts)]))

    def similarities(self, vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Cosine similarity of each message to each intent's closest example (-1: none)."""
        result = np.full((len(vectors), len(self.offsets) - 1), -1.0, dtype=np.float32)
        if len(self._present):
            similarity = vectors @ self.vectors.T
            result[:, self._present] = np.maximum.reduceat(similarity, self._starts, axis=1)
        return result

    def score_adjustment(
        self, vectors: npt.NDArray[np.float32], weight: float
    ) -> npt.NDArray[np.float32]:
        """Zero for the intent with the closest example, less for the others by how much
        further their closest example is: the ranking sharpens, while the best score (and
        so the confidence that no intent fits) stays the SVM's."""
        similarity = self.similarities(vectors)
        return np.asarray(weight * (similarity - similarity.max(axis=1, keepdims=True)))


class IntentClassifier:
    def __init__(
        self,
        intents: Sequence[str],
        weights: npt.NDArray[np.float32],
        biases: npt.NDArray[np.float32],
        fallback_threshold: float,
        fingerprint: str,
        embedder_name: str,
        *,
        ambiguity_threshold: float = 0.0,
        temperature: float = 1.0,
        lexical: LexicalFeatures | None = None,
        config: ClassifierConfig | None = None,
        tuned_on: int = 0,
        report: TrainingReport | None = None,
        neighbours: NearestExamples | None = None,
        adapted: AdaptedLayers | None = None,
    ) -> None:
        self.intents = list(intents)
        self.adapted = adapted
        weights = np.asarray(weights, dtype=np.float32)
        self._biases = np.asarray(biases, dtype=np.float32)
        self.fallback_threshold = fallback_threshold
        self.ambiguity_threshold = ambiguity_threshold
        self.temperature = temperature
        self.fingerprint = fingerprint
        self.embedder_name = embedder_name
        self.lexical = lexical
        self.neighbours = neighbours
        self.config = config or ClassifierConfig(lexical=lexical is not None)
        self.tuned_on = tuned_on
        self.report = report or TrainingReport()
        self.embedding_dimension = weights.shape[1] - (lexical.dimension if lexical else 0)
        self._embedding_weights = np.ascontiguousarray(weights[:, : self.embedding_dimension])
        # Kept one n-gram per row: a message's sparse n-grams times this needs no copy of
        # the block, where multiplying by a transposed view copied all of it on every parse.
        self._lexical_weights = np.ascontiguousarray(weights[:, self.embedding_dimension :].T)
        self.out_of_scope_intent = next((i for i in OUT_OF_SCOPE_INTENTS if i in intents), None)

    # -- training -------------------------------------------------------------------------

    @classmethod
    def train(
        cls,
        data: TrainingData,
        embedder: Embedder,
        *,
        fallback_threshold: float | None = None,
        ambiguity_threshold: float | None = None,
        embedder_name: str = "",
        config: ClassifierConfig | None = None,
        vectors: npt.NDArray[np.float32] | None = None,
        validation: TrainingData | None = None,
        validation_vectors: npt.NDArray[np.float32] | None = None,
        token_states: Sequence[npt.NDArray[np.float32]] | None = None,
        validation_token_states: Sequence[npt.NDArray[np.float32]] | None = None,
    ) -> IntentClassifier:
        """Train on `data`; thresholds are tuned on held-back examples unless given.

        `vectors` are the examples' embeddings if the caller has them already (and
        `token_states` their token states, with `config.adapt_last_layer`). With
        `validation` (examples kept apart from `data`, such as a benchmark's validation
        split) the temperature and thresholds are tuned on those instead of on a fold held
        back from `data`, and the model is fitted once, on all of `data`.
        """
        started = time.perf_counter()
        config = config or ClassifierConfig()
        texts = [example.text for example in data.examples]
        labels = np.array([example.intent for example in data.examples])
        intents = sorted(set(labels.tolist()))
        if len(intents) < 2:
            raise ValueError("training needs at least two intents")
        targets = np.searchsorted(intents, labels)
        report = TrainingReport(examples=len(texts), intents=len(intents))
        adapted = None
        if config.adapt_last_layer:
            states_embedder = _token_state_embedder(embedder)
            if token_states is None:
                _, token_states = states_embedder.embed_with_token_states(
                    texts, config.adapted_layers
                )
            adapted, report.extra["adaptation"] = AdaptedLayers.train(
                token_states,
                targets,
                len(intents),
                states_embedder.model_path,
                AdaptationConfig(
                    layers=config.adapted_layers, epochs=config.adaptation_epochs, seed=config.seed
                ),
            )
            # The held-back fold below was seen by the adaptation: its confidences are a
            # little optimistic, which a validation split (`validation=`) avoids.
            vectors = adapted.pooled_many(token_states)
            if validation is not None:
                if validation_token_states is None:
                    _, validation_token_states = states_embedder.embed_with_token_states(
                        [example.text for example in validation.examples], config.adapted_layers
                    )
                validation_vectors = adapted.pooled_many(validation_token_states)
        elif vectors is None:
            vectors = embedder.embed(texts)

        fitted = None
        if validation is not None:
            fitted = _fit(texts, vectors, targets, len(intents), config)
            held_targets, scores = _validation_scores(
                validation, validation_vectors, embedder, intents, fitted, config
            )
        else:
            held_out, scores = _held_out_scores(texts, vectors, targets, config)
            held_targets = targets[held_out]
        if len(held_targets) >= _MIN_EXAMPLES_TO_TUNE:
            policy = tune_fallback(
                scores,
                held_targets,
                intents,
                min_out_of_scope_recall=config.min_out_of_scope_recall,
            )
            report.held_out = len(held_targets)
            report.held_out_accuracy = float(np.mean(scores.argmax(1) == held_targets))
            answers = _HeldBackAnswers.of(scores, held_targets, intents, policy.temperature)
            if answers.is_out_of_scope.any():
                # Saved with the model: what other operating points would have done.
                curve = operating_curve(answers.operating_points())
                report.extra["operating_curve"] = [asdict(point) for point in curve]
        else:
            policy = FallbackPolicy(UNTUNED_THRESHOLD, UNTUNED_AMBIGUITY)
        if fallback_threshold is not None:
            policy = FallbackPolicy(
                fallback_threshold,
                ambiguity_threshold if ambiguity_threshold is not None else 0.0,
                policy.temperature,
                0,
            )
        elif ambiguity_threshold is not None:
            policy = FallbackPolicy(
                policy.threshold, ambiguity_threshold, policy.temperature, policy.tuned_on
            )

        lexical, weights, biases, neighbours = fitted or _fit(
            texts, vectors, targets, len(intents), config
        )
        report.seconds = round(time.perf_counter() - started, 3)
        return cls(
            intents=intents,
            weights=weights,
            biases=biases,
            fallback_threshold=policy.threshold,
            fingerprint=data.fingerprint(),
            embedder_name=embedder_name,
            ambiguity_threshold=policy.ambiguity,
            temperature=policy.temperature,
            lexical=lexical,
            config=config,
            tuned_on=policy.tuned_on,
            report=report,
            neighbours=neighbours,
            adapted=adapted,
        )

    # -- prediction -----------------------------------------------------------------------

    def intent_vectors(
        self,
        vectors: npt.NDArray[np.float32],
        token_states: Sequence[npt.NDArray[np.float32]] | None = None,
    ) -> npt.NDArray[np.float32]:
        """What the model reads a message's meaning from: the sentence vector, or with
        adapted layers their vector of the message's token states."""
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        if self.adapted is None:
            return vectors
        if token_states is None or len(token_states) != len(vectors):
            raise ValueError("this model adapts the encoder: pass the token states too")
        return self.adapted.pooled_many(token_states)

    def scores(
        self,
        vectors: npt.NDArray[np.float32],
        texts: Sequence[str] | None = None,
        token_states: Sequence[npt.NDArray[np.float32]] | None = None,
    ) -> npt.NDArray[np.float32]:
        """Raw per-intent scores, one row per message."""
        vectors = self.intent_vectors(vectors, token_states)
        result = (vectors * self.config.embedding_weight) @ self._embedding_weights.T + self._biases
        if self.lexical is not None:
            if texts is None or len(texts) != len(vectors):
                raise ValueError("this model reads the words too: pass the texts with the vectors")
            lexical = self.lexical.transform(texts)
            result += np.asarray(lexical @ self._lexical_weights, dtype=np.float32)
        if self.neighbours is not None and self.config.neighbour_weight:
            result += self.neighbours.score_adjustment(vectors, self.config.neighbour_weight)
        return np.asarray(result, dtype=np.float32)

    def probabilities(
        self,
        vectors: npt.NDArray[np.float32],
        texts: Sequence[str] | None = None,
        token_states: Sequence[npt.NDArray[np.float32]] | None = None,
    ) -> npt.NDArray[np.float32]:
        return confidences(self.scores(vectors, texts, token_states), self.temperature)

    def predict(
        self,
        vector: npt.NDArray[np.float32],
        text: str | None = None,
        token_states: npt.NDArray[np.float32] | None = None,
    ) -> IntentPrediction:
        return self.predict_many(
            np.atleast_2d(vector),
            None if text is None else [text],
            None if token_states is None else [token_states],
        )[0]

    def predict_many(
        self,
        vectors: npt.NDArray[np.float32],
        texts: Sequence[str] | None = None,
        token_states: Sequence[npt.NDArray[np.float32]] | None = None,
    ) -> list[IntentPrediction]:
        predictions = []
        for row in self.probabilities(vectors, texts, token_states):
            order = np.argsort(-row)
            ranking = tuple(RankedIntent(self.intents[i], round(float(row[i]), 4)) for i in order)
            best = ranking[0]
            # Confidences are rounded for display; the decision uses the exact values.
            exact_best = float(row[order[0]])
            margin = exact_best - (float(row[order[1]]) if len(order) > 1 else 0.0)
            if best.name != self.out_of_scope_intent and (
                exact_best < self.fallback_threshold or margin < self.ambiguity_threshold
            ):
                predictions.append(IntentPrediction(FALLBACK_INTENT, best.confidence, ranking))
            else:
                predictions.append(IntentPrediction(best.name, best.confidence, ranking))
        return predictions

    # -- persistence ----------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        """Save as one swap: a reader loads this model or the one before, never a mix."""
        arrays: dict[str, npt.NDArray[np.float32]] = {
            "weights": np.hstack([self._embedding_weights, self._lexical_weights.T]),
            "biases": self._biases,
        }
        if self.lexical is not None:
            arrays.update(self.lexical.idf_arrays())
        if self.neighbours is not None:
            # Half precision: a cosine needs no more, and the model stays half the size.
            arrays["neighbour_vectors"] = self.neighbours.vectors.astype(np.float16)
            arrays["neighbour_offsets"] = self.neighbours.offsets  # type: ignore[assignment]
        with model_files.saving(directory) as save:
            files: dict[str, str] = {}
            if self.adapted is not None:
                arrays.update(self.adapted.arrays())
                if self.adapted.top_graph is not None:
                    files["adapted_graph"] = model_files.file_of_save(ADAPTED_GRAPH_FILE, save)
                    (directory / files["adapted_graph"]).write_bytes(self.adapted.top_graph)
            files["weights"] = model_files.file_of_save(WEIGHTS_FILE, save)
            with (directory / files["weights"]).open("wb") as file:
                np.savez(file, **arrays)  # type: ignore[arg-type]
            meta = {
                "format": MODEL_FORMAT_VERSION,
                "files": files,
                "intents": self.intents,
                "fallback_threshold": self.fallback_threshold,
                "ambiguity_threshold": self.ambiguity_threshold,
                "temperature": self.temperature,
                "tuned_on": self.tuned_on,
                "fingerprint": self.fingerprint,
                "embedder": self.embedder_name,
                "config": self.config.as_json(),
                "report": asdict(self.report),
                "lexical": self.lexical.to_json() if self.lexical is not None else None,
                "adapted": self.adapted.to_json() if self.adapted is not None else None,
            }
            model_files.publish(directory, META_FILE, meta, _MODEL_FILE_KINDS)

    @classmethod
    def load(cls, directory: Path) -> IntentClassifier:
        return model_files.read(directory, META_FILE, _MODEL_FILE_KINDS, cls._from_saved)

    @classmethod
    def _from_saved(
        cls, directory: Path, meta: dict[str, Any], files: dict[str, Path]
    ) -> IntentClassifier:
        if meta.get("format") != MODEL_FORMAT_VERSION:
            raise ValueError(f"{directory}: model format {meta.get('format')} is not supported")
        # Opened here so the file is closed even when numpy finds it truncated.
        with files["weights"].open("rb") as file, np.load(file) as saved:
            arrays = {name: saved[name] for name in saved.files}
        lexical = LexicalFeatures.from_saved(meta["lexical"], arrays) if meta["lexical"] else None
        neighbours = (
            NearestExamples(arrays["neighbour_vectors"], arrays["neighbour_offsets"])
            if "neighbour_vectors" in arrays
            else None
        )
        return cls(
            intents=meta["intents"],
            weights=arrays["weights"],
            biases=arrays["biases"],
            fallback_threshold=float(meta["fallback_threshold"]),
            fingerprint=str(meta["fingerprint"]),
            embedder_name=str(meta["embedder"]),
            ambiguity_threshold=float(meta["ambiguity_threshold"]),
            temperature=float(meta["temperature"]),
            lexical=lexical,
            config=ClassifierConfig.from_json(meta["config"]),
            tuned_on=int(meta["tuned_on"]),
            report=TrainingReport(**meta["report"]),
            neighbours=neighbours,
            adapted=_load_adapted(
                directory, meta.get("adapted"), arrays, files.get("adapted_graph")
            ),
        )


def _load_adapted(
    directory: Path, meta: dict[str, Any] | None, arrays: dict[str, Any], graph_file: Path | None
) -> AdaptedLayers | None:
    if not meta:
        return None
    graph = (
        graph_file.read_bytes()
        if meta.get("graph_sha256") and graph_file is not None and graph_file.exists()
        else None
    )
    try:
        return AdaptedLayers.from_saved(meta, arrays, top_graph=graph)
    except ValueError as error:
        raise ValueError(f"{directory}: {error}") from error


# -- the pieces of training ---------------------------------------------------------------


def _token_state_embedder(embedder: Embedder) -> TokenStateEmbedder:
    if not hasattr(embedder, "embed_with_token_states") or not hasattr(embedder, "model_path"):
        raise ValueError("adapting the encoder needs an embedder that returns token states")
    return embedder  # type: ignore[return-value]


def _design_matrix(
    vectors: npt.NDArray[np.float32],
    texts: Sequence[str],
    lexical: LexicalFeatures | None,
    config: ClassifierConfig,
) -> sp.csr_matrix:
    dense = sp.csr_matrix(vectors * config.embedding_weight, dtype=np.float32)
    if lexical is None:
        return dense
    return sp.csr_matrix(sp.hstack([dense, lexical.transform(texts)], format="csr"))


def _fit(
    texts: Sequence[str],
    vectors: npt.NDArray[np.float32],
    targets: npt.NDArray[np.int64],
    intent_count: int,
    config: ClassifierConfig,
) -> tuple[
    LexicalFeatures | None,
    npt.NDArray[np.float32],
    npt.NDArray[np.float32],
    NearestExamples | None,
]:
    lexical = (
        LexicalFeatures.fit(texts, config.ngrams, min_df=config.min_df) if config.lexical else None
    )
    from sklearn.svm import LinearSVC  # only to train: answering needs no scikit-learn

    design = _design_matrix(vectors, texts, lexical, config)
    # liblinear visits the examples in a random order: seeded, so a model is the same
    # whichever run trained it.
    model = LinearSVC(
        C=config.regularization,
        class_weight="balanced",
        max_iter=5000,
        random_state=config.seed,
    )
    model.fit(design, targets)
    weights = np.zeros((intent_count, design.shape[1]), dtype=np.float32)
    biases = np.zeros(intent_count, dtype=np.float32)
    seen = np.asarray(model.classes_, dtype=np.int64)
    coef = np.asarray(model.coef_, dtype=np.float32)
    intercept = np.asarray(model.intercept_, dtype=np.float32)
    if len(seen) == 2 and coef.shape[0] == 1:
        # With two intents the SVM keeps one row (the second intent's side of the margin);
        # the first intent's score is the same distance on the other side.
        weights[seen[1]], biases[seen[1]] = coef[0], intercept[0]
        weights[seen[0]], biases[seen[0]] = -coef[0], -intercept[0]
    else:
        weights[seen], biases[seen] = coef, intercept
    # An intent missing from a training fold must never win.
    missing = np.setdiff1d(np.arange(intent_count), seen)
    biases[missing] = -1e3
    neighbours = (
        NearestExamples.of(vectors, targets, intent_count) if config.neighbour_weight else None
    )
    return lexical, weights, biases, neighbours


def _validation_scores(
    validation: TrainingData,
    vectors: npt.NDArray[np.float32] | None,
    embedder: Embedder,
    intents: Sequence[str],
    fitted: tuple[
        LexicalFeatures | None,
        npt.NDArray[np.float32],
        npt.NDArray[np.float32],
        NearestExamples | None,
    ],
    config: ClassifierConfig,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """The fitted model's scores of the validation examples, and their intents' indices."""
    texts = [example.text for example in validation.examples]
    unknown = sorted({e.intent for e in validation.examples} - set(intents))
    if unknown:
        raise ValueError(
            f"the validation examples have intents the training data lacks: {', '.join(unknown)}"
        )
    if vectors is None:
        vectors = embedder.embed(texts)
    lexical, weights, biases, neighbours = fitted
    design = _design_matrix(vectors, texts, lexical, config)
    scores = np.asarray(design @ weights.T + biases, dtype=np.float32)
    if neighbours is not None:
        scores += neighbours.score_adjustment(vectors, config.neighbour_weight)
    targets = np.searchsorted(intents, [e.intent for e in validation.examples])
    return np.asarray(targets, dtype=np.int64), scores


def _held_out_scores(
    texts: Sequence[str],
    vectors: npt.NDArray[np.float32],
    targets: npt.NDArray[np.int64],
    config: ClassifierConfig,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """Scores of examples the model did not see. Small data is cross-validated in full;
    large data holds back one fold, which is enough and keeps training fast."""
    folds = max(2, round(1 / config.holdout_fraction))
    rng = np.random.default_rng(config.seed)
    fold_of = np.full(len(targets), -1)
    for intent in np.unique(targets):
        members = rng.permutation(np.flatnonzero(targets == intent))
        if len(members) >= 2:  # an intent's only example always stays in training
            fold_of[members] = np.arange(len(members)) % folds
    used_folds = range(folds) if len(targets) < 3000 else range(1)
    held: list[npt.NDArray[np.int64]] = []
    scores: list[npt.NDArray[np.float32]] = []
    for fold in used_folds:
        test = np.flatnonzero(fold_of == fold)
        train = np.flatnonzero(fold_of != fold)
        if len(test) == 0 or len(np.unique(targets[train])) < 2:
            continue
        train_texts = [texts[int(i)] for i in train]
        lexical, weights, biases, neighbours = _fit(
            train_texts, vectors[train], targets[train], int(targets.max()) + 1, config
        )
        design = _design_matrix(vectors[test], [texts[int(i)] for i in test], lexical, config)
        fold_scores = np.asarray(design @ weights.T + biases, dtype=np.float32)
        if neighbours is not None:
            fold_scores += neighbours.score_adjustment(vectors[test], config.neighbour_weight)
        scores.append(fold_scores)
        held.append(test)
    if not held:
        return np.zeros(0, dtype=np.int64), np.zeros((0, int(targets.max()) + 1), np.float32)
    return np.concatenate(held), np.vstack(scores)


def confidences(scores: npt.NDArray[np.float32], temperature: float) -> npt.NDArray[np.float32]:
    """Softmax over the intents' scores and one more choice, "none of these", scored 0:
    the margin every one-vs-rest SVM learnt. A message that no intent claims (every
    score below zero) keeps most of its mass on "none", so it gets a low confidence;
    the intents' confidences sum to less than one by that much."""
    logits = np.hstack([scores, np.zeros((len(scores), 1), dtype=scores.dtype)]) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return np.asarray((exp / exp.sum(axis=1, keepdims=True))[:, :-1], dtype=np.float32)


def fit_temperature(scores: npt.NDArray[np.float32], targets: npt.NDArray[np.int64]) -> float:
    """The softmax temperature that makes the held-back examples' intents most likely."""
    rows = np.arange(len(targets))
    losses = []
    for temperature in _TEMPERATURES:
        probabilities = confidences(scores, temperature)
        losses.append(-np.mean(np.log(probabilities[rows, targets] + 1e-9)))
    return float(_TEMPERATURES[int(np.argmin(losses))])


@dataclass(frozen=True)
class _HeldBackAnswers:
    """How the held-back examples are answered before any threshold is applied."""

    top: npt.NDArray[np.float32]  # the best intent's confidence
    margin: npt.NDArray[np.float32]  # ... minus the second best's
    said_out_of_scope: npt.NDArray[np.bool_]
    right: npt.NDArray[np.bool_]
    is_out_of_scope: npt.NDArray[np.bool_]

    @classmethod
    def of(
        cls,
        scores: npt.NDArray[np.float32],
        targets: npt.NDArray[np.int64],
        intents: Sequence[str],
        temperature: float,
    ) -> _HeldBackAnswers:
        rows = np.arange(len(targets))
        probabilities = confidences(scores, temperature)
        order = np.argsort(-probabilities, axis=1)
        best = order[:, 0]
        top = probabilities[rows, best]
        second = probabilities[rows, order[:, 1]] if probabilities.shape[1] > 1 else 0.0
        out_of_scope = next((intents.index(i) for i in OUT_OF_SCOPE_INTENTS if i in intents), -1)
        return cls(
            top, top - second, best == out_of_scope, best == targets, targets == out_of_scope
        )

    def answered(self, threshold: float, ambiguity: float) -> npt.NDArray[np.bool_]:
        """Answered with an in-scope intent (not out-of-scope, not "I don't know")."""
        return (self.top >= threshold) & (self.margin >= ambiguity) & ~self.said_out_of_scope

    def operating_points(self) -> list[OperatingPoint]:
        in_scope = ~self.is_out_of_scope
        points = []
        for ambiguity in _AMBIGUITIES:
            for threshold in _FINE_THRESHOLDS:
                answered = self.answered(float(threshold), float(ambiguity))
                points.append(
                    OperatingPoint(
                        float(threshold),
                        float(ambiguity),
                        float(np.mean(answered[in_scope] & self.right[in_scope])),
                        float(np.mean(~answered[self.is_out_of_scope])),
                    )
                )
        return points


def operating_curve(points: Sequence[OperatingPoint]) -> list[OperatingPoint]:
    """The points no other beats on both in-scope accuracy and out-of-scope recall, by
    rising recall: the trade-off a deployment chooses its operating point on."""
    front: list[OperatingPoint] = []
    for point in sorted(points, key=lambda p: (-p.out_of_scope_recall, -p.in_scope_accuracy)):
        if not front or point.in_scope_accuracy > front[-1].in_scope_accuracy + 1e-12:
            front.append(point)
    return front[::-1]


def tune_fallback(
    scores: npt.NDArray[np.float32],
    targets: npt.NDArray[np.int64],
    intents: Sequence[str],
    *,
    min_out_of_scope_recall: float | None = None,
) -> FallbackPolicy:
    """Temperature by likelihood; thresholds by the help desk's pay-off on held-back data:
    +1 for a right intent, -1 for a wrong one, 0 for "I don't know" (on an out-of-scope
    example, "I don't know" or the out-of-scope intent count +1).

    With `min_out_of_scope_recall`, and out-of-scope examples among the held-back ones,
    the thresholds are instead those that answer the most in-scope examples right while
    catching at least that share of the out-of-scope ones (or, if no setting does, the
    most of them)."""
    temperature = fit_temperature(scores, targets)
    answers = _HeldBackAnswers.of(scores, targets, intents, temperature)
    if min_out_of_scope_recall is not None and answers.is_out_of_scope.any():
        curve = operating_curve(answers.operating_points())
        reaching = [p for p in curve if p.out_of_scope_recall >= min_out_of_scope_recall - 1e-9]
        # The curve rises in recall and falls in accuracy: the first point that reaches the
        # target is the most accurate one that does; else the highest recall there is.
        chosen = reaching[0] if reaching else curve[-1]
        return FallbackPolicy(chosen.threshold, chosen.ambiguity, temperature, len(targets))

    values = np.zeros((len(_AMBIGUITIES), len(_THRESHOLDS)))
    for a, ambiguity in enumerate(_AMBIGUITIES):
        for t, threshold in enumerate(_THRESHOLDS):
            answered = answers.answered(float(threshold), float(ambiguity))
            values[a, t] = np.where(
                answers.is_out_of_scope,
                np.where(answered, -1.0, 1.0),
                np.where(answered, np.where(answers.right, 1.0, -1.0), 0.0),
            ).sum()
    # Where several settings are equally good (clean data makes no mistakes to learn
    # from), take the middle of them: the widest margin on both sides.
    best_a, best_t = np.nonzero(values >= values.max() - 1e-9)
    ambiguity_index = int(np.sort(best_a)[len(best_a) // 2])
    thresholds = np.sort(best_t[best_a == ambiguity_index])
    best_policy = (
        float(_THRESHOLDS[thresholds[len(thresholds) // 2]]),
        float(_AMBIGUITIES[ambiguity_index]),
    )
    return FallbackPolicy(best_policy[0], best_policy[1], temperature, len(targets))


def needs_training(
    directory: Path,
    data: TrainingData,
    embedder_name: str,
    config: ClassifierConfig | None = None,
) -> bool:
    """True unless a readable model of this data, embedder and configuration is saved."""
    if not (directory / META_FILE).exists():
        return True
    try:
        model = IntentClassifier.load(directory)
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile):
        return True  # unreadable, truncated or outdated
    return not (
        model.fingerprint == data.fingerprint()
        and model.embedder_name == embedder_name
        and model.config == (config or ClassifierConfig())
    )


def load_or_train(
    directory: Path,
    data: TrainingData,
    embedder: Embedder,
    embedder_name: str,
    *,
    config: ClassifierConfig | None = None,
) -> IntentClassifier:
    """Reuse the persisted model while the training data and embedder are unchanged."""
    config = config or ClassifierConfig()
    if not needs_training(directory, data, embedder_name, config):
        return IntentClassifier.load(directory)
    model = IntentClassifier.train(data, embedder, embedder_name=embedder_name, config=config)
    model.save(directory)
    return model
