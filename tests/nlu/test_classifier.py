"""The intent classifier: the right intent for new wordings, "I don't know" for the rest."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from nlu.classifier import (
    FALLBACK_INTENT,
    ClassifierConfig,
    FallbackPolicy,
    IntentClassifier,
    IntentPrediction,
    _HeldBackAnswers,
    confidences,
    load_or_train,
    needs_training,
    operating_curve,
    tune_fallback,
)
from nlu.embedding import SentenceEmbedder
from nlu.training_data import IntentExample, TrainingData, parse_nlu_yaml
from tests.nlu.fake_embedder import HashingEmbedder

FIXTURE_NLU = """
nlu:
- intent: password_reset
  examples: |
    - I forgot my password
    - reset my password please
    - my password expired
    - how do I change my password
    - locked out, need a new password
    - password reset link not working
    - can't log in, wrong password
    - help me reset my login
- intent: vpn_problem
  examples: |
    - the vpn is not connecting
    - vpn keeps disconnecting
    - can't connect to vpn from home
    - globalprotect says gateway unreachable
    - vpn is very slow
    - how do I set up the vpn
    - vpn authentication failed
    - no access to the intranet over vpn
- intent: printer_problem
  examples: |
    - the printer is not working
    - printer says paper jam
    - how do I add a printer
    - my print job is stuck
    - printing comes out blank
    - can't find the office printer
    - the printer is offline
    - scan to email from the printer fails
- intent: greet
  examples: |
    - hi
    - hello
    - hey there
    - good morning
    - good afternoon
    - hiya
    - hello bot
    - hey, anyone around?
"""

# Wordings that are not in the training data.
PARAPHRASES = {
    "I can't remember the password for my account": "password_reset",
    "my login credentials stopped working and I need new ones": "password_reset",
    "the VPN keeps dropping when I work from home": "vpn_problem",
    "the printer on floor 3 will not print my document": "printer_problem",
    "paper jam in the copier": "printer_problem",
    "howdy, is anybody there?": "greet",
}
OUT_OF_DOMAIN = [
    "purple elephants dance on the moon",
    "what is the capital of france",
    "asdf qwer zxcv",
    "what's the weather like tomorrow",
]


@pytest.fixture(scope="module")
def training_data() -> TrainingData:
    return parse_nlu_yaml(FIXTURE_NLU, "fixture.yml")


@pytest.fixture(scope="module")
def classifier(training_data: TrainingData, embedder: SentenceEmbedder) -> IntentClassifier:
    return IntentClassifier.train(training_data, embedder, embedder_name="all-MiniLM-L6-v2")


def ask(classifier: IntentClassifier, embedder: SentenceEmbedder, message: str) -> str:
    return classifier.predict(embedder.embed([message])[0], message).name


@pytest.mark.parametrize(("message", "intent"), PARAPHRASES.items())
def test_unseen_wordings_get_the_right_intent(
    classifier: IntentClassifier, embedder: SentenceEmbedder, message: str, intent: str
) -> None:
    assert ask(classifier, embedder, message) == intent


def test_ranking_covers_every_intent_sorted_and_sums_to_one(
    classifier: IntentClassifier, embedder: SentenceEmbedder
) -> None:
    message = "my vpn will not connect"
    prediction = classifier.predict(embedder.embed([message])[0], message)

    names = [ranked.name for ranked in prediction.ranking]
    confidences = [ranked.confidence for ranked in prediction.ranking]
    assert sorted(names) == ["greet", "password_reset", "printer_problem", "vpn_problem"]
    assert confidences == sorted(confidences, reverse=True)
    # What is missing from 1 is the weight of "none of these".
    assert 0.9 < sum(confidences) <= 1.0 + 1e-3
    assert (prediction.name, prediction.confidence) == (names[0], confidences[0])
    assert not prediction.is_fallback


def ask_model(
    model: IntentClassifier, embedder: SentenceEmbedder, message: str
) -> IntentPrediction:
    return model.predict(embedder.embed([message])[0], message)


def with_threshold(
    classifier: IntentClassifier, threshold: float, ambiguity: float = 0.0
) -> IntentClassifier:
    copied = copy.copy(classifier)
    copied.fallback_threshold = threshold
    copied.ambiguity_threshold = ambiguity
    return copied


def test_out_of_domain_messages_fall_back_when_the_threshold_is_high(
    classifier: IntentClassifier, embedder: SentenceEmbedder
) -> None:
    strict = with_threshold(classifier, 0.75)

    for message in OUT_OF_DOMAIN:
        prediction = strict.predict(embedder.embed([message])[0], message)
        assert prediction.name == FALLBACK_INTENT, message
        assert prediction.is_fallback
        # The ranking is still there, so a caller can see what it almost was.
        assert prediction.ranking[0].confidence == prediction.confidence < 0.75
    # The same threshold still lets clear requests through.
    for message, intent in PARAPHRASES.items():
        assert ask(strict, embedder, message) == intent, message


def test_thresholds_zero_never_fall_back(
    classifier: IntentClassifier, embedder: SentenceEmbedder
) -> None:
    lenient = with_threshold(classifier, 0.0)

    for message in OUT_OF_DOMAIN:
        assert ask(lenient, embedder, message) != FALLBACK_INTENT


def test_two_intents_are_enough_and_both_can_win(embedder: SentenceEmbedder) -> None:
    data = parse_nlu_yaml(FIXTURE_NLU, "fixture.yml")
    data.examples = [e for e in data.examples if e.intent in {"vpn_problem", "printer_problem"}]
    model = IntentClassifier.train(data, embedder)

    vpn = ask_model(model, embedder, "the VPN keeps dropping when I work from home")
    printer = ask_model(model, embedder, "paper jam in the copier")

    assert vpn.name == "vpn_problem"
    assert printer.name == "printer_problem"
    assert len(vpn.ranking) == 2
    assert sum(ranked.confidence for ranked in vpn.ranking) <= 1.0 + 1e-3
    assert 0.5 < vpn.confidence <= 1.0


def test_thresholds_are_tuned_on_held_back_examples_and_saved(
    classifier: IntentClassifier, tmp_path: Path
) -> None:
    assert classifier.tuned_on == classifier.report.held_out == 32  # 5 folds of 8 per intent
    assert 0.0 < classifier.fallback_threshold < 1.0
    assert classifier.report.held_out_accuracy is not None

    classifier.save(tmp_path)
    loaded = IntentClassifier.load(tmp_path)

    assert (loaded.fallback_threshold, loaded.ambiguity_threshold, loaded.temperature) == (
        classifier.fallback_threshold,
        classifier.ambiguity_threshold,
        classifier.temperature,
    )


def test_gibberish_falls_back_with_the_tuned_thresholds(
    classifier: IntentClassifier, embedder: SentenceEmbedder
) -> None:
    assert ask(classifier, embedder, "asdf qwer zxcv") == FALLBACK_INTENT
    for message, intent in PARAPHRASES.items():
        assert ask(classifier, embedder, message) == intent, message


def test_two_intents_too_close_to_call_fall_back(
    classifier: IntentClassifier, embedder: SentenceEmbedder
) -> None:
    message = "the vpn and the printer"
    ranking = ask_model(classifier, embedder, message).ranking
    gap = ranking[0].confidence - ranking[1].confidence

    unsure = with_threshold(classifier, 0.0, ambiguity=gap + 0.01)
    sure = with_threshold(classifier, 0.0, ambiguity=max(gap - 0.01, 0.0))

    assert ask(unsure, embedder, message) == FALLBACK_INTENT
    assert ask(sure, embedder, message) == ranking[0].name


def test_an_out_of_scope_intent_in_the_data_is_answered_as_itself(
    embedder: SentenceEmbedder,
) -> None:
    data = parse_nlu_yaml(
        FIXTURE_NLU
        + """
- intent: out_of_scope
  examples: |
    - what is the weather tomorrow
    - order me a pizza
    - who won the football game
    - tell me a joke
    - what is the capital of spain
    - how tall is mount everest
    - play some music
    - book a table for two
""",
        "fixture.yml",
    )
    model = IntentClassifier.train(data, embedder)

    assert model.out_of_scope_intent == "out_of_scope"
    assert ask(model, embedder, "will it rain on saturday") == "out_of_scope"
    assert ask(model, embedder, "the printer says paper jam") == "printer_problem"


def test_one_intent_cannot_be_trained() -> None:
    data = TrainingData([IntentExample("hi", "greet"), IntentExample("hello", "greet")])

    with pytest.raises(ValueError, match="at least two intents"):
        IntentClassifier.train(data, HashingEmbedder())


def test_a_saved_model_predicts_exactly_as_before(
    classifier: IntentClassifier, embedder: SentenceEmbedder, tmp_path: Path
) -> None:
    classifier.save(tmp_path / "model")
    loaded = IntentClassifier.load(tmp_path / "model")

    messages = [*PARAPHRASES, *OUT_OF_DOMAIN]
    for message, vector in zip(messages, embedder.embed(messages), strict=True):
        assert loaded.predict(vector, message) == classifier.predict(vector, message)
    assert loaded.intents == classifier.intents
    assert loaded.fingerprint == classifier.fingerprint
    assert loaded.embedder_name == "all-MiniLM-L6-v2"
    assert loaded.fallback_threshold == classifier.fallback_threshold
    meta = json.loads((tmp_path / "model" / "model.json").read_text())
    saved = sorted(p.name for p in (tmp_path / "model").iterdir() if not p.name.startswith("."))
    assert saved == ["model.json", meta["files"]["weights"]]


def test_a_model_of_another_format_is_refused(classifier: IntentClassifier, tmp_path: Path) -> None:
    classifier.save(tmp_path)
    meta = json.loads((tmp_path / "model.json").read_text())
    (tmp_path / "model.json").write_text(json.dumps({**meta, "format": 999}))

    with pytest.raises(ValueError, match="format 999"):
        IntentClassifier.load(tmp_path)


# -- load_or_train: train once, retrain only when something changed --------------------


@pytest.fixture
def small_data() -> TrainingData:
    return parse_nlu_yaml(FIXTURE_NLU, "fixture.yml")


def test_load_or_train_reuses_the_model_while_the_data_is_unchanged(
    small_data: TrainingData, tmp_path: Path
) -> None:
    embedder = HashingEmbedder()
    first = load_or_train(tmp_path, small_data, embedder, "hashing")
    assert len(embedder.embedded) == len(small_data.examples)
    saved_at = (tmp_path / "model.json").stat().st_mtime_ns

    again = load_or_train(tmp_path, parse_nlu_yaml(FIXTURE_NLU, "copy.yml"), embedder, "hashing")

    assert len(embedder.embedded) == len(small_data.examples)  # nothing embedded again
    assert (tmp_path / "model.json").stat().st_mtime_ns == saved_at
    vector = embedder.embed(["printer is jammed"])[0]
    assert again.predict(vector, "printer is jammed") == first.predict(vector, "printer is jammed")


def test_load_or_train_retrains_when_an_example_changes(
    small_data: TrainingData, tmp_path: Path
) -> None:
    embedder = HashingEmbedder()
    first = load_or_train(tmp_path, small_data, embedder, "hashing")
    edited = parse_nlu_yaml(FIXTURE_NLU.replace("- hiya", "- yo"), "fixture.yml")
    embedder.embedded.clear()

    retrained = load_or_train(tmp_path, edited, embedder, "hashing")

    assert "yo" in embedder.embedded
    assert retrained.fingerprint == edited.fingerprint() != first.fingerprint
    assert IntentClassifier.load(tmp_path).fingerprint == edited.fingerprint()


def test_load_or_train_retrains_for_another_embedder(
    small_data: TrainingData, tmp_path: Path
) -> None:
    load_or_train(tmp_path, small_data, HashingEmbedder(), "hashing")
    other = HashingEmbedder(dimension=64)

    model = load_or_train(tmp_path, small_data, other, "hashing-64")

    assert len(other.embedded) == len(small_data.examples)
    assert model.embedder_name == "hashing-64"
    assert model.predict(other.embed(["vpn down"])[0], "vpn down").name == "vpn_problem"


@pytest.mark.parametrize(
    ("damaged", "cut_to"),
    [("model.json", 0.5), ("weights.npz", 0.5), ("weights.npz", 0.0), ("model.json", 0.0)],
    ids=["half-written meta", "half-written weights", "empty weights", "empty meta"],
)
def test_load_or_train_replaces_a_damaged_model(
    small_data: TrainingData, tmp_path: Path, damaged: str, cut_to: float
) -> None:
    embedder = HashingEmbedder()
    load_or_train(tmp_path, small_data, embedder, "hashing")
    if damaged == "weights.npz":  # saved under the name of its save
        damaged = json.loads((tmp_path / "model.json").read_text())["files"]["weights"]
    content = (tmp_path / damaged).read_bytes()
    (tmp_path / damaged).write_bytes(content[: int(len(content) * cut_to)])
    embedder.embedded.clear()

    model = load_or_train(tmp_path, small_data, embedder, "hashing")

    assert len(embedder.embedded) == len(small_data.examples)
    vector = embedder.embed(["printer offline"])[0]
    assert model.predict(vector, "printer offline").name == "printer_problem"
    assert IntentClassifier.load(tmp_path).fingerprint == small_data.fingerprint()


def test_confidences_weigh_none_of_these_against_the_intents() -> None:
    model = IntentClassifier(
        intents=["a", "b"],
        weights=np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32),
        biases=np.zeros(2, dtype=np.float32),
        fallback_threshold=0.5,
        fingerprint="x",
        embedder_name="",
    )

    tie = model.predict(np.array([0.0, 0.0], dtype=np.float32))
    clear = model.predict(np.array([0.0, 5.0], dtype=np.float32))

    # Scores of 0 sit on every SVM's margin: "a", "b" and "none of these" are equally likely.
    assert [r.confidence for r in tie.ranking] == [0.3333, 0.3333]
    assert tie.is_fallback
    assert clear.name == "b"
    assert clear.confidence == pytest.approx(np.exp(5.0) / (np.exp(5.0) + 2), abs=1e-4)


def test_a_model_that_weighs_each_intents_nearest_example_predicts_the_same_once_saved(
    small_data: TrainingData, tmp_path: Path
) -> None:
    embedder = HashingEmbedder()
    model = IntentClassifier.train(
        small_data, embedder, config=ClassifierConfig(neighbour_weight=0.5)
    )
    model.save(tmp_path)
    loaded = IntentClassifier.load(tmp_path)

    for message in [*PARAPHRASES, *OUT_OF_DOMAIN, "the printer is offline"]:
        vector = embedder.embed([message])[0]
        assert loaded.predict(vector, message) == model.predict(vector, message)
    vector = embedder.embed(["the printer is offline"])[0]
    assert loaded.predict(vector, "the printer is offline").name == "printer_problem"
    assert not needs_training(tmp_path, small_data, "", ClassifierConfig(neighbour_weight=0.5))
    assert needs_training(tmp_path, small_data, "", ClassifierConfig())


# -- choosing the operating point for out-of-scope messages ---------------------------------


def held_back_scores() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Scores of intents a, b and oos for 10 in-scope and 10 out-of-scope held-back examples:
    the in-scope ones are claimed with rising confidence, the out-of-scope ones are not
    claimed by oos itself but only weakly by a or b (two of them quite firmly)."""
    intents = ["a", "b", "oos"]
    scores, targets = [], []
    for i in range(10):
        scores.append([0.5 + 0.3 * i, -1.0, -1.0])  # a, ever more sure
        targets.append(0)
    for i in range(10):
        firm = 2.0 if i < 2 else 0.2 + 0.05 * i
        scores.append([firm, -1.0, -1.0] if i % 2 else [-1.0, firm, -1.0])
        targets.append(2)
    return np.array(scores, dtype=np.float32), np.array(targets), intents


def recall_and_accuracy(
    policy: FallbackPolicy, scores: np.ndarray, targets: np.ndarray
) -> tuple[float, float]:
    probabilities = confidences(scores, policy.temperature)
    order = np.argsort(-probabilities, axis=1)
    top = probabilities[np.arange(len(targets)), order[:, 0]]
    margin = top - probabilities[np.arange(len(targets)), order[:, 1]]
    answered = (top >= policy.threshold) & (margin >= policy.ambiguity) & (order[:, 0] != 2)
    in_scope = targets != 2
    return float(np.mean(~answered[~in_scope])), float(
        np.mean(answered[in_scope] & (order[in_scope, 0] == targets[in_scope]))
    )


@pytest.mark.parametrize("target", [0.5, 0.8])
def test_an_out_of_scope_recall_target_is_met_with_the_fewest_in_scope_fallbacks(
    target: float,
) -> None:
    scores, targets, intents = held_back_scores()

    policy = tune_fallback(scores, targets, intents, min_out_of_scope_recall=target)
    recall, accuracy = recall_and_accuracy(policy, scores, targets)

    assert recall >= target
    # No setting of the grid catches as many out-of-scope examples and answers more.
    for point in _HeldBackAnswers.of(
        scores, targets, intents, policy.temperature
    ).operating_points():
        if point.out_of_scope_recall >= target:
            assert point.in_scope_accuracy <= accuracy + 1e-9


def test_an_unreachable_recall_target_gets_the_highest_recall_there_is() -> None:
    scores, targets, intents = held_back_scores()

    policy = tune_fallback(scores, targets, intents, min_out_of_scope_recall=1.01)

    assert recall_and_accuracy(policy, scores, targets)[0] == 1.0


def test_the_operating_curve_trades_in_scope_accuracy_for_out_of_scope_recall() -> None:
    scores, targets, intents = held_back_scores()
    answers = _HeldBackAnswers.of(scores, targets, intents, 1.0)

    curve = operating_curve(answers.operating_points())

    assert len(curve) >= 3
    recalls = [p.out_of_scope_recall for p in curve]
    accuracies = [p.in_scope_accuracy for p in curve]
    assert recalls == sorted(recalls) and accuracies == sorted(accuracies, reverse=True)
    assert recalls[0] < recalls[-1] and accuracies[0] > accuracies[-1]


OUT_OF_SCOPE_NLU = """
- intent: oos
  examples: |
    - what is the weather tomorrow
    - order me a pizza
    - who won the football game
    - tell me a joke
    - what is the capital of spain
    - how tall is mount everest
    - play some music
    - book a table for two
"""


def test_thresholds_are_tuned_on_validation_examples_when_given(
    training_data: TrainingData, embedder: SentenceEmbedder, tmp_path: Path
) -> None:
    data = parse_nlu_yaml(FIXTURE_NLU + OUT_OF_SCOPE_NLU, "fixture.yml")
    validation = TrainingData(
        [IntentExample(text, intent) for text, intent in PARAPHRASES.items()]
        + [IntentExample(text, "oos") for text in OUT_OF_DOMAIN]
        + [
            IntentExample(text, intent)
            for text, intent in [
                ("reset the password of my account", "password_reset"),
                ("vpn client cannot reach the gateway", "vpn_problem"),
                ("the printer jams on every page", "printer_problem"),
                ("hey hello", "greet"),
                ("recommend a good movie", "oos"),
                ("how many calories in an apple", "oos"),
                ("translate hello into german", "oos"),
                ("set an alarm for six", "oos"),
                ("what time is it in tokyo", "oos"),
                ("who wrote hamlet", "oos"),
            ]
        ]
    )
    config = ClassifierConfig(min_out_of_scope_recall=0.9)

    model = IntentClassifier.train(data, embedder, config=config, validation=validation)

    assert model.tuned_on == model.report.held_out == len(validation.examples)
    curve = model.report.extra["operating_curve"]
    assert curve and {"threshold", "in_scope_accuracy", "out_of_scope_recall"} <= set(curve[0])
    caught = [ask(model, embedder, e.text) for e in validation.examples if e.intent == "oos"]
    assert sum(answer in ("oos", FALLBACK_INTENT) for answer in caught) >= 0.9 * len(caught)
    model.save(tmp_path)
    assert IntentClassifier.load(tmp_path).config.min_out_of_scope_recall == 0.9
    assert not needs_training(tmp_path, data, "", config)


def test_validation_examples_of_an_unknown_intent_are_refused(
    training_data: TrainingData,
) -> None:
    validation = TrainingData(
        [IntentExample("hello", "greet")] * 10 + [IntentExample("weather?", "weather")] * 10
    )

    with pytest.raises(ValueError, match="lacks: weather"):
        IntentClassifier.train(training_data, HashingEmbedder(), validation=validation)


def test_training_again_on_the_same_data_gives_the_same_model(training_data: TrainingData) -> None:
    embedder = HashingEmbedder()
    messages = [*PARAPHRASES, *OUT_OF_DOMAIN]
    vectors = embedder.embed(messages)

    first = IntentClassifier.train(training_data, embedder)
    again = IntentClassifier.train(training_data, embedder)

    # Bit for bit: a model (and the answer calibration fitted on its confidences) must not
    # depend on the run that trained it.
    assert np.array_equal(
        first.probabilities(vectors, messages), again.probabilities(vectors, messages)
    )
    assert first.fallback_threshold == again.fallback_threshold
