"""
The subprocess engine's record of one server process (``_ServerProcess``):
its timers, on a :class:`~twisted.internet.task.Clock`, with a stand-in
for the process (the real spawn is tested in tests/test_subprocess.py).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import CancelledError
from twisted.internet.task import Clock

from txtestserver._engines.subprocess import START_TIMEOUT, STOP_GRACE, _ServerProcess
from txtestserver._errors import TestServerError


class FakeProcess:
    """What _ServerProcess uses of a spawned process: the signals it sent."""

    def __init__(self) -> None:
        self.signals: list[str] = []
        self.written: list[bytes] = []

    def signalProcess(self, signal: str) -> None:
        self.signals.append(signal)

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def closeStdin(self) -> None:
        pass


def server_process(clock: Clock) -> tuple[_ServerProcess, FakeProcess]:
    store: Any = None  # not touched by the timers
    process = _ServerProcess(clock, store, lambda ticket: None, lambda error: None)  # type: ignore[arg-type]
    fake = FakeProcess()
    process._process = fake
    return process, fake


def test_a_cancelled_start_leaves_no_timer() -> None:
    """
    Cancelling the start (a face's call timeout) kills the process and
    cancels the start timeout: it must not fire later, on a reactor that a
    later test uses (it used to errback the settled Deferred there).
    """
    clock = Clock()
    process, fake = server_process(clock)
    process.started.addErrback(lambda failure: failure.trap(CancelledError))
    process.started.cancel()
    assert fake.signals == ["KILL"]
    assert clock.getDelayedCalls() == []
    clock.advance(START_TIMEOUT + 1)  # nothing fires


def test_a_start_that_times_out_kills_and_says_so() -> None:
    clock = Clock()
    process, fake = server_process(clock)
    errors: list[Any] = []
    process.started.addErrback(errors.append)
    clock.advance(START_TIMEOUT)
    assert fake.signals == ["KILL"]
    assert errors[0].check(TestServerError)
    assert f"did not report its port within {START_TIMEOUT} s" in str(errors[0].value)
    assert clock.getDelayedCalls() == []


def test_a_stop_that_takes_too_long_kills_after_the_grace_period() -> None:
    clock = Clock()
    process, fake = server_process(clock)
    process.listening(8080)
    assert clock.getDelayedCalls() == []  # the start timeout went with the start
    process.stop()
    assert fake.written == [b"stop\n"]
    clock.advance(STOP_GRACE - 0.01)
    assert fake.signals == []
    clock.advance(0.01)
    assert fake.signals == ["KILL"]
    assert clock.getDelayedCalls() == []
