"""Search and decision variants judged on the dev sets, the held-out figures printed beside.

Each variant changes one thing the assistant's search or decision depends on — BM25's
k1 and b, its tokenising (stop words, stemmer, spellings, hyphenated words), the dense
weight of the fusion, the title re-rank's weights and depth, what a passage's words
carry (the article's tags), the query (the NLU entities), the decision model's
regularisation and class weights — and is scored the way `bench/eval_kb.py` scores the
assistant: Hit@1 / Hit@3 of the re-ranked hits per knowledge base (dev, and held out),
the pooled right-decision rate over 10 shuffles of the 5-fold cross-validation (mean and
sd), and the held-out right-decision rate with the model fitted on all dev questions.

The embeddings are computed once (passages, titles, questions): a variant rebuilds only
BM25 over the same passages and re-asks the questions. The messages whose decision no
model takes (catalog offers, statuses, small talk, outage tickets) are read from the
folder `bench/eval_kb.py --dump-items DIR` wrote, so that run must come first.

    python bench/eval_kb.py --dump-items /tmp/items
    python bench/search_variants.py /tmp/items [--only NAME]
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN, STOPWORDS_EN_PLUS
from sklearn.linear_model import LogisticRegression

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import eval_kb  # noqa: E402

import knowledge.index as index_module  # noqa: E402
import knowledge.lexical as lexical  # noqa: E402
import knowledge.ranking as ranking  # noqa: E402
from bot.assistant import Decision, message_features  # noqa: E402
from bot.runtime import embedder_name  # noqa: E402
from knowledge.answerability import Outcome  # noqa: E402
from knowledge.articles import Article, load_articles  # noqa: E402
from knowledge.chunking import Chunk  # noqa: E402
from knowledge.index import KnowledgeIndex, load_or_build_index  # noqa: E402
from nlu.classifier import IntentClassifier  # noqa: E402
from nlu.embedding import Embedder, shared_embedder  # noqa: E402
from nlu.entities import DEVICE_TYPES, SOFTWARE_CATALOG  # noqa: E402
from nlu.training_data import BUNDLED_NLU_DATA, load_training_data  # noqa: E402
from nlu.understanding import Interpreter, Understanding  # noqa: E402

Tokenizer = Callable[[str], list[str]]
QueryRewrite = Callable[[str, Understanding], str]

# -- tokenisers tried ------------------------------------------------------------------------

_WORD = re.compile(r"(?u)\b\w\w+\b")
_HYPHENATED = re.compile(r"(?u)\b\w+(?:-\w+)+\b")
# British spellings an IT knowledge base meets, written the American way (or the reverse
# question: "license" against an article's "licence").
_AMERICAN = {
    "licence": "license", "licences": "licenses", "licenced": "licensed",
    "centre": "center", "centres": "centers", "fibre": "fiber", "metre": "meter",
    "catalogue": "catalog", "catalogues": "catalogs", "dialogue": "dialog",
    "dialogues": "dialogs", "colour": "color", "colours": "colors", "behaviour": "behavior",
    "favourite": "favorite", "favourites": "favorites", "honour": "honor", "labour": "labor",
    "neighbour": "neighbor", "programme": "program", "programmes": "programs",
    "enrol": "enroll", "enrols": "enrolls", "enrolment": "enrollment", "defence": "defense",
    "offence": "offense", "grey": "gray", "analyse": "analyze", "analysed": "analyzed",
    "analysing": "analyzing", "cancelled": "canceled", "cancelling": "canceling",
    "travelling": "traveling", "labelled": "labeled", "labelling": "labeling",
    "modelling": "modeling", "practise": "practice", "cheque": "check",
}  # fmt: skip
# -ise words that are spelled -ise in American English too.
_ISE_EVERYWHERE = frozenset(
    re.findall(
        r"\w+",
        "advise advertise arise comprise compromise enterprise exercise expertise franchise "
        "improvise merchandise premise promise raise revise rise supervise surprise televise "
        "noise poise praise cruise bruise concise precise paradise disguise despise devise "
        "demise treatise excise incise reprise apprise guise anise sunrise surmise",
    )
)
_ISE = re.compile(r"^(\w{3,}?)is(e|es|ed|ing|ation|ations|er|ers)$")


def american(word: str) -> str:
    """ "organisation" -> "organization", "licence" -> "license"; other words as they are."""
    if word in _AMERICAN:
        return _AMERICAN[word]
    match = _ISE.match(word)
    if match is None:
        return word
    root, ending = match.groups()
    if f"{root}ise" in _ISE_EVERYWHERE or root.endswith("w"):  # otherwise, likewise
        return word
    return f"{root}iz{ending}"


def tokenizer(
    stop_words: Sequence[str] = STOPWORDS_EN,
    stemmer: str = "english",
    *,
    spelling: bool = False,
    hyphen_joined: bool = False,
) -> Tokenizer:
    """A tokeniser like knowledge.lexical.tokenize, with one of its choices changed."""
    stops = frozenset(stop_words)
    stem = Stemmer.Stemmer(stemmer) if stemmer else None

    def tokenize(text: str) -> list[str]:
        lowered = text.lower()
        words = _WORD.findall(lowered)
        if hyphen_joined:  # "wi-fi" also as "wifi", "e-mail" as "email"
            words += [word.replace("-", "") for word in _HYPHENATED.findall(lowered)]
        if spelling:
            words = [american(word) for word in words]
        words = [word for word in words if word not in stops]
        return list(stem.stemWords(words)) if stem else words

    return tokenize


# -- query rewrites tried --------------------------------------------------------------------


def entity_values(text: str, meaning: Understanding) -> str:
    """The canonical value of every device or software entity added to the BM25 query."""
    extra = [e.value for e in meaning.entities if e.entity in {"device", "software"}]
    return f"{text} {' '.join(extra)}" if extra else text


def entity_spellings(text: str, meaning: Understanding) -> str:
    """Every spelling the built-in vocabularies know for the entities' values."""
    extra: list[str] = []
    for entity in meaning.entities:
        vocabulary = {"device": DEVICE_TYPES, "software": SOFTWARE_CATALOG}.get(entity.entity)
        if vocabulary is not None:
            extra += [entity.value, *vocabulary.get(entity.value, ())]
    return f"{text} {' '.join(extra)}" if extra else text


def entity_words_twice(text: str, meaning: Understanding) -> str:
    """The words the entities were found in count twice in BM25."""
    extra = [
        meaning.text[e.start : e.end]
        for e in meaning.entities
        if e.entity in {"device", "software"}
    ]
    return f"{text} {' '.join(extra)}" if extra else text


# -- the variants ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    name: str
    k1: float = lexical.K1
    b: float = lexical.B
    dense_weight: float = index_module.DENSE_WEIGHT
    word_weight: float = ranking.TITLE_WEIGHT
    meaning_weight: float = ranking.TITLE_MEANING_WEIGHT
    depth: int = ranking.RERANK_DEPTH
    tokenize: Tokenizer | None = None
    # The article's tags added to the words BM25 reads: "lead" on its first passage only,
    # "all" on every passage.
    tags_in_passages: str = ""
    query: QueryRewrite | None = None
    regularisation: float = eval_kb.C_REGULARISATION
    class_weight: str | None = None


def variants() -> list[Variant]:
    found: list[Variant] = [Variant("as shipped")]
    found += [
        Variant(f"BM25 k1 {k1} b {b}", k1=k1, b=b)
        for k1 in (0.9, 1.2, 1.5, 2.0)
        for b in (0.4, 0.6, 0.65, 0.7, 0.75, 0.8, 0.9)
        if (k1, b) != (lexical.K1, lexical.B) and (k1 == 1.2 or b in (0.4, 0.6, 0.75, 0.9))
    ]
    found += [Variant(f"dense weight {w}", dense_weight=w) for w in (0.4, 0.45, 0.55, 0.6)]
    found += [Variant(f"re-rank depth {d}", depth=d) for d in (5, 20)]
    found += [
        Variant(f"title words {w} meaning {m}", word_weight=w, meaning_weight=m)
        for w in (0.05, 0.15)
        for m in (0.1, 0.15, 0.2, 0.25)
    ]
    found += [
        Variant("stop words: bm25s EN_PLUS (179)", tokenize=tokenizer(STOPWORDS_EN_PLUS)),
        Variant("stemmer: Porter", tokenize=tokenizer(stemmer="porter")),
        Variant("stemmer: none", tokenize=tokenizer(stemmer="")),
        Variant("British spellings as American", tokenize=tokenizer(spelling=True)),
        Variant("hyphenated words also joined", tokenize=tokenizer(hyphen_joined=True)),
        Variant(
            "spellings + hyphens + EN_PLUS",
            tokenize=tokenizer(STOPWORDS_EN_PLUS, spelling=True, hyphen_joined=True),
        ),
        Variant("tags: BM25 words of every passage", tags_in_passages="all"),
        Variant("tags: BM25 words of the lead passage", tags_in_passages="lead"),
        Variant("query + entity values", query=entity_values),
        Variant("query + entity spellings", query=entity_spellings),
        Variant("query + entity words again", query=entity_words_twice),
    ]
    found += [Variant(f"decision C {c}", regularisation=c) for c in (0.1, 0.3, 0.5, 2.0, 3.0, 10.0)]
    found += [
        Variant("decision balanced classes", class_weight="balanced"),
        Variant("decision balanced classes C 0.3", class_weight="balanced", regularisation=0.3),
    ]
    return found


# -- running one ------------------------------------------------------------------------------


@dataclass
class Prepared:
    """One knowledge base with everything embedded once."""

    name: str
    articles: list[Article]
    chunks: list[Chunk]
    vectors: np.ndarray
    index: KnowledgeIndex
    titles: ranking.TitleMeanings
    # (held out?, kind, question, gold article, understanding)
    questions: list[tuple[bool, str, str, str | None, Understanding]]


def prepare(embedder: Embedder) -> list[Prepared]:
    data = load_training_data([BUNDLED_NLU_DATA])
    interpreter = Interpreter(embedder, IntentClassifier.train(data, embedder), data.synonyms)
    prepared = []
    for dev, unseen in zip(eval_kb.dev_sets(), eval_kb.dev_sets(held_out=True), strict=True):
        articles = load_articles(dev.kb_dir)
        with tempfile.TemporaryDirectory() as home:
            index, _ = load_or_build_index(articles, Path(home), embedder, embedder_name(embedder))
        titles = ranking.TitleMeanings(embedder)
        titles.keep_only(article.title for article in articles if article.searchable)
        questions = []
        for held_out, questions_set in ((False, dev), (True, unseen)):
            kinds: list[tuple[str, str, str | None]] = [
                ("answerable", q, gold) for q, gold in questions_set.answerable
            ]
            kinds += [("unanswerable", q, None) for q in questions_set.unanswerable]
            kinds += [("needs_human", q, None) for q in questions_set.needs_human]
            questions += [(held_out, k, q, g, interpreter.understand(q)) for k, q, g in kinds]
        prepared.append(
            Prepared(
                dev.name,
                articles,
                list(index.chunks),
                np.asarray(index.vectors, dtype=np.float32),
                index,
                titles,
                questions,
            )
        )
    return prepared


@contextmanager
def bm25_as(variant: Variant) -> Iterator[None]:
    """BM25's constants and tokeniser as the variant has them, restored afterwards."""
    saved = (lexical.tokenize, lexical.K1, lexical.B)
    tokenize = variant.tokenize or lexical.tokenize
    lexical.tokenize = index_module.tokenize = ranking.tokenize = tokenize
    lexical.K1 = index_module.K1 = variant.k1
    lexical.B = variant.b
    try:
        yield
    finally:
        lexical.tokenize = index_module.tokenize = ranking.tokenize = saved[0]
        lexical.K1 = index_module.K1 = saved[1]
        lexical.B = saved[2]


def with_tags(kb: Prepared, where: str) -> list[Chunk]:
    """The passages with their article's tags before the heading path (BM25 reads the
    context), on every passage or on each article's first."""
    tags = {article.id: " ".join(article.tags) for article in kb.articles}
    seen: set[str] = set()
    chunks = []
    for chunk in kb.chunks:
        lead = chunk.article_id not in seen
        seen.add(chunk.article_id)
        if tags[chunk.article_id] and (where == "all" or lead):
            heading = " — ".join(part for part in (tags[chunk.article_id], chunk.heading) if part)
            chunk = replace(chunk, heading=heading)
        chunks.append(chunk)
    return chunks


@dataclass
class Scored:
    hits: dict[tuple[str, bool], tuple[float, float]]  # (kb, held out) -> Hit@1, Hit@3
    rates: list[float]
    held_out: float


def ask(
    variant: Variant, kb: Prepared, fixed: dict[tuple[bool, str, str], str | None]
) -> tuple[dict[bool, list[eval_kb.Asked]], dict[bool, list[int | None]]]:
    chunks = with_tags(kb, variant.tags_in_passages) if variant.tags_in_passages else kb.chunks
    index = KnowledgeIndex(
        chunks=chunks,
        vectors=kb.vectors,
        article_fingerprints=kb.index.article_fingerprints,
        article_paths=kb.index.article_paths,
        embedder_name=kb.index.embedder_name,
        dense_weight=variant.dense_weight,
    )
    asked: dict[bool, list[eval_kb.Asked]] = {False: [], True: []}
    ranks: dict[bool, list[int | None]] = {False: [], True: []}
    for held_out, kind, question, gold, meaning in kb.questions:
        query_text = lexical.expand_query(meaning.text, meaning.normalized_text)
        if variant.query is not None:
            query_text = variant.query(query_text, meaning)
        hits = index.search(meaning.vector, max(3, variant.depth), query_text=query_text)
        reranked = ranking.rerank(
            hits,
            query_text,
            meaning.vector,
            kb.titles,
            word_weight=variant.word_weight,
            meaning_weight=variant.meaning_weight,
        )
        best = tuple(index.with_coverage(reranked[:3], query_text))
        if kind == "answerable":
            ids = [hit.article_id for hit in reranked]
            ranks[held_out].append(ids.index(gold) + 1 if gold in ids else None)
            found = bool(best) and best[0].article_id == gold
            label = Outcome.ANSWER if found else Outcome.ESCALATE
        else:
            label = Outcome.ESCALATE if kind == "unanswerable" else Outcome.TICKET
        item = eval_kb.Asked(
            kb.name,
            kind,
            question,
            gold,
            message_features(best, meaning),
            label,
            best_article=best[0].article_id if best else None,
        )
        taken = fixed[(held_out, kb.name, question)]
        item.fixed = Decision(taken) if taken else None
        asked[held_out].append(item)
    return asked, ranks


def score(
    variant: Variant, prepared: Sequence[Prepared], fixed: dict[tuple[bool, str, str], str | None]
) -> Scored:
    items: dict[bool, list[eval_kb.Asked]] = {False: [], True: []}
    hits: dict[tuple[str, bool], tuple[float, float]] = {}
    with bm25_as(variant):
        for kb in prepared:
            asked, ranks = ask(variant, kb, fixed)
            for held_out in (False, True):
                items[held_out] += asked[held_out]
                hit1, hit3, _ = eval_kb.ranking_figures(ranks[held_out])
                hits[kb.name, held_out] = (hit1, hit3)
    saved = (eval_kb.C_REGULARISATION, eval_kb.LogisticRegression)
    eval_kb.C_REGULARISATION = variant.regularisation
    eval_kb.LogisticRegression = functools.partial(
        LogisticRegression, class_weight=variant.class_weight
    )
    try:
        rates = eval_kb.repeated_cv(items[False], 10)
        shipped = eval_kb.fit_calibration(items[False], variant.name)
    finally:
        eval_kb.C_REGULARISATION, eval_kb.LogisticRegression = saved
    for item in items[True]:
        item.decision = item.fixed or Decision(shipped.decide(item.features).value)
        item.answered_with = item.best_article if item.decision is Decision.ANSWER else None
    held = sum(item.right for item in items[True]) / len(items[True])
    return Scored(hits, rates, held)


def fixed_decisions(folder: Path) -> dict[tuple[bool, str, str], str | None]:
    fixed: dict[tuple[bool, str, str], str | None] = {}
    for name, held_out in (("dev.json", False), ("heldout.json", True)):
        for row in json.loads((folder / name).read_text(encoding="utf-8")):
            fixed[(held_out, row["kb"], row["question"])] = row["fixed"]
    return fixed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path, help="where eval_kb --dump-items wrote")
    parser.add_argument("--only", help="run the variants whose name contains this")
    args = parser.parse_args()
    fixed = fixed_decisions(args.folder)
    prepared = prepare(shared_embedder())
    print(
        f"{'':40s} "
        + " ".join(f"{kb.name[:9]:>9s} (held)" for kb in prepared)
        + "   right decision: dev 10 shuffles mean / sd, held out"
    )
    for variant in variants():
        if args.only and args.only not in variant.name and variant.name != "as shipped":
            continue
        started = time.process_time()
        scored = score(variant, prepared, fixed)
        line = f"{variant.name:40s}"
        for kb in prepared:
            dev1, dev3 = scored.hits[kb.name, False]
            held1, held3 = scored.hits[kb.name, True]
            line += f" {dev1:.1%}/{dev3:.1%} ({held1:.1%}/{held3:.1%})"
        line += (
            f"   {np.mean(scored.rates):.2%} sd {np.std(scored.rates):.2%}, {scored.held_out:.1%}"
            f"  ({time.process_time() - started:.0f} s CPU)"
        )
        print(line, flush=True)


if __name__ == "__main__":
    main()
