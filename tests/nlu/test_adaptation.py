"""The adapted top layers: numpy inference equals torch's, and training learns."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nlu.adaptation import _BERT_NAMES, _LAYER_WEIGHTS, AdaptationConfig, AdaptedLayers
from nlu.classifier import ClassifierConfig, IntentClassifier
from nlu.embedding import SentenceEmbedder, bundled_model_path
from nlu.understanding import Interpreter


def _top_bert_layers(count: int) -> tuple[list[object], object]:
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(bundled_model_path()), local_files_only=True).eval()
    layers = list(model.encoder.layer)[-count:]
    return layers, model.config


def test_numpy_layers_compute_what_the_torch_layers_compute() -> None:
    torch = pytest.importorskip("torch")
    from nlu.adaptation import torch_pooled

    layers, config = _top_bert_layers(2)
    adapted = AdaptedLayers(
        [
            {
                name: layer.state_dict()[_BERT_NAMES[name]].numpy()  # type: ignore[attr-defined]
                for name in _LAYER_WEIGHTS
            }
            for layer in layers
        ],
        first_layer=4,
        heads=int(config.num_attention_heads),  # type: ignore[attr-defined]
        eps=float(config.layer_norm_eps),  # type: ignore[attr-defined]
    )
    rng = np.random.default_rng(3)
    messages = [rng.normal(size=(length, 384)).astype(np.float32) for length in (3, 11, 27)]
    # Padded together in torch; one message at a time in numpy.
    width = max(len(m) for m in messages)
    hidden = np.zeros((len(messages), width, 384), dtype=np.float32)
    mask = np.zeros((len(messages), width), dtype=np.float32)
    for row, message in enumerate(messages):
        hidden[row, : len(message)] = message
        mask[row, : len(message)] = 1
    with torch.no_grad():
        expected = torch_pooled(
            torch.nn.ModuleList(layers), torch.from_numpy(hidden), torch.from_numpy(mask)
        ).numpy()
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    got = adapted.pooled_many(messages)
    assert got.shape == (3, 384)
    np.testing.assert_allclose(got, expected, atol=2e-5)
    # Exported to a fused ONNX graph, the layers still compute what torch computes.
    assert adapted.export_graph(bundled_model_path(), messages[:1])
    assert adapted.top_graph is not None
    np.testing.assert_allclose(adapted.pooled_many(messages), expected, atol=2e-5)


def _toy_states(rng: np.random.Generator, intent: int, count: int) -> list[np.ndarray]:
    # Two intents that differ only in one token's direction, anywhere in the message.
    direction = np.zeros(384, dtype=np.float32)
    direction[intent * 7] = 4.0
    states = []
    for _ in range(count):
        length = int(rng.integers(4, 12))
        message = rng.normal(size=(length, 384)).astype(np.float32)
        message[int(rng.integers(0, length))] += direction
        states.append(message)
    return states


def test_training_learns_a_separable_toy_intent_set(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    states = _toy_states(rng, 0, 40) + _toy_states(rng, 1, 40)
    targets = np.array([0] * 40 + [1] * 40, dtype=np.int64)
    adapted, report = AdaptedLayers.train(
        states,
        targets,
        2,
        bundled_model_path(),
        AdaptationConfig(layers=1, epochs=4, layer_learning_rate=1e-4, batch_size=16),
    )
    assert adapted.first_layer == 5 and len(adapted.layers) == 1
    assert report["epoch_losses"][-1] < report["epoch_losses"][0]

    # Training exports the layers to an ONNX graph, which answers as the numpy layers do.
    assert report["graph_exported"] and adapted.top_graph is not None
    test = _toy_states(rng, 0, 5) + _toy_states(rng, 1, 5)
    reference = np.vstack([adapted.pooled_numpy(message) for message in test])
    np.testing.assert_allclose(adapted.pooled_many(test), reference, atol=1e-5)

    # Saved and loaded, it pools exactly as before.
    arrays = adapted.arrays()
    np.savez(tmp_path / "weights.npz", **arrays)  # type: ignore[arg-type]
    with np.load(tmp_path / "weights.npz") as saved:
        arrays = dict(saved)
    loaded = AdaptedLayers.from_saved(adapted.to_json(), arrays, top_graph=adapted.top_graph)
    np.testing.assert_array_equal(loaded.pooled_many(test), adapted.pooled_many(test))
    # Without its graph, or with another one, the model is refused rather than run wrong.
    with pytest.raises(ValueError, match="missing"):
        AdaptedLayers.from_saved(adapted.to_json(), arrays)
    with pytest.raises(ValueError, match="not the one trained"):
        AdaptedLayers.from_saved(adapted.to_json(), arrays, top_graph=adapted.top_graph + b"x")
    # A model saved without a graph (before graphs, or without ONNX) answers in numpy.
    unexported = {**adapted.to_json(), "graph_sha256": None}
    np.testing.assert_array_equal(
        AdaptedLayers.from_saved(unexported, arrays).pooled_many(test), reference
    )


def test_answering_with_adapted_layers_never_imports_torch() -> None:
    script = (
        "import sys, numpy as np\n"
        "from nlu.adaptation import AdaptedLayers\n"
        "weights = {name: np.zeros((8, 8), np.float32) for name in ("
        "'query_w','key_w','value_w','attention_out_w')}\n"
        "weights |= {name: np.zeros(8, np.float32) for name in ("
        "'query_b','key_b','value_b','attention_out_b','attention_norm_b',"
        "'output_b','output_norm_b')}\n"
        "weights['intermediate_b'] = np.zeros(16, np.float32)\n"
        "weights |= {'attention_norm_w': np.ones(8, np.float32),"
        " 'output_norm_w': np.ones(8, np.float32),"
        " 'intermediate_w': np.zeros((16, 8), np.float32),"
        " 'output_w': np.zeros((8, 16), np.float32)}\n"
        "layers = AdaptedLayers([weights], 5, 2, 1e-12)\n"
        "layers.pooled(np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32))\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", script], check=True, cwd=root)


def _trained_on_the_fixture(
    embedder: SentenceEmbedder, config: ClassifierConfig
) -> IntentClassifier:
    from nlu.training_data import parse_nlu_yaml
    from tests.nlu.test_classifier import FIXTURE_NLU

    return IntentClassifier.train(
        parse_nlu_yaml(FIXTURE_NLU, "fixture.yml"), embedder, config=config
    )


def _paraphrases_answered(
    model: IntentClassifier, vectors: np.ndarray, messages: list[str], states: list[np.ndarray]
) -> list[str]:
    """The intents given to the fixture's paraphrases, at least 80 % of them right."""
    from tests.nlu.test_classifier import PARAPHRASES

    answers = [p.name for p in model.predict_many(vectors, messages, states)]
    assert np.mean([a == PARAPHRASES[m] for a, m in zip(answers, messages, strict=True)]) >= 0.8
    return answers


def _answers_as_trained(
    loaded: IntentClassifier,
    trained: IntentClassifier,
    embedder: SentenceEmbedder,
    asked: tuple[np.ndarray, list[str], list[np.ndarray]],
    first_answer: str,
) -> None:
    """The model read back gives the trained one's probabilities; through the interpreter
    (the token states of its one embedding pass) it answers the first message as before,
    and search still gets the shared sentence vector, from the same bottom pass."""
    vectors, messages, states = asked
    np.testing.assert_allclose(
        loaded.probabilities(vectors, messages, states),
        trained.probabilities(vectors, messages, states),
        atol=1e-6,
    )
    understood = Interpreter(embedder, loaded, {}).understand(messages[0])
    assert understood.intent.name == first_answer
    np.testing.assert_allclose(understood.vector, vectors[0], atol=1e-6)


def test_a_classifier_with_an_adapted_last_layer_learns_saves_and_answers(
    tmp_path: Path, embedder: SentenceEmbedder
) -> None:
    from tests.nlu.test_classifier import PARAPHRASES

    config = ClassifierConfig(adapt_last_layer=True, adaptation_epochs=3)
    model = _trained_on_the_fixture(embedder, config)
    assert model.adapted is not None and model.adapted.first_layer == 5
    assert model.report.extra["adaptation"]["layers"] == 1

    messages = list(PARAPHRASES)
    vectors, states = embedder.embed_with_token_states(messages)
    with pytest.raises(ValueError, match="token states"):
        model.predict_many(vectors, messages)
    answers = _paraphrases_answered(model, vectors, messages, states)

    model.save(tmp_path)
    loaded = IntentClassifier.load(tmp_path)
    assert loaded.config == config and loaded.adapted is not None
    _answers_as_trained(loaded, model, embedder, (vectors, messages, states), answers[0])


def test_a_classifier_with_the_top_two_layers_adapted_answers_from_the_encoder_bottom(
    tmp_path: Path, embedder: SentenceEmbedder
) -> None:
    from tests.nlu.test_classifier import PARAPHRASES

    config = ClassifierConfig(adapt_last_layer=True, adapted_layers=2)
    model = _trained_on_the_fixture(embedder, config)
    assert model.adapted is not None and model.adapted.first_layer == 4
    assert model.adapted.top_graph is not None  # answered on ONNX Runtime

    messages = list(PARAPHRASES)
    vectors, states = embedder.embed_with_token_states(messages, 2)
    answers = _paraphrases_answered(model, vectors, messages, states)

    model.save(tmp_path)
    graph_file = (
        tmp_path / json.loads((tmp_path / "model.json").read_text())["files"]["adapted_graph"]
    )
    assert graph_file.exists()
    loaded = IntentClassifier.load(tmp_path)
    _answers_as_trained(loaded, model, embedder, (vectors, messages, states), answers[0])

    # A graph that is not the trained one is refused, naming the model folder.
    graph_file.write_bytes(b"not a graph")
    with pytest.raises(ValueError, match=str(tmp_path)):
        IntentClassifier.load(tmp_path)
