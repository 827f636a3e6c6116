"""Lexical features: each block is exactly sklearn's sublinear TF-IDF, L2-normalised."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from nlu.features import DEFAULT_NGRAMS, LexicalFeatures

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
