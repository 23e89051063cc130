"""
The subprocess engine's store over a state directory, shared by the test
process and the server process.

Files in the directory (mode 0700; every file 0600):

``response.json`` and ``value-<id>``
    The :class:`~txtestserver._model.table.ResponseTable`, one document,
    with its large values in files of their own
    (:mod:`txtestserver._state.tables`).
``requests.jsonl`` and ``status.json``
    The journal, one line per event, only ever appended, and how far it
    goes (:mod:`txtestserver._state.journal`).
``lock``
    Empty; every read-modify-write holds ``fcntl.flock`` on it
    (:mod:`txtestserver._state.directory`).
``server.log``
    The server process's log.

The value codec is :mod:`txtestserver._state.codec`. While no server process
runs, the test process keeps its state in memory; the subprocess engine
swaps its store between the two (:mod:`txtestserver._state.switch`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from .._errors import TestServerError
from .._model.record import Entry, Outcome
from .._model.table import ResponseTable
from .._model.websocket import SocketJournal, WebSocketEvent
from .directory import LOCK, LOG, REQUESTS, STATUS, BoundedLock, StateDirectory
from .journal import BYTES_FIELDS, JournalReader, entry_line, event_line, websocket_line
from .memory import MemoryStore
from .store import ErrorRecord, History, Ticket
from .tables import TableFiles

__all__ = ["BYTES_FIELDS", "LOG", "FileStore"]

T = TypeVar("T")


class FileStore:
    """
    A :class:`~txtestserver._state.store.StateStore` over one state
    directory. The server process attaches to the directory by path; the
    test process makes it with :meth:`create` and ends it with :meth:`close`.

    Every wait for the state lock is bounded by ``lock_timeout``: a server
    process stopped while it holds the lock (SIGSTOP, a debugger) makes
    writes fail with a :class:`TestServerError` instead of hanging, and reads
    (the journal, the response) never wait for the lock at all.

    :param directory: the state directory (a path, or one made by
        :meth:`create`).
    :param lock_timeout: seconds a write may wait for the state lock (the
        test process passes its call timeout); None waits as long as it takes
        (the server process: the test process holds the lock for microseconds
        per call, and while it is stopped nobody waits for an answer).
    :param fatal: called with the error when the directory turns out broken
        or gone, before it is raised (the server process then ends).
    :param owner: this process made the directory: it writes and removes
        the value files, and :meth:`close` removes the directory.
    """

    def __init__(
        self,
        directory: str | StateDirectory,
        lock_timeout: float | None = None,
        fatal: Callable[[TestServerError], None] | None = None,
        *,
        owner: bool = False,
    ) -> None:
        if isinstance(directory, str):
            directory = StateDirectory(directory, lock_timeout, fatal)
        self._files = directory
        self._owner = owner
        # Serialises this process's writers; flock serialises the processes
        # (flock on one open file does not exclude threads of one process).
        self._thread_lock = BoundedLock(threading.RLock(), lock_timeout, directory.not_responding)
        # Guards the parsed journal (every sync holds it); never held while
        # waiting for the flock, so reads go on while a write waits.
        self._read_lock = threading.RLock()
        self._tables = TableFiles(directory, self._read_lock, owner)
        self._journal = JournalReader(directory)

    @property
    def directory(self) -> str:
        """The state directory."""
        return self._files.path

    def not_responding(self) -> TestServerError:
        """The error of a wait for the state lock that ran out."""
        return self._files.not_responding()

    # -- lifecycle (test process) ----------------------------------------------------

    @classmethod
    def create(cls, state: MemoryStore, lock_timeout: float | None = None) -> FileStore:
        """A new private state directory holding ``state``, and its store."""
        files = StateDirectory.make(lock_timeout)
        store = cls(files, lock_timeout, owner=True)
        try:
            store._fill(state)
        except BaseException:
            files.remove()
            raise
        return store

    def _fill(self, memory: MemoryStore) -> None:
        with self._thread_lock, self._read_lock:
            self._tables.write(memory.read(lambda t: t))
            generation, history = memory.journal()
            records = list(history)
            errors = memory.raw_errors()
            sockets = memory.websocket_events()
            lines = b"".join(
                [entry_line(r) for r in records]
                + [event_line("e", e) for e in errors]
                + [websocket_line(e) for e in sockets]
            )
            self._files.write(REQUESTS, lines)
            self._files.write(LOCK, b"")
            self._files.write_json(
                STATUS, {"count": len(records), "end": len(lines), "generation": generation}
            )
            journal = SocketJournal()
            for event in sockets:
                journal.apply(event)
            self._journal.restart(generation, records, errors, len(lines), journal)

    def close(self, fallback: ResponseTable) -> tuple[MemoryStore, TestServerError | None]:
        """
        The final state, in memory, then the directory removed. Call it
        once the server process has exited.

        :param fallback: the response table to keep if ``response.json`` is
            broken (the one from before the start): a broken table does not
            lose the journal; its error is returned, to be raised.
        :raise TestServerError: the journal cannot be read (the directory
            is removed all the same).
        """
        with self._thread_lock, self._read_lock:
            try:
                generation, records = self._journal.sync()
                error = None
                try:
                    table = self._tables.read()
                except TestServerError as e:
                    error = e
                    table = fallback
                memory = MemoryStore(table, generation, self._journal.sockets)
                for record in records:
                    memory.record(record)
                memory.add_errors(self._journal.errors)
                return memory, error
            finally:
                self._files.remove()

    # -- StateStore ------------------------------------------------------------------

    def read(self, look: Callable[[ResponseTable], T]) -> T:
        with self._read_lock:  # the table kept is this process's, brought up to date
            return look(self._tables.read())

    def update(self, change: Callable[[ResponseTable], T]) -> T:
        with self._thread_lock, self._files.locked():
            return self._tables.update(change)

    def record(self, entry: Entry) -> Ticket:
        line = entry_line(entry)
        with self._thread_lock, self._files.locked():
            status = self._files.append(line)
            count = status["count"] = status["count"] + 1
            self._files.write_json(STATUS, status)
            return status["generation"], count - 1

    def complete(self, ticket: Ticket, outcome: Outcome) -> None:
        self._add_event(ticket, event_line("c", [ticket[1], *outcome]))

    def add_error(self, ticket: Ticket | None, message: str, traceback: str | None) -> None:
        index = None if ticket is None else ticket[1]
        self._add_event(ticket, event_line("e", [index, message, traceback]))

    def _add_event(self, ticket: Ticket | None, line: bytes) -> None:
        """Append an event line about the request of ``ticket``, unless a reset came since."""
        with self._thread_lock, self._files.locked():
            status = self._files.read_json(STATUS)
            if ticket is None or ticket[0] == status["generation"]:
                self._files.write_json(STATUS, self._files.append(line, status))

    def add_websocket(self, event: WebSocketEvent) -> None:
        self._add_event(None, websocket_line(event))

    def websocket_journal(self) -> tuple[list[dict[str, Any]], list[tuple[Any, ...]]]:
        with self._read_lock:
            self._journal.sync()
            return self._journal.sockets.snapshot()

    def entry(self, ticket: Ticket) -> Entry | None:
        generation, index = ticket
        with self._read_lock:
            current, records = self._journal.sync()
            if generation != current or index >= len(records):
                return None
            return records[index]

    def last_request(self) -> Entry | None:
        with self._read_lock:
            records = self._journal.sync()[1]
            return records[-1] if records else None

    def history(self) -> History:
        with self._read_lock:
            return History(self._journal.sync()[1])

    def journal(self) -> tuple[int, History]:
        with self._read_lock:
            generation, records = self._journal.sync()
            return generation, History(records)

    def errors(self) -> list[tuple[Entry | None, str, str | None]]:
        with self._read_lock:
            records = self._journal.sync()[1]
            return _resolve(records, self._journal.errors)

    def take_errors(self) -> list[tuple[Entry | None, str, str | None]]:
        with self._thread_lock, self._files.locked(), self._read_lock:
            records = self._journal.sync()[1]
            errors = _resolve(records, self._journal.errors)
            if errors:
                status = self._files.read_json(STATUS)
                self._files.write_json(STATUS, self._files.append(event_line("x", [1]), status))
                self._journal.sync()
            return errors

    def reset(self) -> None:
        with self._thread_lock, self._files.locked():
            generation = self._files.read_json(STATUS)["generation"] + 1
            # The status first: a reader that finds the new journal then
            # finds the new generation too (JournalReader.sync).
            self._files.write_json(STATUS, {"count": 0, "end": 0, "generation": generation})
            try:
                # Cleared, not replaced: route ids go on and are never reused
                # (the server process keys its open WebSocket connections by them).
                self._tables.update(lambda table: table.clear())
            except TestServerError:  # a broken table: begin again
                self._tables.write(ResponseTable())
            self._files.write(REQUESTS, b"")
            with self._read_lock:
                self._journal.restart(generation)


def _resolve(
    records: list[Entry], errors: list[ErrorRecord]
) -> list[tuple[Entry | None, str, str | None]]:
    return [
        (None if index is None else records[index], message, traceback)
        for index, message, traceback in errors
    ]
