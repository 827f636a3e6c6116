"""Each message is embedded once; the vector serves both the intent and the search."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bot.assistant import Decision, IncomingMessage
from bot.runtime import build_tier0
from nlu.embedding import SentenceEmbedder, Vectors
from tests.conftest import make_settings


class CountingEmbedder:
    def __init__(self, inner: SentenceEmbedder) -> None:
        self.inner = inner
        self.dimension = inner.dimension
        self.model_name = inner.model_name
        self.texts_embedded: list[str] = []

    def embed(self, texts: Sequence[str]) -> Vectors:
        self.texts_embedded.extend(texts)
        return self.inner.embed(texts)


def test_a_question_is_embedded_once_for_intent_and_search(
    home: Path, embedder: SentenceEmbedder
) -> None:
    counting = CountingEmbedder(embedder)
    tier0 = build_tier0(make_settings(home), counting)
    assert counting.texts_embedded == []  # index and intent model came from disk

    reply = tier0.assistant.respond(
        IncomingMessage("console:erin:1", "erin", "how do i connect to the office wifi")
    )
    assert reply.decision is Decision.ANSWER and reply.articles[0].article_id == "office-wifi"
    assert counting.texts_embedded == ["how do i connect to the office wifi"]
