"""
Work done once per test run and shared by every xdist worker (the docs
build, a batch of documentation examples): the first worker to ask does it
under a file lock and leaves its result as JSON; the others wait for the
lock and read that.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

#: The longest a worker waits for another to finish the work (seconds).
WAIT = 600


def shared_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The temporary directory all the workers of this run share (the run's own without xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def once_per_run(
    tmp_path_factory: pytest.TempPathFactory, name: str, work: Callable[[Path], Any]
) -> Any:
    """
    The result of ``work``, done once in this test run.

    :param name: names the work: its directory, lock and result in the
        shared directory.
    :param work: called with an empty directory of its own; returns
        something JSON can carry (say what failed in it rather than raise:
        an exception leaves the work to the next caller).
    """
    root = shared_directory(tmp_path_factory)
    result = root / f"{name}.json"
    with FileLock(str(root / f"{name}.lock"), timeout=WAIT):
        if not result.is_file():
            directory = root / name
            shutil.rmtree(directory, ignore_errors=True)  # left by a worker whose work raised
            directory.mkdir()
            done = work(directory)
            temporary = result.with_suffix(".partial")
            temporary.write_text(json.dumps(done), encoding="utf-8")
            temporary.replace(result)
    return json.loads(result.read_text(encoding="utf-8"))
