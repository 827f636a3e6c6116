"""Putting tier0 together from its settings: store, knowledge index, NLU model, assistant."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from bot.assistant import Assistant
from bot.config import Settings
from knowledge.answerability import AnswerCalibration, load_calibration
from knowledge.articles import ArticleError, load_articles
from knowledge.feedback import ArticleFeedbackLog
from knowledge.index import IndexChanges, KnowledgeIndex, load_or_build_index, sync_index
from knowledge.ranking import TitleMeanings
from nlu.classifier import ClassifierConfig, IntentClassifier, load_or_train
from nlu.embedding import Embedder, shared_embedder
from nlu.entities import EntityExtractor
from nlu.rasa_backend import RasaClient, RasaInterpreter
from nlu.tagger import load_or_train_tagger
from nlu.training_data import BUNDLED_NLU_DATA, TrainingData, load_training_data
from nlu.understanding import Interpreter
from tickets.catalog import CatalogService
from tickets.conversations import ConversationStore
from tickets.db import create_store_engine, make_session_factory, upgrade_schema
from tickets.outbox_sink import OutboxSink
from tickets.seed import ensure_desk_config
from tickets.service import TicketService

logger = logging.getLogger(__name__)

# Without a calibration (knowledge/calibration.json, see bench/eval_kb.py) the
# decision falls back to the best article's fused score against these thresholds.
ANSWER_THRESHOLD = 0.44
RELATED_THRESHOLD = 0.35
# An access or software request is answered from an article only on a strong match
# (the portal article); otherwise it becomes a ticket at once. See bench/decisions.py.
SELF_SERVICE_THRESHOLD = 0.50


@dataclass
class Tier0:
    settings: Settings
    assistant: Assistant
    tickets: TicketService
    session_factory: sessionmaker[Session]
    knowledge: KnowledgeIndex
    classifier: IntentClassifier
    index_rebuilt: bool


def embedder_name(embedder: Embedder) -> str:
    return getattr(embedder, "model_name", type(embedder).__name__)


def answer_calibration(knowledge: KnowledgeIndex) -> AnswerCalibration | None:
    """The answer-or-escalate model kept with the index (else the one shipped with tier0)."""
    if knowledge.calibration is not None:
        try:
            return AnswerCalibration.from_dict(knowledge.calibration)
        except (ValueError, KeyError, TypeError):
            pass
    return load_calibration()


def load_nlu_data(settings: Settings) -> TrainingData:
    return load_training_data([settings.nlu_data or BUNDLED_NLU_DATA])


NLU_BACKENDS = ("builtin", "rasa")


class NluBackendError(ValueError):
    """TIER0_NLU_BACKEND or TIER0_RASA_URL is not usable; the message says which."""


def choose_interpreter(settings: Settings, builtin: Interpreter) -> Interpreter:
    """The built-in interpreter, or with TIER0_NLU_BACKEND=rasa one that asks Rasa first."""
    backend = settings.nlu_backend.strip().lower()
    if backend not in NLU_BACKENDS:
        raise NluBackendError(
            f"TIER0_NLU_BACKEND is {settings.nlu_backend!r}; use one of: {', '.join(NLU_BACKENDS)}"
        )
    if backend == "builtin":
        return builtin
    try:
        client = RasaClient(settings.rasa_url, token=settings.rasa_token)
    except ValueError as error:
        raise NluBackendError(str(error)) from error
    return RasaInterpreter(builtin, client)


def build_knowledge(settings: Settings, embedder: Embedder) -> tuple[KnowledgeIndex, bool]:
    index, changes = sync_knowledge(settings, embedder)
    return index, changes.changed


def knowledge_to_answer_from(settings: Settings, embedder: Embedder) -> tuple[KnowledgeIndex, bool]:
    """The index the bot answers from, brought in line with the folder. When the folder
    holds a broken article, the last good index of the folder is used, so an editor's bad
    file (which `kb sync` refuses and names) cannot keep the bot from starting; without
    one, the error stands."""
    try:
        return build_knowledge(settings, embedder)
    except ArticleError as error:
        last_good = KnowledgeIndex.load(settings.index_dir)
        if (
            last_good is None
            or last_good.embedder_name != embedder_name(embedder)
            or not _built_from(last_good, settings.resolved_kb_dir)
        ):
            raise
        last_good.embedder = embedder
        logger.error(
            "answering from the last good index (%d articles) until the knowledge base is "
            "fixed: %s",
            last_good.article_count,
            error,
        )
        return last_good, False


def _built_from(index: KnowledgeIndex, kb_dir: Path) -> bool:
    """Whether the index holds this folder's articles (not those of the folder the home
    answered from before TIER0_KB_DIR changed)."""
    folder = kb_dir.resolve()
    return any(Path(path).resolve().is_relative_to(folder) for path in index.article_paths.values())


def sync_knowledge(settings: Settings, embedder: Embedder) -> tuple[KnowledgeIndex, IndexChanges]:
    """The persisted index brought in line with the folder, article by article (and the
    titles' embeddings the re-rank reads, with it)."""
    # Drafts and retired articles stay in the folder (and the store) but answer nothing.
    articles = [
        article for article in load_articles(settings.resolved_kb_dir) if article.searchable
    ]
    synced = sync_index(articles, settings.index_dir, embedder, embedder_name(embedder))
    sync_title_meanings(settings, embedder, (article.title for article in articles))
    return synced


def title_meanings_path(settings: Settings) -> Path:
    # Beside the index directory, not in it: the index sweeps what it did not build.
    return settings.home / "title_vectors.npz"


def load_title_meanings(settings: Settings, embedder: Embedder) -> TitleMeanings:
    return TitleMeanings(embedder, title_meanings_path(settings), embedder_name(embedder))


def sync_title_meanings(settings: Settings, embedder: Embedder, titles: Iterable[str]) -> None:
    """Embed the titles new since the last sync (only those), forget the retired ones."""
    meanings = load_title_meanings(settings, embedder)
    before = len(meanings)
    embedded = meanings.keep_only(titles)
    if embedded or len(meanings) != before or not title_meanings_path(settings).exists():
        meanings.save()


def import_knowledge_base(settings: Settings, source: Path, embedder: Embedder) -> int:
    """Make the articles of `source` this home's knowledge base; returns how many."""
    articles = load_articles(source)  # validate everything before replacing anything
    target = settings.imported_kb_dir
    staging = target.with_name(target.name + ".importing")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for article in articles:
        relative = article.path.relative_to(source)
        (staging / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(article.path, staging / relative)
    shutil.rmtree(target, ignore_errors=True)
    staging.replace(target)
    imported = load_articles(target)
    searchable = [article for article in imported if article.searchable]
    load_or_build_index(searchable, settings.index_dir, embedder, embedder_name(embedder))
    sync_title_meanings(settings, embedder, (article.title for article in searchable))
    return len(imported)


def intent_model(
    settings: Settings, nlu_data: TrainingData, embedder: Embedder
) -> IntentClassifier:
    """The saved intent model, trained again if the data or embedder changed -- with the
    options `tier0 nlu train` last chose (such as --min-out-of-scope-recall), which are
    saved with it, so a start does not undo them."""
    directory = settings.nlu_model_dir
    config = None
    try:
        saved = json.loads((directory / "model.json").read_text(encoding="utf-8"))
        config = ClassifierConfig.from_json(saved["config"])
    except (OSError, ValueError, KeyError, TypeError):
        pass  # nothing usable saved: the defaults
    return load_or_train(directory, nlu_data, embedder, embedder_name(embedder), config=config)


def entity_extractor(
    settings: Settings, nlu_data: TrainingData, notes: list[str] | None = None
) -> EntityExtractor:
    """The entity extraction of `nlu_data`, with its CRF tagger saved beside the intent
    model (trained first if the data changed); why there is no tagger goes to `notes`."""
    tagger = load_or_train_tagger(settings.nlu_model_dir, nlu_data, notes=notes)
    return EntityExtractor.from_training_data(nlu_data, tagger=tagger)


def build_interpreter(
    settings: Settings, embedder: Embedder
) -> tuple[Interpreter, IntentClassifier]:
    """The interpreter the assistant reads messages with (and its intent model)."""
    nlu_data = load_nlu_data(settings)
    classifier = intent_model(settings, nlu_data, embedder)
    builtin = Interpreter(
        embedder, classifier, nlu_data.synonyms, entities=entity_extractor(settings, nlu_data)
    )
    return choose_interpreter(settings, builtin), classifier


def build_tier0(
    settings: Settings,
    embedder: Embedder | None = None,
    *,
    dry_run: bool = False,
    knowledge: KnowledgeIndex | None = None,
) -> Tier0:
    """Everything wired up; `knowledge`, when given, is an index already synced."""
    settings.home.mkdir(parents=True, exist_ok=True)
    embedder = embedder or shared_embedder()

    engine = create_store_engine(settings.resolved_database_url)
    upgrade_schema(engine)
    session_factory = make_session_factory(engine)
    # A fresh store gets the bundled teams, SLA policies and catalog.
    ensure_desk_config(session_factory)
    # Notifications go to the outbox in the change's transaction; the worker delivers them.
    tickets = TicketService(session_factory, notifications=OutboxSink())

    rebuilt = False
    if knowledge is None:
        knowledge, rebuilt = knowledge_to_answer_from(settings, embedder)
    interpreter, classifier = build_interpreter(settings, embedder)
    assistant = Assistant(
        interpreter,
        knowledge,
        tickets,
        ConversationStore(session_factory),
        answer_threshold=ANSWER_THRESHOLD,
        related_threshold=RELATED_THRESHOLD,
        self_service_threshold=SELF_SERVICE_THRESHOLD,
        dry_run=dry_run,
        feedback=ArticleFeedbackLog(session_factory),
        calibration=answer_calibration(knowledge),
        catalog=CatalogService(tickets).items,
        title_meanings=load_title_meanings(settings, embedder),
        agents=settings.agent_ids,
    )
    return Tier0(settings, assistant, tickets, session_factory, knowledge, classifier, rebuilt)
