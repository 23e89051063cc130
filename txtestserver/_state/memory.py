"""
The thread engine's state: plain Python objects behind one lock.

The lock is held only for dict and list operations, never while doing I/O.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

from .._model.record import Record
from .._model.table import ResponseTable

__all__ = ["MemoryStore"]

T = TypeVar("T")


class MemoryStore:
    """
    A :class:`~txtestserver._state.store.StateStore` in this process's memory.

    :param table: the answers to start with (the final state of a server
        process, loaded back); empty by default.
    """

    def __init__(self, table: ResponseTable | None = None) -> None:
        self._lock = threading.Lock()
        self._table = table if table is not None else ResponseTable()
        self._history: list[Record] = []
        self._done = False

    def read(self, look: Callable[[ResponseTable], T]) -> T:
        with self._lock:
            return look(self._table)

    def update(self, change: Callable[[ResponseTable], T]) -> T:
        with self._lock:
            return change(self._table)

    def record(self, record: Record, done: bool = False) -> None:
        with self._lock:
            self._history.append(record)
            self._done = done

    def mark_done(self, record: Record) -> None:
        with self._lock:
            if self._history and self._history[-1] is record:
                self._done = True

    def last_request(self) -> tuple[Record | None, bool]:
        with self._lock:
            return (self._history[-1] if self._history else None), self._done

    def history(self) -> Sequence[Record]:
        with self._lock:
            return list(self._history)

    def reset(self) -> None:
        with self._lock:
            self._table.clear()
            self._history = []
            self._done = False
