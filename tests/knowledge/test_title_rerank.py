"""The best few articles get a second look: a question that names an article's title
brings that article first, when the passages scored nearly alike."""

from __future__ import annotations

from knowledge.index import SearchHit
from knowledge.ranking import rerank_by_title


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
