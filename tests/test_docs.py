"""
Every Python example in README.rst and docs/*.rst runs here, so the
documentation cannot drift from the code.

An example is a ``.. code-block:: python`` directive. An RST comment right
before it says how it runs (readers do not see it):

- no comment: executed in this process, with ``server`` bound to a started
  :class:`~txtestserver.TestServer` (the reference pages say so);
- ``.. test: unittest``, ``.. test: pytest``, ``.. test: trial``,
  ``.. test: pytest-asyncio``, ``.. test: anyio``: written to a module in a
  temporary directory and run by that runner in a child process, which must
  pass at least one test and fail none.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from txtestserver import TestServer

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [ROOT / "README.rst", *sorted((ROOT / "docs").glob("*.rst"))]
RUNNERS = {
    "unittest": [sys.executable, "-m", "unittest", "-v", "test_example"],
    "pytest": [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "txtestserver.pytest_plugin",
        "-p",
        "no:cacheprovider",
        "test_example.py",
    ],
    "trial": [sys.executable, "-m", "twisted.trial", "test_example"],
    # async def tests under each asyncio plugin (loaded explicitly: the run
    # turns plugin autoloading off).
    "pytest-asyncio": [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "txtestserver.pytest_plugin",
        "-p",
        "pytest_asyncio.plugin",
        "-o",
        "asyncio_default_fixture_loop_scope=function",
        "-p",
        "no:cacheprovider",
        "test_example.py",
    ],
    "anyio": [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "txtestserver.pytest_plugin",
        "-p",
        "anyio.pytest_plugin",
        "-p",
        "no:cacheprovider",
        "test_example.py",
    ],
}

_DIRECTIVE = re.compile(r"^(\s*)\.\. code-block:: python\s*$")
_KIND = re.compile(r"^\s*\.\. test: ([\w-]+)\s*$")


@dataclass
class Example:
    path: Path
    line: int
    kind: str
    code: str

    @property
    def id(self) -> str:
        return f"{self.path.name}:{self.line}"


def examples(path: Path) -> list[Example]:
    """The Python code blocks of one RST file, each with how it runs."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found = []
    for number, line in enumerate(lines):
        match = _DIRECTIVE.match(line)
        if not match:
            continue
        indent = len(match.group(1))
        kind = "exec"
        previous = [text for text in lines[:number] if text.strip()]
        if previous:
            kind_match = _KIND.match(previous[-1])
            if kind_match:
                kind = kind_match.group(1)
        body = []
        i = number + 1
        while i < len(lines) and re.match(r"^\s+:\w[\w-]*:", lines[i]):
            i += 1  # directive options
        for text in lines[i:]:
            if text.strip() and len(text) - len(text.lstrip()) <= indent:
                break
            body.append(text)
        found.append(Example(path, number + 1, kind, textwrap.dedent("\n".join(body)).strip()))
    return found


ALL = [example for source in SOURCES for example in examples(source)]


def test_every_page_has_examples_found() -> None:
    # Guards the parser: if it stopped finding blocks, every test below
    # would silently vanish.
    pages = {example.path.name for example in ALL}
    assert {"README.rst", "quickstart.rst", "request.rst", "response.rst"} <= pages
    assert {example.kind for example in ALL} == {"exec", *RUNNERS}


@pytest.mark.parametrize("example", [e for e in ALL if e.kind == "exec"], ids=lambda e: e.id)
def test_example_runs(example: Example) -> None:
    with TestServer() as server:
        code = compile(example.code, example.id, "exec")
        exec(code, {"__name__": "__doc_example__", "server": server})


@pytest.mark.parametrize(
    "example", [e for e in ALL if e.kind in RUNNERS], ids=lambda e: f"{e.id}-{e.kind}"
)
def test_example_passes_under_its_runner(example: Example, tmp_path: Path) -> None:
    (tmp_path / "test_example.py").write_text(example.code + "\n", encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    done = subprocess.run(
        RUNNERS[example.kind],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    if example.kind not in ("unittest", "trial"):
        assert re.search(r"\b[1-9]\d* passed\b", output), output
        assert " failed" not in output, output
    else:
        assert re.search(r"^Ran [1-9]\d* tests?|PASSED \(successes=[1-9]", output, re.M), output


# Sentences that once contradicted what the package does; none may come back.
STALE = [
    "plain HTTP/1.1 only",  # TLS and HTTP/2 exist
    "Do not mix the two faces",  # the faces mix in one process
    "For routing in txtestserver, use a",  # routes exist
    "use pytest-httpserver for per-path answers",
]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_no_stale_sentence(source: Path) -> None:
    text = " ".join(source.read_text(encoding="utf-8").split())
    assert [s for s in STALE if s.lower() in text.lower()] == []


def test_quickstart_script() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "client got: 200 b'Hello from txtestserver'" in done.stdout
    assert "request['path'] = '/greet'" in done.stdout


def test_documentation_builds_without_warnings(tmp_path: Path) -> None:
    # The same build as `tox -e docs`: nitpicky, warnings are errors.
    command = [sys.executable, "-m", "sphinx", "-E", "-q", "-W", "-n", "--keep-going"]
    done = subprocess.run(
        [*command, "-b", "html", str(ROOT / "docs"), str(tmp_path / "html")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "html" / "request.html").is_file()
