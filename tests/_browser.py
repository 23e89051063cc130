"""
Headless Chromium driven by selenium, for the tests that look at something
as a browser does (the docs site, a HAR in devtools). A module that imports
this is skipped where selenium, Chromium or chromedriver is missing
(``.ci/run`` installs Debian's ``chromium`` and ``chromium-driver``).
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

webdriver = pytest.importorskip("selenium.webdriver")
_CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
_DRIVER = shutil.which("chromedriver")

#: Put in a test module's ``pytestmark``.
NEEDS_CHROMIUM = pytest.mark.skipif(
    not (_CHROMIUM and _DRIVER),
    reason="needs Chromium and chromedriver (Debian: chromium, chromium-driver)",
)


@contextlib.contextmanager
def chromium(seconds: float = 30) -> Iterator[Any]:
    """
    A headless Chromium, quit on exit.

    :param seconds: how long a page load or a script may take.
    """
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(_CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(_DRIVER)), options=options)
    driver.set_page_load_timeout(seconds)
    driver.set_script_timeout(seconds)
    try:
        yield driver
    finally:
        driver.quit()
