"""Checks of the HTML reports as a reader gets them: nothing fetched from outside the file,
and (where Debian's `chromium` is installed) rendered headless to a screenshot with no console
errors."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

# anything a browser would fetch: src/href/xlink:href/url(...) and @import; `data:` and
# in-page `#id` references are the only ones allowed
_REFERENCE = re.compile(
    r"""(?:\bsrc|\bhref|xlink:href)\s*=\s*["']?(?!#|data:)([^"'\s>]+)"""
    r"""|url\(\s*["']?(?!#|data:)([^"')]+)|@import""",
    re.IGNORECASE,
)


def external_references(text: str) -> list[str]:
    """Every reference in ``text`` that points outside the page."""
    return [m.group(0) for m in _REFERENCE.finditer(text)]


def assert_self_contained(path: Path) -> str:
    """The page's text, after checking it has no scripts and references nothing outside."""
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!doctype html>")
    assert external_references(text) == [], external_references(text)[:5]
    assert "<script" not in text.lower()
    assert "<svg" in text  # the figures are inline
    return text


def screenshot(page: Path, png: Path) -> None:
    """Render ``page`` in headless Chromium to ``png``; skip (saying so) without Chromium.

    Fails on a console error or a failed load: the page must render on its own."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install chromium): page not rendered")
    done = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1100,2400",
            f"--screenshot={png}",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line]
    assert console == [], console
    assert png.is_file() and png.stat().st_size > 10_000  # a rendered page, not a blank one
