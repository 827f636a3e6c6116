"""Turning a folder for `tier0 kb import` into articles: Markdown as it is, HTML converted.

HTML pages (a Confluence space export, an intranet dump) become Markdown articles with
front matter: the id from the file name (stable across re-imports), the title from the
page, the body from the page's main content with navigation, scripts and styles left
out, and links that would run something when clicked (`javascript:`, `data:`) kept as
their text. Every file is converted and validated before anything is written: bad pages
stop the import with one error naming each of them, and nothing is imported.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from bs4 import BeautifulSoup, Tag
from markdownify import markdownify

from knowledge.articles import Article, ArticleError, every_problem, parse_article

HTML_SUFFIXES = (".html", ".htm")
# Page chrome that is not the article: menus, scripts, Confluence's breadcrumbs.
_CHROME = ("script", "style", "noscript", "nav", "header", "footer", "iframe", "form", "button")
_CONFLUENCE_CHROME = ("#breadcrumb-section", "#footer", "#page-metadata", ".page-metadata")
# Link targets kept: the web, mail, and addresses within the export (no scheme at all).
_SAFE_SCHEMES = ("http", "https", "mailto")
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):")
# Where the content is, most specific first (Confluence, then HTML5 conventions).
_CONTENT = ("#main-content", "main", "article", "[role=main]", "#content", "body")


@dataclass(frozen=True)
class ImportedFile:
    """One article to write into the knowledge base folder."""

    relative_path: Path
    text: str
    source: Path
    article: Article


def article_id_from_name(path: Path) -> str:
    slug = re.sub(r"[^a-z0-9._-]+", "-", path.stem.lower()).strip("-._")
    if not slug:
        raise ArticleError(f"{path}: cannot make an article id from this file name")
    return slug[:128]


def html_to_article_text(html: bytes, path: Path, *, status: str, today: dt.date) -> str:
    """The Markdown article (front matter and body) for one HTML page."""
    soup = BeautifulSoup(html, "html.parser")
    confluence = soup.select_one("#main-content") is not None or soup.select_one("#title-text")
    title = _page_title(soup, path, confluence=bool(confluence))
    for selector in _CHROME + (_CONFLUENCE_CHROME if confluence else ()):
        for element in soup.select(selector):
            element.decompose()
    for link in soup.find_all("a", href=True):
        if isinstance(link, Tag) and not _safe_target(str(link["href"])):
            link.unwrap()
    content = next(
        (found for selector in _CONTENT if (found := soup.select_one(selector)) is not None),
        soup,
    )
    body = markdownify(str(content), heading_style="ATX", bullets="-", strip=["img"])
    body = re.sub(r"[ \t]+\n", "\n", body)
    body = re.sub(r"\n{3,}", "\n\n", body).strip()
    if not body:
        raise ArticleError(f"{path}: the page has no text to import")
    if not re.match(r"#\s", body):
        body = f"# {title}\n\n{body}"
    front_matter = {
        "id": article_id_from_name(path),
        "title": title,
        "status": status,
        "updated": today.isoformat(),
        "imported_from": path.name,
    }
    meta = yaml.safe_dump(front_matter, sort_keys=False, allow_unicode=True).strip()
    return f"---\n{meta}\n---\n\n{body}\n"


def _safe_target(href: str) -> bool:
    # Browsers ignore white space and control characters inside a scheme ("java\tscript:").
    squeezed = re.sub(r"[\x00-\x20]+", "", href).lower()
    scheme = _SCHEME.match(squeezed)
    return scheme is None or scheme.group(1) in _SAFE_SCHEMES


def _page_title(soup: BeautifulSoup, path: Path, *, confluence: bool) -> str:
    candidates: list[Tag | None] = [
        soup.select_one("#title-text"),
        soup.title,
        soup.find("h1") if isinstance(soup.find("h1"), Tag) else None,
    ]
    for candidate in candidates:
        if candidate is None:
            continue
        text = " ".join(candidate.get_text(" ").split())
        if confluence and " : " in text:
            text = text.split(" : ", 1)[1]  # Confluence titles read "Space : Page"
        if text:
            return text[:300]
    return path.stem.replace("-", " ").replace("_", " ").strip() or path.name


def collect_import(
    source: Path, *, status: str = "published", today: dt.date | None = None
) -> list[ImportedFile]:
    """Every Markdown and HTML file under `source`, as validated articles."""
    if not source.is_dir():
        raise ArticleError(f"{source}: folder not found")
    today = today or dt.date.today()
    files: list[ImportedFile] = []
    seen: dict[str, Path] = {}
    problems: list[str] = []
    for path in sorted(p for p in source.glob("**/*") if p.is_file()):
        suffix = path.suffix.lower()
        if suffix not in (".md", *HTML_SUFFIXES):
            continue  # images, attachments, stylesheets of an export
        try:
            text, relative = _article_text_of(path, source, status=status, today=today)
            article = parse_article(text, path)
        except ArticleError as error:
            problems.append(str(error))
            continue
        if article.id in seen:
            problems.append(f"{path}: duplicate id {article.id!r} (also in {seen[article.id]})")
            continue
        seen[article.id] = path
        files.append(ImportedFile(relative, text, path, article))
    if problems:
        raise every_problem(problems)  # nothing is imported until every file can be
    if not files:
        raise ArticleError(f"{source}: no articles (*.md, *.html) found")
    return files


def _article_text_of(path: Path, source: Path, *, status: str, today: dt.date) -> tuple[str, Path]:
    """A file's article text (HTML converted), and where it goes in the imported folder."""
    if path.suffix.lower() == ".md":
        try:
            return path.read_text(encoding="utf-8"), path.relative_to(source)
        except (OSError, UnicodeDecodeError) as error:
            raise ArticleError(f"{path}: cannot be read as UTF-8 text: {error}") from error
    try:
        html = path.read_bytes()
    except OSError as error:
        raise ArticleError(f"{path}: cannot be read: {error}") from error
    text = html_to_article_text(html, path, status=status, today=today)
    return text, path.relative_to(source).with_name(article_id_from_name(path) + ".md")
