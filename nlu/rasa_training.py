"""Training a Rasa NLU model (DIET) from tier0's training data, with the Rasa of `.venv-rasa`.

Rasa Open Source 3.6 runs only on Python ≤ 3.10, so it lives in a virtualenv of its own
(`make rasa`) and tier0 drives its command line. tier0's training data already *is*
Rasa NLU YAML: it is validated with tier0's own loader (so a mistake gets tier0's clear
error, not a Rasa traceback) and its `nlu:` items are written, untouched, into a Rasa
project next to a `config.yml` with a DIET pipeline. A model is retrained only when the
project (data or pipeline) changed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nlu.training_data import NluDataError, load_training_data

RASA_VERSION = "3.6.21"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RASA_VENV = REPO_ROOT / ".venv-rasa"
RASA_NLU_FORMAT = "3.1"
MODEL_NAME = "tier0-nlu"
FINGERPRINT_FILE = "fingerprint.txt"
# How much of Rasa's output goes into an error message: its last lines say what failed.
ERROR_TAIL_LINES = 15


class RasaError(RuntimeError):
    """Rasa could not do what was asked; the message says what and how to fix it."""


class RasaNotInstalled(RasaError):
    def __init__(self, venv: Path) -> None:
        super().__init__(f"Rasa is not installed in {venv}: run `make rasa` first")


@dataclass(frozen=True)
class DietPipeline:
    """The knobs of the DIET pipeline tier0 writes into `config.yml`.

    The featurizers are those of Rasa's own default config (word and char n-gram counts,
    regex and lexical features); `epochs` trades accuracy for training time. Below
    `fallback_threshold` Rasa answers `nlu_fallback`, the intent tier0 also uses for
    "I don't know"; `None` leaves the FallbackClassifier out (benchmarks read DIET raw).
    """

    epochs: int = 100
    fallback_threshold: float | None = 0.3
    ambiguity_threshold: float = 0.1
    random_seed: int = 1

    def config(self) -> dict[str, Any]:
        pipeline: list[dict[str, Any]] = [
            {"name": "WhitespaceTokenizer"},
            {"name": "RegexFeaturizer"},
            {"name": "LexicalSyntacticFeaturizer"},
            {"name": "CountVectorsFeaturizer"},
            {
                "name": "CountVectorsFeaturizer",
                "analyzer": "char_wb",
                "min_ngram": 1,
                "max_ngram": 4,
            },
            {
                "name": "DIETClassifier",
                "epochs": self.epochs,
                "constrain_similarities": True,
                "random_seed": self.random_seed,
            },
            {"name": "EntitySynonymMapper"},
        ]
        if self.fallback_threshold is not None:
            pipeline.append(
                {
                    "name": "FallbackClassifier",
                    "threshold": self.fallback_threshold,
                    "ambiguity_threshold": self.ambiguity_threshold,
                }
            )
        return {
            "recipe": "default.v1",
            "assistant_id": "tier0",
            "language": "en",
            "pipeline": pipeline,
            "policies": [],
        }


@dataclass(frozen=True)
class RasaProject:
    directory: Path

    @property
    def config_path(self) -> Path:
        return self.directory / "config.yml"

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def models_dir(self) -> Path:
        return self.directory / "models"

    @property
    def model_path(self) -> Path:
        return self.models_dir / f"{MODEL_NAME}.tar.gz"

    def fingerprint(self) -> str:
        """Changes when the pipeline or any training file changes."""
        digest = hashlib.sha256(f"rasa {RASA_VERSION}\n".encode())
        for path in [self.config_path, *sorted(self.data_dir.glob("*.yml"))]:
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        return digest.hexdigest()[:16]


@dataclass(frozen=True)
class TrainedRasaModel:
    path: Path
    fingerprint: str
    trained: bool  # False when the model of unchanged data was reused
    seconds: float


def rasa_executable(venv: Path | None = None) -> Path:
    """The `rasa` command of the Rasa virtualenv; RasaNotInstalled if `make rasa` never ran."""
    venv = venv or Path(os.environ.get("TIER0_RASA_VENV", DEFAULT_RASA_VENV))
    executable = venv / "bin" / "rasa"
    if not executable.is_file() or not os.access(executable, os.X_OK):
        raise RasaNotInstalled(venv)
    return executable


def rasa_environment() -> dict[str, str]:
    """Rasa's environment: no telemetry (tier0 is offline) and TensorFlow kept quiet."""
    environment = dict(os.environ)
    environment.update(
        {
            "RASA_TELEMETRY_ENABLED": "false",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "PYTHONWARNINGS": "ignore",
        }
    )
    return environment


def _yaml_files(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(path.glob("**/*.yml")) + sorted(path.glob("**/*.yaml"))
        else:
            files.append(path)
    return files


def write_project(
    sources: Sequence[Path], directory: Path, pipeline: DietPipeline | None = None
) -> RasaProject:
    """Write a Rasa project (config.yml, data/) for the NLU YAML files or folders `sources`.

    Raises NluDataError, naming the file, when the data is not usable training data.
    """
    load_training_data(sources)  # tier0's checks and error messages, before Rasa sees it
    project = RasaProject(directory)
    project.data_dir.mkdir(parents=True, exist_ok=True)
    for stale in project.data_dir.glob("*.yml"):
        stale.unlink()
    for number, source in enumerate(_yaml_files(sources), start=1):
        document = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
        items = (document.get("nlu") or []) if isinstance(document, dict) else []
        if not items:
            continue  # e.g. a domain or stories file in the same folder
        # Only `nlu:` goes to Rasa: responses, stories or rules of the same file are
        # tier0-ignored keys and would make `rasa train nlu` expect a domain.
        target = project.data_dir / f"{number:03d}-{source.stem}.yml"
        target.write_text(
            yaml.safe_dump(
                {"version": RASA_NLU_FORMAT, "nlu": items}, sort_keys=False, allow_unicode=True
            ),
            encoding="utf-8",
        )
    project.config_path.write_text(
        yaml.safe_dump((pipeline or DietPipeline()).config(), sort_keys=False), encoding="utf-8"
    )
    return project


def write_examples_project(
    examples: Iterable[tuple[str, str]], directory: Path, pipeline: DietPipeline | None = None
) -> RasaProject:
    """A project from (Rasa-annotated example, intent) pairs, e.g. a benchmark's CSV."""
    by_intent: dict[str, list[str]] = {}
    for text, intent in examples:
        line = " ".join(text.split())
        if line:
            by_intent.setdefault(intent, []).append(line)
    if len(by_intent) < 2:
        raise NluDataError("training needs examples of at least two intents")
    source = directory / "source" / "nlu.yml"
    source.parent.mkdir(parents=True, exist_ok=True)
    items = [
        {"intent": intent, "examples": "".join(f"- {line}\n" for line in lines)}
        for intent, lines in by_intent.items()
    ]
    source.write_text(
        yaml.safe_dump({"version": RASA_NLU_FORMAT, "nlu": items}, sort_keys=False, width=10_000),
        encoding="utf-8",
    )
    return write_project([source], directory, pipeline)


def train(
    project: RasaProject,
    *,
    venv: Path | None = None,
    force: bool = False,
    timeout: float | None = None,
    log_path: Path | None = None,
    environment: Mapping[str, str] | None = None,
) -> TrainedRasaModel:
    """Run `rasa train nlu` for the project, unless its model of the same data exists.

    With `log_path`, Rasa's output (its component log and DIET's per-epoch progress bar)
    is written to that file as it comes, so a long training can be followed with
    `tail -f`; otherwise it is kept in memory and only shown when training fails.
    `environment` adds to (or overrides) `rasa_environment()`.
    """
    rasa = rasa_executable(venv)
    fingerprint = project.fingerprint()
    stamp = project.models_dir / FINGERPRINT_FILE
    if (
        not force
        and project.model_path.is_file()
        and stamp.is_file()
        and stamp.read_text(encoding="utf-8").strip() == fingerprint
    ):
        return TrainedRasaModel(project.model_path, fingerprint, trained=False, seconds=0.0)
    project.models_dir.mkdir(parents=True, exist_ok=True)
    stamp.unlink(missing_ok=True)
    command = [
        str(rasa), "train", "nlu",
        "--config", str(project.config_path),
        "--nlu", str(project.data_dir),
        "--out", str(project.models_dir),
        "--fixed-model-name", MODEL_NAME,
    ]  # fmt: skip
    run_environment = {**rasa_environment(), **(environment or {})}
    started = time.perf_counter()
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        # Unbuffered, so the log shows where Rasa is now, not where it was a buffer ago.
        run_environment["PYTHONUNBUFFERED"] = "1"
    try:
        with log_path.open("w", encoding="utf-8") if log_path else nullcontext() as log:
            finished = subprocess.run(
                command,
                cwd=project.directory,
                env=run_environment,
                stdout=log or subprocess.PIPE,
                stderr=subprocess.STDOUT if log else subprocess.PIPE,
                text=True,
                timeout=timeout,
                check=False,
            )
        output = (
            log_path.read_text(encoding="utf-8", errors="replace")
            if log_path
            else (finished.stderr or "") + (finished.stdout or "")
        )
    except subprocess.TimeoutExpired as error:
        where = f" (its output: {log_path})" if log_path else ""
        raise RasaError(f"`rasa train nlu` did not finish within {timeout:.0f} s{where}") from error
    seconds = time.perf_counter() - started
    if finished.returncode != 0 or not project.model_path.is_file():
        tail = "\n".join(output.strip().splitlines()[-ERROR_TAIL_LINES:])
        raise RasaError(f"`rasa train nlu` failed (exit {finished.returncode}):\n{tail}")
    stamp.write_text(fingerprint + "\n", encoding="utf-8")
    return TrainedRasaModel(project.model_path, fingerprint, trained=True, seconds=seconds)


def serve_command(
    model: Path, *, port: int = 5005, venv: Path | None = None, host: str = "127.0.0.1"
) -> list[str]:
    """The command line of a Rasa server answering `/model/parse` for `model`."""
    return [
        str(rasa_executable(venv)), "run", "--enable-api",
        "--model", str(model),
        "--interface", host,
        "--port", str(port),
    ]  # fmt: skip
