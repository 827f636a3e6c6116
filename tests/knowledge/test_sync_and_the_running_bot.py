"""`kb sync` and the bot join up: the golden check searches as the bot answers, a sync
re-indexes only what changed, and a bot already running answers from the new build."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import pytest

from bot.assistant import Decision, IncomingMessage, Reply
from bot.kb_cli import sync_folder
from bot.runtime import Tier0, build_tier0
from knowledge.answerability import FEATURES, OUTCOMES, AnswerCalibration, load_calibration
from knowledge.articles import ArticleError
from knowledge.index import KnowledgeIndex, build_index
from nlu.embedding import SentenceEmbedder, Vectors
from tests.conftest import make_settings
from tests.knowledge.editors import Editor, write_kb
from tests.nlu.fake_embedder import HashingEmbedder


class CountingEmbedder:
    """The real model, remembering every text it was asked to embed."""

    def __init__(self, real: SentenceEmbedder) -> None:
        self.real = real
        self.dimension = real.dimension
        self.model_name = real.model_name
        self.embedded: list[str] = []

    def embed(self, texts: Sequence[str]) -> Vectors:
        self.embedded.extend(texts)
        return self.real.embed(texts)


def ask(tier0: Tier0, text: str, who: str = "eve") -> Reply:
    return tier0.assistant.respond(IncomingMessage(f"console:{who}:{text}", who, text))


@pytest.fixture
def editor(home: Path, tmp_path: Path) -> Editor:
    return Editor(home=home, kb=write_kb(tmp_path / "kb"))


# -- 1. the golden check asks the way the bot answers ---------------------------------

# An article known by its error code: the words match exactly, the meaning of a hex
# code does not, so only a search that reads the words (BM25) puts it first.
ERROR_CODE_ARTICLE = """\
---
id: share-error
title: Shared folder cannot be opened
status: published
review_by: 2099-01-01
questions:
  - windows says 0x80070035
---

# Shared folder cannot be opened

If Explorer shows 0x80070035 for \\\\files01\\team, reconnect to the office network
first, then map the folder again from the Northwind start page.
"""


def test_golden_question_found_by_its_words_passes_as_the_bot_would_answer_it(
    editor: Editor, embedder: SentenceEmbedder
) -> None:
    editor.file("share-error").write_text(ERROR_CODE_ARTICLE)
    question = "windows says 0x80070035"

    synced = editor.kb_command("sync")
    checked = editor.kb_command("check", "--json")

    assert synced.exit_code == 0, synced.output
    assert checked.exit_code == 0, checked.output
    tier0 = build_tier0(make_settings(editor.home, TIER0_KB_DIR=str(editor.kb)), embedder)
    # The premise: by meaning alone another article comes first ...
    by_meaning = tier0.knowledge.search(embedder.embed([question])[0], limit=5)
    assert by_meaning[0].article_id != "share-error"
    # ... yet the bot's search (meaning and words) finds it first, and so does the check.
    assert tier0.assistant.search_knowledge(question)[0].article_id == "share-error"
    assert json.loads(checked.stdout) == {"checked": 4, "passed": 4, "failures": []}


def tuned_calibration() -> AnswerCalibration:
    """An answer-or-escalate model as a KB's own tuning would store it."""
    weights = tuple(
        tuple(0.1 * (row + 1) * (column % 3 - 1) for column in range(len(FEATURES)))
        for row in range(len(OUTCOMES))
    )
    return AnswerCalibration(weights, (-1.5, 0.5, 1.0), 0.6, "dev set")


# -- 2. kb sync updates the index article by article ----------------------------------


def test_sync_re_embeds_only_the_changed_article_and_keeps_the_calibration(
    editor: Editor, embedder: SentenceEmbedder
) -> None:
    settings = make_settings(editor.home, TIER0_KB_DIR=str(editor.kb))
    sync_folder(settings, "alice", embedder=embedder)
    before = KnowledgeIndex.load(settings.index_dir)
    assert before is not None
    tuned = tuned_calibration()
    before.calibration = tuned.as_dict()
    before.save(settings.index_dir)
    printer = editor.file("printer-jam")
    printer.write_text(
        printer.read_text() + "\n## Still jammed\nCall the facilities desk on 4455.\n"
    )

    counting = CountingEmbedder(embedder)
    sync_folder(settings, "alice", embedder=counting)

    # The edited article's passages were embedded (besides the golden questions asked
    # afterwards); no passage of the two untouched articles was.
    assert any(text.startswith("Clear a paper jam") for text in counting.embedded)
    untouched = ("Connect to the VPN from home", "Reset a forgotten password")
    assert not [text for text in counting.embedded if text.startswith(untouched)]
    after = KnowledgeIndex.load(settings.index_dir)
    assert after is not None
    assert set(after.article_fingerprints) == {"vpn-connect", "printer-jam", "password-reset"}
    hits = after.search(embedder.embed(["printer still jammed"])[0], query_text="facilities 4455")
    assert hits[0].article_id == "printer-jam" and "4455" in hits[0].passage
    # The answer-or-escalate model stored with the index survives the update (unless
    # tier0 ships a newer tuning, which then takes its place).
    shipped = load_calibration()
    assert after.calibration == (shipped or tuned).as_dict()


def test_a_stored_calibration_is_kept_only_while_it_can_be_read() -> None:
    index = build_index([], HashingEmbedder(), "hashing")
    tuned = tuned_calibration()
    index.calibration = tuned.as_dict()

    assert not index.keep_calibration_valid(None)  # nothing newer shipped: kept
    assert index.calibration == tuned.as_dict()

    index.calibration = {"features": ["cosine"], "weights": [1.0], "bias": 0.0}
    assert index.keep_calibration_valid(None)  # trained on other features: dropped
    assert index.calibration is None

    assert index.keep_calibration_valid(tuned.as_dict())  # a newer tuning replaces it
    assert index.calibration == tuned.as_dict()


def test_sync_of_an_unchanged_folder_embeds_nothing_and_says_so(
    editor: Editor, embedder: SentenceEmbedder
) -> None:
    editor.kb_command("sync")
    counting = CountingEmbedder(embedder)

    sync_folder(make_settings(editor.home, TIER0_KB_DIR=str(editor.kb)), None, embedder=counting)

    # Only the golden questions were embedded, to be asked; no passage was.
    assert sorted(counting.embedded) == [
        "I forgot my password",
        "how do I connect to the vpn from home",
        "the printer says paper jam",
    ]
    again = editor.kb_command("sync")
    assert "already up to date" in again.stdout


# -- 3. a running bot picks up what another process synced ----------------------------


def test_a_running_bot_answers_from_the_new_build_without_a_restart(
    editor: Editor, embedder: SentenceEmbedder
) -> None:
    editor.kb_command("sync")
    running = build_tier0(make_settings(editor.home, TIER0_KB_DIR=str(editor.kb)), embedder)
    question = "how do I book a meeting room"
    assert ask(running, question, "ann").decision is Decision.ESCALATE
    assert ask(running, "the printer says paper jam", "ann").articles[0].article_id == (
        "printer-jam"
    )

    # An editor elsewhere adds an article and retires another: another process syncs.
    editor.file("room-booking").write_text(
        "---\nid: room-booking\ntitle: Book a meeting room\nstatus: published\n---\n\n"
        "# Book a meeting room\n\nIn Outlook, open a new meeting, click Room Finder, pick "
        "the building and a free meeting room, and send the invitation.\n"
    )
    retired = editor.kb_command("retire", "printer-jam", "--author", "alice")
    assert retired.exit_code == 0, retired.output

    answered = ask(running, question, "bob")
    assert answered.decision is Decision.ANSWER
    assert answered.articles[0].article_id == "room-booking"
    jam = ask(running, "the printer says paper jam", "bob")
    assert all(hit.article_id != "printer-jam" for hit in jam.articles)
    assert "printer-jam" not in running.knowledge.article_fingerprints


def test_a_broken_article_does_not_keep_the_bot_from_starting_on_its_last_good_index(
    editor: Editor, embedder: SentenceEmbedder, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(editor.home, TIER0_KB_DIR=str(editor.kb))
    build_tier0(settings, embedder)  # started once: the index is on disk
    broken = editor.file("printer-jam")
    broken.write_text(broken.read_text().replace("title:", "titel:"))  # a typo'd key

    with caplog.at_level(logging.ERROR, logger="bot.runtime"):
        restarted = build_tier0(settings, embedder)

    answer = ask(restarted, "the printer says paper jam", "ann")
    assert answer.articles[0].article_id == "printer-jam"  # as last synced
    assert "answering from the last good index" in caplog.text
    assert str(broken) in caplog.text and "missing title" in caplog.text
    # The editors' commands still refuse the folder, naming the file.
    for command in ("sync", "build"):
        refused = editor.kb_command(command)
        assert refused.exit_code == 2 and "printer-jam.md" in refused.output, command


def test_with_no_index_of_the_folder_yet_a_broken_article_stops_the_start_with_its_name(
    editor: Editor, embedder: SentenceEmbedder
) -> None:
    # The home holds an index of the bundled sample, not of this folder: not a fallback.
    assert (editor.home / "index" / "CURRENT").exists()
    broken = editor.file("printer-jam")
    broken.write_text(broken.read_text().replace("title:", "titel:"))

    with pytest.raises(ArticleError, match=r"printer-jam\.md: front matter is missing title"):
        build_tier0(make_settings(editor.home, TIER0_KB_DIR=str(editor.kb)), embedder)
