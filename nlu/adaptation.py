"""The top transformer layers of the sentence encoder, adapted to the intents.

The sentence embedding is shared with the knowledge base, so the NLU cannot fine-tune
the encoder itself. Instead it keeps its own copy of the top `k` BERT layers, trained
(with torch, at training time only) on the intents with a softmax head, and fed with the
frozen encoder's token hidden states from below those layers, which the ONNX graphs
return (nlu/embedding.py). Training also exports the copy to a small fused ONNX graph
(`top_graph`), saved with the intent model, which answering runs on ONNX Runtime, one
thread: about what the shared top layers cost, and half what the same layers cost in numpy
(`pooled_numpy`, the reference, used where ONNX Runtime is missing).
"""

from __future__ import annotations

import hashlib
import logging
import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import erf

Array = npt.NDArray[np.float32]

log = logging.getLogger(__name__)

# How far the exported graph's vectors may be from the numpy layers' (float32, the order of
# additions differs) before the graph is thrown away and numpy answers instead.
MAX_GRAPH_DIFFERENCE = 1e-4

# Names of one layer's weights, as numpy arrays; (out, in) matrices like torch's Linear.
_LAYER_WEIGHTS = (
    "query_w",
    "query_b",
    "key_w",
    "key_b",
    "value_w",
    "value_b",
    "attention_out_w",
    "attention_out_b",
    "attention_norm_w",
    "attention_norm_b",
    "intermediate_w",
    "intermediate_b",
    "output_w",
    "output_b",
    "output_norm_w",
    "output_norm_b",
)
# The same weights in a transformers BertLayer's state dict.
_BERT_NAMES = dict(
    zip(
        _LAYER_WEIGHTS,
        (
            "attention.self.query.weight",
            "attention.self.query.bias",
            "attention.self.key.weight",
            "attention.self.key.bias",
            "attention.self.value.weight",
            "attention.self.value.bias",
            "attention.output.dense.weight",
            "attention.output.dense.bias",
            "attention.output.LayerNorm.weight",
            "attention.output.LayerNorm.bias",
            "intermediate.dense.weight",
            "intermediate.dense.bias",
            "output.dense.weight",
            "output.dense.bias",
            "output.LayerNorm.weight",
            "output.LayerNorm.bias",
        ),
        strict=True,
    )
)


@dataclass(frozen=True)
class AdaptationConfig:
    """How the top layers are adapted; the defaults are what bench/nlu_adapt_probe.py chose."""

    layers: int = 1
    epochs: int = 3
    layer_learning_rate: float = 5e-5
    head_learning_rate: float = 2e-3
    batch_size: int = 32
    seed: int = 0
    # torch threads while training. On these shared 2-core machines one thread took a
    # quarter of the CPU time two did for the same epoch (waiting threads spin).
    threads: int = 1


def _layer_norm(x: Array, weight: Array, bias: Array, eps: float) -> Array:
    mean = x.mean(-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(-1, keepdims=True)
    return np.asarray((x - mean) / np.sqrt(variance + eps) * weight + bias, dtype=np.float32)


class AdaptedLayers:
    """The adapted top layers: token hidden states in, a unit-length sentence vector out."""

    def __init__(
        self,
        layers: Sequence[dict[str, Array]],
        first_layer: int,
        heads: int,
        eps: float,
        top_graph: bytes | None = None,
    ) -> None:
        self.layers = [
            {name: np.ascontiguousarray(layer[name], dtype=np.float32) for name in _LAYER_WEIGHTS}
            for layer in layers
        ]
        self.first_layer = first_layer  # the encoder layer the copy starts at (0-based)
        self.heads = heads
        self.eps = eps
        self.dimension = int(self.layers[0]["query_w"].shape[0]) if self.layers else 0
        # The same layers as a fused ONNX graph (nlu.embedding.export_top_layers), if exported.
        self.top_graph = top_graph
        self._session: Any = None
        # Laid out for (tokens × in) @ (in × out), query, key and value in one product.
        self._prepared = [
            {
                "qkv_w": np.ascontiguousarray(
                    np.vstack([layer["query_w"], layer["key_w"], layer["value_w"]]).T
                ),
                "qkv_b": np.concatenate([layer["query_b"], layer["key_b"], layer["value_b"]]),
                "attention_out_w": np.ascontiguousarray(layer["attention_out_w"].T),
                "intermediate_w": np.ascontiguousarray(layer["intermediate_w"].T),
                "output_w": np.ascontiguousarray(layer["output_w"].T),
            }
            | {name: layer[name] for name in _LAYER_WEIGHTS if name.endswith("_b")}
            | {name: layer[name] for name in ("attention_norm_w", "output_norm_w")}
            for layer in self.layers
        ]

    def _layer(self, hidden: Array, weights: dict[str, Array]) -> Array:
        tokens = hidden.shape[0]
        size = self.dimension // self.heads

        projected = hidden @ weights["qkv_w"] + weights["qkv_b"]
        query, key, value = projected.reshape(tokens, 3, self.heads, size).transpose(1, 2, 0, 3)
        attention = query @ key.transpose(0, 2, 1) / math.sqrt(size)
        attention = np.exp(attention - attention.max(-1, keepdims=True))
        attention /= attention.sum(-1, keepdims=True)
        context = (attention @ value).transpose(1, 0, 2).reshape(tokens, self.dimension)
        attended = _layer_norm(
            context @ weights["attention_out_w"] + weights["attention_out_b"] + hidden,
            weights["attention_norm_w"],
            weights["attention_norm_b"],
            self.eps,
        )
        inner = attended @ weights["intermediate_w"] + weights["intermediate_b"]
        inner = 0.5 * inner * (1.0 + erf(inner / math.sqrt(2.0)))  # BERT's exact GELU
        return _layer_norm(
            inner @ weights["output_w"] + weights["output_b"] + attended,
            weights["output_norm_w"],
            weights["output_norm_b"],
            self.eps,
        )

    def pooled(self, states: Array) -> Array:
        """One message's token states (tokens × dimension) → its unit-length vector."""
        return np.asarray(self.pooled_many([states])[0], dtype=np.float32)

    def pooled_many(self, states: Sequence[Array]) -> Array:
        if not states:
            return np.zeros((0, self.dimension), dtype=np.float32)
        session = self._graph_session()
        if session is None:
            return np.vstack([self.pooled_numpy(s) for s in states])
        from nlu.embedding import run_top_layers

        return run_top_layers(session, [np.asarray(s, dtype=np.float32) for s in states])

    def _graph_session(self) -> Any:
        if self._session is None and self.top_graph is not None:
            try:
                from nlu.embedding import top_layers_session

                self._session = top_layers_session(self.top_graph)
            except ImportError:
                log.warning("no onnxruntime: the adapted layers run in numpy")
                self.top_graph = None
        return self._session

    def pooled_numpy(self, states: Array) -> Array:
        """`pooled` computed in numpy (the reference the exported graph is checked against)."""
        hidden = np.asarray(states, dtype=np.float32)
        for weights in self._prepared:
            hidden = self._layer(hidden, weights)
        mean = hidden.mean(0)
        return np.asarray(mean / max(float(np.linalg.norm(mean)), 1e-9), dtype=np.float32)

    def export_graph(self, model_path: Path, check: Sequence[Array]) -> bool:
        """Export these layers to a fused ONNX graph (needs torch) and keep it when it gives
        the numpy layers' vectors on `check` (a few messages' token states)."""
        from nlu.embedding import export_top_layers

        with tempfile.TemporaryDirectory() as folder:
            target = Path(folder) / "adapted_top.onnx"
            export_top_layers(
                model_path,
                target,
                [
                    {_BERT_NAMES[name]: weights[name] for name in _LAYER_WEIGHTS}
                    for weights in self.layers
                ],
            )
            graph = target.read_bytes()
        exported = AdaptedLayers(self.layers, self.first_layer, self.heads, self.eps, graph)
        difference = float(
            np.abs(
                exported.pooled_many(check) - np.vstack([self.pooled_numpy(s) for s in check])
            ).max()
        )
        if difference > MAX_GRAPH_DIFFERENCE:
            log.warning("adapted layers stay in numpy: the ONNX graph is %.2g off", difference)
            return False
        self.top_graph, self._session = graph, exported._session
        return True

    def graph_sha256(self) -> str | None:
        return None if self.top_graph is None else hashlib.sha256(self.top_graph).hexdigest()

    # -- persistence ----------------------------------------------------------------------

    def arrays(self, prefix: str = "adapted") -> dict[str, Array]:
        return {
            f"{prefix}_{index}_{name}": layer[name]
            for index, layer in enumerate(self.layers)
            for name in _LAYER_WEIGHTS
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "layers": len(self.layers),
            "first_layer": self.first_layer,
            "heads": self.heads,
            "eps": self.eps,
            "graph_sha256": self.graph_sha256(),
        }

    @classmethod
    def from_saved(
        cls,
        meta: dict[str, Any],
        arrays: dict[str, Any],
        prefix: str = "adapted",
        top_graph: bytes | None = None,
    ) -> AdaptedLayers:
        """The layers `arrays()` and `to_json()` saved, and their exported graph if one was
        (its checksum must be the one saved: a graph of other weights would answer wrong)."""
        layers = [
            {name: np.asarray(arrays[f"{prefix}_{index}_{name}"]) for name in _LAYER_WEIGHTS}
            for index in range(int(meta["layers"]))
        ]
        expected = meta.get("graph_sha256")
        if expected is not None:
            if top_graph is None:
                raise ValueError("the adapted layers' ONNX graph is missing")
            if hashlib.sha256(top_graph).hexdigest() != expected:
                raise ValueError("the adapted layers' ONNX graph is not the one trained")
        return cls(
            layers,
            int(meta["first_layer"]),
            int(meta["heads"]),
            float(meta["eps"]),
            top_graph if expected is not None else None,
        )

    @classmethod
    def original_top_layers(cls, model_path: Path, count: int) -> AdaptedLayers:
        """The encoder's own top `count` layers, unadapted (read with torch)."""
        from transformers import AutoModel

        encoder = AutoModel.from_pretrained(str(model_path), local_files_only=True)
        config = encoder.config
        first = int(config.num_hidden_layers) - count
        return cls(
            [_numpy_weights(encoder.encoder.layer[i]) for i in range(first, first + count)],
            first,
            int(config.num_attention_heads),
            float(config.layer_norm_eps),
        )

    # -- training (torch) -----------------------------------------------------------------

    @classmethod
    def train(
        cls,
        states: Sequence[Array],
        targets: npt.NDArray[np.int64],
        intent_count: int,
        model_path: Path,
        config: AdaptationConfig,
    ) -> tuple[AdaptedLayers, dict[str, Any]]:
        """Fine-tune a copy of the encoder's top `config.layers` layers (read from
        `model_path`) and a linear softmax head on the intents, from the frozen encoder's
        token states below them. The head is thrown away: the classifier learns its own."""
        import torch

        started = time.process_time()
        threads_before = torch.get_num_threads()
        torch.set_num_threads(config.threads)
        try:
            return cls._train(states, targets, intent_count, model_path, config, started)
        finally:
            torch.set_num_threads(threads_before)

    @classmethod
    def _train(
        cls,
        states: Sequence[Array],
        targets: npt.NDArray[np.int64],
        intent_count: int,
        model_path: Path,
        config: AdaptationConfig,
        started: float,
    ) -> tuple[AdaptedLayers, dict[str, Any]]:
        import torch
        from transformers import AutoConfig, AutoModel

        torch.manual_seed(config.seed)
        model_config = AutoConfig.from_pretrained(str(model_path), local_files_only=True)
        total_layers = int(model_config.num_hidden_layers)
        first = total_layers - config.layers
        encoder = AutoModel.from_pretrained(str(model_path), local_files_only=True)
        layers = torch.nn.ModuleList([encoder.encoder.layer[i] for i in range(first, total_layers)])
        del encoder
        layers.train()
        head = torch.nn.Linear(int(model_config.hidden_size), intent_count)
        optimizer = torch.optim.AdamW(
            [
                {"params": layers.parameters(), "lr": config.layer_learning_rate},
                {"params": head.parameters(), "lr": config.head_learning_rate},
            ],
            weight_decay=0.01,
        )
        lengths = np.array([len(s) for s in states])
        steps = math.ceil(len(states) / config.batch_size) * config.epochs
        warmup = max(1.0, 0.06 * steps)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: min(1.0, (step + 1) / warmup) * max(0.0, 1 - step / steps)
        )
        rng = np.random.default_rng(config.seed)
        losses = []
        for _ in range(config.epochs):
            total = 0.0
            batches = _length_batches(lengths, config.batch_size, rng)
            for rows in batches:
                hidden, mask = padded_token_states(states, rows)
                pooled = torch_pooled(layers, hidden, mask)
                loss = torch.nn.functional.cross_entropy(
                    head(pooled), torch.from_numpy(targets[rows])
                )
                optimizer.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                optimizer.step()
                schedule.step()
                total += float(loss.detach())
            losses.append(round(total / max(1, len(batches)), 4))
        weights = [_numpy_weights(layer) for layer in layers]
        adapted = cls(
            weights,
            first,
            int(model_config.num_attention_heads),
            float(model_config.layer_norm_eps),
        )
        trained_cpu = time.process_time()
        exported = adapted.export_graph(model_path, [states[i] for i in range(min(8, len(states)))])
        report = {
            "layers": config.layers,
            "epoch_losses": losses,
            "cpu_seconds": round(time.process_time() - started, 1),
            "graph_exported": exported,
            "export_cpu_seconds": round(time.process_time() - trained_cpu, 1),
        }
        return adapted, report


def _numpy_weights(layer: Any) -> dict[str, Array]:
    """A transformers BertLayer's weights under this module's names."""
    state = layer.state_dict()
    return {name: state[_BERT_NAMES[name]].detach().numpy().copy() for name in _LAYER_WEIGHTS}


def _length_batches(
    lengths: npt.NDArray[np.int64], batch_size: int, rng: np.random.Generator
) -> list[npt.NDArray[np.int64]]:
    """Shuffled batches of messages of alike lengths, so padding wastes little."""
    order = rng.permutation(len(lengths))
    batches: list[npt.NDArray[np.int64]] = []
    window = batch_size * 50
    for start in range(0, len(order), window):
        chunk = order[start : start + window]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def padded_token_states(states: Sequence[Array], rows: npt.NDArray[np.int64]) -> tuple[Any, Any]:
    import torch

    width = max(len(states[r]) for r in rows)
    hidden = np.zeros((len(rows), width, states[rows[0]].shape[1]), dtype=np.float32)
    mask = np.zeros((len(rows), width), dtype=np.float32)
    for position, row in enumerate(rows):
        hidden[position, : len(states[row])] = states[row]
        mask[position, : len(states[row])] = 1
    return torch.from_numpy(hidden), torch.from_numpy(mask)


def torch_pooled(layers: Any, hidden: Any, mask: Any) -> Any:
    """The mean of the top layers' token outputs (padding masked out), before normalizing."""
    additive = ((1.0 - mask) * -1e9)[:, None, None, :]
    for layer in layers:
        hidden = layer(hidden, attention_mask=additive)
        if isinstance(hidden, tuple):
            hidden = hidden[0]
    weights = mask.unsqueeze(-1)
    return (hidden * weights).sum(1) / weights.sum(1)
