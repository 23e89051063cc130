"""
The subprocess engine, parent side: the same HTTP resource, served by a child
Python process (:mod:`.child`), with the state in files.

The test process makes a private state directory (its
:class:`~txtestserver._state.switch.SwitchStore` swaps to a
:class:`~txtestserver._state.files.FileStore`), spawns the server process
with ``reactor.spawnProcess``, tells it what to serve (its first stdin
line) and reads its event lines (:mod:`.wire`): ``listening`` fires
``start()``, and each ``answered`` wakes the waits. The engine keeps a fork server
(:class:`ForkServers`, :mod:`.forking`) on txtestserver's private reactor
thread, whatever reactor the face serves from: it has done the server
process's imports, most of a start, and forks one server process per
``start()`` (unless :data:`START_AHEAD` switches it off); one per process,
so the test process holds at most one idle helper process. A
``stop`` line on the server's stdin, then its end, asks it to stop; a server
that does not exit within :data:`STOP_GRACE` seconds is killed. (The end of
stdin without ``stop`` means the test process is gone: the server then
removes its state directory itself.) A server that dies on its own is
reported, with its exit status and its last output, to the next call that
needs it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ProcessExitedAlready
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from .._config import ServerConfig
from .._errors import TestServerError
from .._http.tls import Credentials
from .._state.codec import encode
from .._state.directory import LOG
from .._state.store import StateStore, Ticket
from .._state.switch import SwitchStore
from .._types import ProcessReactor
from .forking import ForkedProcess, ForkRequest, ForkServer
from .reaping import confine_reaping
from .wire import LineReader, ServerEvents, child_argv, event_line, serve_line

__all__ = [
    "START_AHEAD",
    "START_TIMEOUT",
    "STOP_GRACE",
    "ForkServers",
    "SubprocessEngine",
    "fork_servers",
    "start_ahead",
]

#: Seconds the server process may take to report its port.
START_TIMEOUT = 30.0
#: Seconds between asking the server process to stop and killing it.
STOP_GRACE = 3.0
#: Bytes of the server's error output kept for error messages.
_OUTPUT_KEPT = 8192
#: Lines of the server's log quoted when it died.
_LOG_LINES_QUOTED = 20

_log = Logger()

#: The server processes and fork servers of this process that have not exited
#: (each has ``pipe_fds()``).
_RUNNING: weakref.WeakSet[Any] = weakref.WeakSet()


def _let_go_in_forked_child() -> None:
    """
    After ``os.fork()``, in the child: let go of every server's pipes.

    The fork's copies of our end of a server's stdin would keep it open after
    we close ours (or die): the server would not see its end, so it would
    outlive us, and ``stop()`` would wait for its grace period. Each pipe
    becomes ``/dev/null`` (closed, but its fd number stays taken, so nothing
    the fork opens later is mistaken for it).
    """
    servers = list(_RUNNING)
    if not servers:
        return
    null = os.open(os.devnull, os.O_RDWR)
    try:
        for server in servers:
            for fd in server.pipe_fds():
                with contextlib.suppress(OSError):
                    os.dup2(null, fd)
    finally:
        os.close(null)


os.register_at_fork(after_in_child=_let_go_in_forked_child)


def import_path() -> str:
    """
    ``PYTHONPATH`` for the server process: this process's ``sys.path``, so
    that it imports the same txtestserver and the same callback modules.
    """
    entries: list[str] = []
    for entry in sys.path:
        if not isinstance(entry, str):
            continue
        entry = os.path.abspath(entry or os.curdir)
        if entry not in entries:
            entries.append(entry)
    return os.pathsep.join(entries)


def _spawn(reactor: ProcessReactor, server: _ServerProcess) -> None:
    """
    Start ``server``'s process: it imports, then waits for its ``serve`` line.

    :raise TestServerError: the interpreter cannot be started.
    """
    try:
        reactor.spawnProcess(
            server, sys.executable, child_argv(), env=server.env, childFDs={0: "w", 1: "r", 2: "r"}
        )
    except Exception as e:
        server.ended = True
        raise TestServerError(f"cannot start the server process {sys.executable}: {e}") from e


class _Host(Protocol):
    """What :class:`ForkServers` uses of its host, the private reactor thread."""

    reactor: Any

    def submit(
        self, deliver: Callable[[Any], None], function: Callable[..., Any], *args: Any
    ) -> Any:
        """Run ``function(*args)`` in the host's thread (started if need be), then ``deliver``."""


def _log_failure(result: object) -> None:
    """What a call handed to the host gives: a failure is logged (nobody waits for it)."""
    if isinstance(result, Failure):
        _log.failure("txtestserver could not use its fork server", result)


class ForkServers:
    """
    The test process's fork server (:class:`~.forking.ForkServer`): a helper
    process with the imports done, which forks each server process, so a
    ``start()`` costs a fork (a few milliseconds) instead of a Python
    start-up (half a second), also back to back. One per test process
    (:func:`fork_servers`), whatever the face and its reactor: it lives on
    txtestserver's private reactor thread, the *host*, never on the test's
    reactor (trial's would find it a leftover after each test); each server
    it forks lives on the reactor of the face that started it (a
    :class:`~.forking.ForkRequest` crosses between the two threads). One at
    a time: a fork server with another environment (``os.environ`` or
    ``sys.path`` changed) is retired and replaced.

    :param host: the private reactor thread (its ``reactor`` and ``submit``).
    """

    def __init__(self, host: _Host) -> None:
        self._host = host
        self._current: ForkServer | None = None  # read and written in the host's thread only

    def fork(self, server: _ServerProcess, reactor: Any) -> ForkedProcess:
        """
        In ``reactor``'s thread: the process of ``server``, forked with its
        environment, its sockets on ``reactor``. A fork server that cannot
        fork it ends it as a server that could not start (with the reason as
        its error output).

        :raise OSError: no socket pair can be made (out of descriptors).
        """
        request = ForkRequest(reactor, server, server.env, self._on_host)
        self._on_host(self._fork, request)
        return request.process

    def retire(self) -> None:
        """(In any thread.) Let the fork server go (it exits once its servers have)."""
        self._on_host(self._retire)

    def _on_host(self, function: Callable[..., Any], *args: Any) -> None:
        self._host.submit(_log_failure, function, *args)

    def _fork(self, request: ForkRequest) -> None:
        """In the host's thread: hand ``request`` to the fork server (started if need be)."""
        for _ in range(2):  # a fork server that died meanwhile is replaced once
            current = self._current
            if current is not None and (
                current.gone or not _same_environment(current.env, request.env)
            ):
                self._retire()
                current = None
            if current is None:
                try:
                    current = self._current = ForkServer(self._host.reactor, request.env)
                except TestServerError as e:
                    request.refused(e)
                    return
                _RUNNING.add(current)
            try:
                current.fork(request)
                return
            except TestServerError:
                self._current = None
        request.refused(TestServerError("the fork server exited as soon as it was started"))

    def _retire(self) -> None:
        current, self._current = self._current, None
        if current is not None:
            current.retire()


#: The environment variable that switches the process started ahead off:
#: ``0`` (or ``false``, ``no``, ``off``). The pytest plugin's ini option
#: ``txtestserver_start_ahead = false`` sets it.
START_AHEAD = "TXTESTSERVER_START_AHEAD"


def start_ahead() -> bool:
    """Whether a server process is started ahead for the next ``start()`` (:data:`START_AHEAD`)."""
    return os.environ.get(START_AHEAD, "1").strip().lower() not in ("0", "false", "no", "off")


#: Environment variables that change under a running test without meaning
#: anything to the server: pytest names the current test and phase in one.
_VOLATILE = ("PYTEST_CURRENT_TEST",)


def _same_environment(one: dict[str, str], other: dict[str, str]) -> bool:
    """``one`` and ``other`` are the same environment but for :data:`_VOLATILE`."""
    stable = [{n: v for n, v in env.items() if n not in _VOLATILE} for env in (one, other)]
    return stable[0] == stable[1]


#: The process's fork servers, once made (:func:`fork_servers`).
_FORKS: ForkServers | None = None
_FORKS_MADE = threading.Lock()


def fork_servers() -> ForkServers:
    """
    The process's one :class:`ForkServers`, hosted by the private reactor
    thread (:func:`txtestserver._private.reactor_thread`, imported here,
    when first needed, so that a process that never forks makes no private
    reactor).
    """
    global _FORKS
    with _FORKS_MADE:
        if _FORKS is None:
            from .._private import reactor_thread

            _FORKS = ForkServers(reactor_thread())
        return _FORKS


def _forks_for(reactor: Any) -> ForkServers | None:
    """
    The fork servers to start a server on ``reactor`` with; None to spawn it
    instead: the fork server is switched off (:data:`START_AHEAD`; the one
    kept so far is let go), or ``reactor`` cannot adopt the server's sockets
    (a test's stand-in reactor).
    """
    if not start_ahead():
        if _FORKS is not None:
            _FORKS.retire()
        return None
    if not hasattr(reactor, "adoptStreamConnection"):
        return None
    return fork_servers()


class SubprocessEngine:
    """
    Serves from a child Python process; the state crosses as files.

    :param reactor: runs the server process's pipes or sockets (and spawns
        it when it is not forked: :class:`ForkServers`).
    :param call_timeout: the longest a read or write of the state waits for
        the server process to release the state lock.
    """

    portable = True

    def __init__(self, reactor: ProcessReactor, call_timeout: float = 10.0) -> None:
        self._reactor = reactor
        self._files = SwitchStore(lock_timeout=call_timeout)
        self.store: StateStore = self._files
        self._server: _ServerProcess | None = None

    @property
    def pid(self) -> int | None:
        """The server process's id while it runs (or starts), else None."""
        server = self._server
        if server is None or server.ended:
            return None
        return server.pid

    def start(
        self,
        config: ServerConfig,
        on_answered: Callable[[Ticket], None],
        on_lost: Callable[[TestServerError], None],
        credentials: Credentials | None = None,
        on_arrived: Callable[[Ticket], None] | None = None,
        on_websocket: Callable[[], None] | None = None,
    ) -> Deferred[int]:
        if self._server is not None and not self._server.ended:
            raise TestServerError("the previous server process has not exited yet")
        directory = self._files.create()
        if credentials is not None:
            # The server's key and certificate (never the authority's key),
            # readable by this user only, removed with the directory.
            try:
                credentials.save(directory)
            except OSError as e:
                self._files.close()
                raise TestServerError(f"cannot write the TLS credentials: {e}") from e
        server = _ServerProcess(self._reactor, dict(os.environ, PYTHONPATH=import_path()))
        forks = _forks_for(self._reactor)
        try:
            if forks is not None:
                forks.fork(server, self._reactor)
            else:
                _spawn(self._reactor, server)
        except OSError as e:
            self._files.close()
            raise TestServerError(f"cannot start the server process: {e}") from e
        except TestServerError:
            self._files.close()
            raise
        server.serve(self._files, directory, config, on_answered, on_lost, on_arrived)
        server.on_websocket = on_websocket
        self._server = server
        return server.started

    def push(self, route: int, action: str, args: Sequence[Any], connection: int | None) -> None:
        server = self._server
        if server is not None and not server.ended:
            server.push(route, action, args, connection)

    def stop(self) -> Deferred[None]:
        server = self._server
        if server is None or server.ended:
            self._files.close()  # forget the error of a server that died
            return succeed(None)
        return server.stop()


class _ServerProcess(ProcessProtocol):
    """
    One run of the server process, from spawn to exit.

    :ivar started: fires with the port, or fails with the reason the server
        could not start.
    :ivar ended: the process has exited and the store is closed.
    """

    def __init__(self, reactor: ProcessReactor, env: dict[str, str]) -> None:
        self._reactor = reactor
        #: The environment it was started with.
        self.env = env
        self._store: Any = None
        self._on_answered: Callable[[Ticket], None] = lambda ticket: None
        self._on_arrived: Callable[[Ticket], None] | None = None
        self._on_lost: Callable[[TestServerError], None] = lambda error: None
        #: Called for each ``websocket`` line (an event of the WebSocket journal).
        self.on_websocket: Callable[[], None] | None = None
        self.started: Deferred[int] = Deferred(self._cancel_start)
        self.ended = False
        self._state = "waiting"  # for serve(); then "starting", "running", "stopping"
        self._stopped: list[Deferred[None]] = []
        self._lines = LineReader(self, ServerEvents)
        self._stderr = bytearray()
        self._timer: Any = None
        self._watcher: _ExitWatcher | None = None
        self._process: Any = None  # set by connectionMade, within spawnProcess

    def serve(
        self,
        store: SwitchStore,
        directory: str,
        config: ServerConfig,
        on_answered: Callable[[Ticket], None],
        on_lost: Callable[[TestServerError], None],
        on_arrived: Callable[[Ticket], None] | None = None,
    ) -> None:
        """Say what to serve (the ``serve`` line); :attr:`started` fires once it listens."""
        self._store = store
        self._on_answered = on_answered
        self._on_arrived = on_arrived
        self._on_lost = on_lost
        self._state = "starting"
        self._timer = self._reactor.callLater(START_TIMEOUT, self._start_timed_out)
        self._process.write(serve_line(directory, config))

    def connectionMade(self) -> None:
        self._process = self.transport
        if not isinstance(self._process, ForkedProcess):  # its fork server reaps a forked one
            # Reaped in our reactor's thread only, even if another reactor
            # (trial's) handles SIGCHLD.
            confine_reaping(self._process, self._reactor)
            self._watcher = _ExitWatcher.for_process(self._reactor, self._process)
        _RUNNING.add(self)

    @property
    def pid(self) -> int | None:
        """The process's id (None once it is reaped)."""
        pid: int | None = getattr(self._process, "pid", None)
        return pid

    def pipe_fds(self) -> list[int]:
        """The file descriptors of our ends of its pipes, and of its exit watcher."""
        pipes = getattr(self._process, "pipes", {})
        fds = [pipe.fileno() for pipe in pipes.values()]
        if self._watcher is not None:
            fds.append(self._watcher.fileno())
        return [fd for fd in fds if fd >= 0]

    # -- what the server says ----------------------------------------------------------

    def outReceived(self, data: bytes) -> None:
        self._lines.dataReceived(data)

    def listening(self, port: int) -> None:
        if self._state == "starting":
            self._state = "running"
            self._cancel_timer()
            self.started.callback(port)

    def answered(self, generation: int, index: int) -> None:
        if self._state == "running":
            try:
                self._on_answered((generation, index))
            except Exception:
                _log.failure("txtestserver could not handle an answered request")

    def arrived(self, generation: int, index: int) -> None:
        if self._state == "running" and self._on_arrived is not None:
            try:
                self._on_arrived((generation, index))
            except Exception:
                _log.failure("txtestserver could not handle an arrived request")

    def log(self, text: str) -> None:
        """An error logged in the server process: log it here too."""
        _log.error("txtestserver server process logged: {text}", text=text)

    def websocket(self) -> None:
        if self._state == "running" and self.on_websocket is not None:
            try:
                self.on_websocket()
            except Exception:
                _log.failure("txtestserver could not handle a WebSocket event")

    def push(self, route: int, action: str, args: Sequence[Any], connection: int | None) -> None:
        """Hand the test's push to the server process (a ``push`` line on its stdin)."""
        if self._state == "running":
            self._process.write(event_line("push", route, action, encode(list(args)), connection))

    def errReceived(self, data: bytes) -> None:
        self._stderr += data
        del self._stderr[:-_OUTPUT_KEPT]

    def processEnded(self, reason: Failure) -> None:
        _RUNNING.discard(self)
        state, self._state = self._state, "ended"
        self.ended = True
        self._cancel_timer()
        if self._watcher is not None:
            self._watcher.close()
        status = _exit_status(reason.value)
        if state == "starting":
            error = TestServerError(
                f"the server process could not start: it {status}{self._output()}"
            )
            self._close_store(error)
            self._store.close()  # nothing to report later: start() fails now
            self.started.errback(error)
        elif state == "running":
            error = TestServerError(f"the server process {status}{self._output(with_log=True)}")
            self._close_store(error)
            self._on_lost(error)
        else:  # stopping
            try:
                self._store.close()
            except TestServerError:
                failure = Failure()
                for d in self._take_stopped():
                    d.errback(failure)
            else:
                for d in self._take_stopped():
                    d.callback(None)

    # -- what the engine asks ----------------------------------------------------------

    def stop(self) -> Deferred[None]:
        """
        Say ``stop``, then close stdin (the polite stop: we read the final
        state and remove the directory); kill after the grace period.
        """
        d: Deferred[None] = Deferred()
        self._stopped.append(d)
        if self._state != "stopping":
            self._state = "stopping"
            self._cancel_timer()
            self._process.write(event_line("stop"))
            self._process.closeStdin()
            self._timer = self._reactor.callLater(STOP_GRACE, self._grace_over)
        return d

    def _cancel_start(self, _: Deferred[int]) -> None:
        """The caller gave up waiting for the start (a timeout, cancel())."""
        self._state = "stopping"
        self._cancel_timer()  # the start timeout: nothing is left to time out
        self._kill()

    def _start_timed_out(self) -> None:
        self._timer = None
        self._state = "stopping"
        self._kill()
        self.started.errback(
            TestServerError(
                f"the server process did not report its port within {START_TIMEOUT} s"
                f"{self._output()}"
            )
        )

    def _grace_over(self) -> None:
        """The polite stop took too long."""
        self._timer = None
        self._kill()

    def _kill(self) -> None:
        with contextlib.suppress(ProcessExitedAlready):
            self._process.signalProcess("KILL")

    # -- helpers -------------------------------------------------------------------------

    def _take_stopped(self) -> list[Deferred[None]]:
        stopped, self._stopped = self._stopped, []
        return stopped

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _close_store(self, error: TestServerError) -> None:
        """Close the store so that it raises ``error`` (amended if the state is lost too)."""
        try:
            self._store.close(error)
        except TestServerError as e:
            error.args = (f"{error}; and its last state could not be read: {e}",)
            self._store.close(error)

    def _output(self, with_log: bool = False) -> str:
        """The server's error output (and the end of its log), for a message."""
        parts = []
        errors = self._stderr.decode("utf-8", "replace").strip()
        if errors:
            parts.append(f"; its error output:\n{errors}")
        if with_log and self._store.directory is not None:
            try:
                with open(os.path.join(self._store.directory, LOG), "rb") as f:
                    lines = f.read().decode("utf-8", "replace").splitlines()
            except OSError:
                lines = []
            if lines:
                parts.append("; its log ends with:\n" + "\n".join(lines[-_LOG_LINES_QUOTED:]))
        return "".join(parts)


def _exit_status(reason: BaseException | None) -> str:
    """``'exited with code 1'`` or ``'was killed by signal 9 (SIGKILL)'``."""
    number = getattr(reason, "signal", None)
    if number:
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = "unknown"
        return f"was killed by signal {number} ({name})"
    return f"exited with code {getattr(reason, 'exitCode', None) or 0}"


class _ExitWatcher:
    """
    Reaps the server process as soon as it exits, through a Linux pidfd.

    Without it, a reactor run without signal handlers (crochet's) notices a
    child's exit only when it polls, every 0.1 s. Elsewhere Twisted's own
    reaping is used.
    """

    def __init__(self, reactor: ProcessReactor, process: Any, fd: int) -> None:
        self._reactor = reactor
        self._process = process
        self._fd: int | None = fd
        reactor.addReader(self)

    @classmethod
    def for_process(cls, reactor: ProcessReactor, process: Any) -> _ExitWatcher | None:
        pidfd_open = getattr(os, "pidfd_open", None)
        if pidfd_open is None or process.pid is None or not hasattr(reactor, "addReader"):
            return None
        try:
            return cls(reactor, process, pidfd_open(process.pid))
        except OSError:
            return None

    def fileno(self) -> int:
        return -1 if self._fd is None else self._fd

    def doRead(self) -> None:
        self.close()
        if self._process.pid is not None:
            self._process.reapProcess()

    def close(self) -> None:
        if self._fd is not None:
            self._reactor.removeReader(self)
            os.close(self._fd)
            self._fd = None

    def connectionLost(self, reason: Failure) -> None:
        self.close()

    def logPrefix(self) -> str:
        return "txtestserver-exit-watcher"
