"""Entities a help desk meets every day, found in what people actually type."""

from __future__ import annotations

import textwrap

import pytest

from nlu.entities import BUILTIN_EXTRACTOR, DATA_EXTRACTOR, SYNONYM_PROCESSOR, EntityExtractor
from nlu.training_data import parse_nlu_yaml

BUILTINS = EntityExtractor()


def found(extractor: EntityExtractor, text: str) -> list[tuple[str, str, str]]:
    """(entity, value, the text it covers) for every entity found."""
    return [(e.entity, e.value, text[e.start : e.end]) for e in extractor.extract(text)]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("what's up with T-1042?", [("ticket_number", "T-1042", "T-1042")]),
        ("status of t1042 and T-77123", [
            ("ticket_number", "T-1042", "t1042"),
            ("ticket_number", "T-77123", "T-77123"),
        ]),
        ("mail ann.lee@example.co.uk please", [
            ("email", "ann.lee@example.co.uk", "ann.lee@example.co.uk"),
        ]),
        ("can't reach fileserver.corp.example.com", [
            ("hostname", "fileserver.corp.example.com", "fileserver.corp.example.com"),
        ]),
        ("SRV-DB-01 is down", [("hostname", "srv-db-01", "SRV-DB-01")]),
        ("ping 192.168.0.12 fails", [("ip_address", "192.168.0.12", "192.168.0.12")]),
        ("my v6 is 2001:DB8::1", [("ip_address", "2001:db8::1", "2001:DB8::1")]),
        ("install VS Code and zoom", [
            ("software", "Visual Studio Code", "VS Code"),
            ("software", "Zoom", "zoom"),
        ]),
        ("my MacBook screen flickers", [("device", "laptop", "MacBook")]),
        ("new docking station for my laptop", [
            ("device", "docking station", "docking station"),
            ("device", "laptop", "laptop"),
        ]),
    ],
)  # fmt: skip
def test_builtin_extractors(message: str, expected: list[tuple[str, str, str]]) -> None:
    assert found(BUILTINS, message) == expected


@pytest.mark.parametrize(
    "message",
    [
        "open report.pdf from the share",  # a file, not a host
        "version 1.2.3 broke",  # not an IP address
        "999.1.1.1 is no address",
        "please help with my password",
        "the teamsters union",  # whole words only
        "",
    ],
)
def test_no_entity_where_there_is_none(message: str) -> None:
    assert [e for e in BUILTINS.extract(message) if e.entity != "software"] == []
    assert found(BUILTINS, message) == []


DATA = parse_nlu_yaml(
    textwrap.dedent(
        r"""
        nlu:
        - intent: request_software
          examples: |
            - install [Figma](software)
            - I need [Miro](software) for the workshop
        - intent: report_outage
          examples: |
            - [payroll](service) is down
        - regex: employee_id
          examples: |
            - \bE\d{6}\b
        - lookup: service
          examples: |
            - payroll
            - expense portal
        - lookup: software
          examples: |
            - Figma
            - Miro
        - synonym: expense portal
          examples: |
            - concur
            - expenses site
        """
    ),
    "nlu.yml",
)


def test_regexes_and_lookup_tables_of_the_training_data() -> None:
    extractor = EntityExtractor.from_training_data(DATA)

    entities = extractor.extract("E123456 cannot open the Expense Portal or Figma")

    assert [(e.entity, e.value, e.extractor) for e in entities] == [
        ("employee_id", "E123456", DATA_EXTRACTOR),
        ("service", "Expense Portal", DATA_EXTRACTOR),
        ("software", "Figma", DATA_EXTRACTOR),
    ]


def test_synonyms_map_values_to_the_canonical_one() -> None:
    extractor = EntityExtractor(
        lookups={"service": ["concur", "expense portal"]}, synonyms=DATA.synonyms
    )

    entity = extractor.extract("Concur rejects my receipt")[0]

    assert (entity.entity, entity.value, entity.start, entity.end) == (
        "service",
        "expense portal",
        0,
        6,
    )
    assert entity.processors == (SYNONYM_PROCESSOR,)
    assert entity.as_dict()["processors"] == ["EntitySynonymMapper"]


def test_software_lookup_tables_extend_the_builtin_catalog() -> None:
    extractor = EntityExtractor(lookups={"software": ["Figma"]}, regexes={}, builtins=True)
    plain = EntityExtractor()

    assert found(plain, "install figma") == []
    assert [(e.entity, e.extractor) for e in extractor.extract("install figma and slack")] == [
        ("software", DATA_EXTRACTOR),
        ("software", BUILTIN_EXTRACTOR),
    ]


def test_overlapping_matches_keep_the_more_trusted_one() -> None:
    extractor = EntityExtractor(regexes={"asset_tag": [r"\bSRV-\w+-\d+\b"]})

    entities = extractor.extract("SRV-DB-01 is down, mail ops@corp.example.com")

    assert [(e.entity, e.extractor) for e in entities] == [
        ("asset_tag", DATA_EXTRACTOR),  # the training data's regex beats the built-in host
        ("email", BUILTIN_EXTRACTOR),  # and an email is not also a hostname
    ]


def test_rasa_shaped_entity() -> None:
    entity = BUILTINS.extract("see T-1042")[0]

    assert entity.as_dict() == {
        "entity": "ticket_number",
        "start": 4,
        "end": 10,
        "value": "T-1042",
        "extractor": BUILTIN_EXTRACTOR,
    }


def test_values_annotated_in_the_examples_are_recognised_when_they_are_reliable() -> None:
    data = parse_nlu_yaml(
        textwrap.dedent(
            """
            nlu:
            - intent: request_software
              examples: |
                - install [Figma](software) please
                - I need [Figma](software) on my mac
                - can I get [Miro](software)
                - set an alarm for [today](date)
                - what happened today
                - today is a bad day
            """
        ),
        "nlu.yml",
    )

    extractor = EntityExtractor.from_training_data(data, builtins=False)

    assert found(extractor, "please install figma and miro") == [
        ("software", "figma", "figma"),
        ("software", "miro", "miro"),
    ]
    # "today" is annotated once in three appearances: too unreliable to look up.
    assert found(extractor, "remind me today") == []
