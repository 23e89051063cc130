"""
The thread engine's state: plain Python objects behind one lock.

A store holds what the test set (``response``, ``response_once``) and what
clients sent (the recorded requests and the ``done`` flag).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from .._model.keys import ResponseState, resolve
from .._model.record import Record

__all__ = ["MemoryStore"]


class MemoryStore:
    """
    The thread engine's store: plain Python objects behind one lock.

    The lock is held only for dict and list operations, never while doing I/O.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._response: ResponseState = {}
        self._once: ResponseState = {}
        self._history: list[Record] = []
        self._done = False

    def _state(self, once: bool) -> ResponseState:
        return self._once if once else self._response

    def response_state(self, once: bool) -> ResponseState:
        with self._lock:
            return dict(self._state(once))

    def set_response(self, once: bool, key: str, value: Any) -> None:
        with self._lock:
            self._state(once)[key] = value

    def delete_response(self, once: bool, key: str) -> None:
        with self._lock:
            del self._state(once)[key]

    def take_response(self, method: str) -> dict[str, Any]:
        with self._lock:
            values, used = resolve(self._response, self._once, method)
            for key in used:
                del self._once[key]
        return values

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
            self._response.clear()
            self._once.clear()
            self._history = []
            self._done = False
