"""Editors keep intent examples in Rasa NLU YAML; tier0 reads them or says what is wrong."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from nlu.training_data import (
    BUNDLED_NLU_DATA,
    EntityAnnotation,
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
    assert [note.split(": ", 1)[0] for note in data.notes] == [
        f"{path}:9",
        f"{path}:12",
        f"{path}:17",
    ]
    assert "`responses` ignored" in data.notes[0]


# -- what an editor sees when a file is wrong ------------------------------------------

BROKEN_FILES = {
    "bad YAML": (
        """
        nlu:
        - intent: greet
          examples: [unclosed
        """,
        ":4: not valid YAML",
    ),
    "unknown top-level key": (
        """
        nlu:
        - intent: greet
          examples: |
            - hi
        nlu_data:
        - greet
        """,
        ":5: unknown top-level key `nlu_data`",
    ),
    "example line without '- '": (
        """
        nlu:
        - intent: greet
          examples: |
            - hi
            hello
        """,
        ":5: example line 'hello' of intent `greet` must start with '- '",
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
        ":7: regex 'T-(\\\\d+' of regex `ticket_number` is invalid",
    ),
    "intent without examples": (
        """
        nlu:
        - intent: greet
        """,
        ":2: intent `greet` has no examples",
    ),
    "example outside an intent": (
        """
        nlu:
        - intent: greet
          examples: |
            - hi
        - hello there
        """,
        ":5: expected a mapping such as `- intent: greet`",
    ),
    "examples without an intent": (
        """
        nlu:
        - examples: |
            - hi
        """,
        ":2: an `nlu:` item needs exactly one of intent, synonym, regex or lookup (found none)",
    ),
    "unknown key in an item": (
        """
        nlu:
        - intnet: greet
          examples: |
            - hi
        """,
        ":2: unknown key `intnet` in an `nlu:` item",
    ),
    "unclosed '[' ": (
        """
        nlu:
        - intent: vpn
          examples: |
            - vpn down
            - my [vpn is down
        """,
        ":5: unclosed annotation: the '[' at column 4 has no ']'",
    ),
    "unclosed '(' of an annotation": (
        """
        nlu:
        - intent: vpn
          examples: |
            - my [vpn](service is down
        """,
        ":4: unclosed annotation at column 4: the '(' after [vpn] has no ')'",
    ),
    "annotation with bad JSON": (
        """
        nlu:
        - intent: vpn
          examples: |
            - my [vpn]{"entity": service} is down
        """,
        ":4: the annotation at column 4 is not valid JSON",
    ),
    "annotation without an entity name": (
        """
        nlu:
        - intent: vpn
          examples: |
            - my [vpn]() is down
        """,
        ":4: the annotation at column 4 needs an entity name",
    ),
    "not a mapping at all": ("- just\n- a list\n", ":1: expected a mapping with an `nlu:` list"),
}


@pytest.mark.parametrize(("content", "problem"), BROKEN_FILES.values(), ids=BROKEN_FILES.keys())
def test_a_broken_file_is_reported_by_name_with_the_problem(
    tmp_path: Path, content: str, problem: str
) -> None:
    good = write(tmp_path, "a_good.yml", "nlu:\n- intent: greet\n  examples: |\n    - hi\n")
    broken = write(tmp_path, "broken.yml", content)

    with pytest.raises(NluDataError) as caught:
        load_training_data([good, broken])

    assert str(broken) + ":" in str(caught.value)
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


# -- entities, lookups and the Rasa help-desk demo's constructs -------------------------


def test_entity_annotations_in_all_three_syntaxes_keep_their_spans() -> None:
    data = parse_nlu_yaml(
        textwrap.dedent(
            """
            nlu:
            - intent: open_incident
              examples: |
                - open an [urgent]{"entity": "priority", "value": "high"} issue
                - my email is [ann@example.com](email)
                - it is [really important](priority:high), ticket [T-1042](ticket_number)
                - fly from [Berlin]{"entity": "city", "role": "departure", "group": "1"} today
                - [laptop][{"entity": "device"}, {"entity": "asset", "value": "hw"}] broke
            """
        ),
        "nlu.yml",
    )

    by_text = {example.text: example.entities for example in data.examples}
    assert by_text["open an urgent issue"] == (EntityAnnotation("priority", "high", 8, 14),)
    assert by_text["my email is ann@example.com"] == (
        EntityAnnotation("email", "ann@example.com", 12, 27),
    )
    text = "it is really important, ticket T-1042"
    assert by_text[text] == (
        EntityAnnotation("priority", "high", 6, 22),
        EntityAnnotation("ticket_number", "T-1042", 31, 37),
    )
    assert text[31:37] == "T-1042"
    assert by_text["fly from Berlin today"] == (
        EntityAnnotation("city", "Berlin", 9, 15, role="departure", group="1"),
    )
    assert [a.entity for a in by_text["laptop broke"]] == ["device", "asset"]
    # An annotated value that differs from the text is a synonym, as in Rasa.
    assert data.synonyms == {"urgent": "high", "really important": "high", "laptop": "hw"}
    assert data.entity_names == ["asset", "city", "device", "email", "priority", "ticket_number"]


def test_lookup_tables_are_read_and_merged(tmp_path: Path) -> None:
    first = write(
        tmp_path,
        "a.yml",
        """
        nlu:
        - intent: software_request
          examples: |
            - install [Slack](software)
        - lookup: software
          examples: |
            - Slack
            - Visual Studio Code
        """,
    )
    second = write(tmp_path, "b.yml", "nlu:\n- lookup: software\n  examples: |\n    - Zoom\n")

    data = load_training_data([first, second])

    assert data.lookups == {"software": ["Slack", "Visual Studio Code", "Zoom"]}
    assert data.examples == [
        IntentExample(
            "install Slack", "software_request", (EntityAnnotation("software", "Slack", 8, 13),)
        )
    ]


def test_examples_may_be_a_yaml_list_with_metadata() -> None:
    data = parse_nlu_yaml(
        textwrap.dedent(
            """
            nlu:
            - intent: greet
              metadata:
                sentiment: neutral
              examples:
              - text: hi there
                metadata:
                  source: chat
              - hello
            """
        ),
        "nlu.yml",
    )

    assert [example.text for example in data.examples] == ["hi there", "hello"]


def test_a_domain_and_config_in_the_same_folder_are_noted_not_refused(tmp_path: Path) -> None:
    write(tmp_path, "data/nlu.yml", GREET_AND_VPN)
    write(tmp_path, "data/domain.yml", "version: '3.1'\nintents:\n- greet\nslots: {}\n")
    write(tmp_path, "data/.hidden/junk.yml", "this: is not rasa")

    data = load_training_data([tmp_path / "data"])

    assert data.intents == ["greet", "vpn_problem"]
    assert len(data.notes) == 2
    assert all("domain.yml" in note for note in data.notes)


HELPDESK_LIKE = """
    version: "3.0"
    nlu:
    - intent: inform
      examples: |
        - my email is test@example.com
        - [low](priority)
        - it should be a [low](priority) priority
        - [escalated]{"entity": "priority", "value": "high"}
        - [super high](priority)
        - john
    - intent: out_of_scope
      examples: |
        - what is the square root of 5
        - I want a pizza
    - synonym: high
      examples: |
        - urgent
        - escalated
"""


def test_the_rasa_helpdesk_demo_constructs_load() -> None:
    data = parse_nlu_yaml(textwrap.dedent(HELPDESK_LIKE), "nlu.yml")

    assert data.intents == ["inform", "out_of_scope"]
    assert len(data.examples) == 8
    assert data.synonyms == {"urgent": "high", "escalated": "high"}
    assert [a.value for e in data.examples for a in e.entities] == [
        "low",
        "low",
        "high",
        "super high",
    ]


def test_fingerprint_follows_annotations_and_lookups() -> None:
    plain = _data(("install slack", "software"), ("hi", "greet"))
    annotated = _data(("hi", "greet"))
    annotated.examples.append(
        IntentExample("install slack", "software", (EntityAnnotation("software", "slack", 8, 13),))
    )
    with_lookup = _data(("install slack", "software"), ("hi", "greet"))
    with_lookup.lookups["software"] = ["Slack"]

    assert len({plain.fingerprint(), annotated.fingerprint(), with_lookup.fingerprint()}) == 3
