"""What a message means: one embedding, the intent it carries, and the entities it names."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from nlu.classifier import IntentClassifier, IntentPrediction
from nlu.embedding import SHARED_TOP_LAYERS, Embedder
from nlu.entities import TICKET_NUMBER, Entity, EntityExtractor

__all__ = ["TICKET_NUMBER", "Interpreter", "Understanding", "find_ticket_numbers"]


@dataclass(frozen=True)
class Understanding:
    text: str
    normalized_text: str
    # The shared sentence vector (what search reads), computed when first asked for: an
    # intent model that runs its own top layers does not need it.
    sentence_vector: Callable[[], npt.NDArray[np.float32]]
    intent: IntentPrediction
    ticket_numbers: tuple[str, ...]
    entities: tuple[Entity, ...] = ()

    @cached_property
    def vector(self) -> npt.NDArray[np.float32]:
        return self.sentence_vector()

    def as_rasa_parse(self) -> dict[str, Any]:
        """The shape of Rasa's `/model/parse` answer."""
        return {
            "text": self.text,
            "intent": {"name": self.intent.name, "confidence": self.intent.confidence},
            "intent_ranking": [
                {"name": ranked.name, "confidence": ranked.confidence}
                for ranked in self.intent.ranking
            ],
            "entities": [entity.as_dict() for entity in self.entities],
        }


def find_ticket_numbers(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(f"T-{digits}" for digits in TICKET_NUMBER.findall(text)))


class Interpreter:
    """Embeds a message once, reads its intent and entities; the vector goes on to search."""

    def __init__(
        self,
        embedder: Embedder,
        classifier: IntentClassifier,
        synonyms: dict[str, str],
        *,
        entities: EntityExtractor | None = None,
    ) -> None:
        self._embedder = embedder
        self.classifier = classifier
        self.entities = entities or EntityExtractor(synonyms=synonyms)
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
        token_states = None
        sentence_vector: Callable[[], npt.NDArray[np.float32]]
        adapted = self.classifier.adapted
        if (
            adapted is not None
            and len(adapted.layers) == SHARED_TOP_LAYERS
            and hasattr(self._embedder, "token_states")
            and hasattr(self._embedder, "embed_token_states")
        ):
            # The encoder's bottom only: the classifier runs its own copy of the top layers,
            # the shared top runs if search asks for the vector.
            embedder: Any = self._embedder
            token_states = embedder.token_states([normalized], SHARED_TOP_LAYERS)[0]
            below_top = token_states
            vector = np.zeros(0, dtype=np.float32)  # the classifier reads the states

            def sentence_vector() -> npt.NDArray[np.float32]:
                return np.asarray(embedder.embed_token_states([below_top])[0], dtype=np.float32)

        else:
            if adapted is not None:
                # The same single pass: the sentence vector for search, the token states for
                # the classifier's adapted copy of the layers.
                vectors, states = self._embedder.embed_with_token_states(  # type: ignore[attr-defined]
                    [normalized], len(adapted.layers)
                )
                vector, token_states = vectors[0], states[0]
            else:
                vector = self._embedder.embed([normalized])[0]
            computed = np.asarray(vector, dtype=np.float32)

            def sentence_vector() -> npt.NDArray[np.float32]:
                return computed

        return Understanding(
            text=text,
            normalized_text=normalized,
            sentence_vector=sentence_vector,
            intent=self.classifier.predict(vector, normalized, token_states),
            ticket_numbers=find_ticket_numbers(text),
            entities=self.entities.extract(text),
        )

    def parse(self, text: str) -> dict[str, Any]:
        """What Rasa's `/model/parse` answers for `text`: intent, ranking and entities."""
        return self.understand(text).as_rasa_parse()
