"""
The test process's side of the fork server (:mod:`.forkserver`): the
helper process, started once per test process, that has done the server
process's imports and forks one server process per ``start()``.

Two reactors take part, each in its own thread:

- the *host* (txtestserver's private reactor thread) runs the fork server:
  :class:`ForkServer` spawns it there, sends it each request and reads its
  ``forked`` and ``ended`` lines;
- the *caller's* reactor (the one the server's face serves from: the same
  private one, or trial's global one) runs each server: its
  :class:`ForkedProcess`, a transport with what the engine uses of a Twisted
  process transport (``write``, ``closeStdin``, ``signalProcess``, ``pid``,
  ``pipes``), over two socket pairs instead of pipes: the server's control
  socket (its stdin and stdout) and its error output.

A :class:`ForkRequest` is the one crossing between them: made in the
caller's thread (with the socket pairs and the :class:`ForkedProcess`),
handed to the host, which sends the server's ends to the fork server and
passes what it learns (the pid, the fork server's error output, the end)
back to the :class:`ForkedProcess` with the caller reactor's
``callFromThread``. So nothing of a server is left on the caller's reactor
once it has ended, and nothing of the fork server is ever on it. We are not
the server's parent, so its end is the fork server's ``ended`` line (with
the wait status) and the end of both sockets, as Twisted waits for a
spawned process's pipes and its reaping.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet.error import ProcessDone, ProcessExitedAlready, ProcessTerminated
from twisted.internet.protocol import Factory, ProcessProtocol, Protocol
from twisted.python.failure import Failure

from .._errors import TestServerError
from .._types import ProcessReactor
from .reaping import confine_reaping
from .wire import ForkServerEvents, LineReader, fork_server_argv

__all__ = ["ForkRequest", "ForkServer", "ForkedProcess"]


def _reason(status: int | None) -> Failure:
    """A wait status as the reason Twisted gives ``processEnded``."""
    if status is None:  # its fork server died first: nobody could learn it
        return Failure(ProcessDone(0))
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
    sig = None if os.WIFEXITED(status) else os.WTERMSIG(status)
    if code or sig:
        return Failure(ProcessTerminated(code, sig, status))
    return Failure(ProcessDone(status))


class _Stream(Protocol):
    """One socket of a forked server: passes what it reads to ``received``."""

    def __init__(self, owner: ForkedProcess, received: Any) -> None:
        self._owner = owner
        self._received = received

    def dataReceived(self, data: bytes) -> None:
        self._received(data)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self._owner.stream_closed()


class _Adopt(Factory):
    def __init__(self, protocol: Protocol) -> None:
        self._protocol = protocol

    def buildProtocol(self, addr: Any) -> Protocol:
        return self._protocol


class ForkedProcess:
    """
    A server process forked by the fork server, as its ``ProcessProtocol``
    sees it (:class:`~twisted.internet.interfaces.IProcessTransport`'s
    parts that the engine uses).

    Everything here runs in ``reactor``'s thread, the fork server's reports
    included (:class:`ForkRequest` brings them).

    :param reactor: reads and writes its sockets.
    :param protocol: gets ``outReceived``, ``errReceived``, ``processEnded``.
    :param control: our end of its stdin and stdout.
    :param errors: our end of its error output.
    :param kill_fork_server: kills the fork server: a kill before the fork
        server has forked it means the fork server does not answer (its
        imports hang, say); killing it ends this one too.
    """

    #: Reaped by its fork server, not by us.
    forked = True

    def __init__(
        self,
        reactor: Any,
        protocol: ProcessProtocol,
        control: socket.socket,
        errors: socket.socket,
        kill_fork_server: Any,
    ) -> None:
        self.pid: int | None = None
        self._protocol = protocol
        self._early = bytearray()  # control data before we know the pid
        self._open = 2
        self._status: int | None = None
        self._exited = False
        self._done = False
        self._kill_fork_server = kill_fork_server
        self._control = reactor.adoptStreamConnection(
            control.fileno(), socket.AF_UNIX, _Adopt(_Stream(self, self._out))
        )
        self._errors = reactor.adoptStreamConnection(
            errors.fileno(), socket.AF_UNIX, _Adopt(_Stream(self, protocol.errReceived))
        )
        control.close()
        errors.close()
        protocol.makeConnection(self)

    @property
    def pipes(self) -> dict[int, Any]:
        """Our ends of its sockets, by its descriptor (for ``fileno()``)."""
        return {0: self._control, 2: self._errors}

    def write(self, data: bytes) -> None:
        self._control.write(data)

    def closeStdin(self) -> None:
        """
        Half-close its control socket, unless the server process closed it
        first (it exited, and its fork server has not said so yet): then
        there is nothing left to close, as with a process's closed pipe.
        """
        if self._control.connected:
            self._control.loseWriteConnection()

    def signalProcess(self, name: str) -> None:
        if self._exited:
            raise ProcessExitedAlready()
        if self.pid is None:
            self._kill_fork_server()
            return
        try:
            os.kill(self.pid, getattr(signal, f"SIG{name}"))
        except ProcessLookupError:
            raise ProcessExitedAlready() from None

    # -- what the fork server says --------------------------------------------------

    def was_forked(self, pid: int) -> None:
        self.pid = pid
        if self._early:
            early, self._early = bytes(self._early), bytearray()
            self._protocol.outReceived(early)

    def fork_server_said(self, output: bytes) -> None:
        """Error output of the fork server while it has not forked us: ours (an import error)."""
        self._protocol.errReceived(output)

    def exited(self, status: int | None) -> None:
        """It has exited (``status`` None: unknown)."""
        self._exited = True
        self._status = status
        self._end()

    # -- helpers ----------------------------------------------------------------------

    def _out(self, data: bytes) -> None:
        if self.pid is None:
            self._early += data
        else:
            self._protocol.outReceived(data)

    def stream_closed(self) -> None:
        self._open -= 1
        self._end()

    def _end(self) -> None:
        if self._exited and self._open == 0 and not self._done:
            self._done = True
            self.pid = None
            self._protocol.processEnded(_reason(self._status))


class ForkRequest:
    """
    One server asked of the fork server: made in the caller's reactor
    thread, then handled by the fork server in its host's thread, which
    passes what it learns on to :attr:`process` in the caller's thread.

    :param reactor: the caller's reactor: runs the server's sockets and
        :attr:`process`'s events.
    :param protocol: the server's ``ProcessProtocol``.
    :param env: the environment the server needs (its fork server's).
    :param on_host: ``on_host(function, *args)`` runs ``function(*args)``
        in the host's thread (from the caller's): how :attr:`process` asks
        to kill the fork server (:meth:`kill`).
    """

    def __init__(
        self,
        reactor: Any,
        protocol: ProcessProtocol,
        env: dict[str, str],
        on_host: Callable[..., None],
    ) -> None:
        self.env = env
        self._tell: Callable[..., None] = reactor.callFromThread
        self._fork_server: ForkServer | None = None
        self._pid: int | None = None  # once forked, as the host knows it
        self._ended = False  # as the host knows it
        control, control_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        errors, errors_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        #: The server's ends of its sockets, until the fork server has them.
        self.ends = [control_theirs, errors_theirs]
        #: The server as its protocol sees it (lives in the caller's thread).
        self.process = ForkedProcess(reactor, protocol, control, errors, lambda: on_host(self.kill))

    # -- in the host's thread ---------------------------------------------------------

    def sent_to(self, fork_server: ForkServer) -> None:
        """``fork_server`` has the server's ends: ours are closed."""
        self._fork_server = fork_server
        self._close_ends()

    def forked(self, pid: int) -> None:
        self._pid = pid
        self._tell(self.process.was_forked, pid)

    def said(self, output: bytes) -> None:
        self._tell(self.process.fork_server_said, output)

    def exited(self, status: int | None) -> None:
        self._ended = True
        self._tell(self.process.exited, status)

    def refused(self, error: TestServerError) -> None:
        """No fork server can fork it: it ends at once, as a server that could not start."""
        self._close_ends()  # its sockets end: the process can end
        self.said(f"{error}\n".encode())
        self.exited(1 << 8)  # exit code 1

    def kill(self) -> None:
        """
        Kill the fork server that has it (see :meth:`ForkedProcess.signalProcess`),
        unless it has forked it meanwhile (the pid is on its way to the
        caller): then the server alone.
        """
        if self._ended:
            return  # its end is on its way to the caller
        if self._pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGKILL)
        elif self._fork_server is not None:
            self._fork_server.kill()

    def _close_ends(self) -> None:
        ends, self.ends = self.ends, []
        for end in ends:
            end.close()


class ForkServer(ProcessProtocol):
    """
    The fork server, from spawn to exit, in its host reactor's thread.

    :param reactor: the host: spawns it and reads what it says.
    :param env: its environment, and so every server's it forks.
    """

    def __init__(self, reactor: ProcessReactor, env: dict[str, str]) -> None:
        self.env = env
        #: It has exited: it forks no more.
        self.gone = False
        self._reactor = reactor
        self._pending: deque[ForkRequest] = deque()
        self._children: dict[int, ForkRequest] = {}
        self._lines = LineReader(self, ForkServerEvents)
        self._requests, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            reactor.spawnProcess(
                self,
                sys.executable,
                fork_server_argv(),
                env=env,
                childFDs={0: "w", 1: "r", 2: "r", 3: theirs.fileno()},
            )
        except Exception as e:
            self._requests.close()
            raise TestServerError(f"cannot start the fork server {sys.executable}: {e}") from e
        finally:
            theirs.close()

    def connectionMade(self) -> None:
        # Reaped in the host's thread only, even if another reactor
        # (trial's) handles SIGCHLD.
        confine_reaping(self.transport, self._reactor)

    def fork(self, request: ForkRequest) -> None:
        """
        Ask for the server of ``request``.

        :raise TestServerError: the fork server is gone (``request`` keeps
            its ends, for another fork server).
        """
        if self.gone:
            raise TestServerError("the fork server has exited")
        try:
            socket.send_fds(self._requests, [b"f"], [end.fileno() for end in request.ends])
        except OSError as e:
            raise TestServerError(f"the fork server has exited: {e}") from e
        request.sent_to(self)
        self._pending.append(request)

    def retire(self) -> None:
        """Fork no more: it exits once the servers it forked have."""
        if not self.gone:
            self._requests.close()
            transport: Any = self.transport
            with contextlib.suppress(Exception):
                transport.closeStdin()

    def kill(self) -> None:
        """Kill it (it does not answer): the servers it has not forked yet end with it."""
        transport: Any = self.transport
        with contextlib.suppress(ProcessExitedAlready):
            transport.signalProcess("KILL")

    def pipe_fds(self) -> list[int]:
        """Our descriptors that keep it alive (a fork of this process lets go of them)."""
        pipes = getattr(self.transport, "pipes", {})
        fds = [pipe.fileno() for pipe in pipes.values()]
        fds.append(self._requests.fileno())
        return [fd for fd in fds if fd >= 0]

    # -- what it says -----------------------------------------------------------------

    def forked(self, pid: int) -> None:
        if self._pending:
            request = self._pending.popleft()
            self._children[pid] = request
            request.forked(pid)

    def ended(self, pid: int, status: int) -> None:
        request = self._children.pop(pid, None)
        if request is not None:
            request.exited(status)

    def outReceived(self, data: bytes) -> None:
        self._lines.dataReceived(data)

    def errReceived(self, data: bytes) -> None:
        for request in self._pending:
            request.said(data)

    def processEnded(self, reason: Failure) -> None:
        self.gone = True
        self._requests.close()
        # The servers not forked yet fail with its reason (an import error;
        # its error output went to them); those it forked and did not report
        # are orphans now.
        status = getattr(reason.value, "status", None)
        for request in self._pending:
            request.exited(status if status is not None else 1 << 8)
        self._pending.clear()
        for request in self._children.values():
            request.exited(None)
        self._children.clear()
