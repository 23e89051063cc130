"""
What the test process and the server process say to each other: the whole
contract between :mod:`.subprocess` (the parent) and :mod:`.child`.

- The server process imports what it serves with, then reads its first
  line on stdin: ``serve`` with its state directory and its
  :class:`~txtestserver._config.ServerConfig` as one JSON document
  (:func:`serve_line`, :func:`read_serve_line`). So a process can be started
  ahead of time, before anyone knows its settings (its imports are most of
  its start).
- It writes one line per event to its stdout: ``EVENT`` or ``EVENT JSON``,
  where the events are the methods of :class:`ServerEvents`. A new event is
  one method there, one :func:`event_line` call in the child and one handler
  in the parent.
- Its stdin carries lines the other way (:class:`ParentEvents`). Its end of
  file after a ``stop`` line is a polite stop (the test process reads the
  final state and removes the state directory); without one, the test
  process has gone (exited without ``stop()``, crashed, killed), and the
  server process removes the state directory itself.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Protocol

from twisted.logger import Logger
from twisted.protocols.basic import LineOnlyReceiver

from .._config import ServerConfig

__all__ = [
    "ForkServerEvents",
    "LineReader",
    "ParentEvents",
    "ServerEvents",
    "child_argv",
    "event_line",
    "fork_server_argv",
    "read_serve_line",
    "serve_line",
]

_log = Logger()

#: Runs ``txtestserver._engines.child`` as ``__main__`` like ``python -m``
#: would, but without the working directory first on sys.path (PYTHONPATH
#: already says where to import from; ``python -P`` exists only from 3.11).
_RUN_CHILD = (
    "import runpy, sys; del sys.path[0]; "
    "runpy.run_module('txtestserver._engines.child', run_name='__main__', alter_sys=True)"
)


class ServerEvents(Protocol):
    """The lines the server process writes, as the parent handles them."""

    def listening(self, port: int) -> None:
        """The port is bound: the server accepts connections."""

    def answered(self, generation: int, index: int) -> None:
        """
        A request has been answered (it is recorded as done); its ticket,
        ``(generation, index)``, names its journal entry.
        """

    def arrived(self, generation: int, index: int) -> None:
        """
        A request is recorded and its answer is not complete yet (a sleep,
        a stream, a stall); ``answered`` follows once it is.
        """

    def log(self, text: str) -> None:
        """An error was logged in the server process (with its traceback)."""

    def websocket(self) -> None:
        """
        An event was added to the WebSocket journal (a connection opened or
        ending, a message): the WebSocket waits look again.
        """


class ParentEvents(Protocol):
    """The lines the test process writes to the server's stdin."""

    def serve(self, directory: str, config: str) -> None:
        """
        The first line, read before anything else (:func:`read_serve_line`):
        serve from ``directory`` with ``config`` (a ServerConfig document).
        """

    def push(self, route: int, action: str, args: Any, connection: int | None) -> None:
        """
        The test's push to the open WebSocket connections of ``route``
        (``Engine.push``); ``args`` as :mod:`txtestserver._state.codec`
        encodes them (a message may be bytes).
        """

    def stop(self) -> None:
        """
        Stop politely (the test process called ``stop()``): it reads the
        state directory once we have exited, then removes it.
        """


class ForkServerEvents(Protocol):
    """
    The lines the fork server (:mod:`.forkserver`) writes: it forks the
    server processes, so only it learns when they end.
    """

    def forked(self, pid: int) -> None:
        """The next server asked for is forked, as process ``pid``."""

    def ended(self, pid: int, status: int) -> None:
        """Server process ``pid`` has exited, with wait status ``status``."""


def child_argv() -> list[str]:
    """The command line of the server process."""
    return [sys.executable, "-c", _RUN_CHILD]


def fork_server_argv() -> list[str]:
    """The command line of the fork server (:mod:`.forkserver`)."""
    return [sys.executable, "-c", _RUN_CHILD.replace("child'", "forkserver'")]


def serve_line(directory: str, config: ServerConfig) -> bytes:
    """The first line on the server process's stdin: what to serve, and how."""
    return event_line("serve", directory, config.to_json())


def read_serve_line(fd: int) -> tuple[str, ServerConfig] | None:
    """
    Read the :func:`serve_line` from ``fd`` (the server process's stdin),
    a byte at a time: what follows it (a ``stop``) is left for the reader
    that comes next. None at the end of the input: the test process needed
    no server after all.

    :raise ValueError: the line is not a ``serve`` line.
    """
    line = bytearray()
    while not line.endswith(b"\n"):
        byte = os.read(fd, 1)
        if not byte:
            return None
        line += byte
    name, _, arguments = bytes(line).partition(b" ")
    if name != b"serve":
        raise ValueError(f"expected a serve line, got {bytes(line)[:80]!r}")
    directory, document = json.loads(arguments)
    return directory, ServerConfig.from_json(document)


def event_line(event: str, *args: Any) -> bytes:
    """One line: the event name, then its arguments as a JSON list if any."""
    if not args:
        return event.encode("ascii") + b"\n"
    return b"%s %s\n" % (event.encode("ascii"), json.dumps(list(args)).encode("ascii"))


class LineReader(LineOnlyReceiver):
    """
    Reads event lines and calls the method of ``handler`` that each names.

    Lines that name no method of ``events`` (or have arguments that are not
    JSON) are logged and skipped, so a stray line cannot stop the protocol.

    :param handler: receives the events.
    :param events: the protocol class whose methods are the known events.
    """

    delimiter = b"\n"
    #: A log line carries a traceback; allow big ones.
    MAX_LENGTH = 16 * 1024 * 1024

    def __init__(self, handler: object, events: type) -> None:
        self._handler = handler
        self._names = {
            name.encode("ascii")
            for name in vars(events)
            if not name.startswith("_") and callable(getattr(events, name))
        }

    def dataReceived(self, data: bytes) -> None:
        # LineOnlyReceiver's own asks its transport whether it is closing;
        # a process pipe read by a ProcessProtocol gives us none.
        lines = (self._buffer + data).split(self.delimiter)
        self._buffer = lines.pop()
        for line in lines:
            self.lineReceived(line)
        if len(self._buffer) > self.MAX_LENGTH:
            self.lineLengthExceeded(self._buffer)
            self._buffer = b""

    def lineReceived(self, line: bytes) -> None:
        name, _, payload = line.partition(b" ")
        if name not in self._names:
            _log.warn("txtestserver: unknown line from the other process: {line!r}", line=line)
            return
        try:
            args = json.loads(payload) if payload else []
        except ValueError:
            _log.warn("txtestserver: bad line from the other process: {line!r}", line=line)
            return
        getattr(self._handler, name.decode("ascii"))(*args)

    def lineLengthExceeded(self, line: bytes) -> None:
        _log.warn("txtestserver: a line of {n} bytes from the other process", n=len(line))
