"""The shared embedder runs the model on ONNX Runtime and means the same as on torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nlu.embedding import (
    MAX_TOKEN_STATE_DIFFERENCE,
    MIN_EXPORT_COSINE,
    SENTENCE_OUTPUT,
    SHARED_TOP_LAYERS,
    TOKEN_STATES_INPUT,
    TOKEN_STATES_OUTPUT,
    SentenceEmbedder,
    _export_key,
    _OnnxModel,
    _torch_token_states,
    bundled_model_path,
    model_cache_dir,
)

QUESTIONS = [
    "my vpn drops every few minutes",
    "How do I get a new laptop?",
    "printer on floor 3 prints blank pages again!!",
    "",
    "word " * 400,  # longer than the model reads: cut, not an error
]


def test_the_shared_embedder_runs_on_onnx_with_unit_vectors(embedder: SentenceEmbedder) -> None:
    assert embedder.backend == "onnx"
    vectors = embedder.embed(QUESTIONS)
    assert vectors.shape == (len(QUESTIONS), 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, 384)


def test_onnx_and_torch_give_the_same_vectors_alone_or_batched(
    embedder: SentenceEmbedder,
) -> None:
    on_torch = SentenceEmbedder(backend="torch")
    assert on_torch.backend == "torch" and on_torch.model_name == embedder.model_name
    reference = on_torch.embed(QUESTIONS)
    batched = embedder.embed(QUESTIONS)
    alone = np.vstack([embedder.embed([question]) for question in QUESTIONS])
    assert (batched * reference).sum(axis=1).min() >= MIN_EXPORT_COSINE
    assert (alone * reference).sum(axis=1).min() >= MIN_EXPORT_COSINE
    # Padding a short question to a long one's length must not move it.
    np.testing.assert_allclose(alone, batched, atol=1e-4)


def test_an_export_found_unfaithful_once_leaves_the_embedder_on_torch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIER0_MODEL_CACHE", str(tmp_path))
    model = bundled_model_path()
    tmp_path.joinpath(f"{model.name}-{_export_key(model)}.rejected").write_text(
        "the ONNX export differs from torch (cosine 0.9)", encoding="utf-8"
    )
    assert model_cache_dir() == tmp_path
    assert SentenceEmbedder().backend == "torch"
    with pytest.raises(RuntimeError, match="differs from torch"):
        SentenceEmbedder(backend="onnx")


def test_an_unknown_backend_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="'tpu'"):
        SentenceEmbedder(backend="tpu")


def test_token_states_come_from_the_same_pass_and_rebuild_the_sentence_vector(
    embedder: SentenceEmbedder,
) -> None:
    from nlu.adaptation import AdaptedLayers

    vectors, states = embedder.embed_with_token_states(QUESTIONS)
    np.testing.assert_allclose(vectors, embedder.embed(QUESTIONS), atol=1e-6)
    assert [s.shape[1] for s in states] == [384] * len(QUESTIONS)
    assert len(states[1]) < len(states[4]) == 256  # no padding kept; long text cut
    # The encoder's own last layer, run in numpy on those states, gives the sentence vector.
    last_layer = AdaptedLayers.original_top_layers(bundled_model_path(), 1)
    np.testing.assert_allclose(last_layer.pooled_many(states), vectors, atol=1e-4)
    _, single_states = embedder.embed_with_token_states([QUESTIONS[2]])
    np.testing.assert_allclose(single_states[0], states[2], atol=1e-4)


def test_token_states_below_the_top_two_layers_rebuild_the_sentence_vector(
    embedder: SentenceEmbedder,
) -> None:
    from nlu.adaptation import AdaptedLayers

    vectors, states = embedder.embed_with_token_states(QUESTIONS[:3], top_layers=2)
    _, last_layer_states = embedder.embed_with_token_states(QUESTIONS[:3])
    assert [len(s) for s in states] == [len(s) for s in last_layer_states]
    assert float(np.abs(states[0] - last_layer_states[0]).max()) > 0.1  # another layer's
    top_two = AdaptedLayers.original_top_layers(bundled_model_path(), 2)
    np.testing.assert_allclose(top_two.pooled_many(states), vectors, atol=1e-4)


def test_the_export_runs_fused_operators_and_still_returns_the_token_states(
    embedder: SentenceEmbedder,
) -> None:
    import onnx

    model = bundled_model_path()
    whole, bottom, top = (
        onnx.load(str(file)).graph for file in _OnnxModel.files(model, model_cache_dir())
    )
    for operators in (
        [node.op_type for node in whole.node],
        [node.op_type for node in bottom.node] + [node.op_type for node in top.node],
    ):
        # One Attention per layer (MiniLM-L6 has six; split: four below, two on top), the
        # embeddings and the residual layer norms folded too: what makes one message
        # cheaper than the plain export.
        assert operators.count("Attention") == 6
        assert operators.count("EmbedLayerNormalization") == 1
        assert operators.count("SkipLayerNormalization") == 12
    assert [node.op_type for node in top.node].count("Attention") == SHARED_TOP_LAYERS == 2
    assert [output.name for output in whole.output] == [SENTENCE_OUTPUT, TOKEN_STATES_OUTPUT]
    assert [output.name for output in bottom.output] == [TOKEN_STATES_INPUT]
    assert [output.name for output in top.output] == [SENTENCE_OUTPUT]
    # Fusing must not move the states nlu/adaptation.py starts from.
    on_torch = SentenceEmbedder(backend="torch")
    for depth in (1, SHARED_TOP_LAYERS):
        _, states = embedder.embed_with_token_states(QUESTIONS[:3], depth)
        for ours, theirs in zip(
            states,
            _torch_token_states(on_torch._torch_or_load(), QUESTIONS[:3], depth),
            strict=True,
        ):
            assert ours.shape == theirs.shape
            assert float(np.abs(ours - theirs).max()) <= MAX_TOKEN_STATE_DIFFERENCE


def test_the_top_graph_on_the_bottom_graphs_states_gives_the_sentence_vector(
    embedder: SentenceEmbedder,
) -> None:
    below_top = embedder.token_states(QUESTIONS, SHARED_TOP_LAYERS)
    _, same_pass = embedder.embed_with_token_states(QUESTIONS, SHARED_TOP_LAYERS)
    for alone, batched in zip(below_top, same_pass, strict=True):
        np.testing.assert_allclose(alone, batched, atol=1e-4)
    vectors = embedder.embed(QUESTIONS)
    np.testing.assert_allclose(embedder.embed_token_states(below_top), vectors, atol=1e-6)
    # Without ONNX Runtime the same layers run in numpy, to the same vectors.
    on_torch = SentenceEmbedder(backend="torch")
    np.testing.assert_allclose(on_torch.embed_token_states(below_top), vectors, atol=1e-4)
    assert embedder.token_states([], SHARED_TOP_LAYERS) == []
    assert embedder.embed_token_states([]).shape == (0, 384)
