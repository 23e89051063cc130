"""
The interface of a state store: what the views and the HTTP resource may ask
of the state, whichever engine keeps it (:mod:`.memory` in the test process,
:mod:`.files` shared with a server process).

A store holds the :class:`~txtestserver._model.table.ResponseTable` (what
the test set) and what clients sent (the recorded requests and the ``done``
flag). Every method is atomic: the test's thread and the server (another
thread or another process) may call them at the same time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from .._model.record import Record
from .._model.table import ResponseTable

__all__ = ["StateStore"]

T = TypeVar("T")


class StateStore(Protocol):
    """The state shared by the test (through the views) and the HTTP resource."""

    def read(self, look: Callable[[ResponseTable], T]) -> T:
        """
        ``look(table)`` on a consistent table; ``look`` must not change it.
        """

    def update(self, change: Callable[[ResponseTable], T]) -> T:
        """
        ``change(table)`` as one atomic read-modify-write; what it changes is
        kept (the take of a ``once`` value, a test setting a key).
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
        """Forget requests and ``done``; every slot of the table emptied."""
