"""
Every Python example in README.rst and docs/*.rst runs here, so the
documentation cannot drift from the code.

An example is a ``.. code-block:: python`` directive. An RST comment right
before it says how it runs (readers do not see it):

- no comment: executed in this process, with ``server`` bound to a started
  :class:`~txtestserver.TestServer` (the reference pages say so);
- ``.. test: unittest``, ``.. test: pytest``, ``.. test: trial``,
  ``.. test: pytest-asyncio``, ``.. test: anyio``: written to a module of
  its own, which must pass at least one test and fail none under that
  runner. The examples of one runner run together, in one child process
  per test run (shared by the xdist workers: tests/_once.py): a child
  process each took most of this file's time.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from tests._once import once_per_run
from tests._site import built_site
from txtestserver import TestServer

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [ROOT / "README.rst", *sorted((ROOT / "docs").glob("*.rst"))]
#: The runners of the examples that are test modules, and the arguments of
#: each pytest run (plugins loaded explicitly: the runs turn plugin
#: autoloading off). Each runner runs all its examples in one child process.
PYTEST_ARGS = ["-p", "txtestserver.pytest_plugin", "-p", "no:cacheprovider"]
RUNNERS: dict[str, list[str]] = {
    "unittest": [],
    "pytest": PYTEST_ARGS,
    "trial": [],
    # async def tests under each asyncio plugin
    "pytest-asyncio": [
        *PYTEST_ARGS,
        "-p",
        "pytest_asyncio.plugin",
        "-o",
        "asyncio_default_fixture_loop_scope=function",
    ],
    "anyio": [*PYTEST_ARGS, "-p", "anyio.pytest_plugin"],
}
#: The runners that tests/_example_runner.py drives (each module run on its
#: own, as ``python -m unittest -v`` and ``python -m twisted.trial`` would).
MODULE_RUNNERS = ("unittest", "trial")

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


def module_name(example: Example) -> str:
    """
    The module an example is written to: the one its first line names
    (``# test_example.py: ...``: the example refers to itself by that name),
    else one named after its page and line.
    """
    named = re.match(r"#\s*(\w+)\.py\b", example.code)
    if named:
        return named.group(1)
    return "test_" + re.sub(r"\W", "_", example.id)


def run_examples(kind: str, directory: Path) -> dict[str, Any]:
    """
    Run every example of ``kind``, each written to its own module in
    ``directory``, in one child process of its runner.

    :return: ``output``: what the child printed; ``modules``: by module,
        ``ok`` and ``output`` (unittest, trial: the module's own run), or
        ``passed`` and ``problems`` (pytest: from its JUnit XML report).
    """
    modules = [module_name(example) for example in ALL if example.kind == kind]
    assert len(set(modules)) == len(modules), f"two {kind} examples write one module: {modules}"
    for example in ALL:
        if example.kind == kind:
            (directory / f"{module_name(example)}.py").write_text(
                example.code + "\n", encoding="utf-8"
            )
    report = directory / "report.json" if kind in MODULE_RUNNERS else directory / "report.xml"
    if kind in MODULE_RUNNERS:
        command = ["-m", "tests._example_runner", kind, str(report), *modules]
    else:
        command = ["-m", "pytest", *RUNNERS[kind], "--continue-on-collection-errors"]
        command += ["-o", "junit_family=xunit1", "-o", "junit_logging=all"]
        command += [f"--junitxml={report}", *(f"{module}.py" for module in modules)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(directory), str(ROOT)]))
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    try:
        done = subprocess.run(
            [sys.executable, *command],
            cwd=directory,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        output = done.stdout + done.stderr
    except subprocess.TimeoutExpired as e:
        output = f"timed out after {e.timeout} s: {e.stdout!r} {e.stderr!r}"
    if not report.is_file():
        return {"output": output, "modules": {}}
    if kind in MODULE_RUNNERS:
        return {"output": output, "modules": json.loads(report.read_text(encoding="utf-8"))}
    found: dict[str, dict[str, Any]] = {m: {"passed": 0, "problems": []} for m in modules}
    for case in ElementTree.parse(report).iter("testcase"):
        module = found.setdefault(Path(case.get("file", "?")).stem, {"passed": 0, "problems": []})
        bad = [e for e in case if e.tag in ("failure", "error")]
        if bad:
            name = f"{case.get('classname')}::{case.get('name')}"
            module["problems"] += [f"{name}: {e.get('message')}\n{e.text}" for e in bad]
            module["problems"] += [e.text or "" for e in case if e.tag.startswith("system-")]
        elif not any(e.tag == "skipped" for e in case):
            module["passed"] += 1
    return {"output": output, "modules": found}


@pytest.mark.parametrize(
    "example", [e for e in ALL if e.kind in RUNNERS], ids=lambda e: f"{e.id}-{e.kind}"
)
def test_example_passes_under_its_runner(
    example: Example, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # All the examples of a runner run together (in whichever xdist worker
    # asks first); each test looks at its own example's outcome.
    run = once_per_run(
        tmp_path_factory, f"examples-{example.kind}", lambda d: run_examples(example.kind, d)
    )
    outcome = run["modules"].get(module_name(example))
    assert outcome is not None, run["output"]
    if example.kind in MODULE_RUNNERS:
        output = outcome["output"]
        assert outcome["ok"], output
        assert re.search(r"^Ran [1-9]\d* tests?|PASSED \(successes=[1-9]", output, re.M), output
    else:
        problems = "\n".join(outcome["problems"])
        assert not problems, problems + "\n" + run["output"][-3000:]
        assert outcome["passed"] >= 1, run["output"]


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


def test_documentation_builds_without_warnings(tmp_path_factory: pytest.TempPathFactory) -> None:
    # The same build as `tox -e docs`: nitpicky, warnings are errors (once
    # per run: tests/test_docs_browser.py looks at the pages it built).
    returncode, output, html = built_site(tmp_path_factory)
    assert returncode == 0, output
    assert (html / "request.html").is_file()
