"""Rasa's DIET on the public intent benchmarks, side by side with tier0 (`make bench-nlu`).

For CLINC150, BANKING77 and HWU64 (read from `../shared/data`, never copied) this trains
a Rasa NLU model with tier0's DIET pipeline (`nlu/rasa_training.py`, FallbackClassifier
left out so DIET is read raw), parses every test message with it in process
(`bench/rasa_parse_worker.py` under `.venv-rasa`), prints a table and merges
`"rasa": {"clinc150": …, "banking77": …, "hwu64": …}` into `bench/results/nlu.json`,
keeping every other key of that file.

    .venv/bin/python bench/nlu_rasa.py [--datasets clinc150 banking77] [--epochs 100]

`rasa train nlu` writes its log and DIET's per-epoch progress bar to
`$TMPDIR/tier0-rasa-bench/<data set>-train.log` (`--log-dir`), named when training
starts: `tail -f` it to see which component or epoch Rasa is at and its seconds per epoch.

TensorFlow runs on one thread (`--tf-threads`): the 2 cores are shared, and tier0's own
figures are single-threaded too. Rasa's training cache (`.rasa/cache`, every featurizer's
output pickled to disk) is off: each project here is trained once, so it is pure cost.

Rates are fractions. `train_seconds` is the wall time of `rasa train nlu` (it includes
Rasa's start-up, ~10 s of TensorFlow import); `train_cpu_seconds` is the CPU time of that
process (user + system, all its threads), which is what the training costs whatever else
the machine runs. Latencies are per message, in process, wall and CPU (`parse_cpu_*`).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from nlu.rasa_training import (  # noqa: E402
    DietPipeline,
    RasaError,
    rasa_environment,
    rasa_executable,
    train,
    write_examples_project,
)

RESULTS = REPO_ROOT / "bench" / "results" / "nlu.json"
WORKER = REPO_ROOT / "bench" / "rasa_parse_worker.py"
OUT_OF_SCOPE = "oos"
# DIET's own default. Measured here (one TensorFlow thread) an epoch costs ~10-25 CPU-ms
# per training message (more with entities), so 100 epochs of one data set take
# CPU-hours; --epochs trades accuracy for time and is recorded with the figures.
DEFAULT_EPOCHS = 100
DEFAULT_TF_THREADS = 1
DEFAULT_LOG_DIR = Path(tempfile.gettempdir()) / "tier0-rasa-bench"
# HWU64 annotates `[date : tomorrow]`; Rasa writes `[tomorrow](date)`.
HWU_ENTITY = re.compile(r"\[\s*([^\]:]+?)\s*:\s*([^\]]*?)\s*\]")


def shared_data() -> Path:
    override = os.environ.get("TIER0_SHARED_DATA")
    return Path(override) if override else (REPO_ROOT / ".." / "shared" / "data").resolve()


@dataclass(frozen=True)
class Span:
    entity: str
    start: int
    end: int


@dataclass
class Example:
    text: str  # plain text, as a user types it
    intent: str
    entities: list[Span] = field(default_factory=list)

    def annotated(self) -> str:
        """The example in Rasa's `[text](entity)` notation."""
        out, position = [], 0
        for span in sorted(self.entities, key=lambda s: s.start):
            value = self.text[span.start : span.end]
            if any(c in value for c in "[]()") or span.start < position:
                continue  # would break the notation: kept as plain text
            out += [self.text[position : span.start], f"[{value}]({span.entity})"]
            position = span.end
        out.append(self.text[position:])
        return "".join(out)


@dataclass(frozen=True)
class DataSet:
    name: str
    train: list[Example]
    test: list[Example]


def load_clinc150(root: Path) -> DataSet:
    data = json.loads((root / "clinc150" / "data_full.json").read_text(encoding="utf-8"))

    def examples(*parts: str) -> list[Example]:
        return [Example(text, intent) for part in parts for text, intent in data[part]]

    return DataSet("clinc150", examples("train", "oos_train"), examples("test", "oos_test"))


def load_banking77(root: Path) -> DataSet:
    def examples(name: str) -> list[Example]:
        with (root / "banking77" / name).open(encoding="utf-8", newline="") as file:
            return [Example(row["text"], row["category"]) for row in csv.DictReader(file)]

    return DataSet("banking77", examples("train.csv"), examples("test.csv"))


def hwu_example(annotation: str, intent: str) -> Example:
    text, spans, position = [], [], 0
    offset = 0
    for match in HWU_ENTITY.finditer(annotation):
        text.append(annotation[position : match.start()])
        offset += match.start() - position
        value = match.group(2)
        spans.append(Span(match.group(1).strip().replace(" ", "_"), offset, offset + len(value)))
        text.append(value)
        offset += len(value)
        position = match.end()
    text.append(annotation[position:])
    return Example("".join(text), intent, [s for s in spans if s.end > s.start])


def load_hwu64(root: Path) -> DataSet:
    def examples(name: str) -> list[Example]:
        path = root / "hwu64" / "liu2019_kfold1" / name
        with path.open(encoding="utf-8", newline="") as file:
            return [
                hwu_example(row["answer_annotation"], f"{row['scenario']}_{row['intent']}")
                for row in csv.DictReader(file, delimiter=";")
            ]

    return DataSet("hwu64", examples("train.csv"), examples("test.csv"))


LOADERS: dict[str, Callable[[Path], DataSet]] = {
    "clinc150": load_clinc150,
    "banking77": load_banking77,
    "hwu64": load_hwu64,
}


def _children_cpu_seconds() -> float:
    """User + system CPU time of the finished child processes (`rasa train` is one):
    on a shared machine the wall time mostly measures the neighbours."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def entity_f1(gold: Sequence[Example], parses: Sequence[dict[str, Any]]) -> float:
    """Micro F1 of entity spans: right type and exactly the right characters."""
    true_positive = predicted = expected = 0
    for example, parse in zip(gold, parses, strict=True):
        wanted = {(s.entity, s.start, s.end) for s in example.entities}
        found = {(e["entity"], e["start"], e["end"]) for e in parse["entities"]}
        true_positive += len(wanted & found)
        predicted += len(found)
        expected += len(wanted)
    if not true_positive:
        return 0.0
    precision, recall = true_positive / predicted, true_positive / expected
    return 2 * precision * recall / (precision + recall)


def bench_environment(tf_threads: int) -> dict[str, str]:
    """What the bench adds to Rasa's environment, for training and parsing alike."""
    return {
        "TF_INTRA_OP_PARALLELISM_THREADS": str(tf_threads),
        "TF_INTER_OP_PARALLELISM_THREADS": str(tf_threads),
        "RASA_MAX_CACHE_SIZE": "0",  # no `.rasa/cache`: nothing here is trained twice
    }


def parse_all(
    model: Path, texts: Sequence[str], environment: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    python = rasa_executable().parent / "python"
    finished = subprocess.run(
        [str(python), str(WORKER), str(model)],
        input="".join(json.dumps(text) + "\n" for text in texts),
        capture_output=True,
        text=True,
        env={**rasa_environment(), **(environment or {})},
        check=False,
    )
    if finished.returncode != 0:
        tail = "\n".join(finished.stderr.strip().splitlines()[-15:])
        raise RasaError(f"the Rasa parse worker failed:\n{tail}")
    parses = [json.loads(line) for line in finished.stdout.splitlines() if line.strip()]
    if len(parses) != len(texts):
        raise RasaError(f"the Rasa parse worker answered {len(parses)} of {len(texts)} messages")
    return parses


def run(
    data: DataSet,
    epochs: int,
    work: Path,
    *,
    log_dir: Path = DEFAULT_LOG_DIR,
    tf_threads: int = DEFAULT_TF_THREADS,
) -> dict[str, Any]:
    with_entities = data.name == "hwu64"
    project = write_examples_project(
        ((e.annotated() if with_entities else e.text, e.intent) for e in data.train),
        work / data.name,
        DietPipeline(epochs=epochs, fallback_threshold=None),
    )
    environment = bench_environment(tf_threads)
    log_path = log_dir / f"{data.name}-train.log"
    print(
        f"{data.name}: training DIET ({epochs} epochs, {tf_threads} TensorFlow thread(s)) on "
        f"{len(data.train)} examples; progress: tail -f {log_path}",
        flush=True,
    )
    cpu_before = _children_cpu_seconds()
    model = train(project, force=True, log_path=log_path, environment=environment)
    train_cpu_seconds = _children_cpu_seconds() - cpu_before
    load_average = os.getloadavg()[0]
    print(
        f"{data.name}: trained in {model.seconds:.0f} s ({train_cpu_seconds:.0f} CPU s); "
        f"parsing {len(data.test)} messages …",
        flush=True,
    )
    started = time.perf_counter()
    parses = parse_all(model.path, [e.text for e in data.test], environment)
    print(f"{data.name}: parsed in {time.perf_counter() - started:.0f} s", flush=True)
    latencies = [float(p["ms"]) for p in parses]
    cpu_latencies = [float(p["cpu_ms"]) for p in parses]
    result: dict[str, Any] = {}
    if data.name == "clinc150":
        in_scope = [
            (e, p) for e, p in zip(data.test, parses, strict=True) if e.intent != OUT_OF_SCOPE
        ]
        out_of_scope = [
            (e, p) for e, p in zip(data.test, parses, strict=True) if e.intent == OUT_OF_SCOPE
        ]
        result["in_scope_accuracy"] = round(
            sum(p["intent"] == e.intent for e, p in in_scope) / len(in_scope), 4
        )
        result["oos_recall"] = round(
            sum(p["intent"] == OUT_OF_SCOPE for _, p in out_of_scope) / len(out_of_scope), 4
        )
    else:
        result["accuracy"] = round(
            sum(p["intent"] == e.intent for e, p in zip(data.test, parses, strict=True))
            / len(data.test),
            4,
        )
    if with_entities:
        result["entity_f1"] = round(entity_f1(data.test, parses), 4)
    result.update(
        {
            "train_seconds": round(model.seconds, 1),
            "parse_p50_ms": round(statistics.median(latencies), 2),
            "parse_p95_ms": round(percentile(latencies, 0.95), 2),
            "train_cpu_seconds": round(train_cpu_seconds, 1),
            "parse_cpu_p50_ms": round(statistics.median(cpu_latencies), 2),
            "parse_cpu_p95_ms": round(percentile(cpu_latencies, 0.95), 2),
            "epochs": epochs,
            "tensorflow_threads": tf_threads,
            "load_average_after_training": round(load_average, 1),
            "train_examples": len(data.train),
            "test_examples": len(data.test),
        }
    )
    return result


def merge_results(name: str, result: dict[str, Any]) -> None:
    """Put one data set's figures under "rasa", leaving every other key as it was."""
    results = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.is_file() else {}
    results.setdefault("rasa", {})[name] = result
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    staging = RESULTS.with_suffix(f".rasa-{os.getpid()}.tmp")
    staging.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    staging.replace(RESULTS)


def print_table(rows: dict[str, dict[str, Any]]) -> None:
    print(
        f"\n{'Rasa DIET':<10} {'epochs':>6} {'accuracy':>9} {'oos rec':>8} {'ent F1':>7} "
        f"{'train s':>8} {'CPU s':>7} {'p50 ms':>7} {'p95 ms':>7}"
    )
    for name, row in rows.items():
        accuracy = row.get("in_scope_accuracy", row.get("accuracy"))
        cells = [
            f"{accuracy:.4f}" if accuracy is not None else "-",
            f"{row['oos_recall']:.4f}" if "oos_recall" in row else "-",
            f"{row['entity_f1']:.4f}" if "entity_f1" in row else "-",
        ]
        print(
            f"{name:<10} {row['epochs']:>6} {cells[0]:>9} {cells[1]:>8} {cells[2]:>7} "
            f"{row['train_seconds']:>8.0f} {row['train_cpu_seconds']:>7.0f} "
            f"{row['parse_p50_ms']:>7.1f} {row['parse_p95_ms']:>7.1f}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=list(LOADERS), default=list(LOADERS))
    parser.add_argument(
        "--epochs", type=int, default=DEFAULT_EPOCHS, help="DIET epochs (Rasa's default: 100)"
    )
    parser.add_argument(
        "--tf-threads", type=int, default=DEFAULT_TF_THREADS, help="TensorFlow threads"
    )
    parser.add_argument(
        "--log-dir",
        type=Path,
        default=DEFAULT_LOG_DIR,
        help="where `rasa train nlu` writes its progress (<data set>-train.log)",
    )
    args = parser.parse_args(argv)
    try:
        rasa_executable()
    except RasaError as error:
        print(f"skipping the Rasa benchmark: {error}")
        return 0
    root = shared_data()
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="tier0-rasa-bench-") as work:
        for name in args.datasets:
            try:
                data = LOADERS[name](root)
            except OSError as error:
                print(f"error: cannot read {name} under {root}: {error}", file=sys.stderr)
                return 2
            try:
                rows[name] = run(
                    data, args.epochs, Path(work), log_dir=args.log_dir, tf_threads=args.tf_threads
                )
            except RasaError as error:
                print(f"error: {name}: {error}", file=sys.stderr)
                return 1
            merge_results(name, rows[name])
    print_table(rows)
    print(f'\nmerged into {RESULTS.relative_to(REPO_ROOT)} under "rasa"')
    return 0


if __name__ == "__main__":
    sys.exit(main())
