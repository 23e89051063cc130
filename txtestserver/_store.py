"""
Where state is stored: the :class:`StateStore` interface and the in-memory
store of the thread engine.

A store holds what the test set (``response``, ``response_once``) and what
clients sent (the recorded requests and the ``done`` flag). The HTTP resource
and the dict-like views only talk to this interface, so the same resource and
views serve the thread engine (:class:`MemoryStore`) and the subprocess engine
(a store kept in files).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Protocol

from ._capture import Record
from ._response import ResponseState, resolve

__all__ = ["MemoryStore", "StateStore"]


class StateStore(Protocol):
    """
    The state shared by the test (through the views) and the HTTP resource.

    Every method is atomic: the test's thread and the server (another thread
    or another process) may call them at the same time.
    """

    def response_state(self, once: bool) -> ResponseState:
        """A copy of ``response`` (or ``response_once`` if ``once``)."""

    def set_response(self, once: bool, key: str, value: Any) -> None:
        """Set one (already validated) key of ``response`` or ``response_once``."""

    def delete_response(self, once: bool, key: str) -> None:
        """Remove one key; ``KeyError`` if it is not set."""

    def take_response(self, method: str) -> dict[str, Any]:
        """
        The resolved response values for one request, removing the
        ``response_once`` keys it uses in the same atomic step.
        """

    def record(self, record: Record, done: bool = False) -> None:
        """
        A request has arrived: it becomes the current ``server.request``, and
        ``done`` becomes ``done`` in the same atomic step (true for a request
        recorded once it is already answered).
        """

    def mark_done(self, record: Record) -> None:
        """
        ``record`` has been answered: ``done`` becomes true if it is still
        the latest request (an older request answered late, after a newer one
        arrived, must not mark the newer one done).
        """

    def last_request(self) -> tuple[Record | None, bool]:
        """The latest recorded request (or None) and the ``done`` flag."""

    def history(self) -> Sequence[Record]:
        """Every request recorded since start or reset, oldest first."""

    def reset(self) -> None:
        """Forget requests and ``done``; response and response_once to defaults."""


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
