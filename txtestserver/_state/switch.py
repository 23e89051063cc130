"""
The test process's store of a subprocess server: its state in memory while
no server process runs (so ``response`` can be set before ``start()`` and
everything stays readable after ``stop()``), in the server's state
directory while one does. The engine swaps them: :meth:`SwitchStore.create`
moves the state into a new directory, :meth:`SwitchStore.close` moves the
final state back into memory and removes the directory.

Each operation is one call on the store in use, under the lock of its
kind (readers never wait for writers); a swap holds both, so it never
happens in the middle of an operation.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from .._errors import TestServerError
from .._model.record import Entry, Outcome
from .._model.table import ResponseTable
from .._model.websocket import WebSocketEvent
from .directory import BoundedLock
from .files import FileStore
from .memory import MemoryStore
from .store import History, StateStore, Ticket

__all__ = ["SwitchStore"]

T = TypeVar("T")


class _Broken:
    """A store whose every operation raises ``error`` (a server process died)."""

    def __init__(self, error: TestServerError) -> None:
        self._error = error

    def __getattr__(self, name: str) -> Callable[..., NoReturn]:
        def fail(*args: Any, **kwargs: Any) -> NoReturn:
            raise TestServerError(*self._error.args)

        return fail


class SwitchStore:
    """
    A :class:`~txtestserver._state.store.StateStore` that is a
    :class:`~txtestserver._state.memory.MemoryStore` or a
    :class:`~txtestserver._state.files.FileStore`, swapped by the engine.

    :param lock_timeout: seconds a write may wait for the state lock (the
        call timeout).
    """

    def __init__(self, lock_timeout: float | None = None) -> None:
        self._lock_timeout = lock_timeout
        self._memory = MemoryStore()
        self._files: FileStore | None = None
        self._current: StateStore = self._memory
        self._write_lock = BoundedLock(threading.RLock(), lock_timeout, self._not_responding)
        self._read_lock = threading.RLock()

    @property
    def directory(self) -> str | None:
        """The state directory, or None while the state is in memory."""
        files = self._files
        return None if files is None else files.directory

    def create(self) -> str:
        """
        Make a private state directory holding the current state; return its
        path. Operations use the files from now on.
        """
        with self._write_lock, self._read_lock:
            if self._files is not None:
                raise TestServerError(
                    f"the state directory {self._files.directory} is already in use"
                )
            self._files = self._current = FileStore.create(self._memory, self._lock_timeout)
            return self._files.directory

    def close(self, broken: TestServerError | None = None) -> None:
        """
        Load the final state into memory and remove the directory; the store
        then works from memory. Call it once the server process has exited.

        :param broken: every operation raises this error until the next
            :meth:`create` or :meth:`close` (the server process died; stop()
            closes again to clear it).
        """
        with self._write_lock, self._read_lock:
            files, self._files = self._files, None
            error = None
            try:
                if files is not None:
                    fallback = self._memory.read(lambda table: table)
                    self._memory, error = files.close(fallback)
            finally:
                self._current = self._memory if broken is None else _Broken(broken)
            if error is not None:
                raise error

    def _not_responding(self) -> TestServerError:
        files = self._files
        if files is not None:
            return files.not_responding()
        return TestServerError(
            f"another thread of this process has held the server state for "
            f"{self._lock_timeout} s; call_timeout sets how long to wait"
        )

    # -- StateStore: one call on the store in use ---------------------------------------

    def read(self, look: Callable[[ResponseTable], T]) -> T:
        with self._read_lock:
            return self._current.read(look)

    def update(self, change: Callable[[ResponseTable], T]) -> T:
        with self._write_lock:
            return self._current.update(change)

    def record(self, entry: Entry) -> Ticket:
        with self._write_lock:
            return self._current.record(entry)

    def complete(self, ticket: Ticket, outcome: Outcome) -> None:
        with self._write_lock:
            self._current.complete(ticket, outcome)

    def add_error(self, ticket: Ticket | None, message: str, traceback: str | None) -> None:
        with self._write_lock:
            self._current.add_error(ticket, message, traceback)

    def entry(self, ticket: Ticket) -> Entry | None:
        with self._read_lock:
            return self._current.entry(ticket)

    def last_request(self) -> Entry | None:
        with self._read_lock:
            return self._current.last_request()

    def history(self) -> History:
        with self._read_lock:
            return self._current.history()

    def journal(self) -> tuple[int, History]:
        with self._read_lock:
            return self._current.journal()

    def errors(self) -> list[tuple[Entry | None, str, str | None]]:
        with self._read_lock:
            return self._current.errors()

    def take_errors(self) -> list[tuple[Entry | None, str, str | None]]:
        with self._write_lock:
            return self._current.take_errors()

    def add_websocket(self, event: WebSocketEvent) -> None:
        with self._write_lock:
            self._current.add_websocket(event)

    def websocket_journal(self) -> tuple[list[dict[str, Any]], list[tuple[Any, ...]]]:
        with self._read_lock:
            return self._current.websocket_journal()

    def reset(self) -> None:
        with self._write_lock:
            self._current.reset()
