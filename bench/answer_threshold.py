"""How well the dense search answers the sample KB's dev questions, per answer threshold.

Prints top-1 / top-3 accuracy on answerable questions and, for each candidate
threshold, how many answerable questions get the right article, how many get a
wrong one, and how many unanswerable questions are wrongly answered.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.runtime import embedder_name  # noqa: E402
from knowledge.articles import load_articles  # noqa: E402
from knowledge.index import load_or_build_index  # noqa: E402
from nlu.classifier import IntentClassifier  # noqa: E402
from nlu.embedding import shared_embedder  # noqa: E402
from nlu.training_data import BUNDLED_NLU_DATA, load_training_data  # noqa: E402
from nlu.understanding import Interpreter  # noqa: E402


def main() -> None:
    dev = yaml.safe_load((ROOT / "bench/data/sample_kb_questions.yml").read_text())
    embedder = shared_embedder()
    articles = load_articles(ROOT / "knowledge/sample_kb")
    with tempfile.TemporaryDirectory() as home:
        index, _ = load_or_build_index(articles, Path(home), embedder, embedder_name(embedder))
    data = load_training_data([BUNDLED_NLU_DATA])
    classifier = IntentClassifier.train(data, embedder)
    interpreter = Interpreter(embedder, classifier, data.synonyms)

    def best(question: str) -> list[tuple[str, float]]:
        vector = interpreter.understand(question).vector
        return [(hit.article_id, hit.score) for hit in index.search(vector, limit=3)]

    answerable = [
        (item["question"], item["article"], best(item["question"])) for item in dev["answerable"]
    ]
    unanswerable = [(question, best(question)) for question in dev["unanswerable"]]
    top1 = sum(hits[0][0] == gold for _, gold, hits in answerable) / len(answerable)
    top3 = sum(gold in [a for a, _ in hits] for _, gold, hits in answerable) / len(answerable)
    print(f"answerable questions: {len(answerable)}  top-1 {top1:.1%}  top-3 {top3:.1%}")
    print(f"unanswerable questions: {len(unanswerable)}")
    print("threshold  right  wrong  escalated  answered-unanswerable")
    for threshold in [0.30, 0.34, 0.38, 0.40, 0.42, 0.44, 0.46, 0.50]:
        right = sum(h[0][1] >= threshold and h[0][0] == g for _, g, h in answerable)
        wrong = sum(h[0][1] >= threshold and h[0][0] != g for _, g, h in answerable)
        missed = len(answerable) - right - wrong
        leaked = sum(h[0][1] >= threshold for _, h in unanswerable)
        print(f"  {threshold:.2f}    {right:5d}  {wrong:5d}  {missed:9d}  {leaked:21d}")
    if "-v" in sys.argv:
        for question, gold, hits in answerable:
            if hits[0][0] != gold:
                print(f"MISS {question!r}: want {gold}, got {hits}")
        for question, hits in unanswerable:
            print(f"UNANSWERABLE {question!r}: {hits[0]}")


if __name__ == "__main__":
    main()
