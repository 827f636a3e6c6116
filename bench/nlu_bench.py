"""tier0's NLU on the public intent benchmarks: CLINC150, BANKING77, HWU64.

Prints a table and merges the figures into bench/results/nlu.json (other top-level keys,
such as the "rasa" section written by bench/nlu_rasa.py, are kept):

    {"clinc150": {"in_scope_accuracy", "oos_recall", "train_seconds", "parse_p50_ms",
                  "parse_p95_ms"},
     "banking77": {"accuracy", ...timings}, "hwu64": {"accuracy", "entity_f1", ...timings}}

How each figure is measured:
- CLINC150 in-scope accuracy counts `oos` and `nlu_fallback` answers as wrong; OOS recall
  is the share of out-of-scope test messages answered `oos` or `nlu_fallback`. The
  fallback thresholds are chosen on CLINC150's validation split (val + oos_val, never the
  test set): the most in-scope accuracy with at least 70 % OOS recall there. The whole
  accuracy/recall curve on val is printed and saved (`oos_operating_curve`), with what
  each point gives on test next to it, for the record only.
- BANKING77 and HWU64 accuracy is the top-ranked intent's, as the published figures are
  (those data sets have no out-of-scope messages to fall back on).
- HWU64 entity F1 scores exact spans (type, start, end) of the annotated test entities,
  found as tier0 finds them (without its built-in help-desk extractors): the CRF tagger
  trained on the training split, then the annotated values where it found nothing (the
  rule chosen on held-back training examples by bench/entity_rules.py).
- train_seconds = embedding the training (and validation) messages + fitting the model
  (incl. tuning the fallback thresholds on held-back or validation examples) + training
  the entity tagger where the data annotates entities (HWU64).
  Embeddings are cached on disk (bench/.cache, or $TIER0_BENCH_CACHE) between runs, so
  the embedding part is timed on a sample of 512 training messages and scaled up.
- parse latency: one `Interpreter.understand` call per message (embedding, intent and
  entities), over 300 test messages, on whatever else this CPU is doing. The embedder
  runs one thread, as `tier0 serve` does.
- Wall clock is what the issue's targets mean; on a shared machine it mostly measures the
  neighbours, so the CPU time of the same work is saved next to it (`*_cpu_*` keys): that
  is what the work costs, whatever else runs.
- embedding_cpu_p50_ms / _p95_ms: the shared sentence embedding alone on the same 300
  messages, CPU time: the machine's share of a parse. Sessions have been given machines
  twice as fast or slow as each other; this is how to tell that from a change in the code.

With TIER0_BENCH_ADAPT=1 the classifier reads the intents from an adapted copy of the
encoder's last layer (`ClassifierConfig.adapt_last_layer`, off by default); the embedding
of the training messages is then timed in full (their token states are not cached) and the
figures go to bench/results/nlu_adapted.json instead. TIER0_BENCH_ADAPT=2 adapts the top
two layers (`ClassifierConfig.adapted_layers`), figures in bench/results/nlu_adapted_k2.json;
there the parse figures leave out the shared sentence vector (the knowledge base's), which
such a model computes only when asked: `parse_with_vector_*` include it.

Usage: python bench/nlu_bench.py [clinc150 banking77 hwu64]
"""

from __future__ import annotations

import copy
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from nlu_datasets import LOADERS, Benchmark, CachedEmbedder, shared_data_dir  # noqa: E402

from nlu.classifier import (  # noqa: E402
    FALLBACK_INTENT,
    ClassifierConfig,
    IntentClassifier,
    IntentPrediction,
)
from nlu.embedding import shared_embedder  # noqa: E402
from nlu.entities import EntityExtractor  # noqa: E402
from nlu.evaluation import entity_report  # noqa: E402
from nlu.tagger import MIN_ANNOTATED_EXAMPLES, EntityTagger, annotated_examples  # noqa: E402
from nlu.understanding import Interpreter  # noqa: E402

# How many top encoder layers the classifier adapts (0: none, the shipped model).
ADAPTED_LAYERS = int(os.environ.get("TIER0_BENCH_ADAPT", "0") or "0")
ADAPT = ADAPTED_LAYERS > 0
RESULTS = (
    ROOT
    / "bench"
    / "results"
    / {0: "nlu.json", 1: "nlu_adapted.json"}.get(
        ADAPTED_LAYERS, f"nlu_adapted_k{ADAPTED_LAYERS}.json"
    )
)
# Smaller samples make a quicker (noisier) run on a busy machine.
EMBED_SAMPLE = int(os.environ.get("TIER0_BENCH_EMBED_SAMPLE", "512"))
LATENCY_SAMPLE = int(os.environ.get("TIER0_BENCH_LATENCY_SAMPLE", "300"))
# The CLINC150 target: at least this share of out-of-scope messages caught.
CLINC_OOS_RECALL_TARGET = 0.70
# Val recall levels whose operating points are printed and saved.
CURVE_LEVELS = (0.4, 0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


def in_scope_and_recall(
    predictions: list[IntentPrediction], truth: np.ndarray, oos: str
) -> tuple[float, float]:
    answered = np.array([p.name for p in predictions])
    in_scope = truth != oos
    accuracy = float(np.mean(answered[in_scope] == truth[in_scope]))
    recall = float(np.mean(np.isin(answered[~in_scope], [oos, FALLBACK_INTENT])))
    return accuracy, recall


def operating_curve_on_test(
    model: IntentClassifier,
    test_vectors: np.ndarray,
    test_texts: list[str],
    truth: np.ndarray,
    test_states: list[np.ndarray] | None = None,
) -> list[dict[str, float]]:
    """The val curve's points at CURVE_LEVELS, each with what it gives on test."""
    curve = model.report.extra.get("operating_curve") or []
    oos = model.out_of_scope_intent or ""
    rows = []
    for level in CURVE_LEVELS:
        point = next((p for p in curve if p["out_of_scope_recall"] >= level), None)
        if point is None:
            continue
        shifted = copy.copy(model)
        shifted.fallback_threshold, shifted.ambiguity_threshold = (
            point["threshold"],
            point["ambiguity"],
        )
        accuracy, recall = in_scope_and_recall(
            shifted.predict_many(test_vectors, test_texts, test_states), truth, oos
        )
        rows.append(
            {
                "threshold": point["threshold"],
                "ambiguity": point["ambiguity"],
                "val_in_scope_accuracy": round(point["in_scope_accuracy"], 4),
                "val_oos_recall": round(point["out_of_scope_recall"], 4),
                "test_in_scope_accuracy": round(accuracy, 4),
                "test_oos_recall": round(recall, 4),
            }
        )
    return rows


def run(benchmark: Benchmark) -> dict[str, Any]:
    embedder = shared_embedder()
    cached = CachedEmbedder(embedder, embedder.model_name)
    train_texts = [e.text for e in benchmark.train.examples]
    test_texts = [e.text for e in benchmark.test.examples]
    validation_texts = (
        [e.text for e in benchmark.validation.examples] if benchmark.validation else []
    )

    train_states = validation_states = test_states = None
    if ADAPT:
        # The token states are not cached: embedding everything is timed for real.
        started, started_cpu = time.perf_counter(), time.process_time()
        train_vectors, train_states = embedder.embed_with_token_states(train_texts, ADAPTED_LAYERS)
        validation_vectors, validation_states = (
            embedder.embed_with_token_states(validation_texts, ADAPTED_LAYERS)
            if validation_texts
            else (None, None)
        )
        embed_seconds = time.perf_counter() - started
        embed_cpu_seconds = time.process_time() - started_cpu
    else:
        sample = random.Random(0).sample(train_texts, min(EMBED_SAMPLE, len(train_texts)))
        started, started_cpu = time.perf_counter(), time.process_time()
        embedder.embed(sample)
        scale = (len(train_texts) + len(validation_texts)) / len(sample)
        embed_seconds = (time.perf_counter() - started) * scale
        embed_cpu_seconds = (time.process_time() - started_cpu) * scale
        train_vectors = cached.embed(train_texts)
        validation_vectors = cached.embed(validation_texts) if validation_texts else None
    config = ClassifierConfig(
        min_out_of_scope_recall=CLINC_OOS_RECALL_TARGET if benchmark.out_of_scope_intent else None,
        adapt_last_layer=ADAPT,
        adapted_layers=max(1, ADAPTED_LAYERS),
    )
    started, started_cpu = time.perf_counter(), time.process_time()
    model = IntentClassifier.train(
        benchmark.train,
        embedder if ADAPT else cached,  # adapting needs the token states
        embedder_name=embedder.model_name,
        vectors=train_vectors,
        config=config,
        validation=benchmark.validation,
        validation_vectors=validation_vectors,
        token_states=train_states,
        validation_token_states=validation_states,
    )
    fit_seconds = time.perf_counter() - started
    fit_cpu_seconds = time.process_time() - started_cpu
    with tempfile.TemporaryDirectory() as saved:
        model.save(Path(saved))
        started = time.perf_counter()
        IntentClassifier.load(Path(saved))
        load_seconds = time.perf_counter() - started
        model_mb = sum(f.stat().st_size for f in Path(saved).iterdir()) / 1e6

    if ADAPT:
        test_vectors, test_states = embedder.embed_with_token_states(test_texts, ADAPTED_LAYERS)
    else:
        test_vectors = cached.embed(test_texts)
    probabilities = model.probabilities(test_vectors, test_texts, test_states)
    predictions = model.predict_many(test_vectors, test_texts, test_states)
    truth = np.array([e.intent for e in benchmark.test.examples])
    top = np.array(model.intents)[probabilities.argmax(axis=1)]
    answered = np.array([p.name for p in predictions])

    tagger = None
    tagger_seconds = tagger_cpu_seconds = 0.0
    if annotated_examples(benchmark.train) >= MIN_ANNOTATED_EXAMPLES:
        started, started_cpu = time.perf_counter(), time.process_time()
        tagger = EntityTagger.train(benchmark.train)
        tagger_seconds = time.perf_counter() - started
        tagger_cpu_seconds = time.process_time() - started_cpu
    extractor = EntityExtractor.from_training_data(benchmark.train, builtins=False, tagger=tagger)
    interpreter = Interpreter(embedder, model, {}, entities=extractor)
    latencies, cpu_latencies, vector_latencies, vector_cpu_latencies = [], [], [], []
    timed_texts = random.Random(1).sample(test_texts, min(LATENCY_SAMPLE, len(test_texts)))
    for text in timed_texts:
        started, started_cpu = time.perf_counter(), time.process_time()
        understanding = interpreter.understand(text)
        latencies.append((time.perf_counter() - started) * 1000)
        cpu_latencies.append((time.process_time() - started_cpu) * 1000)
        # With the top layers adapted, the shared vector (for the knowledge base) is
        # computed only when asked for: timed here as the assistant would pay it.
        understanding.vector  # noqa: B018
        vector_latencies.append((time.perf_counter() - started) * 1000)
        vector_cpu_latencies.append((time.process_time() - started_cpu) * 1000)

    # The shared embedding alone, on the same messages: the part of a parse that measures
    # the machine (how fast it runs MiniLM) rather than tier0's code. Sessions' machines
    # have differed twofold in it, and the parse figures with them.
    embedding_cpu_latencies = []
    for text in timed_texts:
        started_cpu = time.process_time()
        embedder.embed([text])
        embedding_cpu_latencies.append((time.process_time() - started_cpu) * 1000)

    result: dict[str, Any] = {}
    oos = benchmark.out_of_scope_intent
    if oos is not None:
        accuracy, recall = in_scope_and_recall(predictions, truth, oos)
        result["in_scope_accuracy"] = round(accuracy, 4)
        result["oos_recall"] = round(recall, 4)
    else:
        result["accuracy"] = round(float(np.mean(top == truth)), 4)
    if benchmark.name == "hwu64":
        entities = entity_report(benchmark.test.examples, extractor.extract)
        result["entity_f1"] = entities.f1
        print(f"hwu64 entities: P {entities.precision:.4f} R {entities.recall:.4f}")
    result["train_seconds"] = round(embed_seconds + fit_seconds + tagger_seconds, 1)
    result["parse_p50_ms"] = round(float(np.percentile(latencies, 50)), 2)
    result["parse_p95_ms"] = round(float(np.percentile(latencies, 95)), 2)
    result["train_cpu_seconds"] = round(embed_cpu_seconds + fit_cpu_seconds + tagger_cpu_seconds, 1)
    result["parse_cpu_p50_ms"] = round(float(np.percentile(cpu_latencies, 50)), 2)
    result["parse_cpu_p95_ms"] = round(float(np.percentile(cpu_latencies, 95)), 2)
    result["embedding_cpu_p50_ms"] = round(float(np.percentile(embedding_cpu_latencies, 50)), 2)
    result["embedding_cpu_p95_ms"] = round(float(np.percentile(embedding_cpu_latencies, 95)), 2)
    if ADAPT:
        result["parse_with_vector_p95_ms"] = round(float(np.percentile(vector_latencies, 95)), 2)
        result["parse_with_vector_cpu_p95_ms"] = round(
            float(np.percentile(vector_cpu_latencies, 95)), 2
        )
    if oos is not None:
        result["top1_in_scope_accuracy"] = round(
            float(np.mean(top[truth != oos] == truth[truth != oos])), 4
        )
        curve = operating_curve_on_test(model, test_vectors, test_texts, truth, test_states)
        result["oos_operating_curve"] = curve
        print(
            f"{benchmark.name}: operating points chosen on validation, and what they give on test"
        )
        print("  threshold ambiguity | val in-scope  val OOS rec | test in-scope  test OOS rec")
        for row in curve:
            print(
                f"  {row['threshold']:9.2f} {row['ambiguity']:9.3f} | "
                f"{row['val_in_scope_accuracy']:12.4f} {row['val_oos_recall']:12.4f} | "
                f"{row['test_in_scope_accuracy']:13.4f} {row['test_oos_recall']:13.4f}"
            )
    # Printed, not saved: the JSON keeps the keys the issue asks for.
    details = {
        "fit_seconds": round(fit_seconds, 1),
        "fit_cpu_seconds": round(fit_cpu_seconds, 1),
        "tagger_seconds": round(tagger_seconds, 1),
        "tagger_cpu_seconds": round(tagger_cpu_seconds, 1),
        "model_load_seconds": round(load_seconds, 2),
        "model_megabytes": round(model_mb, 1),
        "embed_seconds_estimated": round(embed_seconds, 1),
        "tuned_on": model.tuned_on,
        "fallback_rate": round(float(np.mean(answered == FALLBACK_INTENT)), 4),
        "answered_accuracy": round(
            float(np.mean((answered == truth)[answered != FALLBACK_INTENT])), 4
        ),
        "threshold": model.fallback_threshold,
        "ambiguity": model.ambiguity_threshold,
        "temperature": round(model.temperature, 3),
    }
    print(f"{benchmark.name}: {json.dumps(details)}", flush=True)
    return result


def merge_results(results: dict[str, dict[str, Any]]) -> None:
    existing: dict[str, Any] = {}
    if RESULTS.exists():
        existing = json.loads(RESULTS.read_text(encoding="utf-8"))
    existing.update(results)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(existing, indent=2) + "\n", encoding="utf-8")


def print_table(results: dict[str, dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="tier0 NLU on the public benchmarks")
    for column in (
        "data set",
        "accuracy",
        "OOS recall",
        "entity F1",
        "train s",
        "train CPU s",
        "p50 ms",
        "p95 ms",
        "p95 CPU ms",
        "embed CPU p50 / p95",
    ):
        table.add_column(column, justify="left" if column == "data set" else "right")
    for name, r in results.items():
        accuracy = r.get("accuracy", r.get("in_scope_accuracy"))

        def percent(value: float | None) -> str:
            return "—" if value is None else f"{value:.1%}"

        table.add_row(
            name,
            percent(accuracy),
            percent(r.get("oos_recall")),
            percent(r.get("entity_f1")),
            f"{r['train_seconds']:.0f}",
            f"{r['train_cpu_seconds']:.0f}",
            f"{r['parse_p50_ms']:.1f}",
            f"{r['parse_p95_ms']:.1f}",
            f"{r['parse_cpu_p95_ms']:.1f}",
            f"{r['embedding_cpu_p50_ms']:.1f} / {r['embedding_cpu_p95_ms']:.1f}"
            if "embedding_cpu_p50_ms" in r
            else "—",
        )
    Console().print(table)


def main(names: list[str]) -> None:
    unknown = [name for name in names if name not in LOADERS]
    if unknown:
        sys.exit(f"unknown data set(s): {', '.join(unknown)}; choose from {', '.join(LOADERS)}")
    data_dir = shared_data_dir()
    results = {}
    for name in names or list(LOADERS):
        try:
            benchmark = LOADERS[name](data_dir)
        except OSError as error:
            sys.exit(f"cannot read {name} under {data_dir}: {error}")
        results[name] = run(benchmark)
    merge_results(results)
    print_table(results)
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1:])
