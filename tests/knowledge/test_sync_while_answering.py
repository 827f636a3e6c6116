"""An editor syncs while employees are asking: answers keep coming, never from half an index."""

from __future__ import annotations

import threading
from pathlib import Path

from bot.assistant import Decision, IncomingMessage
from bot.kb_cli import sync_folder
from bot.runtime import build_tier0
from knowledge.index import KnowledgeIndex
from nlu.embedding import SentenceEmbedder
from tests.conftest import make_settings
from tests.knowledge.editors import write_kb

SYNCS = 3


def test_answers_keep_coming_during_syncs_and_every_index_read_is_whole(
    home: Path, tmp_path: Path, embedder: SentenceEmbedder
) -> None:
    kb = write_kb(tmp_path / "kb")
    settings = make_settings(home, TIER0_KB_DIR=str(kb))
    tier0 = build_tier0(settings, embedder)
    vpn = kb / "vpn-connect.md"
    original = vpn.read_text()
    failures: list[BaseException] = []

    def editor_syncs() -> None:
        try:
            for round_number in range(SYNCS):
                # Each round adds a passage, so every build differs from the one before.
                vpn.write_text(
                    original + f"\n## Round {round_number}\nIf the portal field is empty, type "
                    "vpn.northwind.example again and reconnect.\n"
                )
                sync_folder(settings, "editor")
        except BaseException as error:  # surfaced in the main thread's assertion
            failures.append(error)

    syncing = threading.Thread(target=editor_syncs)
    syncing.start()
    answers = 0
    snapshots = 0
    while syncing.is_alive() or answers < 3:
        reply = tier0.assistant.respond(
            IncomingMessage(
                f"console:eve:{answers}", "eve", "how do I connect to the vpn from home"
            )
        )
        assert reply.decision is Decision.ANSWER
        assert reply.articles[0].article_id == "vpn-connect"
        answers += 1

        # A replica starting now loads whatever build CURRENT names: it must be complete.
        loaded = KnowledgeIndex.load(settings.index_dir)
        if loaded is not None:
            snapshots += 1
            assert loaded.vectors.shape[0] == len(loaded.chunks)
            assert {chunk.article_id for chunk in loaded.chunks} == set(loaded.article_fingerprints)
            assert set(loaded.article_fingerprints) == {
                "vpn-connect",
                "printer-jam",
                "password-reset",
            }
    syncing.join()

    assert not failures, failures
    assert answers >= 3 and snapshots >= 1
    final = KnowledgeIndex.load(settings.index_dir)
    assert final is not None
    assert any(f"Round {SYNCS - 1}" in chunk.heading for chunk in final.chunks)
