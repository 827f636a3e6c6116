"""How `tier0 kb gaps` should cut its clusters: distances between questions on one topic
and on different topics, and the groups each candidate distance threshold makes.

Run: .venv/bin/python bench/gap_clusters.py  (prints figures; nothing is asserted)
"""

from __future__ import annotations

import itertools

import numpy as np
from sklearn.cluster import AgglomerativeClustering

from nlu.embedding import shared_embedder

TOPICS = {
    "rooms": [
        "how do I book a meeting room",
        "how can I reserve a conference room for tomorrow",
        "book a meeting room for 10 people",
        "where do I reserve meeting rooms",
    ],
    "expenses": [
        "my expense report was rejected in concur",
        "concur rejected my travel expenses",
        "how do I submit expenses",
        "where do I upload receipts for reimbursement",
    ],
    "vpn-drops": [
        "vpn keeps disconnecting",
        "my vpn drops every few minutes",
        "globalprotect disconnects all the time",
    ],
    "vpn-install": [
        "how do I install the vpn client",
        "where can I download globalprotect",
        "need the vpn app on my new laptop",
    ],
    "parking": [
        "how do I get a parking permit",
        "where do I park at the office",
        "parking pass for the garage",
    ],
}


def main() -> None:
    embedder = shared_embedder()
    vectors = {topic: embedder.embed(questions) for topic, questions in TOPICS.items()}
    within = [
        1 - float(a @ b) for topic in vectors for a, b in itertools.combinations(vectors[topic], 2)
    ]
    print(
        f"same topic: cosine distance min {min(within):.2f} "
        f"mean {np.mean(within):.2f} max {max(within):.2f}"
    )
    for first, second in itertools.combinations(vectors, 2):
        between = [1 - float(a @ b) for a in vectors[first] for b in vectors[second]]
        print(f"{first} vs {second}: min {min(between):.2f} mean {np.mean(between):.2f}")
    labels_of_rows = [topic for topic, questions in TOPICS.items() for _ in questions]
    matrix = np.vstack(list(vectors.values()))
    for threshold in (0.45, 0.5, 0.55, 0.6, 0.65, 0.7):
        labels = AgglomerativeClustering(
            n_clusters=None, distance_threshold=threshold, metric="cosine", linkage="average"
        ).fit_predict(matrix)
        groups: dict[int, list[str]] = {}
        for label, topic in zip(labels, labels_of_rows, strict=True):
            groups.setdefault(int(label), []).append(topic)
        print(f"threshold {threshold}: {sorted(groups.values(), key=len, reverse=True)}")


if __name__ == "__main__":
    main()
