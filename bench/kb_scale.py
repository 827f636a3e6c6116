"""How the knowledge index scales: generated KBs of 1k, 10k and 100k articles, and 1M passages.

For each KB size (each in its own process, so peak memory is its own):
  build time (with a progress bar), one-article update time (edit, embed, swap, persist),
  question → ranked hits p50/p95 including the embedding, cold load of the persisted
  index, and peak resident memory.
For 1M passages: an index of synthetic vectors (embedding 1M texts would take hours on
this CPU): build time, dense search p50/p95, and recall@5 of the approximate index
(product-quantization prefilter + exact re-rank) against exact search, dense search
wall and CPU time, and the load average while it ran.

"q" is message → ranked hits as the assistant computes them (synonyms, embedding, hybrid
search, title re-rank); "cold" is a new process from start to its first ranked hits on
the persisted index (imports, index and embedder loaded, one question).

Embedding: the bulk build uses a fast stand-in embedder (hashed words, the model's
dimension) — embedding 50k-500k passages with all-MiniLM-L6-v2 takes hours on two
shared cores — and the real model's throughput, measured on 512 of the passages, gives
the build time it would take ("build s, model"). The one-article update and every
question use the real model, so those timings are real. Latencies are given as wall
time and as process CPU time (less sensitive to other jobs on the machine).

    python bench/kb_scale.py            # 1k, 10k, 100k articles and 1M passages
    python bench/kb_scale.py --quick    # 1k and 10k only
    python bench/kb_scale.py --million  # 1M passages only
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from knowledge.articles import Article  # noqa: E402
from knowledge.chunking import Chunk  # noqa: E402
from nlu.embedding import Vectors  # noqa: E402

if TYPE_CHECKING:
    from knowledge.index import KnowledgeIndex, SearchHit
    from nlu.embedding import Embedder

PRODUCTS = [
    "VPN client",
    "laptop",
    "printer",
    "Wi-Fi",
    "Outlook",
    "Teams",
    "Slack",
    "Zoom",
    "OneDrive",
    "SharePoint",
    "Jira",
    "Confluence",
    "GitHub",
    "Okta",
    "badge",
    "monitor",
    "docking station",
    "headset",
    "iPhone",
    "Android phone",
    "authenticator app",
    "password manager",
    "shared drive",
    "mailbox",
    "calendar",
    "browser",
    "antivirus",
    "BitLocker",
    "FileVault",
    "MDM profile",
    "Citrix",
    "remote desktop",
    "scanner",
    "webcam",
    "keyboard",
    "Salesforce",
    "SAP",
    "Workday",
    "Tableau",
    "Adobe Acrobat",
    "Photoshop",
    "Excel",
    "PowerPoint",
    "Windows",
    "macOS",
]
ACTIONS = [
    "set up",
    "reset",
    "install",
    "update",
    "remove",
    "connect",
    "configure",
    "repair",
    "request",
    "renew",
    "share",
    "sync",
    "back up",
    "restore",
    "unlock",
    "enroll",
    "migrate",
    "replace",
    "troubleshoot",
    "enable",
]
PROBLEMS = [
    "keeps disconnecting",
    "is very slow",
    "shows an error",
    "asks for the password again",
    "will not start",
    "cannot find the server",
    "freezes after login",
    "drops the call",
    "says access denied",
    "prints blank pages",
    "does not sync",
    "shows a certificate warning",
]
STEPS = [
    "Open the settings page and choose the account tab.",
    "Restart the device and sign in again.",
    "Check that the cable is plugged in firmly.",
    "Sign out, clear the cache and sign back in.",
    "Install the latest version from the software center.",
    "Approve the prompt on your phone.",
    "Ask your manager to approve the request in the portal.",
    "Post in the help channel if it still fails.",
    "Write down the error code shown on the screen.",
    "Connect to the office network or the VPN first.",
]


def generate_articles(count: int, seed: int = 1) -> list[Article]:
    """IT-help-desk-like articles with a rare code word each, shaped like the real
    knowledge bases here: a numbered list of steps that is sometimes longer than one
    passage, and one to three problems under their own headings, about six passages an
    article (the sample KB has 6.9 at 400 characters, it-kb 5.5)."""
    rng = random.Random(seed)
    articles = []
    for number in range(count):
        product, action = rng.choice(PRODUCTS), rng.choice(ACTIONS)
        code = f"{product.split()[0].lower()}-{number:06d}"
        title = f"How to {action} the {product} ({code})"
        steps = rng.sample(STEPS, rng.randint(3, len(STEPS)))
        problems = [
            f"### The {product} {problem}\n" + " ".join(rng.sample(STEPS, 2))
            for problem in rng.sample(PROBLEMS, rng.randint(1, 3))
        ]
        sections = [
            "## Before you start\n" + " ".join(rng.sample(STEPS, 3)),
            "## Steps\n" + "\n".join(f"{n}. {step}" for n, step in enumerate(steps, 1)),
            "## Common problems\n\n" + "\n\n".join(problems),
            "## Still stuck?\n" + " ".join(rng.sample(STEPS, 3)),
        ]
        body = f"This guide explains how to {action} the {product}.\n\n" + "\n\n".join(sections)
        articles.append(Article(code, title, body, Path(f"{code}.md")))
    return articles


class StandInEmbedder:
    """Hashed words into 384 dimensions: the real model's shape at a fraction of its cost."""

    dimension = 384

    def embed(self, texts: Sequence[str]) -> Vectors:
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                vectors[row, zlib.crc32(word.encode()) % self.dimension] += 1.0
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)
        return vectors


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def progress_bar(label: str):  # type: ignore[no-untyped-def]
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    progress = Progress(
        f"[bold]{label}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=True,
        redirect_stdout=False,
    )
    return progress


def one_thread_per_request() -> None:
    """A question is one short sentence: splitting it over threads only adds waiting
    (on two cores shared with other jobs, two threads made one embedding ~20x slower than
    one). The embedder uses one thread per call already; faiss searches get one too."""
    import faiss

    faiss.omp_set_num_threads(1)


def measure_kb(count: int) -> dict[str, float | str]:
    from knowledge.index import KnowledgeIndex, build_index
    from nlu.embedding import shared_embedder

    one_thread_per_request()

    model = shared_embedder()
    articles = generate_articles(count)
    bulk = StandInEmbedder()
    with tempfile.TemporaryDirectory() as home, progress_bar(f"{count:,} articles") as bar:
        task = bar.add_task("embed", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        started = time.perf_counter()
        index = build_index(articles, bulk, "bench", progress=advance)
        index.save(Path(home))
        build_seconds = time.perf_counter() - started
        bar.update(task, visible=False)
        sample = [chunk.embedding_text for chunk in index._snapshot.base.chunks[:512]]
        began = time.perf_counter()
        model.embed(sample)
        per_passage = (time.perf_counter() - began) / len(sample)

        edited = articles[count // 2]
        edited = Article(edited.id, edited.title, edited.body + "\n\nUpdated today.", edited.path)
        started, started_cpu = time.perf_counter(), time.process_time()
        index.add_or_update(edited, model)
        index.save(Path(home))
        update_seconds = time.perf_counter() - started
        update_cpu = time.process_time() - started_cpu

        rng = random.Random(5)
        questions = [
            f"my {rng.choice(PRODUCTS)} {rng.choice(PROBLEMS)}, how do i {rng.choice(ACTIONS)} it"
            for _ in range(200)
        ]
        embedding_cpu: list[float] = []
        hits_of = ranked_hits(index, model, embedding_cpu)
        for question in questions[:5]:  # warm up
            hits_of(question)
        timings, cpu = [], []
        embedding_cpu.clear()
        for question in questions:
            began, began_cpu = time.perf_counter(), time.process_time()
            hits_of(question)
            timings.append((time.perf_counter() - began) * 1000)
            cpu.append((time.process_time() - began_cpu) * 1000)

        started = time.perf_counter()
        loaded = KnowledgeIndex.load(Path(home))
        load_seconds = time.perf_counter() - started
        assert loaded is not None and loaded.article_count == count
        cold_wall, cold_cpu = cold_start(Path(home), questions[0])
    return {
        "articles": count,
        "passages": index.chunk_count,
        "build_s": round(build_seconds, 1),
        "build_model_s": round(build_seconds + per_passage * index.chunk_count),
        "update_s": round(update_seconds, 3),
        "update_cpu_s": round(update_cpu, 3),
        "query_p50_ms": round(statistics.median(timings), 1),
        "query_p95_ms": round(percentile(timings, 0.95), 1),
        "query_cpu_p50_ms": round(statistics.median(cpu), 1),
        "query_cpu_p95_ms": round(percentile(cpu, 0.95), 1),
        # The embedding's CPU share of each question, and the rest (search, re-rank...).
        "embed_cpu_p50_ms": round(statistics.median(embedding_cpu) * 1000, 1),
        "rest_cpu_p50_ms": round(
            statistics.median(
                total - embedding * 1000
                for total, embedding in zip(cpu, embedding_cpu, strict=True)
            ),
            1,
        ),
        "load_average": round(os.getloadavg()[0], 1),
        "load_s": round(load_seconds, 2),
        "cold_s": round(cold_wall, 2),
        "cold_cpu_s": round(cold_cpu, 2),
        "peak_mb": round(peak_memory_mb()),
    }


def ranked_hits(
    index: KnowledgeIndex, model: Embedder, embedding_cpu: list[float] | None = None
) -> Callable[[str], list[SearchHit]]:
    """Message → ranked hits as the assistant computes them (bot/assistant.py): synonyms
    spelled as the articles do, one embedding, the hybrid search of the re-rank depth with
    the synonyms' canonical words added, the titles' re-rank, and whether each of the
    three kept covers the question's words (the decision's uncovered_rarity). (The
    intent and the answer-or-escalate decision come after the hits.) With
    `embedding_cpu`, each embedding's CPU seconds are appended to it."""
    from knowledge.lexical import expand_query
    from knowledge.ranking import RERANK_DEPTH, rerank_by_title
    from nlu.training_data import BUNDLED_NLU_DATA, load_training_data
    from nlu.understanding import Interpreter

    synonyms = load_training_data([BUNDLED_NLU_DATA]).synonyms
    interpreter = Interpreter(model, classifier=None, synonyms=synonyms)  # type: ignore[arg-type]

    def hits_of(message: str) -> list[SearchHit]:
        normalized = interpreter.normalize(message)
        began = time.process_time()
        vector = model.embed([normalized])[0]
        if embedding_cpu is not None:
            embedding_cpu.append(time.process_time() - began)
        query_text = expand_query(message, normalized)
        hits = index.search(vector, RERANK_DEPTH, query_text=query_text)
        return index.with_coverage(rerank_by_title(hits, query_text)[:3], query_text)

    return hits_of


COLD_START = """
import sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
from knowledge.index import KnowledgeIndex
from knowledge.lexical import expand_query
from knowledge.ranking import RERANK_DEPTH, rerank_by_title
from nlu.embedding import shared_embedder
index = KnowledgeIndex.load(Path({home!r}))
vector = shared_embedder().embed([{question!r}])[0]
hits = rerank_by_title(index.search(vector, RERANK_DEPTH, query_text={question!r}), {question!r})
assert hits
"""


def cold_start(home: Path, question: str) -> tuple[float, float]:
    """A new process from start to its first ranked hits on the persisted index: wall
    and CPU seconds (imports, the index and the embedder loaded, one question)."""
    code = COLD_START.format(root=str(ROOT), home=str(home), question=question)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu


def measure_million(count: int = 1_000_000) -> dict[str, float | str]:
    from knowledge.index import KnowledgeIndex, exact_neighbours, stand_in_questions

    rng = np.random.default_rng(2)
    # Passages of one KB cluster by topic: 20k topic centres, each passage near one.
    centres = rng.normal(size=(20_000, 384)).astype(np.float32)
    vectors = np.empty((count, 384), dtype=np.float32)
    for start in range(0, count, 100_000):
        size = min(100_000, count - start)
        block = centres[rng.integers(0, len(centres), size)]
        block += 0.6 * rng.normal(size=block.shape).astype(np.float32)
        vectors[start : start + size] = block / np.linalg.norm(block, axis=1, keepdims=True)
    chunks = [Chunk(f"a{n // 4}", "t", "", "") for n in range(count)]
    fingerprints = {f"a{n}": "x" for n in range(count // 4)}

    started, started_cpu = time.perf_counter(), time.process_time()
    index = KnowledgeIndex(chunks, vectors, fingerprints, {}, "synthetic")
    build_seconds = time.perf_counter() - started
    build_cpu = time.process_time() - started_cpu
    one_thread_per_request()
    # Questions at a question's distance from a passage (cosine 0.7), other ones than
    # the index tuned its probes on.
    queries = stand_in_questions(vectors, 300, seed=99)
    truth = exact_neighbours(vectors, queries, 5)
    dense = index._snapshot.base.dense
    timings, cpu, recalls = [], [], []
    for query, wanted in zip(queries, truth, strict=True):
        began, began_cpu = time.perf_counter(), time.process_time()
        _, rows = dense.search(query.reshape(1, -1), 5)
        timings.append((time.perf_counter() - began) * 1000)
        cpu.append((time.process_time() - began_cpu) * 1000)
        recalls.append(len(set(rows[0].tolist()) & set(wanted.tolist())) / 5)
    whole = []
    for query in queries[:100]:
        began = time.perf_counter()
        index.search(query, limit=5)
        whole.append((time.perf_counter() - began) * 1000)
    return {
        "passages": count,
        "index": describe(dense),
        "build_s": round(build_seconds, 1),
        "build_cpu_s": round(build_cpu, 1),
        "search_p50_ms": round(statistics.median(timings), 2),
        "search_p95_ms": round(percentile(timings, 0.95), 2),
        "search_cpu_p50_ms": round(statistics.median(cpu), 2),
        "search_cpu_p95_ms": round(percentile(cpu, 0.95), 2),
        "load_average": round(os.getloadavg()[0], 1),
        "hits_p95_ms": round(percentile(whole, 0.95), 2),
        "recall_at_5": round(float(np.mean(recalls)), 3),
        "peak_mb": round(peak_memory_mb()),
    }


def describe(dense: object) -> str:
    from knowledge.index import BinaryPrefilter, ProductQuantizedPrefilter

    if isinstance(dense, BinaryPrefilter):
        return f"binary prefilter, {dense.candidates} candidates re-ranked exactly"
    if isinstance(dense, ProductQuantizedPrefilter):
        groups = dense.codes.M
        return (
            f"product-quantization prefilter ({groups} 4-bit codes), "
            f"{dense.candidates} candidates re-ranked exactly"
        )
    return "exact"


def run_child(*arguments: str) -> dict[str, float | str]:
    output = subprocess.run(
        [sys.executable, __file__, *arguments],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    result: dict[str, float | str] = json.loads(output.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1k and 10k articles only")
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(size) for size in text.split(",")],
        help="these knowledge base sizes only, comma-separated (e.g. 100000); no 1M run",
    )
    parser.add_argument(
        "--million", action="store_true", help="the 1M passages part only (dense search)"
    )
    parser.add_argument("--child-articles", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-million", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_articles:
        print(json.dumps(measure_kb(args.child_articles)))
        return
    if args.child_million:
        print(json.dumps(measure_million()))
        return

    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]
    if args.sizes:
        sizes = args.sizes
    if args.million:
        sizes = []
    print("Knowledge base scale (2 shared CPU cores: timings are noisy)")
    header = (
        f"{'articles':>9s} {'passages':>9s} {'build s':>8s} {'build s, model':>15s} "
        f"{'update s':>9s} {'cpu':>6s} {'q p50 ms':>9s} {'q p95 ms':>9s} "
        f"{'q cpu p50':>9s} {'p95':>5s} {'embed/rest cpu p50':>19s} "
        f"{'load s':>7s} {'cold s':>7s} {'cpu':>5s} {'peak MB':>8s} {'load avg':>8s}"
    )
    if sizes:
        print(header)
    for size in sizes:
        r = run_child("--child-articles", str(size))
        print(
            f"{r['articles']:>9,} {r['passages']:>9,} {r['build_s']:>8} "
            f"{r['build_model_s']:>15} {r['update_s']:>9} {r['update_cpu_s']:>6} "
            f"{r['query_p50_ms']:>9} "
            f"{r['query_p95_ms']:>9} {r['query_cpu_p50_ms']:>9} {r['query_cpu_p95_ms']:>5} "
            f"{str(r['embed_cpu_p50_ms']) + ' / ' + str(r['rest_cpu_p50_ms']):>19} "
            f"{r['load_s']:>7} "
            f"{r['cold_s']:>7} {r['cold_cpu_s']:>5} {r['peak_mb']:>8} {r['load_average']:>8}",
            flush=True,
        )
    if not args.quick and not args.sizes:
        m = run_child("--child-million")
        print(
            f"\n1M passages (synthetic clustered unit vectors): {m['index']}, built in "
            f"{m['build_s']} s ({m['build_cpu_s']} s CPU); dense search p50 "
            f"{m['search_p50_ms']} ms, p95 {m['search_p95_ms']} ms "
            f"(CPU p50 {m['search_cpu_p50_ms']} ms, p95 {m['search_cpu_p95_ms']} ms; "
            f"load average {m['load_average']}); whole ranked hits p95 {m['hits_p95_ms']} ms; "
            f"recall@5 vs exact {m['recall_at_5']}; peak {m['peak_mb']} MB"
        )


if __name__ == "__main__":
    main()
