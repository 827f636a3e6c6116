"""What a message means: one embedding, the intent it carries, and any ticket numbers in it."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nlu.classifier import IntentClassifier, IntentPrediction
from nlu.embedding import Embedder

TICKET_NUMBER = re.compile(r"\b[Tt]-?(\d{3,9})\b")


@dataclass(frozen=True)
class Understanding:
    text: str
    normalized_text: str
    vector: npt.NDArray[np.float32]
    intent: IntentPrediction
    ticket_numbers: tuple[str, ...]


def find_ticket_numbers(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(f"T-{digits}" for digits in TICKET_NUMBER.findall(text)))


class Interpreter:
    """Embeds a message once and reads its intent; the vector is handed on to search."""

    def __init__(
        self, embedder: Embedder, classifier: IntentClassifier, synonyms: dict[str, str]
    ) -> None:
        self._embedder = embedder
        self._classifier = classifier
        # Longest variants first, so "two factor authentication" wins over "two factor".
        variants = sorted(synonyms, key=len, reverse=True)
        self._synonyms = {variant.lower(): canonical for variant, canonical in synonyms.items()}
        self._synonym_pattern = (
            re.compile(r"\b(" + "|".join(re.escape(v) for v in variants) + r")\b", re.IGNORECASE)
            if variants
            else None
        )

    def normalize(self, text: str) -> str:
        """Spell the user's synonyms the way the articles do ("pw" -> "password")."""
        if self._synonym_pattern is None:
            return text
        return self._synonym_pattern.sub(lambda m: self._synonyms[m.group(0).lower()], text)

    def understand(self, text: str) -> Understanding:
        normalized = self.normalize(text)
        vector = self._embedder.embed([normalized])[0]
        return Understanding(
            text=text,
            normalized_text=normalized,
            vector=vector,
            intent=self._classifier.predict(vector),
            ticket_numbers=find_ticket_numbers(text),
        )
