"""The CRF entity tagger: learns what an entity looks like in context, not only its values."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlu.classifier import IntentClassifier
from nlu.entities import BUILTIN_EXTRACTOR, SYNONYM_PROCESSOR, EntityExtractor
from nlu.tagger import (
    CRF_EXTRACTOR,
    META_FILE,
    MIN_ANNOTATED_EXAMPLES,
    MODEL_FILE,
    EntityTagger,
    TaggedSpan,
    bio_labels,
    load_or_train_tagger,
    spans_of,
    tokenize,
)
from nlu.training_data import IntentExample, TrainingData, parse_annotated_example
from nlu.understanding import Interpreter
from tests.nlu.fake_embedder import HashingEmbedder

DEVICES = ("laptop", "monitor", "printer", "keyboard", "headset", "webcam", "tablet", "mouse")
DEVICE_TEMPLATES = (
    "my [{}](device) won't turn on",
    "the [{}](device) is broken again",
    "can you replace my [{}](device) please",
    "I need a new [{}](device) for the office",
)
SOFTWARE = ("Figma", "Miro", "Outlook", "Slack", "Zoom", "Tableau")
SOFTWARE_TEMPLATES = (
    "please install [{}](software) on my machine",
    "[{}](software) keeps crashing",
    "how do I get a licence for [{}](software)",
)
PLAIN = (
    "my password expired",
    "the wifi is slow today",
    "can you call me back please",
    "I need help with the office door",
)


def example(markup: str, intent: str) -> IntentExample:
    text, entities = parse_annotated_example(markup)
    return IntentExample(text, intent, entities)


def fixture_data(*, extra: tuple[IntentExample, ...] = ()) -> TrainingData:
    examples = [
        example(template.format(value), "hardware")
        for value in DEVICES
        for template in DEVICE_TEMPLATES
    ]
    examples += [
        example(template.format(value), "software")
        for value in SOFTWARE
        for template in SOFTWARE_TEMPLATES
    ]
    examples += [IntentExample(text, "other") for text in PLAIN]
    return TrainingData(examples + list(extra), synonyms={"gimp": "GIMP"})


@pytest.fixture(scope="module")
def tagger() -> EntityTagger:
    return EntityTagger.train(fixture_data())


def tagged(tagger: EntityTagger, text: str) -> list[tuple[str, str]]:
    return [(span.entity, text[span.start : span.end]) for span in tagger.tag(text)]


def test_bio_labels_and_spans_round_trip() -> None:
    text, annotations = parse_annotated_example("move [T-1042](ticket) to [Ann Lee](person)!")
    tokens = tokenize(text)

    labels = bio_labels(tokens, annotations)

    assert labels == ["O", "B-ticket", "I-ticket", "I-ticket", "O", "B-person", "I-person", "O"]
    assert spans_of(tokens, labels) == [TaggedSpan("ticket", 5, 11), TaggedSpan("person", 15, 22)]


def test_the_tagger_finds_values_it_was_never_shown_from_their_context(
    tagger: EntityTagger,
) -> None:
    assert tagged(tagger, "my projector won't turn on") == [("device", "projector")]
    assert tagged(tagger, "please install Blender on my machine") == [("software", "Blender")]
    assert tagged(tagger, "my password expired") == []
    assert tagger.entities == ["device", "software"]


def test_offsets_are_exact_on_unicode_text(tagger: EntityTagger) -> None:
    text = "😀 ¡hola! the Überdrucker is broken again"

    spans = tagger.tag(text)

    assert spans == [TaggedSpan("device", 13, 24)]
    assert text[13:24] == "Überdrucker"


def test_save_and_load_give_the_same_tagger(tagger: EntityTagger, tmp_path: Path) -> None:
    tagger.save(tmp_path)
    loaded = EntityTagger.load(tmp_path)

    for text in ("my projector won't turn on", "please install Blender on my machine"):
        assert loaded.tag(text) == tagger.tag(text)
    assert loaded.fingerprint == tagger.fingerprint
    assert loaded.config == tagger.config


def test_the_saved_tagger_is_reused_until_the_data_changes(tmp_path: Path) -> None:
    data = fixture_data()
    first = load_or_train_tagger(tmp_path, data)
    assert first is not None
    trained_at = (tmp_path / META_FILE).stat().st_mtime_ns

    again = load_or_train_tagger(tmp_path, fixture_data())
    assert again is not None and again.fingerprint == first.fingerprint
    assert (tmp_path / META_FILE).stat().st_mtime_ns == trained_at

    changed = fixture_data(extra=(example("my [dock](device) won't turn on", "hardware"),))
    retrained = load_or_train_tagger(tmp_path, changed)
    assert retrained is not None and retrained.fingerprint == changed.fingerprint()
    assert EntityTagger.load(tmp_path).fingerprint == changed.fingerprint()


def test_a_corrupt_saved_tagger_is_trained_again(tmp_path: Path) -> None:
    (tmp_path / META_FILE).write_text("{not json", encoding="utf-8")

    tagger = load_or_train_tagger(tmp_path, fixture_data())

    assert tagger is not None
    assert EntityTagger.load(tmp_path).fingerprint == tagger.fingerprint


def test_too_few_annotated_examples_train_no_tagger_and_say_why(tmp_path: Path) -> None:
    assert load_or_train_tagger(tmp_path, fixture_data()) is not None  # saved, then outdated
    few = TrainingData(fixture_data().examples[: MIN_ANNOTATED_EXAMPLES - 1])
    notes: list[str] = []

    assert load_or_train_tagger(tmp_path, few, notes=notes) is None
    assert len(notes) == 1 and f"{MIN_ANNOTATED_EXAMPLES - 1} annotated examples" in notes[0]
    tagger_stem = MODEL_FILE.split(".")[0]
    assert not [file.name for file in tmp_path.iterdir() if file.name.startswith(tagger_stem)]


def test_training_needs_annotations() -> None:
    with pytest.raises(ValueError, match="annotates no entities"):
        EntityTagger.train(TrainingData([IntentExample(text, "other") for text in PLAIN]))


def test_extractor_trusts_builtin_patterns_over_the_tagger(tagger: EntityTagger) -> None:
    data = fixture_data()
    extractor = EntityExtractor.from_training_data(data, tagger=tagger)

    entities = extractor.extract("T-1042: my projector won't turn on")

    assert [(e.entity, e.value, e.extractor) for e in entities] == [
        ("ticket_number", "T-1042", BUILTIN_EXTRACTOR),
        ("device", "projector", CRF_EXTRACTOR),
    ]


def test_tagged_values_are_written_the_canonical_way(tagger: EntityTagger) -> None:
    extractor = EntityExtractor.from_training_data(fixture_data(), tagger=tagger)

    notebook = extractor.extract("my notebook won't turn on")
    gimp = extractor.extract("please install Gimp on my machine")

    # The tagger found it; the built-in device vocabulary says what a notebook is.
    assert [(e.value, e.extractor) for e in notebook] == [("laptop", CRF_EXTRACTOR)]
    assert notebook[0].start == 3 and notebook[0].end == 11
    assert [(e.value, e.processors) for e in gimp] == [("GIMP", (SYNONYM_PROCESSOR,))]


def test_parse_reports_the_tagger_as_rasa_names_it(tagger: EntityTagger) -> None:
    data = fixture_data()
    embedder = HashingEmbedder()
    classifier = IntentClassifier.train(data, embedder, fallback_threshold=0.0)
    interpreter = Interpreter(
        embedder,
        classifier,
        data.synonyms,
        entities=EntityExtractor.from_training_data(data, tagger=tagger),
    )

    parsed = interpreter.parse("my projector won't turn on")

    assert parsed["entities"] == [
        {
            "entity": "device",
            "start": 3,
            "end": 12,
            "value": "projector",
            "extractor": "CRFEntityExtractor",
        }
    ]
    assert parsed["intent"]["name"] == "hardware"
