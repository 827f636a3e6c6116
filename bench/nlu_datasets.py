"""The public intent benchmarks, read from `../shared/data` (never copied into the repo).

Each loader returns a train and a test `TrainingData`, so every backend (tier0's own
classifier, Rasa's DIET) trains on exactly the same examples. HWU64's test examples
keep their entity annotations for the entity F1.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nlu.embedding import Embedder, Vectors
from nlu.training_data import EntityAnnotation, IntentExample, TrainingData

ROOT = Path(__file__).resolve().parent.parent
# Embeddings of the benchmark sets are cached on disk (git-ignored; TIER0_BENCH_CACHE moves it).
CACHE_DIR = Path(os.environ.get("TIER0_BENCH_CACHE", ROOT / "bench" / ".cache"))
CLINC_OUT_OF_SCOPE = "oos"


def shared_data_dir() -> Path:
    override = os.environ.get("TIER0_SHARED_DATA")
    return Path(override) if override else (ROOT / ".." / "shared" / "data").resolve()


@dataclass(frozen=True)
class Benchmark:
    name: str
    train: TrainingData
    test: TrainingData
    out_of_scope_intent: str | None = None
    # Examples kept apart from both, to tune the fallback on (CLINC150's val + oos_val).
    validation: TrainingData | None = None


def load_clinc150(data_dir: Path) -> Benchmark:
    """CLINC150 "full": train + oos_train to train; val + oos_val to choose the fallback's
    operating point on; test + oos_test to evaluate."""
    full = json.loads((data_dir / "clinc150" / "data_full.json").read_text(encoding="utf-8"))

    def examples(*parts: str) -> TrainingData:
        return TrainingData(
            [IntentExample(str(text), str(intent)) for part in parts for text, intent in full[part]]
        )

    return Benchmark(
        "clinc150",
        examples("train", "oos_train"),
        examples("test", "oos_test"),
        CLINC_OUT_OF_SCOPE,
        validation=examples("val", "oos_val"),
    )


def load_banking77(data_dir: Path) -> Benchmark:
    def read(name: str) -> TrainingData:
        with (data_dir / "banking77" / name).open(encoding="utf-8", newline="") as file:
            return TrainingData(
                [IntentExample(row["text"], row["category"]) for row in csv.DictReader(file)]
            )

    return Benchmark("banking77", read("train.csv"), read("test.csv"))


_HWU_ANNOTATION = re.compile(r"\[\s*(?P<entity>[^:\]]+?)\s*:\s*(?P<text>[^\]]*?)\s*\]")


def parse_hwu_annotation(annotated: str) -> tuple[str, tuple[EntityAnnotation, ...]]:
    """`wake me up at [time : five am]` -> ("wake me up at five am", [time 14..21]).

    The text comes back stripped, its entity offsets counted in the stripped text.
    """
    plain: list[str] = []
    entities: list[EntityAnnotation] = []
    position = length = 0
    for match in _HWU_ANNOTATION.finditer(annotated):
        before = annotated[position : match.start()]
        plain.append(before)
        length += len(before)
        text = match.group("text")
        if text:
            entities.append(
                EntityAnnotation(match.group("entity"), text, length, length + len(text))
            )
        plain.append(text)
        length += len(text)
        position = match.end()
    plain.append(annotated[position:])
    text = "".join(plain)
    stripped = text.strip()
    shift = len(text) - len(text.lstrip())
    return stripped, tuple(
        EntityAnnotation(entity.entity, entity.value, entity.start - shift, entity.end - shift)
        for entity in entities
    )


def load_hwu64(data_dir: Path) -> Benchmark:
    """HWU64 (Liu et al. 2019, fold 1); the intent is `scenario_intent`, as published."""

    def read(name: str) -> TrainingData:
        path = data_dir / "hwu64" / "liu2019_kfold1" / name
        with path.open(encoding="utf-8", newline="") as file:
            examples = []
            for row in csv.DictReader(file, delimiter=";"):
                text, entities = parse_hwu_annotation(row["answer_annotation"])
                if text:
                    examples.append(
                        IntentExample(text, f"{row['scenario']}_{row['intent']}", entities)
                    )
            return TrainingData(examples)

    return Benchmark("hwu64", read("train.csv"), read("test.csv"))


LOADERS: dict[str, Callable[[Path], Benchmark]] = {
    "clinc150": load_clinc150,
    "banking77": load_banking77,
    "hwu64": load_hwu64,
}


class CachedEmbedder:
    """Wraps an embedder with an on-disk cache (bench/.cache, git-ignored), so repeated
    benchmark runs skip re-embedding tens of thousands of sentences."""

    def __init__(self, embedder: Embedder, model_name: str, cache_dir: Path = CACHE_DIR) -> None:
        self._embedder = embedder
        self._model_name = model_name
        self._cache_dir = cache_dir
        self.dimension = embedder.dimension

    def embed(self, texts: Sequence[str]) -> Vectors:
        if len(texts) < 64:  # single messages: measure the real thing
            return self._embedder.embed(texts)
        key = hashlib.sha256(self._model_name.encode())
        for text in texts:
            key.update(text.encode() + b"\0")
        path = self._cache_dir / f"{key.hexdigest()[:24]}.npy"
        if path.exists():
            return np.asarray(np.load(path), dtype=np.float32)
        vectors = self._embedder.embed(texts)
        self._cache_dir.mkdir(parents=True, exist_ok=True)
        np.save(path, vectors)
        return vectors
