"""Does the best article cover what is asked? Each hit says how rare the rarest question
word is that its article never uses: "how many days of annual leave do i get" finds an
IT article by "leave", but no IT article says "annual"."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from knowledge.articles import Article
from knowledge.index import KnowledgeIndex, SearchHit, build_index
from knowledge.lexical import LexicalSegment, tokenize
from tests.nlu.fake_embedder import HashingEmbedder

EMBEDDER_NAME = "hashing"


def article(article_id: str, title: str, body: str) -> Article:
    return Article(id=article_id, title=title, body=body, path=Path(f"{article_id}.md"))


OFFBOARDING = article(
    "offboarding",
    "Leaving the company",
    "## Before you leave\nReturn your laptop and badge.\n\n## Mail\nForward your mail to your "
    "manager before you leave.",
)
VPN = article("vpn", "Connect to the VPN", "## Steps\nOpen the VPN app and click connect.")
PRINTER = article("printer", "Add a printer", "## Paper jam\nOpen the tray, pull the paper.")


def ask(index: KnowledgeIndex, text: str, limit: int = 3) -> dict[str, SearchHit]:
    hits = index.search(HashingEmbedder().embed([text])[0], limit=limit, query_text=text)
    return {hit.article_id: hit for hit in index.with_coverage(hits, text)}


@pytest.fixture
def index() -> KnowledgeIndex:
    return build_index([OFFBOARDING, VPN, PRINTER], HashingEmbedder(), EMBEDDER_NAME)


def passages(index: KnowledgeIndex) -> int:
    return index.chunk_count


def test_a_word_no_article_uses_weighs_the_most(index: KnowledgeIndex) -> None:
    hit = ask(index, "how many days of annual leave do i get")["offboarding"]

    assert hit.uncovered_rarity == pytest.approx(1.0)  # "annual": in no passage at all


def test_an_article_holding_every_word_of_the_question_leaves_nothing_uncovered(
    index: KnowledgeIndex,
) -> None:
    hit = ask(index, "return the laptop before leaving")["offboarding"]

    assert hit.uncovered_rarity == 0.0


def test_a_word_another_article_holds_weighs_by_its_rarity(index: KnowledgeIndex) -> None:
    hits = ask(index, "vpn paper jam", limit=5)

    # The VPN article lacks "paper" and "jam" (one passage each), the printer one "vpn".
    n = passages(index)
    one_passage = math.log(1.0 + (n - 1 + 0.5) / 1.5) / math.log(1.0 + (n + 0.5) / 0.5)
    assert hits["vpn"].uncovered_rarity == pytest.approx(one_passage, abs=1e-4)
    assert hits["printer"].uncovered_rarity == pytest.approx(one_passage, abs=1e-4)
    assert 0.0 < one_passage < 1.0


def test_an_edited_article_is_judged_by_its_new_words_only(index: KnowledgeIndex) -> None:
    assert ask(index, "paper jam tray")["printer"].uncovered_rarity == 0.0

    index.add_or_update(
        article("printer", "Add a printer", "## Toner\nSwap the toner cartridge."),
        HashingEmbedder(),
    )

    # Its old passage is retired from the base: "tray" is in no live passage now.
    assert ask(index, "printer tray toner")["printer"].uncovered_rarity == pytest.approx(1.0)
    assert ask(index, "printer toner")["printer"].uncovered_rarity == 0.0


def test_a_question_without_searchable_words_has_nothing_uncovered(
    index: KnowledgeIndex,
) -> None:
    hits = index.search(HashingEmbedder().embed(["the and of"])[0], limit=3)

    covered = index.with_coverage(hits, "the and of")

    assert covered and all(hit.uncovered_rarity == 0.0 for hit in covered)
    assert index.with_coverage([], "annual leave") == []


def test_a_plain_search_does_not_pay_for_the_coverage(
    index: KnowledgeIndex,
) -> None:
    # Only the hits kept after the re-rank are looked at (KnowledgeIndex.with_coverage).
    vector = HashingEmbedder().embed(["annual leave"])[0]
    assert all(h.uncovered_rarity == 0.0 for h in index.search(vector, 3, query_text="annual"))


def test_which_passages_hold_each_word() -> None:
    segment = LexicalSegment.from_texts(
        ["Restart the VPN client.", "Clear the paper jam.", "Restart the printer."]
    )
    terms = tokenize("restart paper annual")

    held = segment.holding(terms, np.array([2, 0, 1], dtype=np.int64))

    assert held.tolist() == [
        [True, True, False],  # restart: rows 2 and 0
        [False, False, True],  # paper: row 1
        [False, False, False],  # annual: nowhere
    ]
    assert segment.holding(terms, np.zeros(0, dtype=np.int64)).shape == (3, 0)


def test_a_columns_rows_ascend_as_the_search_for_holders_assumes() -> None:
    texts = [f"word{i % 7} common text {i}" for i in range(200)]
    segment = LexicalSegment.from_texts(texts)
    matrix = segment.frequencies

    for column in range(matrix.shape[1]):
        rows = matrix.indices[matrix.indptr[column] : matrix.indptr[column + 1]]
        assert np.all(np.diff(rows) > 0)


# -- the words an editor could add (`tier0 kb gaps`) ----------------------------------


def test_the_words_an_article_never_uses_come_as_asked_the_most_asked_first(
    index: KnowledgeIndex,
) -> None:
    questions = [
        "can I keep my company phone when I leave",
        "leaving next week, what about my phone and badge",
    ]

    lacking = index.words_the_article_lacks("offboarding", questions)

    # "phone" is in both questions, the others in one each, in the order asked.
    # "company" (its title), "leave", "leaving" and "badge" are the article's own words;
    # "can", "I", "my", "when", "what", "about" and "and" are function words.
    assert lacking == ["phone", "keep", "next", "week"]


def test_an_edit_that_adds_the_missing_word_takes_it_off_the_list(
    index: KnowledgeIndex,
) -> None:
    assert index.words_the_article_lacks("vpn", ["vpn keeps dropping"]) == ["keeps", "dropping"]

    index.add_or_update(
        article("vpn", "Connect to the VPN", "## When it keeps dropping\nReconnect the app."),
        HashingEmbedder(),
    )

    assert index.words_the_article_lacks("vpn", ["vpn keeps dropping"]) == []


def test_no_words_are_named_for_an_unknown_or_retired_article_or_no_words(
    index: KnowledgeIndex,
) -> None:
    assert index.words_the_article_lacks("no-such-article", ["vpn keeps dropping"]) == []
    assert index.words_the_article_lacks("vpn", ["the and of", ""]) == []

    index.retire("printer")

    assert index.words_the_article_lacks("printer", ["printer toner"]) == []
