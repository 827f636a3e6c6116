"""How to combine the CRF tagger with the annotated-value lookup, chosen on HWU64 TRAIN.

A fifth of HWU64's training examples is held back (seed 0); the tagger and the lookup
learn from the rest, and each way of combining them is scored on the held-back part
(exact-span entity F1, as bench/nlu_bench.py scores the test set). The test set is not
read here: bench/nlu_bench.py reports it once, for the rule chosen.

    lookup only       the annotated values alone (tier0 before the tagger)
    tagger only       the CRF alone
    tagger, lookup    the CRF first, the lookup where it found nothing (tier0's rule)
    lookup, tagger    the lookup first, the CRF where it found nothing

Also prints the tagger's training time and its tagging time per message (CPU).

Usage: python bench/entity_rules.py [--iterations N]   (the CRF's; default: TaggerConfig's)
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from nlu_datasets import load_hwu64, shared_data_dir  # noqa: E402

from nlu.entities import Entity, EntityExtractor  # noqa: E402
from nlu.evaluation import entity_report  # noqa: E402
from nlu.tagger import CRF_EXTRACTOR, EntityTagger, TaggerConfig  # noqa: E402
from nlu.training_data import TrainingData  # noqa: E402

HELD_BACK_SHARE = 0.2


def first_then(
    first: Callable[[str], Sequence[Entity]], then: Callable[[str], Sequence[Entity]]
) -> Callable[[str], list[Entity]]:
    def extract(text: str) -> list[Entity]:
        kept = list(first(text))
        for entity in then(text):
            if all(entity.end <= k.start or entity.start >= k.end for k in kept):
                kept.append(entity)
        return kept

    return extract


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=TaggerConfig().max_iterations)
    iterations = parser.parse_args().iterations
    train = load_hwu64(shared_data_dir()).train
    examples = list(train.examples)
    random.Random(0).shuffle(examples)
    cut = int(len(examples) * HELD_BACK_SHARE)
    held_back, fit = examples[:cut], TrainingData(examples[cut:])
    started, started_cpu = time.perf_counter(), time.process_time()
    tagger = EntityTagger.train(fit, TaggerConfig(max_iterations=iterations))
    print(
        f"tagger ({iterations} iterations) trained on {len(fit.examples)} examples in "
        f"{time.process_time() - started_cpu:.0f} CPU-s ({time.perf_counter() - started:.0f} s)"
    )
    lookup = EntityExtractor.from_training_data(fit, builtins=False)
    cpu_ms = []
    for example in held_back:
        started_cpu = time.process_time()
        tagger.tag(example.text)
        cpu_ms.append((time.process_time() - started_cpu) * 1000)
    cpu_ms.sort()
    print(
        f"tagging: {cpu_ms[len(cpu_ms) // 2]:.2f} / {cpu_ms[int(len(cpu_ms) * 0.95)]:.2f} ms CPU "
        "p50 / p95 per message"
    )

    def tagged(text: str) -> list[Entity]:
        return [
            Entity(s.entity, text[s.start : s.end], s.start, s.end, CRF_EXTRACTOR)
            for s in tagger.tag(text)
        ]

    rules: dict[str, Callable[[str], Sequence[Entity]]] = {
        "lookup only": lookup.extract,
        "tagger only": tagged,
        "tagger, lookup": EntityExtractor.from_training_data(
            fit, builtins=False, tagger=tagger
        ).extract,
        "lookup, tagger": first_then(lookup.extract, tagged),
    }
    print(f"held back: {len(held_back)} examples of HWU64 train")
    print(f"{'rule':16} {'F1':>6} {'P':>6} {'R':>6}")
    for name, extract in rules.items():
        report = entity_report(held_back, extract)
        print(f"{name:16} {report.f1:6.1%} {report.precision:6.1%} {report.recall:6.1%}")


if __name__ == "__main__":
    main()
