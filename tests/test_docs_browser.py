"""
The documentation as a reader sees it: every page of the built site loads in
headless Chromium at a desktop width (1280 px) and a phone width (390 px)
without the page itself scrolling sideways (a wide table or example scrolls
inside its own box), and the search finds what a reader types.

Skipped where Chromium, its driver or selenium is missing (``.ci/run``
installs Debian's ``chromium`` and ``chromium-driver``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._browser import NEEDS_CHROMIUM, chromium
from tests._once import once_per_run
from tests._site import built_site

WIDTHS = {"desktop": 1280, "phone": 390}

pytestmark = NEEDS_CHROMIUM


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The documentation as `tox -e docs` builds it (once per run: tests/_site.py)."""
    returncode, output, html = built_site(tmp_path_factory)
    assert returncode == 0, output
    return html


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


def _pages(site: Path) -> list[Path]:
    return sorted(p for p in site.glob("*.html") if p.name not in ("genindex.html", "search.html"))


#: The code blocks that must not be wider than their column, by width:
#: output and diagrams may scroll inside their box at 1280 px, code to read
#: and copy fits the column; on a phone every block wraps.
BLOCKS = {"desktop": "div.highlight-python pre", "phone": "div.highlight pre"}

#: What the tests look at on a loaded page: furo's article heading, how far
#: the page scrolls sideways, and the first line of each code block (of a
#: selector) wider than its box.
_LOOK = """
const e = document.scrollingElement;
return {
  headings: document.querySelectorAll("article h1").length,
  overflow: e.scrollWidth - e.clientWidth,
  wide: Array.from(document.querySelectorAll(arguments[0]))
    .filter(e => e.scrollWidth > e.clientWidth + 1)
    .map(e => e.innerText.split("\\n")[0]),
};
"""


def _look_at_every_page(site: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """What ``_LOOK`` finds on every page loaded at each width: width -> page name -> findings."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    with chromium() as browser:
        for width, pixels in WIDTHS.items():
            browser.set_window_size(pixels, 900)
            found[width] = {}
            for page in _pages(site):
                browser.get(page.as_uri())
                found[width][page.name] = browser.execute_script(_LOOK, BLOCKS[width])
    return found


@pytest.fixture(scope="module")
def looks(site: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """
    Every page loaded once at each width, for all the tests of both widths
    (page loads are most of their time), once per run: the xdist workers
    share it (tests/_once.py).
    """
    return once_per_run(tmp_path_factory, "site-looks", lambda _: _look_at_every_page(site))


@pytest.mark.parametrize("width", sorted(WIDTHS))
def test_no_page_scrolls_sideways(site: Path, looks: Any, width: str) -> None:
    pages = _pages(site)
    assert len(pages) >= 20, pages
    wide = {}
    for page in pages:
        look = looks[width][page.name]
        # The page loaded: furo's article is there, with the page's heading.
        assert look["headings"], page.name
        if look["overflow"] > 0:
            wide[page.name] = look["overflow"]
    assert wide == {}, f"pages wider than {WIDTHS[width]} px (by how many px): {wide}"


@pytest.mark.parametrize(("width", "blocks"), sorted(BLOCKS.items()))
def test_code_fits_or_wraps(site: Path, looks: Any, width: str, blocks: str) -> None:
    wide = {}
    for page in _pages(site):
        starts = looks[width][page.name]["wide"]
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
