"""
The documentation site, built once per test run as `tox -e docs` builds it
(nitpicky, warnings are errors), for the test that the build is clean
(tests/test_docs.py) and for the checks of the built pages in a browser
(tests/test_docs_browser.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests._once import once_per_run

ROOT = Path(__file__).resolve().parent.parent
#: The build of `tox -e docs`.
COMMAND = [sys.executable, "-m", "sphinx", "-E", "-q", "-W", "-n", "--keep-going", "-b", "html"]


def _build(directory: Path) -> dict[str, Any]:
    html = directory / "html"
    try:
        done = subprocess.run(
            [*COMMAND, str(ROOT / "docs"), str(html)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        returncode, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as e:
        returncode, output = None, f"timed out after {e.timeout} s: {e.stdout!r} {e.stderr!r}"
    return {"returncode": returncode, "output": output, "html": str(html)}


def built_site(tmp_path_factory: pytest.TempPathFactory) -> tuple[int | None, str, Path]:
    """
    The build's exit status (None: it timed out), what it printed, and
    the directory of the HTML pages.
    """
    build = once_per_run(tmp_path_factory, "site", _build)
    return build["returncode"], build["output"], Path(build["html"])
