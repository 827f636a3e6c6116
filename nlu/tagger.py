"""Entities learnt from the examples: a linear-chain CRF over word tokens, as Rasa's
CRFEntityExtractor.

The annotated values of the training data are a lookup table (nlu/entities.py): they find
"Figma" only where an example said `[Figma](software)`. The CRF learns the context around
annotations too ("install X", "wake me at X"), so it also finds values no example wrote.
Each token is tagged B-<entity>, I-<entity> or O (the BIO scheme) from: the word, its
3-letter prefix and suffix, its shape ("T-1042" -> "X-d"), the two words either side and
the two bigrams around it. On HWU64's test set the tagger, with the lookup filling in
where it found nothing, scores 72.8 % entity F1 against 67.2 % for the annotated-value
lookup alone (bench/nlu_bench.py; the rule and iterations chosen on held-back training
examples, bench/entity_rules.py).

The model is trained only when the data has enough annotated examples
(`MIN_ANNOTATED_EXAMPLES`); fewer teach a CRF little beyond the lookup table. It is saved
next to the intent model with the fingerprint of the data it learnt, and retrained when
that changes (`load_or_train_tagger`).
"""

from __future__ import annotations

import re
import tempfile
import threading
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pycrfsuite

from nlu import model_files
from nlu.training_data import EntityAnnotation, TrainingData

CRF_EXTRACTOR = "CRFEntityExtractor"  # Rasa's name for it
TAGGER_FORMAT_VERSION = 1
MODEL_FILE = "entity_tagger.crfsuite"
META_FILE = "entity_tagger.json"
_TAGGER_FILE_KINDS = {"model": MODEL_FILE}
# Fewer annotated examples than this: no tagger (the lookup of annotated values remains).
MIN_ANNOTATED_EXAMPLES = 30
OUTSIDE = "O"

# Words, and each other non-space character on its own: "T-1042?" -> "T", "-", "1042", "?".
_TOKEN = re.compile(r"\w+|[^\w\s]")
_SHAPE_RUN = re.compile(r"(.)\1+")


@dataclass(frozen=True)
class TaggerConfig:
    """The CRF's training settings; the defaults are what was measured on HWU64."""

    c1: float = 0.05  # L1 regularisation
    c2: float = 0.01  # L2 regularisation
    # On held-back HWU64 training examples 75 iterations scored as 150 did (76.2 / 76.1 %
    # entity F1, bench/entity_rules.py) in half the training time (98 / 186 CPU-s).
    max_iterations: int = 75

    def as_json(self) -> dict[str, Any]:
        return {"c1": self.c1, "c2": self.c2, "max_iterations": self.max_iterations}


@dataclass(frozen=True)
class Token:
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class TaggedSpan:
    """One entity the tagger found: its type and where it is in the text."""

    entity: str
    start: int
    end: int


def tokenize(text: str) -> list[Token]:
    return [Token(m.group(0), m.start(), m.end()) for m in _TOKEN.finditer(text)]


def _shape(word: str) -> str:
    shape = "".join(
        "X" if ch.isupper() else "x" if ch.islower() else "d" if ch.isdigit() else ch for ch in word
    )
    return _SHAPE_RUN.sub(r"\1", shape)


def token_features(tokens: Sequence[Token]) -> list[list[str]]:
    """The features of each token, as crfsuite's attribute names."""
    words = [token.text.lower() for token in tokens]
    padded = ["<s2>", "<s1>", *words, "</s1>", "</s2>"]
    features = []
    for i, token in enumerate(tokens):
        word = words[i]
        at = i + 2  # the token's place in `padded`
        features.append(
            [
                "bias",
                f"w={word}",
                f"p3={word[:3]}",
                f"s3={word[-3:]}",
                f"shape={_shape(token.text)}",
                f"w-2={padded[at - 2]}",
                f"w-1={padded[at - 1]}",
                f"w+1={padded[at + 1]}",
                f"w+2={padded[at + 2]}",
                f"b-1={padded[at - 1]}|{word}",
                f"b+1={word}|{padded[at + 1]}",
            ]
        )
    return features


def bio_labels(tokens: Sequence[Token], annotations: Sequence[EntityAnnotation]) -> list[str]:
    """B-/I-/O for each token; a token an annotation touches belongs to it."""
    labels = [OUTSIDE] * len(tokens)
    for annotation in sorted(annotations, key=lambda a: a.start):
        inside = [
            i
            for i, token in enumerate(tokens)
            if token.start < annotation.end and token.end > annotation.start
        ]
        if not inside or any(labels[i] != OUTSIDE for i in inside):
            continue  # an empty or overlapping annotation teaches nothing reliable
        labels[inside[0]] = f"B-{annotation.entity}"
        for i in inside[1:]:
            labels[i] = f"I-{annotation.entity}"
    return labels


def spans_of(tokens: Sequence[Token], labels: Sequence[str]) -> list[TaggedSpan]:
    """The entities a BIO labelling marks; an I- not continuing its entity starts one."""
    spans: list[TaggedSpan] = []
    current: tuple[str, int, int] | None = None
    for token, label in zip(tokens, labels, strict=True):
        kind, _, entity = label.partition("-")
        if current is not None and kind == "I" and entity == current[0]:
            current = (current[0], current[1], token.end)
            continue
        if current is not None:
            spans.append(TaggedSpan(*current))
            current = None
        if kind in {"B", "I"} and entity:
            current = (entity, token.start, token.end)
    if current is not None:
        spans.append(TaggedSpan(*current))
    return spans


def annotated_examples(data: TrainingData) -> int:
    return sum(1 for example in data.examples if example.entities)


class EntityTagger:
    """A trained CRF: finds entity spans in a message."""

    def __init__(
        self,
        model: bytes,
        fingerprint: str,
        *,
        config: TaggerConfig | None = None,
        report: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.fingerprint = fingerprint
        self.config = config or TaggerConfig()
        self.report = report or {}
        self._tagger = pycrfsuite.Tagger()
        self._tagger.open_inmemory(model)
        self.entities = sorted({label[2:] for label in self._tagger.labels() if label != OUTSIDE})
        # One crfsuite tagger is not safe to share between threads; a tag takes ~0.1 ms.
        self._lock = threading.Lock()

    @classmethod
    def train(cls, data: TrainingData, config: TaggerConfig | None = None) -> EntityTagger:
        """Learn from every example (the unannotated ones teach what is not an entity)."""
        config = config or TaggerConfig()
        if not data.entity_names:
            raise ValueError("the training data annotates no entities")
        started, started_cpu = time.perf_counter(), time.process_time()
        trainer = pycrfsuite.Trainer(algorithm="lbfgs", verbose=False)
        trainer.set_params(
            {
                "c1": config.c1,
                "c2": config.c2,
                "max_iterations": config.max_iterations,
                "feature.possible_transitions": True,
            }
        )
        for example in data.examples:
            tokens = tokenize(example.text)
            if tokens:
                trainer.append(token_features(tokens), bio_labels(tokens, example.entities))
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / MODEL_FILE
            trainer.train(str(path))
            model = path.read_bytes()
        report = {
            "examples": len(data.examples),
            "annotated_examples": annotated_examples(data),
            "seconds": round(time.perf_counter() - started, 2),
            "cpu_seconds": round(time.process_time() - started_cpu, 2),
        }
        return cls(model, data.fingerprint(), config=config, report=report)

    def tag(self, text: str) -> list[TaggedSpan]:
        tokens = tokenize(text)
        if not tokens:
            return []
        with self._lock:
            labels = self._tagger.tag(token_features(tokens))
        return spans_of(tokens, labels)

    def save(self, directory: Path) -> None:
        """Save as one swap: a reader loads this tagger or the one before, never a mix."""
        with model_files.saving(directory) as save:
            files = {"model": model_files.file_of_save(MODEL_FILE, save)}
            (directory / files["model"]).write_bytes(self.model)
            meta = {
                "format": TAGGER_FORMAT_VERSION,
                "files": files,
                "fingerprint": self.fingerprint,
                "config": self.config.as_json(),
                "report": self.report,
            }
            model_files.publish(directory, META_FILE, meta, _TAGGER_FILE_KINDS)

    @classmethod
    def load(cls, directory: Path) -> EntityTagger:
        return model_files.read(directory, META_FILE, _TAGGER_FILE_KINDS, cls._from_saved)

    @classmethod
    def _from_saved(
        cls, directory: Path, meta: dict[str, Any], files: dict[str, Path]
    ) -> EntityTagger:
        if meta.get("format") != TAGGER_FORMAT_VERSION:
            raise ValueError(f"{directory}: tagger format {meta.get('format')} is not supported")
        return cls(
            files["model"].read_bytes(),
            str(meta["fingerprint"]),
            config=TaggerConfig(**meta["config"]),
            report=dict(meta["report"]),
        )


def _saved_tagger(directory: Path, data: TrainingData, config: TaggerConfig) -> EntityTagger | None:
    if not (directory / META_FILE).exists():
        return None
    try:
        tagger = EntityTagger.load(directory)
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile):
        return None  # unreadable, truncated or outdated: trained again
    if tagger.fingerprint != data.fingerprint() or tagger.config != config:
        return None
    return tagger


def load_or_train_tagger(
    directory: Path,
    data: TrainingData,
    *,
    config: TaggerConfig | None = None,
    notes: list[str] | None = None,
) -> EntityTagger | None:
    """The saved tagger while the training data is unchanged, else a new one, saved.

    None when the data has too few annotated examples to learn from; why goes to `notes`.
    """
    config = config or TaggerConfig()
    annotated = annotated_examples(data)
    if annotated < MIN_ANNOTATED_EXAMPLES:
        model_files.remove(directory, META_FILE, _TAGGER_FILE_KINDS)
        if notes is not None and annotated:
            notes.append(
                f"no entity tagger: {annotated} annotated examples, it needs "
                f"{MIN_ANNOTATED_EXAMPLES}; entities come from the annotated values, "
                "regexes, lookup tables and built-in extractors"
            )
        return None
    saved = _saved_tagger(directory, data, config)
    if saved is not None:
        return saved
    tagger = EntityTagger.train(data, config)
    tagger.save(directory)
    return tagger


def needs_tagger_training(
    directory: Path, data: TrainingData, config: TaggerConfig | None = None
) -> bool:
    """True when `load_or_train_tagger` would train (enough annotations, none saved)."""
    if annotated_examples(data) < MIN_ANNOTATED_EXAMPLES:
        return False
    return _saved_tagger(directory, data, config or TaggerConfig()) is None
