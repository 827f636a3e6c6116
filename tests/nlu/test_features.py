"""Lexical features: each block is exactly sklearn's sublinear TF-IDF, L2-normalised, and
the message's n-gram counts, computed without scikit-learn, are scikit-learn's own."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

from nlu.features import DEFAULT_NGRAMS, LexicalFeatures, NgramSpec

TRAINING = [
    "I forgot my password",
    "reset my password please, password expired",
    "the vpn is not connecting",
    "vpn   keeps\tdisconnecting from home",
    "the printer is offline",
    "paper jam in the printer again and again",
]
MESSAGES = [
    "my password and my vpn",
    "PRINTER offline!!",
    "nothing known here: zzz qqq",
    "",
    "Ünïcödé 日本語 🎉 password",
    "a",
]


def test_features_are_sklearns_tfidf_block_by_block() -> None:
    features = LexicalFeatures.fit(TRAINING)

    ours = features.transform(MESSAGES).toarray()

    blocks = []
    for spec in DEFAULT_NGRAMS:
        tfidf = TfidfVectorizer(
            analyzer=spec.analyzer,
            ngram_range=(spec.low, spec.high),
            token_pattern=r"(?u)\b\w+\b" if spec.analyzer == "word" else None,
            sublinear_tf=True,
        ).fit(TRAINING)
        blocks.append(tfidf.transform(MESSAGES))
    expected = sp.hstack(blocks).toarray()
    assert ours.shape == expected.shape == (len(MESSAGES), features.dimension)
    np.testing.assert_allclose(ours, expected, atol=1e-6)
    assert not ours[3].any()  # an empty message has no n-grams


def test_a_reloaded_vocabulary_gives_the_same_features() -> None:
    features = LexicalFeatures.fit(TRAINING)

    again = LexicalFeatures.from_saved(features.to_json(), features.idf_arrays())

    assert (again.transform(MESSAGES) != features.transform(MESSAGES)).nnz == 0


TEXTS = [
    "my vpn keeps disconnecting when I join a call",
    "I  need\tthe\n\nVPN!!  reset my pw",
    "Ünïcödé 日本語 🎉 and a 2fa code",
    "a",
    "",
    "  lead and trail  ",
    "don't can't won't",
    "printer printer printer jam",
]


@pytest.mark.parametrize(
    "spec",
    [*DEFAULT_NGRAMS, NgramSpec("word", 1, 1), NgramSpec("word", 2, 3), NgramSpec("char_wb", 3, 3)],
)
def test_counts_match_scikit_learns_count_vectorizer(spec: NgramSpec) -> None:
    def vectorizer(vocabulary: dict[str, int] | None = None) -> CountVectorizer:
        return CountVectorizer(
            analyzer=spec.analyzer,
            ngram_range=(spec.low, spec.high),
            token_pattern=r"(?u)\b\w+\b" if spec.analyzer == "word" else None,
            vocabulary=vocabulary,
            dtype=np.float32,
        )

    fitted = vectorizer().fit(TEXTS[:4])
    vocabulary = {str(k): int(v) for k, v in fitted.vocabulary_.items()}
    idf = np.ones(len(vocabulary), dtype=np.float32)
    features = LexicalFeatures([spec], [vocabulary], [idf])
    expected = sp.csr_matrix(vectorizer(vocabulary).transform(TEXTS), dtype=np.float32)

    # With every idf 1 the features are the sublinear counts, L2-normalised per message.
    got = features.transform(TEXTS)
    data = (1.0 + np.log(expected.data)).astype(np.float32)
    rows = np.repeat(np.arange(expected.shape[0]), np.diff(expected.indptr))
    norms = np.sqrt(np.bincount(rows, weights=data * data, minlength=expected.shape[0]))
    expected.data = (data / norms[rows]).astype(np.float32)
    assert got.shape == expected.shape
    assert np.array_equal(got.indptr, expected.indptr)
    assert np.array_equal(got.indices, expected.indices)
    np.testing.assert_allclose(got.data, expected.data, rtol=1e-6)


def test_answering_a_message_does_not_import_scikit_learn() -> None:
    code = (
        "import sys, numpy as np\n"
        "from nlu.features import LexicalFeatures, NgramSpec\n"
        "import nlu.classifier\n"
        "f = LexicalFeatures([NgramSpec('word', 1, 2)], [{'vpn': 0}], [np.ones(1, np.float32)])\n"
        "f.transform(['my vpn'])\n"
        "print('sklearn' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
