"""
The server process of the subprocess engine::

    python -m txtestserver._engines.child

It imports what it serves with, then reads its first line on stdin
(:func:`.wire.read_serve_line`): its state directory and its config. The
test process may start it ahead of time, so that a later ``start()`` does
not wait for the imports. It serves the same resource as the thread
engine (:func:`~txtestserver._http.listen.serve`), over a
:class:`~txtestserver._state.files.FileStore` attached to the state
directory that the test process made, with the
:class:`~txtestserver._config.ServerConfig` it was given.

Talking to the test process, through the pipes it gave us (the lines are
those of :mod:`.wire`):

- stdout: ``listening`` once the port is bound, then ``answered`` with the
  ticket of each answered request (the test process's waits wait on these
  lines instead of polling files), ``websocket`` after each event of the
  WebSocket journal (its waits wait on these), and ``log`` for each error
  logged here, which the test process logs again, as the thread engine
  would have logged it there.
- stdin: ``push`` lines, the test's pushes to the open WebSocket
  connections (``ws.send()``, ``ws.close()``...); a ``stop`` line then its
  end means the test process wants us
  gone: we stop listening and exit, and it reads the state we leave. Its end
  without ``stop`` means the test process has died (even by SIGKILL) or
  exited without ``stop()``: we stop listening, remove the state directory
  (nobody will read the recorded requests, and /dev/shm is memory) and
  exit, so no orphaned server keeps a port or its state.
- stderr: why we could not start (then exit code 1), or why we had to stop
  (exit code 3).

After start, ``sys.stdout``, ``sys.stderr`` and the Twisted log go to
``server.log`` in the state directory, so a print in a callback cannot
corrupt the line protocol and nothing fails once the test process is gone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
from typing import Any

from twisted.logger import Logger, LogLevel, formatEvent
from twisted.python.failure import Failure

from .._errors import TestServerError
from .._state.codec import decode
from .._state.files import LOG, FileStore
from .._state.store import Ticket
from .wire import LineReader, ParentEvents, event_line, read_serve_line

__all__ = ["main"]

_log = Logger()

#: Exit code when the server could not start.
EXIT_START_FAILED = 1
#: Exit code when the state directory became unusable.
EXIT_STATE_BROKEN = 3


class _Control(LineReader):
    """
    stdin/stdout to the test process: a ``stop`` line means stop; the end of
    stdin without one means the test process is gone.

    :param stop: ``stop(code, forsaken)`` stops the server; ``forsaken``
        when the test process went away without a ``stop``.
    """

    def __init__(self, stop: Any, listener: Any) -> None:
        super().__init__(self, ParentEvents)
        self._stop = stop
        self._listener = listener

    def serve(self, directory: str, config: str) -> None:
        """A second ``serve`` line: we serve already (see :func:`main`)."""

    def push(self, route: int, action: str, args: Any, connection: int | None) -> None:
        try:
            self._listener.websockets.push(route, action, decode(args), connection)
        except Exception:
            _log.failure("txtestserver: a WebSocket push failed")

    def stop(self) -> None:
        self._stop(0, False)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self._stop(0, True)


def _is_error(event: dict[str, Any]) -> bool:
    level = event.get("log_level")
    return event.get("log_failure") is not None or (level is not None and level >= LogLevel.error)


def _error_text(event: dict[str, Any]) -> str:
    """An error event as text, with its traceback."""
    failure = event.get("log_failure")
    text = formatEvent(event)
    return text + "\n" + failure.getTraceback() if failure is not None else text


def prepare() -> None:
    """
    Import what a server process serves with, without installing the
    reactor: most of a start. The fork server (:mod:`.forkserver`) calls it
    once before it forks servers, which then install a reactor of their own.
    """
    import twisted.internet.default
    import twisted.internet.stdio
    import twisted.web.http

    from .._http import listen, tls

    del twisted, listen, tls


def main() -> int:
    """
    Import, read what to serve from stdin, serve until stdin closes or
    SIGTERM; return the exit code (0 also when stdin ends before the
    ``serve`` line: nobody needed this server).
    """
    from twisted.internet import reactor as global_reactor
    from twisted.internet import stdio
    from twisted.logger import globalLogBeginner, textFileLogObserver

    from .._http.listen import serve
    from .._http.tls import Credentials

    reactor: Any = global_reactor
    try:
        settings = read_serve_line(0)
    except (ValueError, TestServerError) as e:
        sys.stderr.write(f"bad serve line: {e}\n")
        return EXIT_START_FAILED
    if settings is None:
        return 0
    directory, config = settings
    exit_code = 0
    stopping = False
    forsaken = False  # the test process went away without a stop line
    report_fd = 2  # where a fatal error is reported to the test process
    control: Any = None

    def stop(code: int, gone: bool = False) -> None:
        nonlocal exit_code, stopping, forsaken
        if stopping:
            return
        stopping = True
        exit_code = code
        forsaken = gone
        listener.stop().addBoth(lambda _: reactor.stop())

    def fatal(error: TestServerError) -> None:
        with contextlib.suppress(OSError):
            os.write(report_fd, f"{error}\n".encode())
        reactor.callLater(0, stop, EXIT_STATE_BROKEN)

    def answered(ticket: Ticket) -> None:
        if control is not None:
            # event_line("answered", *ticket), without a JSON encoder per request
            control.transport.write(b"answered [%d,%d]\n" % ticket)

    def arrived(ticket: Ticket) -> None:
        if control is not None:
            control.transport.write(b"arrived [%d,%d]\n" % ticket)

    def websocket() -> None:
        if control is not None:
            control.transport.write(b"websocket\n")

    store = FileStore(directory, fatal=fatal)
    try:
        credentials = Credentials.load(directory) if config.tls or config.proxy else None
        listener = serve(
            reactor,
            config,
            store,
            answered,
            credentials,
            on_arrived=arrived,
            on_websocket=websocket,
        )
    except TestServerError as e:
        sys.stderr.write(f"{e}\n")
        return EXIT_START_FAILED

    # From now on: our protocol on a copy of stdout, fatal reports on a copy
    # of stderr, and fds 1 and 2 (print, warnings, the log) to server.log.
    control_fd = os.dup(1)
    report_fd = os.dup(2)
    sys.stdout.flush()
    sys.stderr.flush()
    log_fd = os.open(os.path.join(directory, LOG), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    to_file = textFileLogObserver(sys.stderr)

    def observer(event: dict[str, Any]) -> None:
        to_file(event)
        if control is not None and _is_error(event):
            control.transport.write(event_line("log", _error_text(event)))

    observers: list[Any] = [observer]
    globalLogBeginner.beginLoggingTo(observers, redirectStandardIO=False)

    standard_io: Any = stdio.StandardIO
    connected = _Control(stop, listener)
    standard_io(connected, stdin=0, stdout=control_fd, reactor=reactor)
    control = connected  # from now on, events are written
    control.transport.write(event_line("listening", listener.port))
    # The test process decides when we stop: SIGTERM is a polite request;
    # Ctrl-C in the terminal reaches the test process, which stops us.
    signal.signal(signal.SIGTERM, lambda *_: reactor.callFromThread(stop, 0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    reactor.run(installSignalHandlers=False)
    if forsaken:
        shutil.rmtree(directory, ignore_errors=True)
    return exit_code


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Everything is closed or written: skip the interpreter's slow teardown.
    os._exit(code)
