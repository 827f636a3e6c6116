"""The benchmark loaders read the public data sets' own formats faithfully."""

from __future__ import annotations

from pathlib import Path

from bench.nlu_datasets import load_hwu64, parse_hwu_annotation


def test_a_hwu64_annotation_becomes_plain_text_with_entity_offsets() -> None:
    text, entities = parse_hwu_annotation("wake me up at [time : five am] please")

    assert text == "wake me up at five am please"
    assert [(e.entity, text[e.start : e.end]) for e in entities] == [("time", "five am")]


def test_entity_offsets_still_point_at_the_entity_after_outer_blanks_are_stripped() -> None:
    text, entities = parse_hwu_annotation("  [date : tomorrow] set an alarm at [time : six] ")

    assert text == "tomorrow set an alarm at six"
    assert [(e.entity, text[e.start : e.end]) for e in entities] == [
        ("date", "tomorrow"),
        ("time", "six"),
    ]


def test_an_empty_annotation_leaves_no_entity_and_no_blank_edges() -> None:
    text, entities = parse_hwu_annotation("[place_name : ] weather there")

    assert text == "weather there"
    assert entities == ()


def test_hwu64_examples_keep_their_entities_aligned(tmp_path: Path) -> None:
    fold = tmp_path / "hwu64" / "liu2019_kfold1"
    fold.mkdir(parents=True)
    header = "answerid;scenario;intent;answer_annotation;answer_from_anno;answer_from_user\n"
    (fold / "train.csv").write_text(
        header + "1;alarm;set; [time : seven] wake me up;;\n", encoding="utf-8"
    )
    (fold / "test.csv").write_text(header + "2;weather;query;   ;;\n", encoding="utf-8")

    benchmark = load_hwu64(tmp_path)

    (example,) = benchmark.train.examples
    assert example.text == "seven wake me up"
    assert example.intent == "alarm_set"
    assert [example.text[e.start : e.end] for e in example.entities] == ["seven"]
    assert benchmark.test.examples == []
