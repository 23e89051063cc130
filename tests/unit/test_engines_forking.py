"""
The test process's side of a forked server (``ForkedProcess``) over real
socket pairs, driven by a private reactor one iteration at a time (epoll,
the reactor Linux runs: it refuses a closed descriptor, where select
ignores one).
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet.epollreactor import EPollReactor
from twisted.internet.protocol import ProcessProtocol

from txtestserver._engines.forking import ForkedProcess


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
