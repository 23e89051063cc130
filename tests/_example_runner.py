"""
Runs documentation examples that are unittest or trial test modules, each
module on its own, all in this one process (tests/test_docs.py starts it:
one child process for all the examples of a runner instead of one each).

``python -m tests._example_runner RUNNER OUT MODULE...``, RUNNER being
``unittest`` or ``trial``, writes to the file OUT, as JSON, what each module's
run printed and whether it was successful: ``{module: {"ok": bool,
"output": str}}``. The modules are imported from the working directory.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import traceback
from collections.abc import Callable
from typing import Any, TextIO


def run_unittest(name: str, stream: TextIO) -> bool:
    """Run module ``name`` as ``python -m unittest -v name`` does; whether it passed."""
    import unittest

    suite = unittest.defaultTestLoader.loadTestsFromName(name)
    return unittest.TextTestRunner(stream=stream, verbosity=2).run(suite).wasSuccessful()


def run_trial(name: str, stream: TextIO) -> bool:
    """Run module ``name`` as ``python -m twisted.trial name`` does; whether it passed."""
    from twisted.trial.reporter import TreeReporter
    from twisted.trial.runner import TestLoader, TrialRunner

    suite = TestLoader().loadByNames([name])
    return bool(TrialRunner(TreeReporter, stream=stream).run(suite).wasSuccessful())


RUNNERS: dict[str, Callable[[str, TextIO], bool]] = {
    "unittest": run_unittest,
    "trial": run_trial,
}


def main(runner: str, out: str, *modules: str) -> None:
    results: dict[str, Any] = {}
    for name in modules:
        stream = io.StringIO()
        with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
            try:
                ok = RUNNERS[runner](name, stream)
            except Exception:  # reported as the module's failure
                traceback.print_exc(file=stream)
                ok = False
        results[name] = {"ok": ok, "output": stream.getvalue()}
    with open(out, "w", encoding="utf-8") as file:
        json.dump(results, file)


if __name__ == "__main__":
    main(*sys.argv[1:])
