"""
Shared fixtures. The trial TestCases of ``tests/trial/`` run in the same
pytest process as everything else (pytest's unittest support runs them).

Behaviour tests take the ``engine`` fixture, so each runs against every engine.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from twisted.logger import LogLevel, formatEvent, globalLogPublisher

from txtestserver import TestServer

#: The engines every behaviour test runs against.
ENGINES = ["thread", "subprocess"]

# Python caches compiled modules (``__pycache__``, ignored by git) unless
# PYTHONDONTWRITEBYTECODE is set, as it is in some container images (this
# project's machines and CI among them; tox does not pass it on). With it set,
# every Python process of the suite compiled this checkout's modules again,
# and there are hundreds (xdist workers, child pytest runs, server processes,
# the command), and each worker rewrote every test module again: about 4 s of
# CPU per worker and 0.1 s per child process, some 10% of the run. The suite
# lets them be cached: set here, before the xdist workers start, so that
# they and every child process inherit it (``python -B`` is still obeyed).
if os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is not None:
    sys.dont_write_bytecode = False


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """
    ``-n auto`` (the suite's addopts): two xdist workers per core. Most of a
    test is waiting (a server process starting, a client's timeout, a child
    pytest run), so one worker per core left the cores idle about 40% of
    the time; ``--maxprocesses`` still caps it.
    """
    return 2 * (os.cpu_count() or 1)


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def module_servers() -> Iterator[dict[str, TestServer]]:
    """
    The servers the tests of one module share, by engine: a server process
    takes half a second to start, a reset takes microseconds. Stopped at
    the end of the module.
    """
    servers: dict[str, TestServer] = {}
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture
def server(engine: str, module_servers: dict[str, TestServer]) -> Iterator[TestServer]:
    """
    A started server with nothing set and nothing recorded (the module's
    server of this engine, reset). A test that stops it, or starts it again
    with other settings, gets it replaced for the next test.
    """
    server = module_servers.get(engine)
    if server is None:
        server = module_servers[engine] = TestServer(engine=engine)
        server.start()
    else:
        server.reset()
    config = server.config
    yield server
    if server.port is None or server.config != config:
        del module_servers[engine]
        server.stop()


@pytest.fixture
def logged_errors() -> Iterator[list[dict[str, Any]]]:
    """
    Every twisted.logger event at level error or above, or carrying a
    failure, logged in this process while the test runs (the thread
    engine's reactor logs here). The test fails if any is left in the list
    at its end: a test that expects one removes it.
    """
    events: list[dict[str, Any]] = []

    def observe(event: dict[str, Any]) -> None:
        level = event.get("log_level")
        if event.get("log_failure") is not None or (level is not None and level >= LogLevel.error):
            events.append(event)

    # What exists now is not this test's: frozen, the collection at its end
    # visits only what the test made (a collection of the whole session
    # took about 0.15 s a test); unfrozen after it, for later collections.
    gc.freeze()
    globalLogPublisher.addObserver(observe)
    try:
        yield events
        gc.collect()  # an unhandled error in a dropped Deferred is logged now
    finally:
        globalLogPublisher.removeObserver(observe)
        gc.unfreeze()
    if events:
        texts = []
        for event in events:
            failure = event.get("log_failure")
            texts.append(formatEvent(event) + ("\n" + failure.getTraceback() if failure else ""))
        pytest.fail("errors were logged:\n" + "\n".join(texts))
