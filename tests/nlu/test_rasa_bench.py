"""`bench/nlu_rasa.py`: Rasa's DIET side by side with tier0, run with stand-ins for Rasa.

The stand-in `rasa` prints a progress bar the way DIET does and writes a model; the
stand-in parse worker answers the first word of each message as its intent. So these
check what the bench does around Rasa (where the progress goes, which environment Rasa
gets, how the figures are computed) without `make rasa`.
"""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest

from bench.nlu_rasa import DataSet, Example, run
from tests.nlu.fake_rasa import WRITE_REQUESTED_MODEL

FAKE_WORKER = """\
import json, os, sys
with open(os.path.join(os.path.dirname(sys.argv[0]), "parse-env.json"), "w") as f:
    json.dump({k: os.environ.get(k) for k in
               ("TF_INTRA_OP_PARALLELISM_THREADS", "RASA_MAX_CACHE_SIZE")}, f)
for line in sys.stdin:
    text = json.loads(line)
    print(json.dumps({"intent": text.split()[0], "confidence": 0.9, "entities": [],
                      "ms": 2.0, "cpu_ms": 1.5}))
"""


def fake_rasa_venv(directory: Path) -> Path:
    """`rasa train nlu` that reports two epochs and its environment, then writes a model."""
    bin_dir = directory / "bin"
    bin_dir.mkdir(parents=True)
    rasa = bin_dir / "rasa"
    rasa.write_text(
        f"""#!/bin/sh
echo "threads=$TF_INTRA_OP_PARALLELISM_THREADS cache=$RASA_MAX_CACHE_SIZE" > "{directory}/env.log"
echo "INFO rasa.engine.training.hooks - Starting to train component 'DIETClassifier'."
printf 'Epochs:  50%%| 1/2 [00:03<00:03, 3.0s/it, i_acc=0.5]\\r' >&2
printf 'Epochs: 100%%| 2/2 [00:06<00:00, 3.0s/it, i_acc=0.9]\\n' >&2
"""
        + WRITE_REQUESTED_MODEL,
        encoding="utf-8",
    )
    (bin_dir / "fake_worker.py").write_text(FAKE_WORKER, encoding="utf-8")
    python = bin_dir / "python"
    # The bench runs `python rasa_parse_worker.py MODEL`: the stand-in ignores the script.
    python.write_text(
        f'#!/bin/sh\nexec "{sys.executable}" "{bin_dir / "fake_worker.py"}" "$3"\n',
        encoding="utf-8",
    )
    for script in (rasa, python):
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return directory


@pytest.fixture
def banking() -> DataSet:
    train = [Example(f"{intent} please {n}", intent) for intent in ("card", "refund") for n in "ab"]
    test = [Example("card lost", "card"), Example("refund now", "refund")]
    test.append(Example("card refund", "refund"))  # the stand-in answers `card`: wrong
    return DataSet("banking77", train, test)


def test_diets_epochs_go_to_a_log_the_user_is_told_to_tail(
    banking: DataSet,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    venv = fake_rasa_venv(tmp_path / "venv")
    monkeypatch.setenv("TIER0_RASA_VENV", str(venv))

    result = run(banking, 2, tmp_path / "work", log_dir=tmp_path / "logs")

    log = tmp_path / "logs" / "banking77-train.log"
    assert f"tail -f {log}" in capsys.readouterr().out
    progress = log.read_text(encoding="utf-8")
    assert "Starting to train component 'DIETClassifier'" in progress
    assert "Epochs: 100%| 2/2" in progress
    assert result["epochs"] == 2 and result["tensorflow_threads"] == 1


def test_rasa_runs_on_one_tensorflow_thread_without_its_training_cache(
    banking: DataSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venv = fake_rasa_venv(tmp_path / "venv")
    monkeypatch.setenv("TIER0_RASA_VENV", str(venv))

    run(banking, 2, tmp_path / "work", log_dir=tmp_path / "logs")

    assert (venv / "env.log").read_text(encoding="utf-8").split() == ["threads=1", "cache=0"]
    parse_env = json.loads((venv / "bin" / "parse-env.json").read_text(encoding="utf-8"))
    assert parse_env == {"TF_INTRA_OP_PARALLELISM_THREADS": "1", "RASA_MAX_CACHE_SIZE": "0"}


def test_accuracy_and_latency_come_from_the_parses_of_the_test_set(
    banking: DataSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIER0_RASA_VENV", str(fake_rasa_venv(tmp_path / "venv")))

    result = run(banking, 3, tmp_path / "work", log_dir=tmp_path / "logs", tf_threads=2)

    assert result["accuracy"] == pytest.approx(2 / 3, abs=1e-4)
    assert result["parse_p50_ms"] == 2.0 and result["parse_cpu_p95_ms"] == 1.5
    assert result["train_examples"] == 4 and result["test_examples"] == 3
    assert result["epochs"] == 3 and result["tensorflow_threads"] == 2
