"""
The documentation as a reader sees it: every page of the built site loads in
headless Chromium at a desktop width (1280 px) and a phone width (390 px)
without the page itself scrolling sideways (a wide table or example scrolls
inside its own box), and the search finds what a reader types.

Skipped where Chromium, its driver or selenium is missing (``.ci/run``
installs Debian's ``chromium`` and ``chromium-driver``).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._browser import NEEDS_CHROMIUM, chromium

ROOT = Path(__file__).resolve().parent.parent
WIDTHS = {"desktop": 1280, "phone": 390}

pytestmark = NEEDS_CHROMIUM


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The documentation built once for this module, as `tox -e docs` builds it."""
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-E", "-q", "-b", "html", str(ROOT / "docs"), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return out


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


def _pages(site: Path) -> list[Path]:
    return sorted(p for p in site.glob("*.html") if p.name not in ("genindex.html", "search.html"))


@pytest.mark.parametrize("width", sorted(WIDTHS))
def test_no_page_scrolls_sideways(site: Path, browser: Any, width: str) -> None:
    browser.set_window_size(WIDTHS[width], 900)
    pages = _pages(site)
    assert len(pages) >= 20, pages
    wide = {}
    for page in pages:
        browser.get(page.as_uri())
        # The page loaded: furo's article is there, with the page's heading.
        assert browser.find_elements("css selector", "article h1"), page.name
        overflow = browser.execute_script(
            "const e = document.scrollingElement;return e.scrollWidth - e.clientWidth;"
        )
        if overflow > 0:
            wide[page.name] = overflow
    assert wide == {}, f"pages wider than {WIDTHS[width]} px (by how many px): {wide}"


@pytest.mark.parametrize(
    ("width", "blocks"),
    [
        # Output and diagrams may scroll inside their box at 1280 px; code to
        # read and copy fits the column.
        ("desktop", "div.highlight-python pre"),
        # On a phone every block wraps.
        ("phone", "div.highlight pre"),
    ],
)
def test_code_fits_or_wraps(site: Path, browser: Any, width: str, blocks: str) -> None:
    browser.set_window_size(WIDTHS[width], 900)
    wide = {}
    for page in _pages(site):
        browser.get(page.as_uri())
        starts = browser.execute_script(
            f"return Array.from(document.querySelectorAll('{blocks}'))"
            ".filter(e => e.scrollWidth > e.clientWidth + 1)"
            ".map(e => e.innerText.split('\\n')[0]);"
        )
        if starts:
            wide[page.name] = starts
    assert wide == {}, f"code wider than the column at {WIDTHS[width]} px: {wide}"


def _search(browser: Any, site: Path, words: str) -> list[str]:
    from selenium.webdriver.support.ui import WebDriverWait

    browser.set_window_size(WIDTHS["desktop"], 900)
    browser.get((site / "search.html").as_uri() + "?q=" + words.replace(" ", "+"))
    WebDriverWait(browser, 20).until(
        lambda b: (
            b.find_elements("css selector", "#search-results li")
            or "did not match" in b.find_element("id", "search-results").text
        )
    )
    links = browser.find_elements("css selector", "#search-results li a")
    return [link.get_attribute("href").rsplit("/", 1)[-1].split("#")[0] for link in links]


def test_search_finds_stall_timeout_on_the_streams_and_faults_page(
    site: Path, browser: Any
) -> None:
    found = _search(browser, site, "stall timeout")
    assert found, "the search found nothing for 'stall timeout'"
    assert found[0].startswith("streams-and-faults.html"), found[:5]
