"""
The server process of the subprocess engine::

    python -m txtestserver._child DIRECTORY ADDRESS PORT KEEP_ALIVE \
        BODY_LIMIT HEADER_COUNT_LIMIT HEADER_SIZE_LIMIT

It serves the same :class:`~txtestserver._resource.CaptureResource` as the
thread engine, over a :class:`~txtestserver._filestore.FileStore` attached to
the state directory that the test process made.

Talking to the test process, through the pipes it gave us:

- stdout: ``listening PORT`` once the port is bound, then ``done`` after each
  answered request (the test process's ``wait_request`` waits on these lines
  instead of polling files), and ``log "TEXT"`` (a JSON string) for each error
  logged here, which the test process logs again, as the thread engine would
  have logged it there.
- stdin: nothing is read from it, but its end of file means the test process
  wants us gone or has died (even by SIGKILL): we stop listening and exit, so
  no orphaned server keeps a port.
- stderr: why we could not start (then exit code 1), or why we had to stop
  (exit code 3).

After start, ``sys.stdout``, ``sys.stderr`` and the Twisted log go to
``server.log`` in the state directory, so a print in a callback cannot
corrupt the line protocol and nothing fails once the test process is gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from typing import Any, NoReturn

from twisted.internet.protocol import Protocol
from twisted.logger import LogLevel, formatEvent
from twisted.python.failure import Failure

from ._errors import TestServerError
from ._filestore import LOG, FileStore

__all__ = ["main"]

#: Exit code when the server could not start.
EXIT_START_FAILED = 1
#: Exit code when the state directory became unusable.
EXIT_STATE_BROKEN = 3


class _ServerStore(FileStore):
    """A FileStore that ends the server when its directory is broken or gone."""

    def __init__(self, directory: str, fatal: Any) -> None:
        super().__init__(directory)
        self._fatal = fatal

    def _fail(self, error: BaseException) -> NoReturn:
        try:
            super()._fail(error)
        except TestServerError as e:
            self._fatal(e)
            raise


class _Control(Protocol):
    """stdin/stdout to the test process: end of stdin means stop."""

    def __init__(self, stop: Any) -> None:
        self._stop = stop

    def dataReceived(self, data: bytes) -> None:
        pass  # the test process sends nothing; only the end of stdin matters

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self._stop(0)


def _is_error(event: dict[str, Any]) -> bool:
    level = event.get("log_level")
    return event.get("log_failure") is not None or (level is not None and level >= LogLevel.error)


def _error_text(event: dict[str, Any]) -> str:
    """An error event as text, with its traceback."""
    failure = event.get("log_failure")
    text = formatEvent(event)
    return text + "\n" + failure.getTraceback() if failure is not None else text


def main(argv: list[str]) -> int:
    """
    Serve until stdin closes or SIGTERM; return the exit code.

    :param argv: ``[DIRECTORY, ADDRESS, PORT, KEEP_ALIVE, BODY_LIMIT,
        HEADER_COUNT_LIMIT, HEADER_SIZE_LIMIT]`` (the limits of
        :class:`~txtestserver._limits.Limits`, in field order).
    """
    from twisted.internet import reactor as global_reactor
    from twisted.internet import stdio
    from twisted.logger import globalLogBeginner, textFileLogObserver

    from ._engine import Listener
    from ._limits import Limits
    from ._resource import CaptureResource

    reactor: Any = global_reactor
    directory, address, port, keep_alive, *limits = argv
    exit_code = 0
    stopping = False
    report_fd = 2  # where a fatal error is reported to the test process
    control: Any = None

    def stop(code: int) -> None:
        nonlocal exit_code, stopping
        if stopping:
            return
        stopping = True
        exit_code = code
        listener.stop().addBoth(lambda _: reactor.stop())

    def fatal(error: TestServerError) -> None:
        with contextlib.suppress(OSError):
            os.write(report_fd, f"{error}\n".encode())
        reactor.callLater(0, stop, EXIT_STATE_BROKEN)

    def answered() -> None:
        if control is not None:
            control.write(b"done\n")

    store = _ServerStore(directory, fatal)
    resource = CaptureResource(
        store,
        reactor,
        answered,
        keep_alive=keep_alive == "1",
        limits=Limits(*(int(limit) for limit in limits)),
    )
    try:
        listener = Listener(reactor, address, int(port), resource)
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
            control.write(b"log " + json.dumps(_error_text(event)).encode("ascii") + b"\n")

    observers: list[Any] = [observer]
    globalLogBeginner.beginLoggingTo(observers, redirectStandardIO=False)

    standard_io: Any = stdio.StandardIO
    control = standard_io(_Control(stop), stdin=0, stdout=control_fd, reactor=reactor)
    control.write(b"listening %d\n" % listener.port)
    # The test process decides when we stop: SIGTERM is a polite request;
    # Ctrl-C in the terminal reaches the test process, which stops us.
    signal.signal(signal.SIGTERM, lambda *_: reactor.callFromThread(stop, 0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    reactor.run(installSignalHandlers=False)
    return exit_code


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    # Everything is closed or written: skip the interpreter's slow teardown.
    os._exit(code)
