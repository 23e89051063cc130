"""
The Autobahn TestSuite's ``fuzzingclient`` against an echo WebSocket route,
in each engine: cases 1-7 and 10 must report no FAILED case, and so must a
few of the compression cases 12 and 13 with ``compression=True`` (the whole
of them runs for minutes: its figures are in docs/websocket.rst). The four
runs (two case lists, two engines) go at once, once per test run, whichever
xdist worker asks first (tests/_once.py): most of a run is waiting.

wstest runs on Python 2.7. The test finds the interpreter (``$TXTESTSERVER_PYTHON27``,
``python2.7`` on PATH, or pyenv's 2.7.18) and is skipped where there is none;
it installs ``autobahntestsuite==0.8.2`` with that interpreter's pip into
``$TXTESTSERVER_AUTOBAHN_DIR`` (by default a cache directory under
``~/.cache/txtestserver``) where it is not installed yet.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests._once import once_per_run
from tests.conftest import ENGINES
from txtestserver import TestServer

VERSION = "0.8.2"
#: Seconds the wstest runs may take, all at once (about 12 s here).
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


#: The runs of this module: name -> engine, cases, the route's settings.
RUNS: dict[str, tuple[str, list[str], dict[str, Any]]] = {
    f"{engine}-{name}": (engine, cases, route)
    for engine in ENGINES
    for name, cases, route in (
        ("general", ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "10.*"], {}),
        ("compression", COMPRESSION_CASES, {"compression": True}),
    )
}


def fuzz_all(wstest: list[str], directory: Path) -> dict[str, Any]:
    """
    Run wstest's fuzzingclient for each of :data:`RUNS` against an echo
    route of its own server, all at once: most of a run is waiting (cases
    5.19, 5.20 and 6.4.x pause a second each, by design).

    :return: name -> ``returncode`` (None: it timed out), ``output``,
        ``results`` (by case; None without a report).
    """
    python, flag, module, target = wstest
    runs: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        for name, (engine, cases, route) in RUNS.items():
            server = stack.enter_context(TestServer(engine=engine))
            ws = server.websocket("/echo", **route)
            ws.echo()
            here = directory / name
            here.mkdir()
            spec = {
                "outdir": str(here / "reports"),
                "servers": [{"agent": "txtestserver", "url": ws.url}],
                "cases": cases,
                "exclude-cases": [],
                "exclude-agent-cases": {},
            }
            (here / "spec.json").write_text(json.dumps(spec))
            output = stack.enter_context((here / "output.txt").open("w"))
            runs[name] = subprocess.Popen(
                [python, flag, module, "-m", "fuzzingclient", "-s", "spec.json"],
                cwd=here,
                env={**os.environ, "PYTHONPATH": target},
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + BOUND
        found: dict[str, Any] = {}
        for name, process in runs.items():
            try:
                returncode: int | None = process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                returncode = None
            index = directory / name / "reports" / "index.json"
            results = json.loads(index.read_text())["txtestserver"] if index.is_file() else None
            output = (directory / name / "output.txt").read_text(errors="replace")
            found[name] = {"returncode": returncode, "output": output[-4000:], "results": results}
    return found


@pytest.fixture
def fuzzed(wstest: list[str], tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The results of every run of :data:`RUNS`, once per test run (tests/_once.py)."""
    return once_per_run(tmp_path_factory, "autobahn", lambda d: fuzz_all(wstest, d))


def results_of(fuzzed: dict[str, Any], name: str) -> dict[str, Any]:
    """The results by case of run ``name``, which must have ended well."""
    run = fuzzed[name]
    assert run["returncode"] == 0, run["output"]
    assert run["results"] is not None, run["output"]
    return run["results"]  # type: ignore[no-any-return]


def assert_no_failure(results: dict[str, Any]) -> None:
    behaviors = Counter(case["behavior"] for case in results.values())
    failed = sorted(k for k, case in results.items() if case["behavior"] == "FAILED")
    assert not failed, f"{behaviors}: failed cases {failed}"
    assert set(behaviors) <= {"OK", "NON-STRICT", "INFORMATIONAL"}, behaviors


def test_fuzzingclient_reports_no_failure(fuzzed: dict[str, Any], engine: str) -> None:
    results = results_of(fuzzed, f"{engine}-general")
    assert len(results) == 247
    assert_no_failure(results)


def test_fuzzingclient_compression_cases(fuzzed: dict[str, Any], engine: str) -> None:
    """A few of cases 12 and 13 (permessage-deflate), which run in seconds."""
    results = results_of(fuzzed, f"{engine}-compression")
    assert sorted(results) == sorted(COMPRESSION_CASES)
    assert_no_failure(results)
