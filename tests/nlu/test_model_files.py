"""Retraining while the bot loads the model: a reader gets one whole model, never a mix."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from nlu import model_files
from nlu.classifier import IntentClassifier
from nlu.training_data import parse_nlu_yaml
from tests.nlu.fake_embedder import HashingEmbedder

TWO_INTENTS = """
version: "3.1"
nlu:
- intent: vpn_problem
  examples: |
    - vpn keeps dropping
    - cannot connect to the vpn
    - vpn is down again
- intent: printer_problem
  examples: |
    - printer is jammed
    - the printer on floor 2 is offline
    - cannot print anything
"""

THREE_INTENTS = (
    TWO_INTENTS
    + """- intent: password_reset
  examples: |
    - forgot my password
    - reset my password please
    - locked out of my account
"""
)


def trained(nlu_yaml: str) -> IntentClassifier:
    return IntentClassifier.train(parse_nlu_yaml(nlu_yaml, "nlu.yml"), HashingEmbedder())


def saved_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))


def test_a_save_between_reading_the_json_and_the_weights_gives_the_new_model_whole(
    tmp_path: Path,
) -> None:
    old, new = trained(TWO_INTENTS), trained(THREE_INTENTS)
    old.save(tmp_path)
    real_read = model_files.read

    def read_while_retraining(directory, meta_file, kinds, load):  # type: ignore[no-untyped-def]
        def load_after_a_save(directory, meta, files):  # type: ignore[no-untyped-def]
            if len(meta["intents"]) == 2:
                new.save(tmp_path)  # lands after this reader read the old JSON
            return load(directory, meta, files)

        return real_read(directory, meta_file, kinds, load_after_a_save)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(model_files, "read", read_while_retraining)
        loaded = IntentClassifier.load(tmp_path)

    assert loaded.intents == new.intents
    vector = HashingEmbedder().embed(["forgot my password"])[0]
    assert loaded.predict(vector, "forgot my password") == new.predict(vector, "forgot my password")


def test_a_missing_weights_file_is_still_an_error_when_nothing_replaced_the_model(
    tmp_path: Path,
) -> None:
    trained(TWO_INTENTS).save(tmp_path)
    weights = json.loads((tmp_path / "model.json").read_text())["files"]["weights"]
    (tmp_path / weights).unlink()

    with pytest.raises(FileNotFoundError):
        IntentClassifier.load(tmp_path)


def test_every_load_during_repeated_retraining_is_one_whole_model(tmp_path: Path) -> None:
    models = [trained(TWO_INTENTS), trained(THREE_INTENTS)]
    models[0].save(tmp_path)
    intents_of = {model.fingerprint: model.intents for model in models}
    stop = threading.Event()
    errors: list[BaseException] = []

    def retrain() -> None:
        try:
            for round_ in range(40):
                models[round_ % 2].save(tmp_path)
        except BaseException as error:  # reported by the test below
            errors.append(error)
        finally:
            stop.set()

    writer = threading.Thread(target=retrain)
    writer.start()
    probe = HashingEmbedder().embed(["forgot my password"])[0]
    loads = 0
    while not stop.is_set() or loads == 0:
        loaded = IntentClassifier.load(tmp_path)
        assert loaded.intents == intents_of[loaded.fingerprint]
        ranking = loaded.predict(probe, "forgot my password").ranking
        assert sorted(ranked.name for ranked in ranking) == sorted(loaded.intents)
        loads += 1
    writer.join()

    assert not errors
    assert len(saved_files(tmp_path)) == 2  # model.json and the last save's weights


def test_only_the_last_saves_files_are_kept(tmp_path: Path) -> None:
    model = trained(TWO_INTENTS)
    for _ in range(3):
        model.save(tmp_path)

    meta = json.loads((tmp_path / "model.json").read_text())
    assert saved_files(tmp_path) == sorted(["model.json", meta["files"]["weights"]])


def test_a_model_saved_before_file_lists_loads_and_is_replaced_cleanly(tmp_path: Path) -> None:
    model = trained(TWO_INTENTS)
    model.save(tmp_path)
    # The layout of earlier versions: fixed names, and a JSON without a file list.
    meta = json.loads((tmp_path / "model.json").read_text())
    (tmp_path / meta.pop("files")["weights"]).rename(tmp_path / "weights.npz")
    (tmp_path / "model.json").write_text(json.dumps(meta))
    (tmp_path / "adapted_top.onnx.tmp").write_bytes(b"left by a stopped save")

    loaded = IntentClassifier.load(tmp_path)
    vector = HashingEmbedder().embed(["printer is jammed"])[0]
    assert loaded.predict(vector, "printer is jammed") == model.predict(vector, "printer is jammed")

    trained(THREE_INTENTS).save(tmp_path)
    assert "weights.npz" not in saved_files(tmp_path)
    assert "adapted_top.onnx.tmp" not in saved_files(tmp_path)
    assert len(IntentClassifier.load(tmp_path).intents) == 3
