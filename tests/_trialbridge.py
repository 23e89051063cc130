"""
Runs the trial TestCases of ``tests/trial/`` from the one ``pytest`` command.

trial's reactor and crochet's reactor thread cannot share a process, so pytest
collects each trial test as an item but runs all selected trial tests together
in ONE child process (``python -m tests._trialbridge ID ...``), which writes
each outcome as a JSON line; every item then reports its own outcome, with
trial's traceback when it failed.

The same tests run under trial directly: ``python -m twisted.trial tests.trial``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: The whole trial run may take this long before it is killed.
RUN_TIMEOUT = 600


def _flatten(suite: Any) -> Iterator[unittest.TestCase]:
    if isinstance(suite, unittest.TestCase):
        yield suite
    else:
        for test in suite:
            yield from _flatten(test)


# -- the child side -------------------------------------------------------------


def _run(ids: list[str], out_path: str) -> int:
    """Run trial tests by id; write one JSON line per outcome."""
    from twisted.trial import reporter, runner

    out = open(out_path, "w")

    class JSONReporter(reporter.TreeReporter):
        def _record(self, test: Any, outcome: str, detail: str = "") -> None:
            out.write(json.dumps({"id": test.id(), "outcome": outcome, "detail": detail}) + "\n")
            out.flush()

        def addSuccess(self, test: Any) -> None:
            super().addSuccess(test)
            self._record(test, "passed")

        def addFailure(self, test: Any, fail: Any) -> None:
            super().addFailure(test, fail)
            self._record(test, "failed", _text(fail))

        def addError(self, test: Any, error: Any) -> None:
            super().addError(test, error)
            self._record(test, "failed", _text(error))

        def addSkip(self, test: Any, reason: Any) -> None:
            super().addSkip(test, reason)
            self._record(test, "skipped", str(reason))

        def addExpectedFailure(self, test: Any, error: Any, todo: Any = None) -> None:
            super().addExpectedFailure(test, error, todo)
            self._record(test, "skipped", "expected failure (todo)")

        def addUnexpectedSuccess(self, test: Any, todo: Any = None) -> None:
            super().addUnexpectedSuccess(test, todo)
            self._record(test, "failed", "unexpected success of a todo test")

    loader = runner.TestLoader()
    suite = loader.loadByNames(ids, recurse=True)
    trial = runner.TrialRunner(
        JSONReporter, workingDirectory=os.environ.get("TRIAL_TEMP", "_trial_temp")
    )
    result = trial.run(suite)
    out.close()
    return 0 if result.wasSuccessful() else 1


def _text(failure: Any) -> str:
    if isinstance(failure, tuple):
        import traceback

        return "".join(traceback.format_exception(*failure))
    return str(failure.getTraceback())


# -- the pytest side --------------------------------------------------------------

try:
    import pytest
except ImportError:  # pragma: no cover - only the child runs without pytest
    pytest = None  # type: ignore[assignment]


if pytest is not None:

    class TrialItem(pytest.Item):
        """One trial test method, run in the shared trial child process."""

        def __init__(self, *, test_id: str, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.test_id = test_id

        def runtest(self) -> None:
            results = _results_for(self.session)
            outcome = results.get(self.test_id)
            if outcome is None:
                raise TrialFailure(
                    f"trial reported nothing for {self.test_id}; its output:\n"
                    + results.get("__output__", {}).get("detail", "")
                )
            if outcome["outcome"] == "skipped":
                pytest.skip(outcome["detail"])
            if outcome["outcome"] == "failed":
                raise TrialFailure(outcome["detail"])

        def repr_failure(self, excinfo: Any, style: Any = None) -> str:
            if isinstance(excinfo.value, TrialFailure):
                return str(excinfo.value)
            return str(super().repr_failure(excinfo))

        def reportinfo(self) -> tuple[Any, int, str]:
            return self.path, 0, self.test_id

    class TrialModule(pytest.File):
        """A module of trial TestCases: one item per test method."""

        def collect(self) -> Iterator[TrialItem]:
            from twisted.trial import runner

            relative = self.path.relative_to(ROOT).with_suffix("")
            name = ".".join(relative.parts)
            suite = runner.TestLoader().loadByName(name, recurse=True)
            for test in _flatten(suite):
                test_id = test.id()
                short = test_id[len(name) + 1 :]
                yield TrialItem.from_parent(self, name=short, test_id=test_id)

    class TrialFailure(Exception):
        """A trial test failed; the message is trial's traceback."""

    def _results_for(session: Any) -> dict[str, dict[str, str]]:
        cached: dict[str, dict[str, str]] | None = getattr(session, "_trial_results", None)
        if cached is not None:
            return cached
        ids = [item.test_id for item in session.items if isinstance(item, TrialItem)]
        workdir = tempfile.mkdtemp(prefix="txtestserver-trial-")
        out_path = str(Path(workdir) / "results.jsonl")
        env = dict(os.environ, TRIAL_TEMP=str(Path(out_path).parent / "_trial_temp"))
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "tests._trialbridge", out_path, *ids],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=RUN_TIMEOUT,
            )
            output = proc.stdout + proc.stderr
        except subprocess.TimeoutExpired as e:
            output = f"the trial run was killed after {RUN_TIMEOUT} s\n{e.stdout or ''}"
        results: dict[str, dict[str, str]] = {"__output__": {"detail": output[-20000:]}}
        if os.path.exists(out_path):
            with open(out_path) as f:
                for line in f:
                    record = json.loads(line)
                    # A test that errs in cleanup reports twice: keep the failure.
                    if results.get(record["id"], {}).get("outcome") != "failed":
                        results[record["id"]] = record
        shutil.rmtree(workdir, ignore_errors=True)
        session._trial_results = results
        return results


if __name__ == "__main__":
    sys.exit(_run(sys.argv[2:], sys.argv[1]))
