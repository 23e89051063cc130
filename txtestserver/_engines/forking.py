"""
The test process's side of the fork server (:mod:`.forkserver`): the
helper process, started once per reactor, that has done the server
process's imports and forks one server process per ``start()``.

:class:`ForkServer` spawns it and asks it for servers; each comes back as a
:class:`ForkedProcess`, a transport with what the engine uses of a Twisted
process transport (``write``, ``closeStdin``, ``signalProcess``, ``pid``,
``pipes``), over two socket pairs instead of pipes: the server's control
socket (its stdin and stdout) and its error output. We are not the server's
parent, so its end is the fork server's ``ended`` line (with the wait
status) and the end of both sockets, as Twisted waits for a spawned
process's pipes and its reaping.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
from collections import deque
from typing import Any

from twisted.internet.error import ProcessDone, ProcessExitedAlready, ProcessTerminated
from twisted.internet.protocol import Factory, ProcessProtocol, Protocol
from twisted.python.failure import Failure

from .._errors import TestServerError
from .._types import ProcessReactor
from .wire import ForkServerEvents, LineReader, fork_server_argv

__all__ = ["ForkServer", "ForkedProcess"]


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


class ForkServer(ProcessProtocol):
    """
    The fork server of one reactor, from spawn to exit.

    :param reactor: spawns it and reads what it says.
    :param env: its environment, and so every server's it forks.
    """

    def __init__(self, reactor: ProcessReactor, env: dict[str, str]) -> None:
        self.env = env
        #: It has exited: it forks no more.
        self.gone = False
        self._reactor = reactor
        self._pending: deque[ForkedProcess] = deque()
        self._children: dict[int, ForkedProcess] = {}
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

    def fork(self, protocol: ProcessProtocol) -> ForkedProcess:
        """
        Ask for a server process, run by ``protocol``.

        :raise TestServerError: the fork server is gone.
        """
        if self.gone:
            raise TestServerError("the fork server has exited")
        control, control_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        errors, errors_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            socket.send_fds(
                self._requests, [b"f"], [control_theirs.fileno(), errors_theirs.fileno()]
            )
        except OSError as e:
            for end in (control, errors):
                end.close()
            raise TestServerError(f"the fork server has exited: {e}") from e
        finally:
            control_theirs.close()
            errors_theirs.close()
        process = ForkedProcess(self._reactor, protocol, control, errors, self._kill)
        self._pending.append(process)
        return process

    def retire(self) -> None:
        """Fork no more: it exits once the servers it forked have."""
        if not self.gone:
            self._requests.close()
            transport: Any = self.transport
            with contextlib.suppress(Exception):
                transport.closeStdin()

    def _kill(self) -> None:
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
            process = self._pending.popleft()
            self._children[pid] = process
            process.was_forked(pid)

    def ended(self, pid: int, status: int) -> None:
        process = self._children.pop(pid, None)
        if process is not None:
            process.exited(status)

    def outReceived(self, data: bytes) -> None:
        self._lines.dataReceived(data)

    def errReceived(self, data: bytes) -> None:
        for process in self._pending:
            process.fork_server_said(data)

    def processEnded(self, reason: Failure) -> None:
        self.gone = True
        self._requests.close()
        # The servers not forked yet fail with its reason (an import error;
        # its error output went to them); those it forked and did not report
        # are orphans now.
        status = getattr(reason.value, "status", None)
        for process in self._pending:
            process.exited(status if status is not None else 1 << 8)
        self._pending.clear()
        for process in self._children.values():
            process.exited(None)
        self._children.clear()
