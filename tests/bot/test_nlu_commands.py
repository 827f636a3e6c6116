"""`tier0 nlu train / parse / eval`, run as a bot builder runs them."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from nlu.embedding import SentenceEmbedder

HELPDESK = """
    version: "3.1"
    nlu:
    - intent: password_reset
      examples: |
        - I forgot my password
        - reset my password please
        - my password expired
        - how do I change my password
        - locked out, need a new password
        - can't log in, wrong password
    - intent: open_incident
      examples: |
        - open an [urgent]{"entity": "priority", "value": "high"} ticket
        - I need to open a ticket, it is [low](priority) priority
        - please create an incident
        - log a ticket for me
        - raise a [high](priority) priority incident
        - file an incident, my email is ann@example.com
    - intent: greet
      examples: |
        - hi
        - hello
        - hey there
        - good morning
        - hiya
        - hello bot
    - synonym: high
      examples: |
        - urgent
    responses:
      utter_greet:
      - text: Hi!
"""


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedder: SentenceEmbedder) -> CliRunner:
    monkeypatch.setenv("TIER0_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TIER0_NLU_DATA", raising=False)
    return CliRunner()


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def test_train_once_then_reuse_until_the_data_changes(cli: CliRunner, tmp_path: Path) -> None:
    data = write(tmp_path / "nlu.yml", HELPDESK)

    first = cli.invoke(app, ["nlu", "train", "--data", str(data)])
    again = cli.invoke(app, ["nlu", "train", "--data", str(data)])
    write(tmp_path / "nlu.yml", HELPDESK.replace("- hiya", "- yo"))
    changed = cli.invoke(app, ["nlu", "train", "--data", str(data)])

    assert first.exit_code == 0, first.output
    assert "(trained): 3 intents, 18 examples" in " ".join(first.output.split())
    assert "`responses` ignored" in " ".join(first.output.split())  # the note, not an error
    assert "(unchanged, reused)" in " ".join(again.output.split())
    assert "(trained)" in " ".join(changed.output.split())


def test_parse_prints_rasa_model_parse_json(cli: CliRunner, tmp_path: Path) -> None:
    data = write(tmp_path / "nlu.yml", HELPDESK)

    result = cli.invoke(
        app, ["nlu", "parse", "open an urgent ticket about T-1042", "--data", str(data)]
    )

    assert result.exit_code == 0, result.output
    parsed = json.loads(result.stdout)
    assert parsed["text"] == "open an urgent ticket about T-1042"
    assert parsed["intent"]["name"] == "open_incident"
    assert parsed["intent_ranking"][0]["name"] == "open_incident"
    entities = {(e["entity"], e["value"]) for e in parsed["entities"]}
    assert entities == {("priority", "high"), ("ticket_number", "T-1042")}
    assert all(
        {"entity", "value", "start", "end", "extractor"} <= set(e) for e in parsed["entities"]
    )


def test_eval_against_a_test_file_prints_tables_and_writes_a_report(
    cli: CliRunner, tmp_path: Path
) -> None:
    data = write(tmp_path / "nlu.yml", HELPDESK)
    test = write(
        tmp_path / "test.yml",
        """
        nlu:
        - intent: password_reset
          examples: |
            - I can't remember my password
            - my password does not work any more
        - intent: open_incident
          examples: |
            - please open a [high](priority) priority ticket
        - intent: greet
          examples: |
            - hello there
        """,
    )
    report = tmp_path / "report.json"

    result = cli.invoke(
        app,
        ["nlu", "eval", "--data", str(data), "--test", str(test), "--report", str(report)],
    )

    assert result.exit_code == 0, result.output
    assert "precision" in result.output and "Entities" in result.output
    saved = json.loads(report.read_text())
    intents = saved["intent_evaluation"]
    assert intents["examples"] == 4
    assert set(intents["per_intent"]) >= {"password_reset", "open_incident", "greet"}
    assert intents["per_intent"]["password_reset"]["support"] == 2
    assert saved["entity_evaluation"]["per_entity"]["priority"]["support"] == 1


def test_eval_by_cross_validation(cli: CliRunner, tmp_path: Path) -> None:
    data = write(tmp_path / "nlu.yml", HELPDESK)
    report = tmp_path / "cv.json"

    result = cli.invoke(
        app,
        ["nlu", "eval", "--data", str(data), "--cross-validation", "3", "--report", str(report)],
    )

    assert result.exit_code == 0, result.output
    intents = json.loads(report.read_text())["intent_evaluation"]
    assert intents["examples"] == 18  # every example predicted once, by a model without it
    assert 0.5 <= intents["accuracy"] <= 1.0


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["nlu", "parse", "   "], "the message is empty"),
        (["nlu", "eval", "--cross-validation", "1"], "at least 2 folds"),
        (["nlu", "eval"], "either --test TEST or --cross-validation K"),
    ],
)
def test_bad_requests_get_a_one_line_error(cli: CliRunner, args: list[str], problem: str) -> None:
    result = cli.invoke(app, args)

    assert result.exit_code == 2
    assert problem in result.output
    assert "Traceback" not in result.output


def test_broken_training_data_names_the_file_and_line(cli: CliRunner, tmp_path: Path) -> None:
    broken = write(
        tmp_path / "broken.yml",
        """
        nlu:
        - intent: greet
          examples: |
            - hi
            - my [vpn](service is down
        """,
    )

    result = cli.invoke(app, ["nlu", "train", "--data", str(broken)])

    assert result.exit_code == 2
    assert f"{broken}:5: unclosed annotation at column 4" in result.output
    assert "Traceback" not in result.output


def with_out_of_scope(tmp_path: Path) -> Path:
    return write(
        tmp_path / "nlu.yml",
        HELPDESK.replace(
            "    - synonym: high",
            """    - intent: out_of_scope
      examples: |
        - what's for lunch today
        - will it rain tomorrow
        - who won the match last night
        - book me a flight to rome
        - how tall is mount everest
        - tell me a joke
    - synonym: high""",
        ),
    )


VALIDATION = """
    nlu:
    - intent: password_reset
      examples: |
        - I need to reset my password
        - my password stopped working
        - forgot the password again
        - change my password please
        - password expired this morning
        - can't remember my password
        - new password needed
    - intent: open_incident
      examples: |
        - open a ticket for me
        - I want to report an incident
        - please log an incident
        - create a ticket about my laptop
        - raise a ticket
        - file a ticket please
    - intent: greet
      examples: |
        - hey
        - hi there
        - good afternoon
        - hello hello
        - morning
        - howdy
        - hey bot
"""


def saved_config(tmp_path: Path) -> dict[str, object]:
    meta = json.loads((tmp_path / "home" / "nlu" / "model.json").read_text(encoding="utf-8"))
    config: dict[str, object] = meta["config"]
    return config


def test_train_for_an_out_of_scope_recall_keeps_that_choice(cli: CliRunner, tmp_path: Path) -> None:
    data = with_out_of_scope(tmp_path)
    option = ["--min-out-of-scope-recall", "0.9"]

    first = cli.invoke(app, ["nlu", "train", "--data", str(data), *option])
    parsed = cli.invoke(app, ["nlu", "parse", "what's for dinner", "--data", str(data)])
    again = cli.invoke(app, ["nlu", "train", "--data", str(data), *option])
    plain = cli.invoke(app, ["nlu", "train", "--data", str(data)])

    assert first.exit_code == 0, first.output
    assert "(trained)" in " ".join(first.output.split())
    assert parsed.exit_code == 0, parsed.output
    # Neither parsing nor training with the same option throws the choice away.
    assert "(unchanged, reused)" in " ".join(again.output.split())
    assert "(trained)" in " ".join(plain.output.split())  # the default is another model
    assert saved_config(tmp_path)["min_out_of_scope_recall"] is None


def test_train_with_the_top_two_layers_adapted_keeps_that_choice_and_parses(
    cli: CliRunner, tmp_path: Path
) -> None:
    data = write(tmp_path / "nlu.yml", HELPDESK)
    option = ["--adapt-layers", "2"]

    first = cli.invoke(app, ["nlu", "train", "--data", str(data), *option])
    parsed = cli.invoke(app, ["nlu", "parse", "my password expired", "--data", str(data)])
    again = cli.invoke(app, ["nlu", "train", "--data", str(data), *option])

    assert first.exit_code == 0, first.output
    assert saved_config(tmp_path)["adapted_layers"] == 2
    model_dir = tmp_path / "home" / "nlu"
    meta = json.loads((model_dir / "model.json").read_text(encoding="utf-8"))
    assert (model_dir / meta["files"]["adapted_graph"]).exists()  # answered on ONNX Runtime
    assert parsed.exit_code == 0, parsed.output
    assert "password_reset" in parsed.output
    assert "(unchanged, reused)" in " ".join(again.output.split())


def test_train_tunes_the_thresholds_on_validation_data(cli: CliRunner, tmp_path: Path) -> None:
    data = write(tmp_path / "nlu.yml", HELPDESK)
    validation = write(tmp_path / "validation.yml", VALIDATION)

    result = cli.invoke(app, ["nlu", "train", "--data", str(data), "--validation", str(validation)])

    assert result.exit_code == 0, result.output
    assert "on 20 validation examples" in " ".join(result.output.split())
    meta = json.loads((tmp_path / "home" / "nlu" / "model.json").read_text(encoding="utf-8"))
    assert meta["tuned_on"] == 20


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        (["--min-out-of-scope-recall", "1.5"], "between 0 and 1 (such as 0.7), not 1.5"),
        (["--min-out-of-scope-recall", "0"], "between 0 and 1"),
        (["--min-out-of-scope-recall", "-0.2"], "between 0 and 1"),
        (["--min-out-of-scope-recall", "0.7"], "no out_of_scope or oos intent"),
        (["--validation", "missing.yml"], "missing.yml: cannot be read"),
        (["--backend", "rasa", "--min-out-of-scope-recall", "0.7"], "for --backend builtin"),
        (["--adapt-layers", "3"], "0, 1 or 2, not 3"),
        (["--backend", "rasa", "--adapt-layers", "2"], "for --backend builtin"),
    ],
)
def test_bad_train_options_get_a_one_line_error(
    cli: CliRunner, tmp_path: Path, extra: list[str], problem: str
) -> None:
    data = write(tmp_path / "nlu.yml", HELPDESK)

    result = cli.invoke(app, ["nlu", "train", "--data", str(data), *extra])

    assert result.exit_code == 2, result.output
    assert problem in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert not (tmp_path / "home" / "nlu" / "model.json").exists()


def test_validation_with_intents_the_training_data_lacks_is_refused(
    cli: CliRunner, tmp_path: Path
) -> None:
    data = write(tmp_path / "nlu.yml", HELPDESK)
    validation = write(
        tmp_path / "validation.yml",
        VALIDATION + "    - intent: vpn_down\n      examples: |\n        - the vpn is down\n",
    )

    result = cli.invoke(app, ["nlu", "train", "--data", str(data), "--validation", str(validation)])

    assert result.exit_code == 2
    assert "lacks: ['vpn_down']" in " ".join(result.output.split())


def annotated_devices() -> str:
    """NLU data with enough annotated examples (32) for an entity tagger."""
    devices = ("laptop", "monitor", "printer", "keyboard", "headset", "webcam", "tablet", "dock")
    templates = (
        "my [{}](device) won't turn on",
        "the [{}](device) is broken again",
        "can you replace my [{}](device) please",
    )
    hardware = "".join(f"        - {t.format(d)}\n" for d in devices for t in templates)
    software = "".join(
        f"        - please install [{s}](software) on my machine\n"
        for s in ("Figma", "Miro", "Zoom", "Slack", "Tableau", "Jira", "Docker", "Notion")
    )
    return (
        "    nlu:\n    - intent: hardware\n      examples: |\n"
        + hardware
        + "    - intent: software\n      examples: |\n"
        + software
        + "    - intent: greet\n      examples: |\n        - hi\n        - hello\n"
    )


def test_enough_annotated_examples_train_an_entity_tagger(cli: CliRunner, tmp_path: Path) -> None:
    annotated = annotated_devices()
    data = write(tmp_path / "nlu.yml", annotated)

    first = cli.invoke(app, ["nlu", "train", "--data", str(data)])
    again = cli.invoke(app, ["nlu", "train", "--data", str(data)])
    parsed = cli.invoke(app, ["nlu", "parse", "my projector won't turn on", "--data", str(data)])

    assert first.exit_code == 0, first.output
    assert "Entity tagger (trained): device, software from 32 annotated" in " ".join(
        first.output.split()
    )
    assert "Entity tagger (unchanged, reused)" in " ".join(again.output.split())
    assert json.loads(parsed.stdout)["entities"] == [
        {
            "entity": "device",
            "start": 3,
            "end": 12,
            "value": "projector",
            "extractor": "CRFEntityExtractor",
        }
    ]


def test_few_annotated_examples_train_no_tagger_and_say_so(cli: CliRunner, tmp_path: Path) -> None:
    data = write(tmp_path / "nlu.yml", HELPDESK)

    result = cli.invoke(app, ["nlu", "train", "--data", str(data)])

    assert result.exit_code == 0, result.output
    assert "no entity tagger: 3 annotated examples, it needs 30" in " ".join(result.output.split())


def test_eval_scores_entities_as_the_tagger_finds_them(cli: CliRunner, tmp_path: Path) -> None:
    data = write(tmp_path / "nlu.yml", annotated_devices())
    test = write(
        tmp_path / "test.yml",
        """
        nlu:
        - intent: hardware
          examples: |
            - my [projector](device) won't turn on
            - the [scanner](device) is broken again
        """,
    )
    report = tmp_path / "report.json"

    result = cli.invoke(
        app,
        ["nlu", "eval", "--data", str(data), "--test", str(test), "--report", str(report)],
    )

    assert result.exit_code == 0, result.output
    # Neither value is in the training data: only the tagger can find them.
    device = json.loads(report.read_text())["entity_evaluation"]["per_entity"]["device"]
    assert device["support"] == 2 and device["recall"] == 1.0


def software_requests(names: list[str]) -> str:
    """NLU data asking to install each (made-up) software name once."""
    installs = "".join(
        f"        - please install [{name}](software) on my machine\n" for name in names
    )
    return (
        "    nlu:\n    - intent: software\n      examples: |\n"
        + installs
        + "    - intent: greet\n      examples: |\n"
        + "".join(f"        - {g}\n" for g in ("hi", "hello", "hey there", "good morning"))
    )


def cross_validated_software(cli: CliRunner, tmp_path: Path, names: list[str]) -> dict[str, float]:
    data = write(tmp_path / "nlu.yml", software_requests(names))
    report = tmp_path / "cv.json"
    result = cli.invoke(
        app,
        ["nlu", "eval", "--data", str(data), "--cross-validation", "3", "--report", str(report)],
    )
    assert result.exit_code == 0, result.output
    scores: dict[str, float] = json.loads(report.read_text())["entity_evaluation"]["per_entity"][
        "software"
    ]
    return scores


def test_cross_validation_never_grades_an_entity_by_its_own_annotation(
    cli: CliRunner, tmp_path: Path
) -> None:
    # Six names, each annotated once: too few for a tagger, and no other fold knows them.
    names = ["Quillbox", "Zentrix", "Marblefly", "Owlpad", "Brindle", "Kestrow"]

    software = cross_validated_software(cli, tmp_path, names)

    assert software["support"] == 6
    assert software["recall"] == 0.0


def test_cross_validation_finds_entities_with_a_tagger_trained_per_fold(
    cli: CliRunner, tmp_path: Path
) -> None:
    syllables = ("ka", "lo", "mi", "ru", "te", "vo")
    names = [f"{a.title()}{b}{c}x" for a in syllables for b in syllables for c in "ab"][:48]

    software = cross_validated_software(cli, tmp_path, names)

    # 32 annotated examples train each fold's tagger, and every name is unseen in its
    # fold: only a tagger that learnt "install X on" finds it.
    assert software["support"] == 48
    assert software["recall"] >= 0.8
