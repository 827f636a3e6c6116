"""What to do with a message the knowledge base might answer: a calibrated choice, not a raw score.

Three outcomes: *answer* with the best article, *escalate* (no article fits: offer a ticket),
or open a *ticket* (a person has to do something: a broken screen, an access grant, "call
me back"). A cosine alone cannot tell "my VPN drops every hour" (answerable, 0.45) from
"how do I configure nginx" (unanswerable, 0.45), and an intent alone cannot tell "my work
phone got stolen" (the lost-device article answers it) from "my phone screen is shattered"
(a person must replace it). So a small multinomial logistic model weighs what the search,
the intent classifier and the wording say together: the fused, dense and BM25 scores of
the best article and how far it leads the next; how rare the rarest question word the
article never uses is, and how near its title's meaning is; each request intent's
confidence; whether the message is phrased as a question or asks someone to act; whether
it names a device or physical damage. It is trained on the dev question sets
(bench/eval_kb.py --calibrate) and kept with the index.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

BUNDLED_CALIBRATION = Path(__file__).resolve().parent / "calibration.json"
# Intents whose confidence says "a person has to do something", not "tell me how";
# each is its own feature, since a hardware fault and a software wish differ in how
# often an article settles them.
REQUEST_INTENTS = (
    "open_ticket",
    "talk_to_human",
    "hardware_broken",
    "access_request",
    "software_request",
)
FEATURES = (
    "fused",
    "dense",
    "lexical",
    "margin",
    "dense_margin",
    "question_intent",
    *(f"{name}_intent" for name in REQUEST_INTENTS),
    "status_intent",
    "fallback_intent",
    "question_phrasing",
    "asks_someone_to_act",
    "physical_damage",
    "names_device",
    "uncovered_rarity",
    "title_similarity",
)


class Outcome(StrEnum):
    ANSWER = "answer"
    ESCALATE = "escalate"
    TICKET = "ticket"


OUTCOMES = (Outcome.ANSWER, Outcome.ESCALATE, Outcome.TICKET)

# "how do I…", "can I…", "is there…", or a question mark: the employee wants to know.
_QUESTION = re.compile(
    r"^\s*(how|what|what's|whats|where|where's|when|why|which|who|is|are|can i|could i|may i|"
    r"am i|do|does|did|should|any|anyone know)\b|\?",
    re.IGNORECASE,
)
# "can you…", "I need someone to…", "send someone", "call me": the employee wants someone
# to act (a bare "please" is only politeness: "vpn from home please" is still a question).
_ASKS_SOMEONE = re.compile(
    r"\b(can|could|would|will) (you|u|someone|somebody|anyone|it)\b|"
    r"\b(i|we) need (you|someone|somebody|a person|a human|an agent)\b|"
    r"\b(someone|somebody) (to|should|needs? to|has to)\b|\b(call|ring) me\b|"
    r"\bsend (someone|somebody|a (person|tech|technician|engineer))\b",
    re.IGNORECASE,
)
# Damage no article repairs.
_PHYSICAL_DAMAGE = re.compile(
    r"\b(crack(ed)?|shatter(ed)?|smash(ed)?|smok(e|ing)|burn(ing|t)|swollen|bulging|spill(ed)?|"
    r"sparks?|water damage|fell|dropped|falling off|clicking noise|won'?t (turn on|boot|power)|"
    r"dead)\b",
    re.IGNORECASE,
)


class ScoredHit(Protocol):
    @property
    def score(self) -> float: ...

    @property
    def dense_score(self) -> float: ...

    @property
    def lexical_score(self) -> float: ...

    @property
    def uncovered_rarity(self) -> float: ...

    @property
    def title_similarity(self) -> float: ...


def decision_features(
    hits: Sequence[ScoredHit],
    intent_confidences: Mapping[str, float],
    text: str,
    entity_types: Iterable[str] = (),
) -> dict[str, float]:
    """The features the decision weighs, for a message, its best hits and its intents."""
    best = hits[0] if hits else None
    second = hits[1] if len(hits) > 1 else None
    features = {
        "fused": best.score if best else 0.0,
        "dense": best.dense_score if best else 0.0,
        "lexical": best.lexical_score if best else 0.0,
        "margin": (best.score - (second.score if second else 0.0)) if best else 0.0,
        "dense_margin": (
            (best.dense_score - (second.dense_score if second else 0.0)) if best else 0.0
        ),
        "question_intent": intent_confidences.get("ask_question", 0.0),
        "status_intent": intent_confidences.get("ticket_status", 0.0),
        "fallback_intent": intent_confidences.get("nlu_fallback", 0.0),
        "question_phrasing": float(bool(_QUESTION.search(text))),
        "asks_someone_to_act": float(bool(_ASKS_SOMEONE.search(text))),
        "physical_damage": float(bool(_PHYSICAL_DAMAGE.search(text))),
        "names_device": float("device" in set(entity_types)),
        # Does the best article cover what is asked: the rarest question word it never
        # uses ("annual leave" in an IT knowledge base), and how close its title's
        # meaning is to the question.
        "uncovered_rarity": best.uncovered_rarity if best else 0.0,
        "title_similarity": best.title_similarity if best else 0.0,
    }
    for name in REQUEST_INTENTS:
        features[f"{name}_intent"] = intent_confidences.get(name, 0.0)
    return features


@dataclass(frozen=True)
class AnswerCalibration:
    """A multinomial logistic model over FEATURES: one weight row and bias per outcome.

    The best article is given when the answer's probability reaches `threshold`;
    otherwise the likelier of escalate and ticket is chosen.
    """

    weights: tuple[tuple[float, ...], ...]  # one row per outcome, in OUTCOMES order
    bias: tuple[float, ...]
    threshold: float
    trained_on: str = ""

    def probabilities(self, features: Mapping[str, float]) -> dict[Outcome, float]:
        scores = [
            bias + sum(w * features[name] for w, name in zip(row, FEATURES, strict=True))
            for row, bias in zip(self.weights, self.bias, strict=True)
        ]
        top = max(scores)
        exps = [math.exp(score - top) for score in scores]
        total = sum(exps)
        return {outcome: e / total for outcome, e in zip(OUTCOMES, exps, strict=True)}

    def decide(self, features: Mapping[str, float]) -> Outcome:
        probabilities = self.probabilities(features)
        if probabilities[Outcome.ANSWER] >= self.threshold:
            return Outcome.ANSWER
        if probabilities[Outcome.TICKET] > probabilities[Outcome.ESCALATE]:
            return Outcome.TICKET
        return Outcome.ESCALATE

    def as_dict(self) -> dict[str, Any]:
        return {
            "features": list(FEATURES),
            "outcomes": [outcome.value for outcome in OUTCOMES],
            "weights": [list(row) for row in self.weights],
            "bias": list(self.bias),
            "threshold": self.threshold,
            "trained_on": self.trained_on,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AnswerCalibration:
        if list(data.get("features", [])) != list(FEATURES):
            raise ValueError("the calibration was trained on other features")
        if list(data.get("outcomes", [])) != [outcome.value for outcome in OUTCOMES]:
            raise ValueError("the calibration chooses between other outcomes")
        weights = tuple(tuple(float(w) for w in row) for row in data["weights"])
        bias = tuple(float(b) for b in data["bias"])
        if len(weights) != len(OUTCOMES) or len(bias) != len(OUTCOMES):
            raise ValueError("the calibration needs one weight row and bias per outcome")
        if any(len(row) != len(FEATURES) for row in weights):
            raise ValueError("the calibration needs one weight per feature")
        return cls(weights, bias, float(data["threshold"]), str(data.get("trained_on", "")))


def load_calibration(path: Path = BUNDLED_CALIBRATION) -> AnswerCalibration | None:
    try:
        return AnswerCalibration.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None
