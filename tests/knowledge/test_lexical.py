"""BM25 over passages: words the question shares with a passage, weighted by rarity."""

from __future__ import annotations

from knowledge.lexical import CorpusStats, LexicalSegment, tokenize


def stats_of(segment: LexicalSegment) -> CorpusStats:
    return CorpusStats(
        passages=segment.size,
        total_length=int(segment.lengths.sum()),
        document_frequency=segment.document_frequency(),
    )


def test_words_are_lower_cased_stemmed_and_stop_words_dropped() -> None:
    assert tokenize("The Printers are PRINTING") == ["printer", "print"]
    assert tokenize("") == []
    assert tokenize("a an the of") == []


def test_the_passage_sharing_the_rare_word_ranks_first() -> None:
    segment = LexicalSegment.from_texts(
        [
            "Restart the VPN client and connect again.",
            "Restart the laptop to install updates.",
            "Restart the printer and clear the paper jam.",
        ]
    )

    rows, scores = segment.scores(tokenize("restart vpn"), stats_of(segment))

    ranked = [
        int(row)
        for _, row in sorted(zip(scores.tolist(), rows.tolist(), strict=True), reverse=True)
    ]
    assert ranked[0] == 0
    assert set(ranked) == {0, 1, 2}  # "restart" is in all three


def test_a_question_without_known_words_matches_nothing() -> None:
    segment = LexicalSegment.from_texts(["Restart the VPN client."])

    rows, scores = segment.scores(tokenize("payroll holiday"), stats_of(segment))

    assert rows.size == 0 and scores.size == 0


def test_term_counts_of_rows_say_which_passages_hold_a_word() -> None:
    segment = LexicalSegment.from_texts(["vpn vpn token", "vpn printer", "printer toner"])

    counts = segment.term_counts([0, 1])

    assert counts["vpn"] == 2
    assert counts["printer"] == 1
    assert counts["toner"] == 0
