"""`tier0 kb …`: the knowledge editors' commands.

The folder of Markdown articles is the source of truth. `kb sync` records what changed
in it as new versions in the store, rebuilds the search index and runs the golden
questions; `add`, `edit`, `retire` and `import` change the folder and then sync.
Every error is one line naming what is wrong, with a non-zero exit code.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markdown import Markdown
from rich.markup import escape
from rich.table import Table

from bot.cli_errors import ERROR_EXIT_CODE, errors, fail, parse_period, warn
from bot.config import BUNDLED_KB_DIR, Settings
from knowledge.articles import Article, ArticleError, load_articles, parse_article

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from bot.runtime import Tier0
    from knowledge.golden import GoldenReport
    from knowledge.index import KnowledgeIndex
    from knowledge.versions import ArticleVersions, SyncReport
    from nlu.embedding import Embedder

console = Console(soft_wrap=True)  # paths and ids stay whole on one line

# `kb check` found a golden question answered by the wrong article (or by none). Bad input
# or configuration (the command did nothing) is ERROR_EXIT_CODE, as for every command.
REGRESSION_EXIT_CODE = 1

AuthorOption = Annotated[
    str, typer.Option("--author", help="Who made the change (kept with each version).")
]
SyncAuthorOption = Annotated[
    str | None,
    typer.Option(
        "--author",
        help="Who made the changes. Default: for a file committed in git, its last commit's "
        "author; otherwise you.",
    ),
]
CURRENT_USER = getpass.getuser()
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


# -- opening things -------------------------------------------------------------------


def open_store(settings: Settings) -> sessionmaker[Session]:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, OperationalError

    from tickets.db import create_store_engine, make_session_factory, upgrade_schema

    try:
        engine = create_store_engine(settings.resolved_database_url)
        upgrade_schema(engine)
    except ArgumentError as error:
        fail(f"TIER0_DATABASE_URL is not a database URL: {error}")
    except OperationalError as error:
        where = make_url(settings.resolved_database_url).render_as_string(hide_password=True)
        reason = str(error.orig or error).strip().splitlines()[0]
        fail(f"cannot open the store at {where}: {reason}")
    return make_session_factory(engine)


def open_versions(settings: Settings) -> ArticleVersions:
    from knowledge.versions import ArticleVersions

    return ArticleVersions(open_store(settings))


def folder_articles(settings: Settings) -> list[Article]:
    try:
        return load_articles(settings.resolved_kb_dir)
    except ArticleError as error:
        fail(str(error))


def editable_folder(settings: Settings) -> Path:
    folder = settings.resolved_kb_dir
    if folder.resolve() == BUNDLED_KB_DIR.resolve():
        fail(
            "the bundled sample knowledge base is read-only: make your own copy with "
            "`tier0 kb import DIR`, or point TIER0_KB_DIR at your folder of articles"
        )
    return folder


def find_article(articles: Sequence[Article], article_id: str) -> Article:
    for article in articles:
        if article.id == article_id:
            return article
    fail(f"no article {article_id!r} in {articles[0].path.parent if articles else 'the folder'}")


def build_answering(
    settings: Settings,
    embedder: Embedder | None = None,
    knowledge: KnowledgeIndex | None = None,
) -> Tier0:
    """The assistant exactly as the bot runs it (index, synonyms), deciding only."""
    from bot.runtime import build_tier0
    from nlu.training_data import NluDataError

    try:
        return build_tier0(settings, embedder, dry_run=True, knowledge=knowledge)
    except (ArticleError, NluDataError) as error:
        fail(str(error))


def run_golden_check(
    tier0: Tier0, articles: Sequence[Article], versions: ArticleVersions | None
) -> GoldenReport:
    from knowledge.golden import check_golden_questions

    # The bot's own search (meaning and words, synonyms applied): "found first" here
    # is what an employee asking the question would be answered with.
    def retrieve(question: str) -> Any:
        return tier0.assistant.search_knowledge(question, limit=5)

    return check_golden_questions(articles, retrieve, versions)


# -- sync -----------------------------------------------------------------------------


def sync_folder(
    settings: Settings, author: str | None, *, embedder: Embedder | None = None
) -> tuple[SyncReport, GoldenReport]:
    """Store versions for what changed, update the index, then ask the golden questions.

    Without an explicit author, a changed file committed in git is credited to its last
    commit's author, and anything else to the person running the sync."""
    from knowledge.authors import git_author
    from knowledge.versions import VersionError

    articles = folder_articles(settings)
    versions = open_versions(settings)
    try:
        report = versions.sync(
            articles,
            author or CURRENT_USER,
            author_of=None if author else (lambda article: git_author(article.path)),
        )
    except VersionError as error:
        fail(str(error))
    # Only added, edited and retired articles are (re-)indexed, in a new build made
    # CURRENT by one rename: a running bot answers from the old build until then, and
    # picks the new one up on its next search.
    from bot.runtime import sync_knowledge
    from nlu.embedding import shared_embedder

    try:
        index, changes = sync_knowledge(settings, embedder or shared_embedder())
    except ArticleError as error:
        fail(str(error))
    tier0 = build_answering(settings, embedder, index)
    golden = run_golden_check(tier0, articles, versions)
    console.print(
        f"Synced {settings.resolved_kb_dir}: {report.summary()}. "
        f"Index: {index.article_count} published articles, {index.chunk_count} passages "
        f"({changes.summary()})."
    )
    for label, ids in (
        ("added", report.added),
        ("changed", report.changed),
        ("retired", report.retired),
        ("restored", report.restored),
    ):
        if ids:
            console.print(f"  {label}: {escape(', '.join(ids))}")
    if golden.checked and golden.passed:
        console.print(f"Golden questions: all {golden.checked} find their article first.")
    for failure in golden.failures:
        warn(f"golden question regressed: {failure.describe()}")
    if golden.failures:
        warn(f"{len(golden.failures)} of {golden.checked} golden questions fail; see `kb check`")
    return report, golden


def register_kb_commands(kb_app: typer.Typer) -> None:
    """Add the editors' commands to the `tier0 kb` group."""

    @kb_app.command("sync")
    def kb_sync(author: SyncAuthorOption = None) -> None:
        """Bring the store in line with the folder (added, changed, retired), keeping every
        version; rebuild the index; warn about golden questions that no longer pass."""
        sync_folder(Settings(), author)

    @kb_app.command("list")
    def kb_list(
        status: Annotated[str | None, typer.Option(help="Only articles with this status.")] = None,
        as_json: JsonOption = False,
    ) -> None:
        """The articles of the folder, with their stored version and review date."""
        from knowledge.articles import STATUSES

        if status is not None:
            status = status.strip().lower()  # front matter statuses are read in lower case
            if status not in STATUSES:
                fail(f"--status must be one of {', '.join(STATUSES)}, not {status!r}")
        settings = Settings()
        articles = folder_articles(settings)
        stored = {view.article_id: view for view in open_versions(settings).latest()}
        rows: list[dict[str, Any]] = []
        for article in articles:
            if status and article.status != status:
                continue
            view = stored.get(article.id)
            synced = view is not None and view.content_hash == article.content_hash
            rows.append(
                {
                    "id": article.id,
                    "title": article.title,
                    "status": article.status,
                    "owner": article.owner,
                    "review_by": article.review_by,
                    "version": view.version if view else None,
                    "synced": synced,
                }
            )
        if as_json:
            print_json(rows)
            return
        table = Table(title=f"{len(rows)} articles in {settings.resolved_kb_dir}")
        for column in ("id", "title", "status", "owner", "review by", "version"):
            table.add_column(column)
        for row in rows:
            version = f"v{row['version']}" if row["version"] else "-"
            if not row["synced"]:
                version += " (changed: run kb sync)" if row["version"] else " (new: run kb sync)"
            table.add_row(
                escape(row["id"]),
                escape(row["title"]),
                row["status"],
                escape(row["owner"] or "-"),
                row["review_by"] or "-",
                version,
            )
        console.print(table)

    @kb_app.command("show")
    def kb_show(
        article_id: Annotated[str, typer.Argument(metavar="ID", help="The article's id.")],
        version: Annotated[int | None, typer.Option(help="A stored version number.")] = None,
        raw: Annotated[bool, typer.Option("--raw", help="Print the file as stored.")] = False,
    ) -> None:
        """One article as stored (the newest version by default), with its feedback."""
        from knowledge.feedback import ArticleFeedbackLog
        from knowledge.versions import ArticleVersions, VersionError

        session_factory = open_store(Settings())
        try:
            view = ArticleVersions(session_factory).version(article_id, version)
        except VersionError as error:
            fail(str(error))
        if raw:
            sys.stdout.write(view.content)
            return
        stats = ArticleFeedbackLog(session_factory).stats().get(article_id)
        console.print(f"[bold]{escape(view.title)}[/bold]  [dim]{escape(view.article_id)}[/dim]")
        console.print(
            f"status {view.status} · v{view.version} ({view.change} by {escape(view.author)}, "
            f"{view.created_at:%Y-%m-%d %H:%M} UTC) · owner {escape(view.owner or '-')} · "
            f"review by {view.review_by or '-'}"
        )
        console.print(f"[dim]{escape(view.path)}[/dim]")
        if stats is not None:
            console.print(
                f"shown {stats.shown} · helpful {stats.helpful} · not helpful "
                f"{stats.not_helpful} · tickets after shown {stats.tickets}"
            )
        console.print()
        body = parse_article(view.content, Path(view.path)).body
        console.print(Markdown(body))

    @kb_app.command("add")
    def kb_add(
        source: Annotated[
            Path | None,
            typer.Argument(help="A finished article file to add (otherwise $EDITOR opens)."),
        ] = None,
        article_id: Annotated[str | None, typer.Option("--id", help="The new id.")] = None,
        title: Annotated[str | None, typer.Option(help="The new article's title.")] = None,
        owner: Annotated[str | None, typer.Option(help="Slack user id or email.")] = None,
        author: AuthorOption = CURRENT_USER,
    ) -> None:
        """Write a new article (a draft from a template, in $EDITOR) and sync."""
        from knowledge.editing import new_article_text, write_file_atomically

        settings = Settings()
        folder = editable_folder(settings)
        existing = {article.id: article for article in folder_articles(settings)}
        article: Article | None
        if source is not None:
            try:
                text = source.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                fail(f"{source}: cannot be read as UTF-8 text: {error}")
            article = validated(text, source)
        else:
            if not article_id or not title:
                fail("give --id and --title for the new article (or the path of a finished file)")
            template = new_article_text(article_id, title, owner, dt.date.today())
            article = edit_until_valid(template, Path(f"{article_id}.md"), original=None)
            if article is None:
                console.print("Nothing saved: the new article was left unchanged.")
                return
            text = article.source
        if article.id in existing:
            fail(f"an article with id {article.id!r} already exists: {existing[article.id].path}")
        destination = folder / f"{article.id}.md"
        if destination.exists():
            fail(f"{destination} already exists (with another id); rename one of them")
        write_file_atomically(destination, text)
        console.print(f"Added {article.id} ({article.status}) as {destination}")
        sync_folder(settings, author)

    @kb_app.command("edit")
    def kb_edit(
        article_id: Annotated[str, typer.Argument(metavar="ID", help="The article's id.")],
        author: AuthorOption = CURRENT_USER,
    ) -> None:
        """Open an article in $EDITOR, check it, save it back to the folder and sync."""
        from knowledge.editing import write_file_atomically

        settings = Settings()
        editable_folder(settings)
        article = find_article(folder_articles(settings), article_id)
        text = article.path.read_text(encoding="utf-8")
        edited = edit_until_valid(text, article.path, original=article)
        if edited is None:
            console.print(f"No changes to {article_id}.")
            return
        write_file_atomically(article.path, edited.source)
        console.print(f"Saved {article.path}")
        sync_folder(settings, author)

    @kb_app.command("retire")
    def kb_retire(
        article_id: Annotated[str, typer.Argument(metavar="ID", help="The article's id.")],
        author: AuthorOption = CURRENT_USER,
    ) -> None:
        """Mark an article retired (it stops answering; its history stays) and sync."""
        from knowledge.editing import set_front_matter_field, write_file_atomically

        settings = Settings()
        editable_folder(settings)
        article = find_article(folder_articles(settings), article_id)
        if article.status == "retired":
            console.print(f"{article_id} is already retired.")
            return
        text = article.path.read_text(encoding="utf-8")
        write_file_atomically(
            article.path, set_front_matter_field(text, "status", "retired", article.path)
        )
        console.print(f"Retired {article_id} ({article.path})")
        sync_folder(settings, author)

    @kb_app.command("history")
    def kb_history(
        article_id: Annotated[str, typer.Argument(metavar="ID", help="The article's id.")],
        as_json: JsonOption = False,
    ) -> None:
        """Every stored version of an article: when, who, what changed."""
        from knowledge.versions import VersionError

        try:
            versions = open_versions(Settings()).history(article_id)
        except VersionError as error:
            fail(str(error))
        if as_json:
            print_json(
                [
                    {
                        "version": view.version,
                        "change": view.change,
                        "status": view.status,
                        "title": view.title,
                        "author": view.author,
                        "at": view.created_at.isoformat(),
                    }
                    for view in versions
                ]
            )
            return
        table = Table(title=f"history of {article_id}")
        for column in ("version", "when (UTC)", "who", "change", "status", "title"):
            table.add_column(column)
        for view in versions:
            table.add_row(
                f"v{view.version}",
                f"{view.created_at:%Y-%m-%d %H:%M}",
                escape(view.author),
                view.change,
                view.status,
                escape(view.title),
            )
        console.print(table)

    @kb_app.command("diff")
    def kb_diff(
        article_id: Annotated[str, typer.Argument(metavar="ID", help="The article's id.")],
        old: Annotated[int | None, typer.Argument(metavar="[V1]", help="Older version.")] = None,
        new: Annotated[int | None, typer.Argument(metavar="[V2]", help="Newer version.")] = None,
    ) -> None:
        """What changed between two versions (default: the last change)."""
        from knowledge.versions import VersionError

        try:
            diff = open_versions(Settings()).diff(article_id, old, new)
        except VersionError as error:
            fail(str(error))
        if not diff:
            console.print("The two versions are identical.")
            return
        for line in diff.splitlines():
            style = (
                "green"
                if line.startswith("+")
                else "red"
                if line.startswith("-")
                else "cyan"
                if line.startswith("@@")
                else ""
            )
            console.print(f"[{style}]{escape(line)}[/{style}]" if style else escape(line))

    @kb_app.command("import")
    def kb_import(
        directory: Annotated[Path, typer.Argument(help="Folder of Markdown or HTML articles.")],
        status: Annotated[
            str, typer.Option(help="Status given to converted HTML pages.")
        ] = "published",
        author: AuthorOption = CURRENT_USER,
    ) -> None:
        """Make a folder's articles the knowledge base of TIER0_HOME. HTML pages (e.g. a
        Confluence export) are converted to Markdown. Then sync."""
        from knowledge.articles import STATUSES
        from knowledge.editing import replace_folder
        from knowledge.html_import import collect_import

        if status not in STATUSES:
            fail(f"--status must be one of {', '.join(STATUSES)}")
        settings = Settings()
        try:
            files = collect_import(directory, status=status)
        except ArticleError as error:
            fail(str(error))
        replace_folder(settings.imported_kb_dir, files)
        converted = sum(1 for item in files if item.source.suffix.lower() != ".md")
        console.print(
            f"Imported {len(files)} articles"
            + (f" ({converted} converted from HTML)" if converted else "")
            + f" into {settings.imported_kb_dir}."
        )
        if settings.kb_dir is not None:
            warn(f"TIER0_KB_DIR is set, so tier0 answers from {settings.kb_dir}, not this import")
        sync_folder(settings, author)

    @kb_app.command("stats")
    def kb_stats(
        as_json: JsonOption = False,
        since: Annotated[
            str | None,
            typer.Option(help="Only what happened in the last period: 7d, 4w, 12h (all time)."),
        ] = None,
    ) -> None:
        """Per article: how often shown, helpful / not helpful, tickets opened after it,
        and failures (conversations it did not settle: "Still need help" or a ticket)."""
        from knowledge.feedback import ArticleFeedbackLog, ArticleStats
        from tickets.models import utc_now

        window = parse_period(since) if since is not None else None
        settings = Settings()
        counts = ArticleFeedbackLog(open_store(settings)).stats(
            utc_now() - window if window is not None else None
        )
        titles = {article.id: article.title for article in folder_articles(settings)}
        ids = list(titles) + sorted(set(counts) - set(titles))
        rows = [counts.get(article_id, ArticleStats(article_id)) for article_id in ids]
        rows.sort(key=lambda row: (-row.shown, row.article_id))
        if as_json:
            print_json(
                [
                    {
                        "id": row.article_id,
                        "title": titles.get(row.article_id),
                        "shown": row.shown,
                        "helpful": row.helpful,
                        "not_helpful": row.not_helpful,
                        "helpful_rate": row.helpful_rate,
                        "tickets_after_shown": row.tickets,
                        "failures": row.failures,
                    }
                    for row in rows
                ]
            )
            return
        table = Table(title=f"article feedback, {f'the last {since}' if since else 'all time'}")
        table.add_column("id")
        table.add_column("title")
        for column in ("shown", "helpful", "not helpful", "helpful %", "tickets", "failures"):
            table.add_column(column, justify="right")
        for row in rows:
            rate = "-" if row.helpful_rate is None else f"{row.helpful_rate:.0%}"
            table.add_row(
                escape(row.article_id),
                escape(titles.get(row.article_id, "(not in the folder)")),
                str(row.shown),
                str(row.helpful),
                str(row.not_helpful),
                rate,
                str(row.tickets),
                str(row.failures),
            )
        console.print(table)

    @kb_app.command("stale")
    def kb_stale(
        as_json: JsonOption = False,
        notify: Annotated[
            bool,
            typer.Option(
                "--notify",
                help="Remind each owner of their stale articles: a Slack DM to a Slack id, "
                "a mail to an email address.",
            ),
        ] = False,
    ) -> None:
        """Articles whose review_by date has passed; --notify reminds each owner (a Slack
        DM, or a mail to an owner given as an email address)."""
        from knowledge.stale import OwnerNotices, is_slack_user, notify_owners, stale_articles

        settings = Settings()
        today = dt.date.today()
        stale = stale_articles(folder_articles(settings), today)
        notices: OwnerNotices | None = None
        if notify and stale:
            from bot.background import senders_from_settings
            from tickets.delivery import OutboxDelivery
            from tickets.outbox import OutboxChannel

            senders = senders_from_settings(settings)
            if not senders:
                fail("--notify needs Slack (SLACK_BOT_TOKEN) or mail (TIER0_SMTP_HOST)")
            # Through the outbox like every send: once a day per owner, and what a channel
            # refuses now stays owed for the worker. One delivery round sends it at once.
            session_factory = open_store(settings)
            delivery = OutboxDelivery(session_factory, senders, worker="kb-stale")
            notices = notify_owners(
                session_factory,
                stale,
                today,
                delivery.deliver_due,
                by_slack=OutboxChannel.SLACK in senders,
                by_email=OutboxChannel.EMAIL in senders,
            )
        if as_json:
            result: dict[str, Any] = {
                "stale": [
                    {
                        "id": item.article_id,
                        "title": item.title,
                        "owner": item.owner,
                        "review_by": item.review_by,
                        "days_overdue": item.days_overdue,
                        "path": item.path,
                    }
                    for item in stale
                ]
            }
            if notices is not None:
                result["notified"] = notices.notified
                result["not_reachable"] = notices.not_reachable
                result["no_owner"] = notices.no_owner
                result["failed"] = notices.failed
            print_json(result)
        else:
            if not stale:
                console.print("No stale articles: every review date is today or later.")
            else:
                table = Table(title=f"{len(stale)} articles past their review date")
                for column in ("id", "title", "owner", "review by", "overdue"):
                    table.add_column(column)
                for item in stale:
                    table.add_row(
                        escape(item.article_id),
                        escape(item.title),
                        escape(item.owner or "-"),
                        item.review_by,
                        f"{item.days_overdue} days",
                    )
                console.print(table)
            if notices is not None:
                for owner, ids in notices.notified.items():
                    how = "a Slack DM" if is_slack_user(owner) else "a mail"
                    console.print(f"Sent {owner} {how} about {', '.join(ids)}")
                for owner, ids in notices.not_reachable.items():
                    missing = (
                        "Slack (SLACK_BOT_TOKEN)"
                        if is_slack_user(owner)
                        else "mail (TIER0_SMTP_HOST)"
                    )
                    warn(
                        f"{owner} cannot be reminded without {missing}: tell them about "
                        f"{', '.join(ids)}"
                    )
                if notices.no_owner:
                    warn(f"no owner to tell about {', '.join(notices.no_owner)}")
                for owner, reason in notices.failed.items():
                    warn(f"could not remind {owner}: {reason}")
        if notices is not None and notices.failed:
            raise typer.Exit(code=ERROR_EXIT_CODE)

    @kb_app.command("check")
    def kb_check(as_json: JsonOption = False) -> None:
        """Ask every golden question; exit 1 if any no longer finds its article first."""
        settings = Settings()
        articles = folder_articles(settings)
        versions = open_versions(settings)
        report = run_golden_check(build_answering(settings), articles, versions)
        if as_json:
            print_json(
                {
                    "checked": report.checked,
                    "passed": report.checked - len(report.failures),
                    "failures": [failure.as_json() for failure in report.failures],
                }
            )
        elif report.checked == 0:
            console.print("No golden questions: add `questions:` to an article's front matter.")
        else:
            for failure in report.failures:
                errors.print(f"[red]FAIL[/red] {escape(failure.describe())}", soft_wrap=True)
            passed = report.checked - len(report.failures)
            console.print(
                f"{passed} of {report.checked} golden questions find their article first."
            )
        if report.failures:
            raise typer.Exit(code=REGRESSION_EXIT_CODE)

    @kb_app.command("gaps")
    def kb_gaps(
        since: Annotated[str, typer.Option(help="How far back: e.g. 7d, 24h, 2w.")] = "7d",
        limit: Annotated[int, typer.Option(help="At most this many topics.", min=1)] = 20,
        as_json: JsonOption = False,
    ) -> None:
        """Questions that were escalated or marked unhelpful, grouped by meaning, biggest
        group first, each with sample questions and the nearest existing article."""
        from knowledge.gaps import cluster_gaps, unsettled_questions
        from tickets.models import utc_now

        window = parse_period(since)
        settings = Settings()
        questions = unsettled_questions(open_store(settings), utc_now() - window)
        gaps = []
        if questions:
            from nlu.embedding import shared_embedder

            assistant = build_answering(settings).assistant
            gaps = cluster_gaps(
                questions,
                shared_embedder(),
                lambda question: assistant.search_knowledge(question, limit=1),
                words_lacking=assistant.knowledge.words_the_article_lacks,
            )[:limit]
        if as_json:
            print_json(
                {
                    "since": since,
                    "questions": len(questions),
                    "gaps": [gap.as_json() for gap in gaps],
                }
            )
            return
        if not gaps:
            console.print(f"No escalated or unhelpful questions in the last {since}.")
            return
        table = Table(title=f"{len(questions)} unsettled questions in the last {since}")
        for column in ("#", "questions", "samples", "nearest article", "words it never uses"):
            table.add_column(column)
        for rank, gap in enumerate(gaps, 1):
            nearest = (
                "-"
                if gap.nearest is None
                else f"{gap.nearest.article_id} ({gap.nearest.score:.2f})"
            )
            table.add_row(
                str(rank),
                str(gap.volume),
                escape("\n".join(f"“{sample}”" for sample in gap.samples)),
                escape(nearest),
                escape(", ".join(gap.missing_words) or "-"),
            )
        console.print(table)


# -- the editor -----------------------------------------------------------------------


def editor_command() -> list[str]:
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if not editor:
        fallback = shutil.which("vi")
        if fallback is None:
            fail("set $EDITOR to the editor to use, e.g. export EDITOR=nano")
        editor = fallback
    try:
        return shlex.split(editor)
    except ValueError as error:
        fail(f"$EDITOR {editor!r} cannot be read as a command: {error}")


def validated(text: str, path: Path) -> Article:
    try:
        return parse_article(text, path)
    except ArticleError as error:
        fail(str(error))


def edit_until_valid(text: str, path: Path, *, original: Article | None) -> Article | None:
    """Open `text` in the editor until it is a valid article; None when left unchanged.

    A broken edit is offered for another round when someone is at the terminal;
    otherwise (scripts, CI) it fails with the edited text kept in a file to fix.
    """
    command = editor_command()
    with tempfile.NamedTemporaryFile(
        "w", suffix=".md", prefix=f"{path.stem}-", delete=False, encoding="utf-8"
    ) as handle:
        handle.write(text)
        draft = Path(handle.name)
    while True:
        try:
            finished = subprocess.run([*command, str(draft)], check=False)
        except OSError as error:
            fail(f"cannot start the editor {command[0]!r}: {error}")
        if finished.returncode != 0:
            fail(
                f"the editor exited with code {finished.returncode}; nothing saved "
                f"(your text is in {draft})"
            )
        edited = draft.read_text(encoding="utf-8")
        if edited == text:
            draft.unlink(missing_ok=True)
            return None
        try:
            article = parse_article(edited, path)
            if original is not None and article.id != original.id:
                raise ArticleError(
                    f"{path}: the id changed from {original.id!r} to {article.id!r}; ids are "
                    "permanent (add a new article and retire this one instead)"
                )
        except ArticleError as error:
            if sys.stdin.isatty() and typer.confirm(f"{error}\nEdit again?", default=True):
                continue
            fail(f"{error} — nothing saved; your edited text is kept in {draft}")
        draft.unlink(missing_ok=True)
        return article
