"""
The subprocess engine's record of one server process (``_ServerProcess``)
and its process started ahead of time (``WarmProcess``): timers on a
:class:`~twisted.internet.task.Clock`, with a stand-in for the process (the
real spawn is tested in tests/test_subprocess.py).
"""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.defer import CancelledError
from twisted.internet.task import Clock

from txtestserver._config import ServerConfig
from txtestserver._engines import subprocess as engine_module
from txtestserver._engines.subprocess import (
    START_TIMEOUT,
    STOP_GRACE,
    WarmProcess,
    _ServerProcess,
)
from txtestserver._engines.wire import serve_line
from txtestserver._errors import TestServerError

ENV = {"PYTHONPATH": "/here"}


class FakeProcess:
    """What _ServerProcess uses of a spawned process: what it was sent."""

    def __init__(self) -> None:
        self.signals: list[str] = []
        self.written: list[bytes] = []
        self.stdin_closed = False

    def signalProcess(self, signal: str) -> None:
        self.signals.append(signal)

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def closeStdin(self) -> None:
        self.stdin_closed = True


def server_process(clock: Clock, env: dict[str, str] = ENV) -> tuple[_ServerProcess, FakeProcess]:
    process = _ServerProcess(clock, env)  # type: ignore[arg-type]
    fake = FakeProcess()
    process._process = fake
    return process, fake


def serving(clock: Clock) -> tuple[_ServerProcess, FakeProcess]:
    process, fake = server_process(clock)
    store: Any = None  # not touched by the timers
    process.serve(store, "/state", ServerConfig(), lambda ticket: None, lambda error: None)
    return process, fake


def test_serve_sends_the_serve_line_and_starts_the_start_timeout() -> None:
    clock = Clock()
    process, fake = server_process(clock)
    assert clock.getDelayedCalls() == []  # waiting has no time limit
    process.serve(None, "/state", ServerConfig(), lambda t: None, lambda e: None)  # type: ignore[arg-type]
    assert fake.written == [serve_line("/state", ServerConfig())]
    assert [call.getTime() for call in clock.getDelayedCalls()] == [START_TIMEOUT]


def test_a_cancelled_start_leaves_no_timer() -> None:
    """
    Cancelling the start (a face's call timeout) kills the process and
    cancels the start timeout: it must not fire later, on a reactor that a
    later test uses (it used to errback the settled Deferred there).
    """
    clock = Clock()
    process, fake = serving(clock)
    process.started.addErrback(lambda failure: failure.trap(CancelledError))
    process.started.cancel()
    assert fake.signals == ["KILL"]
    assert clock.getDelayedCalls() == []
    clock.advance(START_TIMEOUT + 1)  # nothing fires


def test_a_start_that_times_out_kills_and_says_so() -> None:
    clock = Clock()
    process, fake = serving(clock)
    errors: list[Any] = []
    process.started.addErrback(errors.append)
    clock.advance(START_TIMEOUT)
    assert fake.signals == ["KILL"]
    assert errors[0].check(TestServerError)
    assert f"did not report its port within {START_TIMEOUT} s" in str(errors[0].value)
    assert clock.getDelayedCalls() == []


def test_a_stop_that_takes_too_long_kills_after_the_grace_period() -> None:
    clock = Clock()
    process, fake = serving(clock)
    process.listening(8080)
    assert clock.getDelayedCalls() == []  # the start timeout went with the start
    process.stop()
    assert fake.written[-1] == b"stop\n"
    clock.advance(STOP_GRACE - 0.01)
    assert fake.signals == []
    clock.advance(0.01)
    assert fake.signals == ["KILL"]
    assert clock.getDelayedCalls() == []


@pytest.fixture
def spawned(monkeypatch: pytest.MonkeyPatch) -> list[tuple[_ServerProcess, FakeProcess]]:
    """Every process the engine spawns, as stand-ins."""
    made: list[tuple[_ServerProcess, FakeProcess]] = []

    def spawn(reactor: Any, env: dict[str, str]) -> _ServerProcess:
        made.append(server_process(reactor, env))
        return made[-1][0]

    monkeypatch.setattr(engine_module, "_spawn", spawn)
    return made


def test_the_warm_process_is_taken_once(spawned: list[Any]) -> None:
    warm = WarmProcess(Clock())  # type: ignore[arg-type]
    assert warm.take(ENV) is None  # none started yet
    warm.refill(ENV)
    warm.refill(ENV)  # one waits already
    assert len(spawned) == 1
    assert warm.take(ENV) is spawned[0][0]
    assert warm.take(ENV) is None


def test_a_warm_process_of_another_environment_is_let_go(spawned: list[Any]) -> None:
    """A test that changed os.environ or sys.path gets a process that has its own."""
    warm = WarmProcess(Clock())  # type: ignore[arg-type]
    warm.refill(ENV)
    assert warm.take({"PYTHONPATH": "/elsewhere"}) is None
    assert spawned[0][1].stdin_closed  # it exits at the end of its stdin


def test_a_warm_process_that_died_is_not_taken(spawned: list[Any]) -> None:
    warm = WarmProcess(Clock())  # type: ignore[arg-type]
    warm.refill(ENV)
    spawned[0][0].ended = True
    assert warm.take(ENV) is None
    warm.refill(ENV)  # a new one replaces it
    assert len(spawned) == 2


def test_the_name_of_the_current_test_is_no_other_environment(spawned: list[Any]) -> None:
    """pytest changes PYTEST_CURRENT_TEST for each test and phase: the process is still used."""
    warm = WarmProcess(Clock())  # type: ignore[arg-type]
    warm.refill({**ENV, "PYTEST_CURRENT_TEST": "test_a.py::test_one (call)"})
    taken = warm.take({**ENV, "PYTEST_CURRENT_TEST": "test_a.py::test_two (setup)"})
    assert taken is spawned[0][0]
    warm.refill(ENV)  # outside a test: no name at all
    assert warm.take({**ENV, "PYTEST_CURRENT_TEST": "test_a.py::test_two (call)"}) is spawned[1][0]
