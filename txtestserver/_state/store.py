"""
The interface of a state store: what the views and the HTTP resource may ask
of the state, whichever engine keeps it (:mod:`.memory` in the test process,
:mod:`.files` shared with a server process).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from .._model.keys import ResponseState
from .._model.record import Record

__all__ = ["StateStore"]


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
