"""BM25 over passages: words the question shares with a passage, weighted by rarity."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

import numpy as np

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


def test_a_question_tokenized_again_gives_its_own_list_of_the_same_words() -> None:
    question = "My printer is PRINTING blank pages"
    first = tokenize(question)
    first.append("changed by a caller")
    assert tokenize(question) == ["my", "printer", "print", "blank", "page"]
    long_passage = "Printers print pages. " * 20  # beyond the remembered length
    assert tokenize(long_passage) == ["printer", "print", "page"] * 20


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


def test_term_counts_match_counting_passage_by_passage() -> None:
    rng = random.Random(3)
    words = ["vpn", "printer", "token", "laptop", "badge", "monitor", "wifi", "mailbox"]
    texts = [" ".join(rng.choices(words, k=rng.randint(1, 6))) for _ in range(200)]
    segment = LexicalSegment.from_texts(texts)
    rows = rng.sample(range(200), 37)

    expected: dict[str, int] = {}
    for row in rows:
        for term in set(tokenize(texts[row])):
            expected[term] = expected.get(term, 0) + 1

    assert dict(segment.term_counts(rows)) == expected
    assert not segment.term_counts([])


def allocating_scores(
    segment: LexicalSegment, terms: list[str], stats: CorpusStats, top: int | None
) -> tuple[list[int], list[float]]:
    """BM25 as it was computed before the per-thread workspace (fresh arrays each time)."""
    rows, scores = segment._scores_allocating(terms, stats, top)
    return rows.tolist(), scores.tolist()


def test_reused_score_buffers_give_the_same_rows_and_scores_bit_for_bit() -> None:
    rng = random.Random(11)
    words = ["vpn", "printer", "laptop", "badge", "token", "reset", "how", "error", "wifi"]
    # Many equal passages, so the `top` cut falls among ties; lengths vary otherwise.
    base = LexicalSegment.from_texts(
        [" ".join(rng.choices(words, k=rng.randint(1, 12))) for _ in range(3000)]
        + ["how to reset the vpn token"] * 200
        + ["paper jam"] * 30  # a rare word: its few rows are cleared one by one
    )
    delta = LexicalSegment.from_texts(["how to fix the printer", "vpn vpn error"])
    stats = stats_of(base)
    questions = [
        tokenize("how do I reset my vpn token"),
        tokenize("how how printer"),  # a repeated word weighs twice
        tokenize("payroll holiday"),  # no known word
        tokenize("wifi"),
        tokenize("how"),
        tokenize("jam"),
        tokenize("jam jam vpn"),
    ]
    for _ in range(3):  # again and again: the buffers must come back clean
        for terms in questions:
            for segment in (base, delta):  # segments of different sizes share the buffers
                for top in (None, 1, 50, 250):
                    rows, scores = segment.scores(terms, stats, top=top)
                    assert rows.dtype == np.int64 and scores.dtype == np.float32
                    assert (rows.tolist(), scores.tolist()) == allocating_scores(
                        segment, terms, stats, top
                    )


def test_threads_searching_at_once_each_get_their_own_buffers() -> None:
    segment = LexicalSegment.from_texts(
        [f"how to reset token {n % 7} on printer {n % 13}" for n in range(5000)]
    )
    stats = stats_of(segment)
    questions = [tokenize(f"reset token {n} printer {n % 13}") for n in range(7)]
    expected = [allocating_scores(segment, terms, stats, 20) for terms in questions]

    def answers(_: int) -> list[tuple[list[int], list[float]]]:
        found = []
        for terms in questions * 20:
            rows, scores = segment.scores(terms, stats, top=20)
            found.append((rows.tolist(), scores.tolist()))
        return found

    with ThreadPoolExecutor(max_workers=4) as pool:
        for result in pool.map(answers, range(4)):
            assert result == expected * 20
