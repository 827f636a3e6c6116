"""The best few articles get a second look: a question that names an article's title, or
means what it says, brings that article first, when the passages scored nearly alike."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from knowledge.index import SearchHit
from knowledge.ranking import TitleMeanings, rerank, rerank_by_title


def hit(article_id: str, title: str, score: float) -> SearchHit:
    return SearchHit(article_id, title, "passage", "", score, f"{article_id}.md", score, 0.0)


def test_a_question_naming_the_title_brings_its_article_first() -> None:
    hits = [
        hit("report-incident", "How to report a security incident", 0.61),
        hit("security-contacts", "Security incident contacts", 0.60),
    ]

    reranked = rerank_by_title(hits, "who are the contacts for a security incident")

    assert [h.article_id for h in reranked] == ["security-contacts", "report-incident"]
    assert reranked[0].score > 0.60  # the score shown is the one the order came from


def test_a_clear_lead_is_not_overturned_by_a_title_word() -> None:
    hits = [
        hit("vpn-troubleshooting", "Fix a slow or disconnecting VPN", 0.80),
        hit("printer-setup", "Add a printer", 0.40),
    ]

    reranked = rerank_by_title(hits, "vpn drops every time i add a printer")

    assert reranked[0].article_id == "vpn-troubleshooting"


def test_a_question_without_searchable_words_keeps_the_order() -> None:
    hits = [hit("a", "Alpha", 0.5), hit("b", "Beta", 0.4)]

    assert rerank_by_title(hits, "the and of") == hits
    assert rerank_by_title([], "anything") == []


class CountingEmbedder:
    """Known texts to fixed unit vectors; counts the texts it was asked to embed."""

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.vectors = {text: np.asarray(v, dtype=np.float32) for text, v in vectors.items()}
        self.embedded: list[str] = []

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.embedded += texts
        rows = [self.vectors[text] / np.linalg.norm(self.vectors[text]) for text in texts]
        return np.stack(rows).astype(np.float32)


ONE_HOUR = "You must report IT security incidents within one hour"
HOW_TO = "How to report a security incident (leaked secrets, exposed data)"


def test_a_question_meaning_what_a_title_says_brings_its_article_first() -> None:
    # "how quickly" shares no word with "within one hour": only the meaning can tell.
    titles = TitleMeanings(CountingEmbedder({ONE_HOUR: [1.0, 0.2, 0.0], HOW_TO: [0.1, 1.0, 0.0]}))
    hits = [hit("report-other", HOW_TO, 0.62), hit("report-within-an-hour", ONE_HOUR, 0.60)]
    question = np.asarray([0.98, 0.2, 0.0], dtype=np.float32)
    question /= np.linalg.norm(question)

    by_words = rerank(hits, "how quickly do i have to report a security incident")
    by_meaning = rerank(
        hits, "how quickly do i have to report a security incident", question, titles
    )

    assert by_words[0].article_id == "report-other"
    assert [h.article_id for h in by_meaning] == ["report-within-an-hour", "report-other"]
    # Each hit keeps its title's cosine with the question: the decision weighs it.
    assert by_meaning[0].title_similarity == pytest.approx(
        float(question @ [1.0, 0.2, 0.0]) / np.linalg.norm([1.0, 0.2, 0.0]), abs=1e-4
    )
    assert 0.0 < by_meaning[1].title_similarity < by_meaning[0].title_similarity
    assert all(h.title_similarity == 0.0 for h in by_words)  # no meanings at hand


def test_the_title_similarity_is_kept_even_when_it_does_not_move_the_order() -> None:
    titles = TitleMeanings(CountingEmbedder({ONE_HOUR: [1.0, 0.0], HOW_TO: [0.0, 1.0]}))
    hits = [hit("report-other", HOW_TO, 0.9), hit("report-within-an-hour", ONE_HOUR, 0.1)]
    question = np.asarray([0.0, 1.0], dtype=np.float32)

    reranked = rerank(hits, "zzz", question, titles, word_weight=0.0, meaning_weight=0.0)

    assert [h.article_id for h in reranked] == ["report-other", "report-within-an-hour"]
    assert [h.title_similarity for h in reranked] == [1.0, 0.0]


def test_each_title_is_embedded_once_and_kept_across_restarts(tmp_path: Path) -> None:
    embedder = CountingEmbedder({ONE_HOUR: [1.0, 0.0], HOW_TO: [0.0, 1.0], "Printers": [1, 1]})
    store = tmp_path / "title_vectors.npz"
    titles = TitleMeanings(embedder, store, model="m1")

    assert titles.keep_only([ONE_HOUR, HOW_TO]) == 2
    titles.vectors([HOW_TO, ONE_HOUR, HOW_TO])
    titles.save()
    assert embedder.embedded == [ONE_HOUR, HOW_TO]

    restarted = TitleMeanings(embedder, store, model="m1")
    np.testing.assert_allclose(restarted.vectors([ONE_HOUR])[0], [1.0, 0.0])
    assert embedder.embedded == [ONE_HOUR, HOW_TO]  # nothing embedded again

    # A retired article's title is forgotten; a new one is embedded on its first search.
    assert restarted.keep_only([HOW_TO]) == 0
    assert len(restarted) == 1
    restarted.vectors(["Printers"])
    assert embedder.embedded[-1] == "Printers"


def test_title_vectors_of_another_model_are_not_used(tmp_path: Path) -> None:
    embedder = CountingEmbedder({ONE_HOUR: [1.0, 0.0]})
    store = tmp_path / "title_vectors.npz"
    first = TitleMeanings(embedder, store, model="old-model")
    first.keep_only([ONE_HOUR])
    first.save()

    assert len(TitleMeanings(embedder, store, model="new-model")) == 0
    store.write_bytes(b"not an npz file")
    assert len(TitleMeanings(embedder, store, model="old-model")) == 0  # rebuilt, not fatal
