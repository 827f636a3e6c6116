"""Intent classification on sentence embeddings, with "I don't know" as a first-class answer.

A multinomial logistic regression over the shared embeddings: small, fast on a CPU,
and its probabilities are a usable confidence. Below the fallback threshold the
intent becomes `nlu_fallback`, as Rasa's FallbackClassifier does.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from sklearn.linear_model import LogisticRegression

from nlu.embedding import Embedder
from nlu.training_data import TrainingData

FALLBACK_INTENT = "nlu_fallback"
MODEL_FORMAT_VERSION = 1


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


class IntentClassifier:
    def __init__(
        self,
        intents: Sequence[str],
        weights: npt.NDArray[np.float32],
        biases: npt.NDArray[np.float32],
        fallback_threshold: float,
        fingerprint: str,
        embedder_name: str,
    ) -> None:
        self.intents = list(intents)
        self._weights = weights
        self._biases = biases
        self.fallback_threshold = fallback_threshold
        self.fingerprint = fingerprint
        self.embedder_name = embedder_name

    @classmethod
    def train(
        cls,
        data: TrainingData,
        embedder: Embedder,
        *,
        fallback_threshold: float = 0.45,
        embedder_name: str = "",
    ) -> IntentClassifier:
        texts = [example.text for example in data.examples]
        labels = [example.intent for example in data.examples]
        if len(set(labels)) < 2:
            raise ValueError("training needs at least two intents")
        vectors = embedder.embed(texts)
        model = LogisticRegression(C=10.0, max_iter=2000, class_weight="balanced")
        model.fit(vectors, labels)
        weights = np.asarray(model.coef_, dtype=np.float32)
        biases = np.asarray(model.intercept_, dtype=np.float32)
        if weights.shape[0] == 1:
            # With two intents scikit-learn keeps one row (the second intent's log-odds);
            # a zero row for the first makes the softmax in `predict` equal its sigmoid.
            weights = np.vstack([np.zeros_like(weights), weights])
            biases = np.concatenate([np.zeros_like(biases), biases])
        return cls(
            intents=[str(name) for name in model.classes_],
            weights=weights,
            biases=biases,
            fallback_threshold=fallback_threshold,
            fingerprint=data.fingerprint(),
            embedder_name=embedder_name,
        )

    def predict(self, vector: npt.NDArray[np.float32]) -> IntentPrediction:
        logits = self._weights @ vector + self._biases
        logits = logits - logits.max()
        probabilities = np.exp(logits) / np.exp(logits).sum()
        order = np.argsort(-probabilities)
        ranking = tuple(
            RankedIntent(self.intents[i], round(float(probabilities[i]), 4)) for i in order
        )
        best = ranking[0]
        if best.confidence < self.fallback_threshold:
            return IntentPrediction(FALLBACK_INTENT, best.confidence, ranking)
        return IntentPrediction(best.name, best.confidence, ranking)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        # Written aside and renamed, so a reader never loads half a model.
        weights_tmp = directory / "weights.tmp.npz"
        np.savez(weights_tmp, weights=self._weights, biases=self._biases)
        weights_tmp.replace(directory / "weights.npz")
        meta = {
            "format": MODEL_FORMAT_VERSION,
            "intents": self.intents,
            "fallback_threshold": self.fallback_threshold,
            "fingerprint": self.fingerprint,
            "embedder": self.embedder_name,
        }
        meta_tmp = directory / "model.tmp.json"
        meta_tmp.write_text(json.dumps(meta, indent=2), encoding="utf-8")
        meta_tmp.replace(directory / "model.json")

    @classmethod
    def load(cls, directory: Path) -> IntentClassifier:
        meta = json.loads((directory / "model.json").read_text(encoding="utf-8"))
        if meta.get("format") != MODEL_FORMAT_VERSION:
            raise ValueError(f"{directory}: model format {meta.get('format')} is not supported")
        # Opened here so the file is closed even when numpy finds it truncated.
        with (directory / "weights.npz").open("rb") as file, np.load(file) as arrays:
            weights, biases = arrays["weights"], arrays["biases"]
        return cls(
            intents=meta["intents"],
            weights=weights,
            biases=biases,
            fallback_threshold=float(meta["fallback_threshold"]),
            fingerprint=str(meta["fingerprint"]),
            embedder_name=str(meta["embedder"]),
        )


def load_or_train(
    directory: Path, data: TrainingData, embedder: Embedder, embedder_name: str
) -> IntentClassifier:
    """Reuse the persisted model while the training data and embedder are unchanged."""
    if (directory / "model.json").exists():
        try:
            model = IntentClassifier.load(directory)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            model = None  # unreadable, truncated or outdated: retrain below
        if (
            model is not None
            and model.fingerprint == data.fingerprint()
            and model.embedder_name == embedder_name
        ):
            return model
    model = IntentClassifier.train(data, embedder, embedder_name=embedder_name)
    model.save(directory)
    return model
