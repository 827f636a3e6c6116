"""Knowledge articles: Markdown files with YAML front matter, the folder is the source of truth."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any
from urllib.parse import quote, urlsplit

import yaml

REQUIRED_FIELDS = ("id", "title")
STATUSES = ("draft", "published", "retired")
# An article without a status was written before statuses existed: it is live.
DEFAULT_STATUS = "published"
# Who an article answers. Everyone (the default), or only the IT agents (TIER0_AGENTS):
# internal notes, runbooks, workarounds not for employees. Other groups ("managers") are
# refused rather than shown to everyone: tier0 cannot tell who belongs to them.
EVERYONE_AUDIENCES = ("everyone", "all", "employees", "staff")
AGENT_AUDIENCES = ("agents", "it", "it-staff", "internal")
# Starts the fingerprint of an internal article (Article.fingerprint, is_internal_fingerprint).
INTERNAL_MARK = "agents:"
# Far beyond any real help article (the longest sample one is ~2k characters); a file this
# big is an export gone wrong or a pasted log, and would drown search in one article.
MAX_ARTICLE_CHARS = 500_000
_FRONT_MATTER = re.compile(r"\A---\s*\n(?P<meta>.*?)\n---\s*(?:\n|\Z)(?P<body>.*)\Z", re.DOTALL)
_ARTICLE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,20}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Characters that would end or split a Slack link `<url|title>`, or are not in a URL at all.
_NOT_IN_A_LINK = re.compile(r"[\s<>|\"\x00-\x1f\x7f]")


class ArticleError(ValueError):
    """An article that cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Article:
    id: str
    title: str
    body: str
    path: Path
    tags: tuple[str, ...] = ()
    owner: str | None = None
    updated: str | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    status: str = DEFAULT_STATUS
    audience: str = EVERYONE_AUDIENCES[0]
    review_by: str | None = None  # ISO date after which the owner should review it
    questions: tuple[str, ...] = ()  # golden questions this article must answer first
    url: str | None = None  # where employees read the whole article (intranet, wiki)
    # The file exactly as the editor wrote it, kept as a version in the store.
    source: str = field(default="", compare=False, hash=False, repr=False)

    @property
    def internal(self) -> bool:
        """Only the IT agents get it as an answer (`audience: agents`)."""
        return self.audience in AGENT_AUDIENCES

    @property
    def fingerprint(self) -> str:
        """What the search index holds of the article: its text, and (marked, so the index
        can tell without the file) whether it is internal."""
        digest = hashlib.sha256(f"{self.id}\n{self.title}\n{self.body}".encode()).hexdigest()[:16]
        return f"{INTERNAL_MARK}{digest}" if self.internal else digest

    @property
    def content_hash(self) -> str:
        """Changes with anything in the file, front matter included (a new version)."""
        text = self.source or f"{self.id}\n{self.title}\n{self.body}"
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def searchable(self) -> bool:
        """Only published articles answer questions; drafts and retired ones do not."""
        return self.status == "published"


def parse_article(text: str, path: Path) -> Article:
    # Editors on Windows may save a byte-order mark before the `---`.
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    if len(text) > MAX_ARTICLE_CHARS:
        raise ArticleError(
            f"{path}: the article is {len(text):,} characters, more than the "
            f"{MAX_ARTICLE_CHARS:,} allowed; split it into several articles"
        )
    match = _FRONT_MATTER.match(text)
    if match is None:
        raise ArticleError(f"{path}: no YAML front matter (the file must start with a `---` block)")
    try:
        meta = yaml.safe_load(match.group("meta")) or {}
    except yaml.YAMLError as error:
        raise ArticleError(f"{path}: front matter is not valid YAML: {error}") from error
    except ValueError as error:  # YAML reads 2026-13-45 as a date and fails on it
        raise ArticleError(
            f"{path}: front matter has a date that is not a date: {error}"
        ) from error
    if not isinstance(meta, dict):
        raise ArticleError(f"{path}: front matter must be a mapping of fields")
    missing = [name for name in REQUIRED_FIELDS if not str(meta.get(name) or "").strip()]
    if missing:
        raise ArticleError(f"{path}: front matter is missing {', '.join(missing)}")
    # A list or mapping would otherwise be shown as Python's spelling of it: "['VPN']".
    article_id = _text_field(meta, "id", path) or ""
    title = _text_field(meta, "title", path) or ""
    if not _ARTICLE_ID.match(article_id):
        raise ArticleError(f"{path}: id {article_id!r} may use only letters, digits, '.', '_', '-'")
    body = match.group("body").strip()
    if not body:
        raise ArticleError(f"{path}: the article has no body")
    tags = meta.get("tags") or []
    if isinstance(tags, str):
        tags = [part.strip() for part in tags.split(",")]
    if not isinstance(tags, list) or not all(isinstance(tag, str | int) for tag in tags):
        raise ArticleError(f"{path}: tags must be a list of words, e.g. tags: [vpn, remote]")
    updated = _date_field(meta, "updated", path)
    status = str(meta.get("status") or DEFAULT_STATUS).strip().lower()
    if status not in STATUSES:
        raise ArticleError(
            f"{path}: status {meta.get('status')!r} is not one of {', '.join(STATUSES)}"
        )
    return Article(
        id=article_id,
        title=title,
        body=body,
        path=path,
        tags=tuple(str(tag) for tag in tags if str(tag).strip()),
        owner=_owner(meta, path),
        updated=updated,
        meta=meta,
        status=status,
        audience=_audience(meta, path),
        review_by=_date_field(meta, "review_by", path),
        questions=_questions(meta, path),
        url=_url_field(meta, path),
        source=text.strip() + "\n",
    )


def is_internal_fingerprint(fingerprint: str) -> bool:
    return fingerprint.startswith(INTERNAL_MARK)


def _audience(meta: dict[str, Any], path: Path) -> str:
    audience = (_text_field(meta, "audience", path) or EVERYONE_AUDIENCES[0]).lower()
    if audience not in EVERYONE_AUDIENCES + AGENT_AUDIENCES:
        raise ArticleError(
            f"{path}: audience {audience!r} is not one tier0 can check: write everyone, or "
            "agents for an article only the IT agents get as an answer"
        )
    return audience


def _owner(meta: dict[str, Any], path: Path) -> str | None:
    owner = _text_field(meta, "owner", path)
    if owner is None:
        return None
    if not (SLACK_USER_ID.match(owner) or _EMAIL.match(owner)):
        raise ArticleError(
            f"{path}: owner {owner!r} must be a Slack user id (U012ABCDEF) or an email address"
        )
    return owner


def link_problem(url: str) -> str | None:
    """Why `url` cannot be shown as a link (None: it can): only http(s) addresses, and
    none with the characters that would break out of Slack's `<url|title>`."""
    if _NOT_IN_A_LINK.search(url):
        return "must not contain spaces, quotes, '<', '>' or '|'"
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return "must be an http:// or https:// address"
    return None


def _url_field(meta: dict[str, Any], path: Path) -> str | None:
    url = _text_field(meta, "url", path)
    if url is None:
        return None
    problem = link_problem(url)
    if problem is not None:
        raise ArticleError(f"{path}: url {url!r} {problem}")
    return url


def article_link(article: Article, kb_dir: Path, base_url: str | None) -> str | None:
    """Where to read `article`: its own `url`, else `base_url` followed by the file's path
    in the knowledge folder (`https://wiki/kb/` + `network/vpn.md`), else nowhere."""
    if article.url:
        return article.url
    if not base_url:
        return None
    try:
        relative = PurePath(article.path).relative_to(kb_dir)
    except ValueError:  # an article read from elsewhere has no place under the base URL
        return None
    return base_url.rstrip("/") + "/" + quote(relative.as_posix())


def _text_field(meta: dict[str, Any], name: str, path: Path) -> str | None:
    value = meta.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, dict | list):
        raise ArticleError(f"{path}: {name} must be plain text, not a list or mapping")
    return str(value).strip() or None


def _date_field(meta: dict[str, Any], name: str, path: Path) -> str | None:
    value = meta.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    try:
        return dt.date.fromisoformat(str(value).strip()).isoformat()
    except ValueError:
        raise ArticleError(
            f"{path}: {name} {value!r} is not a date (write it as YYYY-MM-DD)"
        ) from None


def _questions(meta: dict[str, Any], path: Path) -> tuple[str, ...]:
    questions = meta.get("questions")
    if questions is None:
        return ()
    if isinstance(questions, str):
        questions = [questions]
    if not isinstance(questions, list) or not all(
        isinstance(question, str) and question.strip() for question in questions
    ):
        raise ArticleError(
            f"{path}: questions must be a list of questions, one per line starting with '- '"
        )
    return tuple(question.strip() for question in questions)


def load_articles(directory: Path) -> list[Article]:
    """Every article in the folder. Bad files stop the load with one error that names
    each of them and what is wrong, so an editor mends them all in one pass."""
    if not directory.is_dir():
        raise ArticleError(f"{directory}: knowledge base folder not found")
    articles: list[Article] = []
    seen: dict[str, Path] = {}
    problems: list[str] = []
    for path in sorted(directory.glob("**/*.md")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            problems.append(f"{path}: cannot be read as UTF-8 text: {error}")
            continue
        try:
            article = parse_article(text, path)
        except ArticleError as error:
            problems.append(str(error))
            continue
        if article.id in seen:
            problems.append(f"{path}: duplicate id {article.id!r} (also in {seen[article.id]})")
            continue
        seen[article.id] = path
        articles.append(article)
    if problems:
        raise every_problem(problems)
    if not articles:
        raise ArticleError(f"{directory}: no articles (*.md) found")
    return articles


def every_problem(problems: list[str]) -> ArticleError:
    """One error for the files that cannot be used, a line each naming the file."""
    if len(problems) == 1:
        return ArticleError(problems[0])
    return ArticleError(f"{len(problems)} files cannot be used:\n" + "\n".join(problems))
