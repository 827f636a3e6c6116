"""Does adapting the encoder's top layers to the intents help? A validation-only probe.

The sentence embedding is shared with the knowledge base, so the NLU may only adapt a
copy of the top k transformer layers, fed with the frozen model's token hidden states
below them. This script measures, on validation data only (CLINC150 val + oos_val;
BANKING77 and HWU64 a fixed 20 % of train held back, the classifier trained on the
other 80 %), what the existing classifier (SVM over embedding + n-grams) gets from:

- frozen: today's sentence vector;
- layers: mean-pooled hidden states of several frozen layers, concatenated (no training);
- k1 / k2: the top 1 or 2 layers fine-tuned with a softmax head (cross-entropy), the
  adapted mean-pooled vector alone, and concatenated with the frozen one;
- c1 / c2: the top 1 or 2 layers fine-tuned SetFit-style, contrastively (no head): batches
  of P intents × K messages each, a supervised contrastive loss over every same / other
  intent pair of the batch (`--contrastive supcon`), or SetFit's own cosine-similarity
  loss on the batch's pairs (`--contrastive pairs`); then the same SVM on top.

`--split-seed` draws another held-back 20 % (BANKING77, HWU64) to see the noise.
`--time-layers` also times the numpy copy of the top 1 and 2 layers on one message
(the parse-time cost), on the data set's median and 95th-percentile token lengths.

The frozen layers run once over all messages (length-sorted, padded per batch only);
their hidden states are kept in memory. CPU seconds of each step are printed.

Usage: nice -n 10 python bench/nlu_adapt_probe.py [clinc150 banking77 hwu64]
       [--epochs 3] [--variants frozen,layers,k1,k2,c1,c2] [--split-seed 0]
       [--threads 1] [--time-layers] [--also-c 0.5,2] [--out bench/results/nlu_adapt_probe.json]
Writes the results file merged per data set (and split seed, when not 0) and variant.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from nlu_datasets import LOADERS, shared_data_dir  # noqa: E402

from nlu.adaptation import _length_batches, padded_token_states, torch_pooled  # noqa: E402
from nlu.classifier import (  # noqa: E402
    ClassifierConfig,
    _fit,
    _validation_scores,
    tune_fallback,
)
from nlu.training_data import TrainingData  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "nlu_adapt_probe.json"
LAYERS = 6


def cpu() -> float:
    return time.process_time()


def split(
    name: str, data_dir: Path, seed: int = 0
) -> tuple[TrainingData, TrainingData, str | None]:
    benchmark = LOADERS[name](data_dir)
    if benchmark.validation is not None:
        return benchmark.train, benchmark.validation, benchmark.out_of_scope_intent
    rng = np.random.default_rng(seed)
    labels = np.array([e.intent for e in benchmark.train.examples])
    held = np.zeros(len(labels), dtype=bool)
    for intent in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == intent))
        held[members[: round(0.2 * len(members))]] = True
    examples = benchmark.train.examples
    return (
        TrainingData([e for e, h in zip(examples, held, strict=True) if not h]),
        TrainingData([e for e, h in zip(examples, held, strict=True) if h]),
        None,
    )


class FrozenPass:
    """Token hidden states of every layer boundary we need, per message (unpadded)."""

    def __init__(self, texts: list[str], keep_layers: tuple[int, ...]) -> None:
        import torch
        from tokenizers import Tokenizer
        from transformers import AutoModel

        from nlu.embedding import bundled_model_path

        path = bundled_model_path()
        tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        tokenizer.enable_truncation(256)
        tokenizer.no_padding()
        self.model = AutoModel.from_pretrained(str(path), local_files_only=True).eval()
        encodings = tokenizer.encode_batch(texts)
        self.ids = [np.array(e.ids, dtype=np.int64) for e in encodings]
        order = np.argsort([len(i) for i in self.ids], kind="stable")
        self.hidden: dict[int, list[np.ndarray]] = {k: [None] * len(texts) for k in keep_layers}  # type: ignore[list-item]
        self.pooled = np.zeros((LAYERS + 1, len(texts), 384), dtype=np.float32)
        with torch.no_grad():
            for start in range(0, len(order), 128):
                rows = order[start : start + 128]
                width = max(len(self.ids[i]) for i in rows)
                ids = np.zeros((len(rows), width), dtype=np.int64)
                mask = np.zeros((len(rows), width), dtype=np.int64)
                for p, r in enumerate(rows):
                    ids[p, : len(self.ids[r])] = self.ids[r]
                    mask[p, : len(self.ids[r])] = 1
                out = self.model(
                    input_ids=torch.from_numpy(ids),
                    attention_mask=torch.from_numpy(mask),
                    token_type_ids=torch.zeros_like(torch.from_numpy(ids)),
                    output_hidden_states=True,
                )
                m = torch.from_numpy(mask).unsqueeze(-1).float()
                for layer, states in enumerate(out.hidden_states):
                    pooled = (states * m).sum(1) / m.sum(1)
                    self.pooled[layer, rows] = pooled.numpy()
                    if layer in self.hidden:
                        for p, r in enumerate(rows):
                            self.hidden[layer][r] = states[p, : len(self.ids[r])].numpy().copy()

    def sentence_vectors(self) -> np.ndarray:
        return normalize(self.pooled[LAYERS])


def normalize(x: np.ndarray) -> np.ndarray:
    return np.asarray(x / np.linalg.norm(x, axis=-1, keepdims=True).clip(1e-9), np.float32)


def adapt(
    frozen: FrozenPass,
    k: int,
    train_rows: np.ndarray,
    targets: np.ndarray,
    n_classes: int,
    epochs: int,
    layer_lr: float,
    head_lr: float,
    batch: int = 32,
    seed: int = 0,
) -> tuple[Any, Any, float]:
    """Fine-tune a copy of the top k layers + a linear head; returns (layers, head, cpu s)."""
    import copy

    import torch

    torch.manual_seed(seed)
    started = cpu()
    layers = torch.nn.ModuleList(
        [copy.deepcopy(frozen.model.encoder.layer[i]) for i in range(LAYERS - k, LAYERS)]
    ).train()
    head = torch.nn.Linear(384, n_classes)
    optimizer = torch.optim.AdamW(
        [
            {"params": layers.parameters(), "lr": layer_lr},
            {"params": head.parameters(), "lr": head_lr},
        ],
        weight_decay=0.01,
    )
    source = frozen.hidden[LAYERS - k]
    lengths = np.array([len(source[i]) for i in train_rows])
    steps_per_epoch = math.ceil(len(train_rows) / batch)
    total = steps_per_epoch * epochs
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / (0.06 * total)) * max(0.0, 1 - s / total)
    )
    rng = np.random.default_rng(seed)
    for epoch in range(epochs):
        batches = _length_batches(lengths, batch, rng)
        loss_sum = 0.0
        for positions in batches:
            rows = train_rows[positions]
            states, mask = padded_token_states(source, rows)
            pooled = torch_pooled(layers, states, mask)
            loss = torch.nn.functional.cross_entropy(
                head(pooled), torch.from_numpy(targets[positions])
            )
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            schedule.step()
            loss_sum += float(loss.detach())
        print(
            f"    k={k} epoch {epoch + 1}: loss {loss_sum / len(batches):.3f} "
            f"({cpu() - started:.0f} CPU s)",
            flush=True,
        )
    return layers.eval(), head.eval(), cpu() - started


def intent_batches(
    targets: np.ndarray, intents_per_batch: int, per_intent: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """One epoch of P × K batches: every message once, grouped K per intent, P intents a
    batch, so each batch has positives (same intent) for every message and many negatives."""
    groups: list[np.ndarray] = []
    for intent in np.unique(targets):
        members = rng.permutation(np.flatnonzero(targets == intent))
        groups.extend(
            members[i : i + per_intent]
            for i in range(0, len(members), per_intent)
            if len(members[i : i + per_intent]) > 1
        )
    order = rng.permutation(len(groups))
    return [
        np.concatenate([groups[g] for g in order[i : i + intents_per_batch]])
        for i in range(0, len(order), intents_per_batch)
    ]


def contrastive_loss(pooled: Any, labels: Any, kind: str, temperature: float) -> Any:
    """supcon: supervised contrastive loss (Khosla et al. 2020) on cosine similarities;
    pairs: SetFit's loss, the squared error of every pair's cosine against 1 (same intent)
    or 0 (different)."""
    import torch

    unit = torch.nn.functional.normalize(pooled, dim=-1)
    cosine = unit @ unit.T
    same = (labels[:, None] == labels[None, :]).float()
    eye = torch.eye(len(labels))
    if kind == "pairs":
        off = 1 - eye
        return (((cosine - same) ** 2) * off).sum() / off.sum()
    logits = cosine / temperature - eye * 1e9
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positives = same - eye
    count = positives.sum(1)
    keep = count > 0
    return -((log_prob * positives).sum(1)[keep] / count[keep]).mean()


def adapt_contrastive(
    frozen: FrozenPass,
    k: int,
    train_rows: np.ndarray,
    targets: np.ndarray,
    epochs: int,
    layer_lr: float,
    kind: str,
    temperature: float,
    intents_per_batch: int = 8,
    per_intent: int = 4,
    seed: int = 0,
) -> tuple[Any, float, list[float]]:
    """Fine-tune a copy of the top k layers contrastively; returns (layers, cpu s, losses)."""
    import copy

    import torch

    torch.manual_seed(seed)
    started = cpu()
    layers = torch.nn.ModuleList(
        [copy.deepcopy(frozen.model.encoder.layer[i]) for i in range(LAYERS - k, LAYERS)]
    ).train()
    optimizer = torch.optim.AdamW(layers.parameters(), lr=layer_lr, weight_decay=0.01)
    rng = np.random.default_rng(seed)
    source = frozen.hidden[LAYERS - k]
    epoch_batches = [intent_batches(targets, intents_per_batch, per_intent, rng)]
    total = len(epoch_batches[0]) * epochs
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / (0.06 * total)) * max(0.0, 1 - s / total)
    )
    losses = []
    for epoch in range(epochs):
        batches = (
            epoch_batches[0]
            if epoch == 0
            else intent_batches(targets, intents_per_batch, per_intent, rng)
        )
        loss_sum = 0.0
        for positions in batches:
            states, mask = padded_token_states(source, train_rows[positions])
            pooled = torch_pooled(layers, states, mask)
            loss = contrastive_loss(pooled, torch.from_numpy(targets[positions]), kind, temperature)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            loss_sum += float(loss.detach())
        losses.append(round(loss_sum / len(batches), 4))
        print(
            f"    c{k} ({kind}) epoch {epoch + 1}: loss {losses[-1]:.4f} "
            f"({cpu() - started:.0f} CPU s)",
            flush=True,
        )
    return layers.eval(), cpu() - started, losses


def time_numpy_layers(frozen: FrozenPass, repeats: int = 200) -> dict[str, Any]:
    """CPU ms per message of the numpy copy of the top 1 and 2 layers (nlu.adaptation's
    AdaptedLayers, the code that would run at parse time), on real token states of the
    median and 95th-percentile message lengths of this data set."""
    from nlu.adaptation import AdaptedLayers
    from nlu.embedding import bundled_model_path

    lengths = np.array([len(i) for i in frozen.ids])
    result: dict[str, Any] = {
        "tokens_p50": int(np.percentile(lengths, 50)),
        "tokens_p95": int(np.percentile(lengths, 95)),
    }
    for k in (1, 2):
        layers = AdaptedLayers.original_top_layers(bundled_model_path(), k)
        source = frozen.hidden.get(LAYERS - k)
        if source is None:
            continue
        for label in ("p50", "p95"):
            target = result[f"tokens_{label}"]
            row = int(np.argmin(np.abs(lengths - target)))
            states = source[row]
            layers.pooled(states)  # warm-up
            started = cpu()
            for _ in range(repeats):
                layers.pooled(states)
            result[f"k{k}_cpu_ms_{label}"] = round((cpu() - started) / repeats * 1000, 3)
    print(f"  numpy layers: {result}", flush=True)
    return result


def adapted_vectors(frozen: FrozenPass, layers: Any, k: int, rows: np.ndarray) -> np.ndarray:
    import torch

    source = frozen.hidden[LAYERS - k]
    order = rows[np.argsort([len(source[r]) for r in rows], kind="stable")]
    result = np.zeros((len(frozen.ids), 384), dtype=np.float32)
    with torch.no_grad():
        for start in range(0, len(order), 128):
            chunk = order[start : start + 128]
            states, mask = padded_token_states(source, chunk)
            result[chunk] = torch_pooled(layers, states, mask).numpy()
    return np.asarray(result[rows])


def val_scores(
    train: TrainingData,
    val: TrainingData,
    train_vectors: np.ndarray,
    val_vectors: np.ndarray,
    intents: list[str],
    oos: str | None,
    regularization: float = 1.0,
) -> tuple[np.ndarray, np.ndarray, float, str | None, list[str]]:
    """The classifier fitted on `train`: its scores of `val`, the true intents, fit CPU s."""
    started = cpu()
    config = ClassifierConfig(
        min_out_of_scope_recall=0.7 if oos else None, regularization=regularization
    )
    texts = [e.text for e in train.examples]
    targets = np.searchsorted(intents, [e.intent for e in train.examples])
    fitted = _fit(texts, train_vectors, targets, len(intents), config)
    held, scores = _validation_scores(val, val_vectors, None, intents, fitted, config)  # type: ignore[arg-type]
    return held, scores, cpu() - started, oos, intents


def summarize(
    name: str,
    held: np.ndarray,
    scores: np.ndarray,
    fit_cpu_s: float,
    oos: str | None,
    intents: list[str],
) -> dict[str, Any]:
    top = scores.argmax(1)
    result: dict[str, Any] = {"fit_cpu_s": round(fit_cpu_s, 1)}
    if oos:
        o = intents.index(oos)
        in_scope = held != o
        result["top1_in_scope"] = round(float(np.mean(top[in_scope] == held[in_scope])), 4)
        policy = tune_fallback(scores, held, intents, min_out_of_scope_recall=0.7)
        from nlu.classifier import _HeldBackAnswers

        answers = _HeldBackAnswers.of(scores, held, intents, policy.temperature)
        answered = answers.answered(policy.threshold, policy.ambiguity)
        result["in_scope_at_70"] = round(
            float(np.mean(answered[in_scope] & answers.right[in_scope])), 4
        )
        result["oos_recall"] = round(float(np.mean(~answered[~in_scope])), 4)
    else:
        result["top1"] = round(float(np.mean(top == held)), 4)
    print(f"  {name}: {result}", flush=True)
    return result


def with_other_cs(
    key: str,
    label: str,
    train: TrainingData,
    val: TrainingData,
    vectors: np.ndarray,
    train_rows: np.ndarray,
    val_rows: np.ndarray,
    intents: list[str],
    oos: str | None,
    cs: list[float],
) -> dict[str, dict[str, Any]]:
    """`evaluate` of the same vectors once more for each SVM C in `cs` (`--also-c`)."""
    return {
        f"{key} C={c:g}": summarize(
            f"{label} C={c:g}",
            *val_scores(
                train, val, vectors[train_rows], vectors[val_rows], intents, oos, regularization=c
            ),
        )
        for c in cs
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("datasets", nargs="*", default=list(LOADERS))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--variants", default="frozen,layers,k1,k2")
    parser.add_argument("--layer-lr", type=float, default=5e-5)
    parser.add_argument("--head-lr", type=float, default=2e-3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--contrastive", choices=("supcon", "pairs"), default="supcon")
    parser.add_argument("--temperature", type=float, default=0.1)
    parser.add_argument("--time-layers", action="store_true")
    parser.add_argument(
        "--also-c",
        default="",
        help="other SVM C values (comma-separated) to score the frozen and adapted vectors with",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    variants = args.variants.split(",")
    other_cs = [float(c) for c in args.also_c.split(",") if c]

    import torch

    torch.set_num_threads(args.threads)
    data_dir = shared_data_dir()
    all_results: dict[str, Any] = {}
    if args.out.exists():
        all_results = json.loads(args.out.read_text(encoding="utf-8"))
    for name in args.datasets:
        train, val, oos = split(name, data_dir, args.split_seed)
        texts = [e.text for e in train.examples] + [e.text for e in val.examples]
        intents = sorted({e.intent for e in train.examples})
        train_rows = np.arange(len(train.examples))
        val_rows = np.arange(len(train.examples), len(texts))
        targets = np.searchsorted(intents, [e.intent for e in train.examples]).astype(np.int64)
        print(f"{name}: {len(train_rows)} train, {len(val_rows)} validation", flush=True)
        started = cpu()
        ks = [int(v[1:]) for v in variants if v.startswith("k")]
        cs = [int(v[1:]) for v in variants if v.startswith("c")]
        needed = {LAYERS - k for k in ks + cs} | ({4, 5} if args.time_layers else set())
        frozen = FrozenPass(texts, tuple(sorted(needed)))
        key = name if args.split_seed == 0 else f"{name}@split{args.split_seed}"
        results: dict[str, Any] = all_results.get(key, {})
        results.update(
            {
                "train": len(train_rows),
                "validation": len(val_rows),
                "split_seed": args.split_seed,
                "frozen_pass_cpu_s": round(cpu() - started, 1),
                "epochs": args.epochs,
                "layer_lr": args.layer_lr,
                "head_lr": args.head_lr,
                "threads": args.threads,
            }
        )
        print(f"  frozen pass: {results['frozen_pass_cpu_s']} CPU s", flush=True)
        base = frozen.sentence_vectors()
        if args.time_layers:
            results["numpy_layers"] = time_numpy_layers(frozen)
        frozen_scores: tuple[np.ndarray, np.ndarray, float, str | None, list[str]] | None = None
        if "frozen" in variants:
            frozen_scores = val_scores(train, val, base[train_rows], base[val_rows], intents, oos)
            results["frozen"] = summarize("frozen", *frozen_scores)
            results.update(
                with_other_cs(
                    "frozen",
                    "frozen",
                    train,
                    val,
                    base,
                    train_rows,
                    val_rows,
                    intents,
                    oos,
                    other_cs,
                )
            )
        if "layers" in variants:
            for chosen in ((5, 6), (3, 4, 5, 6)):
                stacked = np.hstack([normalize(frozen.pooled[i]) for i in chosen]) / math.sqrt(
                    len(chosen)
                )
                layers_key = "layers_" + "".join(map(str, chosen))
                results[layers_key] = summarize(
                    layers_key,
                    *val_scores(train, val, stacked[train_rows], stacked[val_rows], intents, oos),
                )
        for k in ks:
            layers, head, seconds = adapt(
                frozen,
                k,
                train_rows,
                targets,
                len(intents),
                args.epochs,
                args.layer_lr,
                args.head_lr,
            )
            adapted = normalize(adapted_vectors(frozen, layers, k, np.arange(len(texts))))
            import torch

            with torch.no_grad():
                logits = head(torch.from_numpy(adapted_vectors(frozen, layers, k, val_rows)))
            held = np.searchsorted(intents, [e.intent for e in val.examples])
            head_top1 = float(np.mean(logits.argmax(1).numpy() == held))
            entry: dict[str, Any] = {
                "train_cpu_s": round(seconds, 1),
                "head_top1": round(head_top1, 4),
            }
            print(f"  k={k}: softmax head top-1 {head_top1:.4f}, {seconds:.0f} CPU s", flush=True)
            adapted_scores = val_scores(
                train, val, adapted[train_rows], adapted[val_rows], intents, oos
            )
            entry["adapted"] = summarize(f"k{k} adapted", *adapted_scores)
            if frozen_scores is not None:
                # Two SVMs, one on each vector, voting by the sum of their margins.
                entry["ensemble"] = summarize(
                    f"k{k} adapted + frozen ensemble",
                    held,
                    frozen_scores[1] + adapted_scores[1],
                    frozen_scores[2] + adapted_scores[2],
                    oos,
                    intents,
                )
            both = np.hstack([base, adapted]) / math.sqrt(2)
            entry["adapted+frozen"] = summarize(
                f"k{k} adapted+frozen",
                *val_scores(train, val, both[train_rows], both[val_rows], intents, oos),
            )
            entry.update(
                with_other_cs(
                    "adapted",
                    f"k{k} adapted",
                    train,
                    val,
                    adapted,
                    train_rows,
                    val_rows,
                    intents,
                    oos,
                    other_cs,
                )
            )
            defaults = (args.epochs, args.layer_lr, args.head_lr) == (3, 5e-5, 2e-3)
            suffix = "" if defaults else f"_lr{args.layer_lr:g}_e{args.epochs}"
            results[f"k{k}{suffix}"] = entry
            save(args.out, all_results, key, results)
        for k in cs:
            layers, seconds, losses = adapt_contrastive(
                frozen,
                k,
                train_rows,
                targets,
                args.epochs,
                args.layer_lr,
                args.contrastive,
                args.temperature,
            )
            adapted = normalize(adapted_vectors(frozen, layers, k, np.arange(len(texts))))
            variant = f"c{k}_{args.contrastive}_lr{args.layer_lr:g}_e{args.epochs}"
            entry = {
                "train_cpu_s": round(seconds, 1),
                "epoch_losses": losses,
                "temperature": args.temperature if args.contrastive == "supcon" else None,
            }
            print(f"  {variant}: {seconds:.0f} CPU s", flush=True)
            entry["adapted"] = summarize(
                f"{variant} adapted",
                *val_scores(train, val, adapted[train_rows], adapted[val_rows], intents, oos),
            )
            both = np.hstack([base, adapted]) / math.sqrt(2)
            entry["adapted+frozen"] = summarize(
                f"{variant} adapted+frozen",
                *val_scores(train, val, both[train_rows], both[val_rows], intents, oos),
            )
            results[variant] = entry
            save(args.out, all_results, key, results)
        save(args.out, all_results, key, results)


def save(out: Path, all_results: dict[str, Any], key: str, results: dict[str, Any]) -> None:
    """Written after every variant, so a run stopped for time keeps what it measured."""
    all_results[key] = results
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(all_results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
