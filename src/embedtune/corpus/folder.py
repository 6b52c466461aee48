"""Documents from a folder of .txt, .md and .html files (recursive)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from urllib.parse import quote

from embedtune.corpus.readers import UTF8_HINT, Skipper
from embedtune.corpus.types import Document
from embedtune.errors import DataError

SUFFIXES = {".txt", ".md", ".markdown", ".html", ".htm"}
_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")


def _read_utf8(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError("not valid UTF-8", path=path, line=line, hint=UTF8_HINT) from None


def _markdown(text: str, fallback: str) -> tuple[str, str]:
    lines = text.splitlines()
    for index, line in enumerate(lines):
        match = _MD_HEADING.match(line)
        if match:
            body = "\n".join(lines[:index] + lines[index + 1 :]).strip()
            return match.group(1), body
    return fallback, text.strip()


def _html(text: str, fallback: str) -> tuple[str, str]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "html.parser")
    for tag in soup(["script", "style", "noscript"]):
        tag.decompose()
    heading = soup.find(["h1", "h2", "h3", "h4", "h5", "h6"])
    title_tag = soup.find("title")
    if heading is not None and heading.get_text(strip=True):
        title = heading.get_text(" ", strip=True)
        heading.decompose()
    elif title_tag is not None and title_tag.get_text(strip=True):
        title = title_tag.get_text(" ", strip=True)
    else:
        title = fallback
    if title_tag is not None:
        title_tag.decompose()
    body = re.sub(r"\n\s*\n+", "\n\n", soup.get_text("\n")).strip()
    return title, body


def read_folder(
    root: Path, *, skip_bad: bool = False, skipped: Counter[str] | None = None
) -> dict[str, Document]:
    """One document per file; id is the path relative to ``root``.

    The title is the first heading (Markdown ``#`` or HTML ``<h1>``…, then ``<title>``), else
    the file name without its suffix.
    """
    skipped = Counter() if skipped is None else skipped
    skipper = Skipper(skip_bad, skipped)
    corpus: dict[str, Document] = {}
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
    for path in files:
        # TREC run files are whitespace-separated, so a space in a file name is escaped
        doc_id = quote(path.relative_to(root).as_posix(), safe="/")
        try:
            raw = _read_utf8(path)
        except DataError as exc:
            skipper.bad("not_utf8", exc)
            continue
        fallback = path.stem.replace("_", " ").replace("-", " ")
        suffix = path.suffix.lower()
        if suffix in {".md", ".markdown"}:
            title, text = _markdown(raw, fallback)
        elif suffix in {".html", ".htm"}:
            title, text = _html(raw, fallback)
        else:
            title, text = fallback, raw.strip()
        if not text:
            skipper.bad("empty_text", DataError("file has no text", path=path))
            continue
        corpus[doc_id] = Document(doc_id, title, text)
    return corpus
