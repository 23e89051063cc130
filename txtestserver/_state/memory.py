"""
The thread engine's state: plain Python objects behind one lock.

The lock is held only for dict and list operations, never while doing I/O.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from .._model.record import RECORD_FIELDS, Entry, Outcome
from .._model.table import ResponseTable
from .._model.websocket import SocketJournal, WebSocketEvent
from .store import ErrorRecord, History, Ticket

__all__ = ["MemoryStore"]

T = TypeVar("T")


class MemoryStore:
    """
    A :class:`~txtestserver._state.store.StateStore` in this process's memory.

    :param table: the answers to start with (the final state of a server
        process, loaded back); empty by default.
    :param generation: the generation to start with (one loaded back keeps
        its own).
    :param sockets: the WebSocket journal to start with (one loaded back:
        taken as it is, not copied).
    """

    def __init__(
        self,
        table: ResponseTable | None = None,
        generation: int = 0,
        sockets: SocketJournal | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._table = table if table is not None else ResponseTable()
        self._history: list[Entry] = []
        self._errors: list[ErrorRecord] = []
        self._sockets = sockets if sockets is not None else SocketJournal()
        self.generation = generation

    def read(self, look: Callable[[ResponseTable], T]) -> T:
        with self._lock:
            return look(self._table)

    def update(self, change: Callable[[ResponseTable], T]) -> T:
        with self._lock:
            return change(self._table)

    def record(self, entry: Entry) -> Ticket:
        with self._lock:
            self._history.append(entry)
            return self.generation, len(self._history) - 1

    def complete(self, ticket: Ticket, outcome: Outcome) -> None:
        generation, index = ticket
        with self._lock:
            if generation == self.generation:
                history = self._history
                history[index] = history[index][:RECORD_FIELDS] + outcome

    def add_error(self, ticket: Ticket | None, message: str, traceback: str | None) -> None:
        with self._lock:
            if ticket is None:
                self._errors.append((None, message, traceback))
            elif ticket[0] == self.generation:
                self._errors.append((ticket[1], message, traceback))

    def add_errors(self, errors: Sequence[ErrorRecord]) -> None:
        """Keep errors as they are (the final state of a server process)."""
        with self._lock:
            self._errors.extend(errors)

    def entry(self, ticket: Ticket) -> Entry | None:
        generation, index = ticket
        with self._lock:
            if generation != self.generation or index >= len(self._history):
                return None
            return self._history[index]

    def last_request(self) -> Entry | None:
        with self._lock:
            return self._history[-1] if self._history else None

    def history(self) -> History:
        with self._lock:
            return History(self._history)

    def journal(self) -> tuple[int, History]:
        with self._lock:
            return self.generation, History(self._history)

    def raw_errors(self) -> list[ErrorRecord]:
        """The errors as kept (to move them into files)."""
        with self._lock:
            return list(self._errors)

    def errors(self) -> list[tuple[Entry | None, str, str | None]]:
        with self._lock:
            return self._resolve(self._errors)

    def take_errors(self) -> list[tuple[Entry | None, str, str | None]]:
        with self._lock:
            errors, self._errors = self._errors, []
            return self._resolve(errors)

    def _resolve(self, errors: list[ErrorRecord]) -> list[tuple[Entry | None, str, str | None]]:
        history = self._history
        return [
            (None if index is None else history[index], message, traceback)
            for index, message, traceback in errors
        ]

    def add_websocket(self, event: WebSocketEvent) -> None:
        with self._lock:
            self._sockets.apply(event)

    def websocket_journal(self) -> tuple[list[dict[str, Any]], list[tuple[Any, ...]]]:
        with self._lock:
            return self._sockets.snapshot()

    def websocket_events(self) -> list[WebSocketEvent]:
        """Events that rebuild the WebSocket journal (to move it into files)."""
        with self._lock:
            return list(self._sockets.events())

    def reset(self) -> None:
        with self._lock:
            self._table.clear()
            self._history = []  # a new list: snapshots of the old one stay whole
            self._errors = []
            self._sockets = SocketJournal()
            self.generation += 1
