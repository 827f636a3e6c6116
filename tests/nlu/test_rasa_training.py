"""`tier0 nlu train --backend rasa`: the Rasa project tier0 writes, and when it retrains.

A stand-in `rasa` command records how it is called, so these run without `make rasa`;
tests/nlu/test_rasa_integration.py trains with the real one.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml

from nlu.rasa_training import (
    DietPipeline,
    RasaError,
    RasaNotInstalled,
    train,
    write_project,
)
from nlu.training_data import NluDataError
from tests.nlu.fake_rasa import WRITE_REQUESTED_MODEL

NLU_WITH_EXTRAS = """\
version: "3.1"
nlu:
- intent: ticket_status
  examples: |
    - where is [T-1042](ticket_number)?
    - status of my ticket
- intent: greet
  examples: |
    - hello
    - hi there
- synonym: vpn
  examples: |
    - virtual private network
responses:
  utter_greet:
  - text: Hi!
"""


def fake_rasa_venv(directory: Path, *, exit_code: int = 0) -> Path:
    """A virtualenv whose `rasa` logs its arguments and writes the model it is asked for."""
    script = directory / "bin" / "rasa"
    script.parent.mkdir(parents=True)
    script.write_text(
        f"""#!/bin/sh
echo "$@" >> "{directory}/calls.log"
if [ {exit_code} -ne 0 ]; then
  echo "rasa.shared.exceptions.InvalidConfigException: the pipeline is broken" >&2
  exit {exit_code}
fi
"""
        + WRITE_REQUESTED_MODEL,
        encoding="utf-8",
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return directory


def calls(venv: Path) -> list[str]:
    log = venv / "calls.log"
    return log.read_text(encoding="utf-8").splitlines() if log.exists() else []


@pytest.fixture
def nlu_file(tmp_path: Path) -> Path:
    path = tmp_path / "data" / "nlu.yml"
    path.parent.mkdir()
    path.write_text(NLU_WITH_EXTRAS, encoding="utf-8")
    return path


def test_the_project_gives_rasa_the_nlu_items_untouched_and_a_diet_pipeline(
    nlu_file: Path, tmp_path: Path
) -> None:
    project = write_project([nlu_file], tmp_path / "project", DietPipeline(epochs=7))

    [data_file] = sorted(project.data_dir.glob("*.yml"))
    written = yaml.safe_load(data_file.read_text(encoding="utf-8"))
    assert written["nlu"] == yaml.safe_load(NLU_WITH_EXTRAS)["nlu"]
    assert "responses" not in written  # `rasa train nlu` would ask for a domain
    config = yaml.safe_load(project.config_path.read_text(encoding="utf-8"))
    names = [component["name"] for component in config["pipeline"]]
    assert "DIETClassifier" in names and names[-1] == "FallbackClassifier"
    diet = next(c for c in config["pipeline"] if c["name"] == "DIETClassifier")
    assert diet["epochs"] == 7


def test_a_model_is_retrained_only_when_the_data_changes(nlu_file: Path, tmp_path: Path) -> None:
    venv = fake_rasa_venv(tmp_path / "venv")
    project = write_project([nlu_file], tmp_path / "project")

    first = train(project, venv=venv)
    unchanged = train(write_project([nlu_file], tmp_path / "project"), venv=venv)
    nlu_file.write_text(NLU_WITH_EXTRAS.replace("- hello\n", "- hello\n    - hey\n"))
    changed = train(write_project([nlu_file], tmp_path / "project"), venv=venv)

    assert first.trained and first.path.is_file()
    assert not unchanged.trained and unchanged.fingerprint == first.fingerprint
    assert changed.trained and changed.fingerprint != first.fingerprint
    assert len(calls(venv)) == 2
    assert calls(venv)[0].startswith("train nlu --config ")


def test_a_failed_rasa_training_says_what_rasa_said(nlu_file: Path, tmp_path: Path) -> None:
    venv = fake_rasa_venv(tmp_path / "venv", exit_code=1)
    project = write_project([nlu_file], tmp_path / "project")

    with pytest.raises(RasaError, match="InvalidConfigException: the pipeline is broken"):
        train(project, venv=venv)
    assert not project.model_path.exists()


def test_without_make_rasa_the_error_says_to_run_it(nlu_file: Path, tmp_path: Path) -> None:
    project = write_project([nlu_file], tmp_path / "project")

    with pytest.raises(RasaNotInstalled, match="run `make rasa` first"):
        train(project, venv=tmp_path / "missing")


def test_bad_training_data_is_refused_before_rasa_sees_it(tmp_path: Path) -> None:
    broken = tmp_path / "nlu.yml"
    broken.write_text("nlu:\n- intent: greet\n  examples: hello\n", encoding="utf-8")

    with pytest.raises(NluDataError, match=str(broken)):
        write_project([broken], tmp_path / "project")
    assert not (tmp_path / "project" / "config.yml").exists()


def test_with_a_log_file_rasas_output_is_there_and_a_failure_quotes_it(
    nlu_file: Path, tmp_path: Path
) -> None:
    venv = fake_rasa_venv(tmp_path / "venv", exit_code=1)
    project = write_project([nlu_file], tmp_path / "project")
    log = tmp_path / "logs" / "train.log"

    with pytest.raises(RasaError, match="InvalidConfigException: the pipeline is broken"):
        train(project, venv=venv, log_path=log)
    assert "the pipeline is broken" in log.read_text(encoding="utf-8")
