"""Editors keep intent examples in Rasa NLU YAML; tier0 reads them or says what is wrong."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from nlu.training_data import (
    BUNDLED_NLU_DATA,
    IntentExample,
    NluDataError,
    TrainingData,
    load_training_data,
    parse_nlu_yaml,
    strip_annotations,
)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


GREET_AND_VPN = """
    version: "3.1"
    nlu:
    - intent: greet
      examples: |
        - hi
        - good morning
    - intent: vpn_problem
      examples: |
        - my [vpn](service) is down
        - reset my [globalprotect]{"entity": "service", "value": "vpn"} token
        - [VPN](service) broken since ticket [T-1042](ticket_number)
"""


def test_intents_and_examples_are_read(tmp_path: Path) -> None:
    data = load_training_data([write(tmp_path, "nlu.yml", GREET_AND_VPN)])

    assert data.intents == ["greet", "vpn_problem"]
    assert [example.text for example in data.examples if example.intent == "greet"] == [
        "hi",
        "good morning",
    ]


def test_entity_annotations_are_stripped_to_the_plain_text(tmp_path: Path) -> None:
    data = load_training_data([write(tmp_path, "nlu.yml", GREET_AND_VPN)])

    vpn_texts = [example.text for example in data.examples if example.intent == "vpn_problem"]
    assert vpn_texts == [
        "my vpn is down",
        "reset my globalprotect token",
        "VPN broken since ticket T-1042",
    ]


@pytest.mark.parametrize(
    ("annotated", "plain"),
    [
        ("reset my [vpn](service) token", "reset my vpn token"),
        ('my [wifi]{"entity": "network"} is down', "my wifi is down"),
        ("[pw](credential:password) expired", "pw expired"),
        ("no annotation [here] at all", "no annotation [here] at all"),
    ],
)
def test_strip_annotations(annotated: str, plain: str) -> None:
    assert strip_annotations(annotated) == plain


def test_synonyms_and_regexes_are_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "nlu.yml",
        r"""
        nlu:
        - intent: greet
          examples: |
            - hi
        - synonym: password
          examples: |
            - PW
            - passwd
        - regex: ticket_number
          examples: |
            - \bT-?\d{3,9}\b
        - lookup: city
          examples: |
            - Berlin
        """,
    )

    data = load_training_data([path])

    assert data.synonyms == {"pw": "password", "passwd": "password"}
    assert data.regexes == {"ticket_number": [r"\bT-?\d{3,9}\b"]}


def test_files_and_folders_are_merged(tmp_path: Path) -> None:
    first = write(
        tmp_path,
        "base.yml",
        """
        nlu:
        - intent: greet
          examples: |
            - hi
        - regex: ticket_number
          examples: |
            - T-\\d+
        """,
    )
    folder = tmp_path / "more"
    write(
        folder,
        "vpn.yml",
        """
        nlu:
        - intent: vpn_problem
          examples: |
            - vpn is down
        - synonym: vpn
          examples: |
            - global protect
        """,
    )
    write(
        folder,
        "nested/printer.yaml",
        """
        nlu:
        - intent: printer_problem
          examples: |
            - the printer is jammed
        - regex: ticket_number
          examples: |
            - ticket \\d+
        """,
    )
    write(folder, "notes.txt", "not training data at all: [")

    data = load_training_data([first, folder])

    assert data.intents == ["greet", "printer_problem", "vpn_problem"]
    assert data.synonyms == {"global protect": "vpn"}
    assert data.regexes == {"ticket_number": [r"T-\d+", r"ticket \d+"]}


def test_files_with_responses_stories_and_rules_load(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "full.yml",
        """
        version: "3.1"
        nlu:
        - intent: greet
          examples: |
            - hello
        - intent: goodbye
          examples: |
            - bye
        responses:
          utter_greet:
          - text: Hi! How can I help?
        stories:
        - story: greet
          steps:
          - intent: greet
          - action: utter_greet
        rules:
        - rule: say bye
          steps:
          - intent: goodbye
        """,
    )

    data = load_training_data([path])

    assert data.intents == ["goodbye", "greet"]
    assert len(data.examples) == 2


# -- what an editor sees when a file is wrong ------------------------------------------

BROKEN_FILES = {
    "bad YAML": (
        """
        nlu:
        - intent: greet
          examples: [unclosed
        """,
        "not valid YAML",
    ),
    "unknown top-level key": (
        """
        nlu:
        - intent: greet
          examples: |
            - hi
        intents:
        - greet
        """,
        "unknown top-level key(s): intents",
    ),
    "example line without '- '": (
        """
        nlu:
        - intent: greet
          examples: |
            - hi
            hello
        """,
        "'hello' must start with '- '",
    ),
    "invalid regex": (
        """
        nlu:
        - intent: greet
          examples: |
            - hi
        - regex: ticket_number
          examples: |
            - T-(\\d+
        """,
        "is invalid",
    ),
    "empty file": ("", "expected a mapping"),
    "intent without examples": (
        """
        nlu:
        - intent: greet
        """,
        "`examples` must be a block",
    ),
    "item that is not a mapping": (
        """
        nlu:
        - greet
        """,
        "expected a mapping such as",
    ),
    "item of unknown kind": (
        """
        nlu:
        - intnet: greet
          examples: |
            - hi
        """,
        "expected `intent`, `synonym`, `regex` or `lookup`",
    ),
}


@pytest.mark.parametrize(("content", "problem"), BROKEN_FILES.values(), ids=BROKEN_FILES.keys())
def test_a_broken_file_is_reported_by_name_with_the_problem(
    tmp_path: Path, content: str, problem: str
) -> None:
    good = write(tmp_path, "a_good.yml", "nlu:\n- intent: greet\n  examples: |\n    - hi\n")
    broken = write(tmp_path, "broken.yml", content)

    with pytest.raises(NluDataError) as caught:
        load_training_data([good, broken])

    assert str(broken) in str(caught.value)
    assert problem in str(caught.value)


def test_a_broken_file_inside_a_folder_is_named(tmp_path: Path) -> None:
    write(tmp_path, "data/a.yml", "nlu:\n- intent: greet\n  examples: |\n    - hi\n")
    broken = write(tmp_path, "data/sub/b.yml", "nlu:\n- intent: bye\n  examples: |\n    bye\n")

    with pytest.raises(NluDataError, match="must start with '- '") as caught:
        load_training_data([tmp_path / "data"])

    assert str(broken) in str(caught.value)


def test_training_data_without_any_intent_example_is_refused(tmp_path: Path) -> None:
    only_synonyms = write(
        tmp_path,
        "synonyms.yml",
        """
        nlu:
        - synonym: vpn
          examples: |
            - global protect
        """,
    )

    with pytest.raises(NluDataError, match="no intent examples found") as caught:
        load_training_data([only_synonyms])

    assert str(only_synonyms) in str(caught.value)


def test_a_synonyms_only_file_next_to_intents_is_fine(tmp_path: Path) -> None:
    intents = write(tmp_path, "intents.yml", "nlu:\n- intent: greet\n  examples: |\n    - hi\n")
    synonyms = write(tmp_path, "synonyms.yml", "nlu:\n- synonym: vpn\n  examples: |\n    - gp\n")

    data = load_training_data([intents, synonyms])

    assert data.intents == ["greet"]
    assert data.synonyms == {"gp": "vpn"}


def test_a_missing_file_is_reported_by_name(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yml"

    with pytest.raises(NluDataError, match="cannot be read") as caught:
        load_training_data([missing])

    assert str(missing) in str(caught.value)


def test_an_empty_folder_is_reported_by_name(tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()

    # Passed as a generator: the message must still name the folder.
    with pytest.raises(NluDataError, match="no intent examples found") as caught:
        load_training_data(path for path in [folder])

    assert str(folder) in str(caught.value)


# -- fingerprint ---------------------------------------------------------------------


def _data(*examples: tuple[str, str], synonyms: dict[str, str] | None = None) -> TrainingData:
    return TrainingData(
        examples=[IntentExample(text, intent) for text, intent in examples],
        synonyms=dict(synonyms or {}),
    )


def test_fingerprint_ignores_order_but_follows_every_change() -> None:
    base = _data(("hi", "greet"), ("vpn is down", "vpn"))
    reordered = _data(("vpn is down", "vpn"), ("hi", "greet"))
    edited = _data(("hi", "greet"), ("vpn is broken", "vpn"))
    relabelled = _data(("hi", "vpn"), ("vpn is down", "vpn"))
    with_synonym = _data(("hi", "greet"), ("vpn is down", "vpn"), synonyms={"pw": "password"})
    with_regex = _data(("hi", "greet"), ("vpn is down", "vpn"))
    with_regex.regexes["ticket_number"] = [r"T-\d+"]

    assert base.fingerprint() == reordered.fingerprint()
    fingerprints = {
        data.fingerprint() for data in (base, edited, relabelled, with_synonym, with_regex)
    }
    assert len(fingerprints) == 5


def test_fingerprint_of_a_parsed_file_changes_when_one_example_changes() -> None:
    before = parse_nlu_yaml(textwrap.dedent(GREET_AND_VPN), "nlu.yml")
    after = parse_nlu_yaml(textwrap.dedent(GREET_AND_VPN).replace("- hi", "- hiya"), "nlu.yml")

    assert before.fingerprint() != after.fingerprint()


# -- the data tier0 ships --------------------------------------------------------------


def test_bundled_training_data_is_rich_enough() -> None:
    data = load_training_data([BUNDLED_NLU_DATA])

    assert len(data.intents) >= 12
    for intent in data.intents:
        count = sum(1 for example in data.examples if example.intent == intent)
        assert count >= 15, f"{intent} has only {count} examples"
    assert not [e.text for e in data.examples if "](" in e.text or "]{" in e.text]
    assert data.synonyms["pw"] == "password"
    assert "ticket_number" in data.regexes
