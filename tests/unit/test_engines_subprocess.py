"""
The subprocess engine's record of one server process (``_ServerProcess``)
and its fork servers (``ForkServers``): timers on a
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
    ForkServers,
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


class FakeForkServer:
    """What ForkServers uses of a fork server: the servers asked for, its retirement."""

    def __init__(self, reactor: Any, env: dict[str, str]) -> None:
        self.env = env
        self.gone = False
        self.retired = False
        self.forked: list[Any] = []

    def fork(self, request: FakeRequest) -> None:
        if self.gone:
            raise TestServerError("the fork server has exited")
        self.forked.append(request.process)

    def retire(self) -> None:
        self.retired = True


class FakeRequest:
    """A fork request whose process is the server itself (no sockets)."""

    def __init__(self, reactor: Any, protocol: Any, env: dict[str, str], on_host: Any) -> None:
        self.env = env
        self.process = protocol
        self.refusals: list[TestServerError] = []

    def refused(self, error: TestServerError) -> None:
        self.refusals.append(error)


class Host:
    """The private reactor thread, as ForkServers sees it: calls run at once."""

    reactor = Clock()

    def submit(self, deliver: Any, function: Any, *args: Any) -> None:
        deliver(function(*args))


@pytest.fixture
def fork_servers(monkeypatch: pytest.MonkeyPatch) -> list[FakeForkServer]:
    """Every fork server the engine starts, as stand-ins."""
    made: list[FakeForkServer] = []

    def start(reactor: Any, env: dict[str, str]) -> FakeForkServer:
        made.append(FakeForkServer(reactor, env))
        return made[-1]

    monkeypatch.setattr(engine_module, "ForkServer", start)
    monkeypatch.setattr(engine_module, "ForkRequest", FakeRequest)
    return made


def test_one_fork_server_forks_every_server(fork_servers: list[FakeForkServer]) -> None:
    forks = ForkServers(Host())
    first, _ = server_process(Clock())
    second, _ = server_process(Clock())
    assert forks.fork(first, Clock()) is first
    assert forks.fork(second, Clock()) is second
    assert len(fork_servers) == 1
    assert fork_servers[0].forked == [first, second]


def test_a_fork_server_of_another_environment_is_let_go(
    fork_servers: list[FakeForkServer],
) -> None:
    """A test that changed os.environ or sys.path gets a fork server that has its own."""
    forks = ForkServers(Host())
    forks.fork(server_process(Clock())[0], Clock())
    elsewhere, _ = server_process(Clock(), {"PYTHONPATH": "/elsewhere"})
    forks.fork(elsewhere, Clock())
    assert fork_servers[0].retired  # it exits once its servers have
    assert fork_servers[1].env == {"PYTHONPATH": "/elsewhere"}
    assert fork_servers[1].forked == [elsewhere]


def test_a_fork_server_that_died_is_replaced(fork_servers: list[FakeForkServer]) -> None:
    forks = ForkServers(Host())
    forks.fork(server_process(Clock())[0], Clock())
    fork_servers[0].gone = True
    server, _ = server_process(Clock())
    assert forks.fork(server, Clock()) is server
    assert len(fork_servers) == 2


def test_the_name_of_the_current_test_is_no_other_environment(
    fork_servers: list[FakeForkServer],
) -> None:
    """pytest changes PYTEST_CURRENT_TEST for each test and phase: the fork server is kept."""
    forks = ForkServers(Host())
    for name in ("test_a.py::test_one (call)", "test_a.py::test_two (setup)", None):
        env = dict(ENV, PYTEST_CURRENT_TEST=name) if name else ENV
        forks.fork(server_process(Clock(), env)[0], Clock())
    assert len(fork_servers) == 1


def test_a_fork_server_that_cannot_start_refuses_the_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server then ends as one that could not start, saying why (no hang, no spawn)."""
    requests: list[FakeRequest] = []

    def cannot_start(reactor: Any, env: dict[str, str]) -> None:
        raise TestServerError("cannot start the fork server /no/python: not found")

    def request(*args: Any) -> FakeRequest:
        requests.append(FakeRequest(*args))
        return requests[-1]

    monkeypatch.setattr(engine_module, "ForkServer", cannot_start)
    monkeypatch.setattr(engine_module, "ForkRequest", request)
    ForkServers(Host()).fork(server_process(Clock())[0], Clock())
    assert [str(e) for e in requests[0].refusals] == [
        "cannot start the fork server /no/python: not found"
    ]
