"""
The Autobahn TestSuite's ``fuzzingclient`` against an echo WebSocket route,
in each engine: cases 1-7 and 10 must report no FAILED case, and so must a
few of the compression cases 12 and 13 with ``compression=True`` (the whole
of them runs for minutes: its figures are in docs/websocket.rst).

wstest runs on Python 2.7. The test finds the interpreter (``$TXTESTSERVER_PYTHON27``,
``python2.7`` on PATH, or pyenv's 2.7.18) and is skipped where there is none;
it installs ``autobahntestsuite==0.8.2`` with that interpreter's pip into
``$TXTESTSERVER_AUTOBAHN_DIR`` (by default a cache directory under
``~/.cache/txtestserver``) where it is not installed yet.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from txtestserver import TestServer

VERSION = "0.8.2"
#: Seconds one wstest run may take (about 10 s here).
BOUND = 180
#: Compression cases that run in seconds (the small payloads; each sends
#: 1,000 messages): 12.x compresses with the client's defaults, 13.x with
#: other parameters.
COMPRESSION_CASES = ["12.1.1", "12.1.2", "12.2.1", "13.1.1", "13.3.1", "13.5.1"]


def python27() -> str | None:
    """A Python 2.7 that runs (a pyenv shim may be on PATH and not run)."""
    root = Path(os.environ.get("PYENV_ROOT", "~/.pyenv")).expanduser()
    candidates = [
        os.environ.get("TXTESTSERVER_PYTHON27"),
        str(root / "versions/2.7.18/bin/python2.7"),
        shutil.which("python2.7"),
    ]
    for candidate in candidates:
        if not candidate or not os.access(candidate, os.X_OK):
            continue
        check = "import sys; sys.exit(sys.version_info[:2] != (2, 7))"
        try:
            if (
                subprocess.run([candidate, "-c", check], capture_output=True, timeout=30).returncode
                == 0
            ):
                return candidate
        except (OSError, subprocess.TimeoutExpired):
            continue
    return None


@pytest.fixture(scope="session")
def wstest() -> list[str]:
    """The command that runs wstest, with its environment's PYTHONPATH set up."""
    python = python27()
    if python is None:
        pytest.skip("the Autobahn TestSuite needs Python 2.7 (set TXTESTSERVER_PYTHON27)")
    target = Path(
        os.environ.get("TXTESTSERVER_AUTOBAHN_DIR")
        or Path("~/.cache/txtestserver").expanduser() / f"autobahntestsuite-{VERSION}"
    )
    if not (target / "autobahntestsuite").is_dir():
        subprocess.run(
            [
                python,
                "-m",
                "pip",
                "install",
                "-q",
                "--target",
                str(target),
                f"autobahntestsuite=={VERSION}",
            ],
            check=True,
            timeout=600,
        )
    (target / "zope" / "__init__.py").touch()  # zope is a namespace package there
    return [python, "-m", "autobahntestsuite.wstest", str(target)]


def fuzz(
    wstest: list[str], tmp_path: Path, engine: str, cases: list[str], **route: Any
) -> dict[str, Any]:
    """Run wstest's fuzzingclient over ``cases`` against an echo route; its results by case."""
    python, flag, module, target = wstest
    with TestServer(engine=engine) as server:
        ws = server.websocket("/echo", **route)
        ws.echo()
        spec = {
            "outdir": str(tmp_path / "reports"),
            "servers": [{"agent": "txtestserver", "url": ws.url}],
            "cases": cases,
            "exclude-cases": [],
            "exclude-agent-cases": {},
        }
        (tmp_path / "spec.json").write_text(json.dumps(spec))
        run = subprocess.run(
            [python, flag, module, "-m", "fuzzingclient", "-s", "spec.json"],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": target},
            capture_output=True,
            text=True,
            timeout=BOUND,
        )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    results: dict[str, Any] = json.loads((tmp_path / "reports" / "index.json").read_text())
    return results["txtestserver"]  # type: ignore[no-any-return]


def assert_no_failure(results: dict[str, Any]) -> None:
    behaviors = Counter(case["behavior"] for case in results.values())
    failed = sorted(k for k, case in results.items() if case["behavior"] == "FAILED")
    assert not failed, f"{behaviors}: failed cases {failed}"
    assert set(behaviors) <= {"OK", "NON-STRICT", "INFORMATIONAL"}, behaviors


def test_fuzzingclient_reports_no_failure(wstest: list[str], tmp_path: Path, engine: str) -> None:
    cases = ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "10.*"]
    results = fuzz(wstest, tmp_path, engine, cases)
    assert len(results) == 247
    assert_no_failure(results)


def test_fuzzingclient_compression_cases(wstest: list[str], tmp_path: Path, engine: str) -> None:
    """A few of cases 12 and 13 (permessage-deflate), which run in seconds."""
    results = fuzz(wstest, tmp_path, engine, COMPRESSION_CASES, compression=True)
    assert sorted(results) == sorted(COMPRESSION_CASES)
    assert_no_failure(results)
