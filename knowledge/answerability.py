"""Whether the best article answers the question: a calibrated probability, not a raw score.

A cosine alone cannot tell "my VPN drops every hour" (answerable, 0.45) from "how do I
configure nginx" (unanswerable, 0.45). A small logistic model over what the search and
the intent classifier both say — the fused score, the dense and BM25 evidence, how far
the best article leads the next, how question-like or request-like the message is — is
trained on the dev question sets (bench/eval_kb.py --calibrate) and kept with the index.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

FEATURES = (
    "fused",
    "dense",
    "lexical",
    "margin",
    "question_intent",
    "request_intent",
    "fallback_intent",
)
BUNDLED_CALIBRATION = Path(__file__).resolve().parent / "calibration.json"
# Intents whose confidence says "a person has to do something", not "tell me how".
REQUEST_INTENTS = frozenset(
    {"open_ticket", "talk_to_human", "hardware_broken", "access_request", "software_request"}
)


class ScoredHit(Protocol):
    @property
    def score(self) -> float: ...

    @property
    def dense_score(self) -> float: ...

    @property
    def lexical_score(self) -> float: ...


def answer_features(
    hits: Sequence[ScoredHit], intent_confidences: Mapping[str, float]
) -> dict[str, float]:
    best = hits[0] if hits else None
    second = hits[1].score if len(hits) > 1 else 0.0
    return {
        "fused": best.score if best else 0.0,
        "dense": best.dense_score if best else 0.0,
        "lexical": best.lexical_score if best else 0.0,
        "margin": (best.score - second) if best else 0.0,
        "question_intent": intent_confidences.get("ask_question", 0.0),
        "request_intent": sum(intent_confidences.get(name, 0.0) for name in REQUEST_INTENTS),
        "fallback_intent": intent_confidences.get("nlu_fallback", 0.0),
    }


@dataclass(frozen=True)
class AnswerCalibration:
    weights: tuple[float, ...]
    bias: float
    threshold: float
    trained_on: str = ""

    def probability(self, features: Mapping[str, float]) -> float:
        z = self.bias + sum(
            w * features[name] for w, name in zip(self.weights, FEATURES, strict=True)
        )
        return 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))

    def answers(self, features: Mapping[str, float]) -> bool:
        return self.probability(features) >= self.threshold

    def as_dict(self) -> dict[str, Any]:
        return {
            "features": list(FEATURES),
            "weights": list(self.weights),
            "bias": self.bias,
            "threshold": self.threshold,
            "trained_on": self.trained_on,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AnswerCalibration:
        if list(data.get("features", [])) != list(FEATURES):
            raise ValueError("the calibration was trained on other features")
        weights = tuple(float(w) for w in data["weights"])
        return cls(
            weights, float(data["bias"]), float(data["threshold"]), str(data.get("trained_on", ""))
        )


def load_calibration(path: Path = BUNDLED_CALIBRATION) -> AnswerCalibration | None:
    try:
        return AnswerCalibration.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None
