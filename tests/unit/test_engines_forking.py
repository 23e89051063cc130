"""
The test process's side of a forked server (``ForkedProcess``) over real
socket pairs, driven by a private reactor one iteration at a time (epoll,
the reactor Linux runs: it refuses a closed descriptor, where select
ignores one).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from typing import Any

from twisted.internet.epollreactor import EPollReactor
from twisted.internet.protocol import ProcessProtocol

from txtestserver._engines.forking import ForkedProcess, ForkRequest


class Recorder(ProcessProtocol):
    def __init__(self) -> None:
        self.out = bytearray()
        self.ended: list[Any] = []

    def outReceived(self, data: bytes) -> None:
        self.out += data

    def processEnded(self, reason: Any) -> None:
        self.ended.append(reason)


def iterate_until(reactor: EPollReactor, done: Any, what: str) -> None:
    for _ in range(200):
        if done():
            return
        reactor.iterate(0.01)
    raise AssertionError(f"the reactor never got to: {what}")


def test_stop_after_the_server_closed_its_sockets_before_its_fork_server_said_so() -> None:
    """
    The server process exits (both its sockets close) and the test stops
    it before the fork server's ``ended`` line arrives: closing its stdin
    must do nothing, not hand the reactor a closed descriptor (CI saw
    ``ValueError: file descriptor cannot be a negative integer``).
    """
    reactor = EPollReactor()
    control, their_control = socket.socketpair()
    errors, their_errors = socket.socketpair()
    protocol = Recorder()
    process = ForkedProcess(reactor, protocol, control, errors, lambda: None)
    process.was_forked(12345)
    their_control.sendall(b"said\n")
    their_control.close()
    their_errors.close()
    iterate_until(reactor, lambda: not process.pipes[0].connected, "the control socket closed")
    iterate_until(reactor, lambda: not process.pipes[2].connected, "the error socket closed")
    process.write(b"stop\n")
    process.closeStdin()
    assert bytes(protocol.out) == b"said\n"
    assert protocol.ended == []  # its fork server has not said it ended
    process.exited(0)
    assert len(protocol.ended) == 1
    reactor.removeAll()
    reactor._poller.close()


def close(reactor: EPollReactor) -> None:
    """Close the sockets left on ``reactor``, and its poller."""
    for selectable in reactor.removeAll():
        selectable.socket.close()
    reactor._poller.close()


class FakeForkServer:
    def __init__(self) -> None:
        self.killed = False

    def kill(self) -> None:
        self.killed = True


def test_a_kill_after_the_fork_kills_the_server_not_the_fork_server() -> None:
    """
    The caller asks for a kill before it has the pid (a cancelled start),
    but the host has it already: only that server goes, the fork server
    (and the other servers it forks) stays.
    """
    reactor = EPollReactor()
    request = ForkRequest(reactor, Recorder(), {}, lambda function: function())
    fork_server = FakeForkServer()
    request.sent_to(fork_server)  # type: ignore[arg-type]
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        request.forked(server.pid)
        request.process.signalProcess("KILL")  # the pid has not reached the caller yet
        assert server.wait(10) == -signal.SIGKILL
        assert not fork_server.killed
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        close(reactor)


def test_a_kill_before_the_fork_kills_the_fork_server() -> None:
    """Not forked yet: the fork server does not answer (its imports hang, say)."""
    reactor = EPollReactor()
    request = ForkRequest(reactor, Recorder(), {}, lambda function: function())
    fork_server = FakeForkServer()
    request.sent_to(fork_server)  # type: ignore[arg-type]
    request.process.signalProcess("KILL")
    assert fork_server.killed
    close(reactor)
