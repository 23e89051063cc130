"""
The interface of a state store: what the views and the HTTP resource may ask
of the state, whichever engine keeps it (:mod:`.memory` in the test process,
:mod:`.files` shared with a server process).

A store holds the :class:`~txtestserver._model.table.ResponseTable` (what
the test set), the journal (one :data:`~txtestserver._model.record.Entry`
per request since start or reset, each completed with its outcome once
answered) and the server-side errors. Every method is atomic: the test's
thread and the server (another thread or another process) may call them at
the same time.

``request['done']`` is not kept apart: it is the ``answered`` field of the
latest entry, so an older request answered late never marks a newer one.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar, overload

from .._model.record import Entry, Outcome
from .._model.table import ResponseTable
from .._model.websocket import WebSocketEvent

__all__ = ["ErrorRecord", "History", "StateStore", "Ticket"]


class History(Sequence[Entry]):
    """
    The journal's entries at one moment, taken without copying them: the
    first ``length`` entries of a list that is only ever appended to or
    completed in place (a reset replaces the list). Requests recorded later
    are not in it; an entry completed later shows its outcome.

    ``len``, indexing and iteration cost the same with 10 or 100,000
    entries (copying the journal per item made iterating
    ``server.requests`` quadratic).

    :param entries: the store's list of entries.
    """

    __slots__ = ("_entries", "_length")

    def __init__(self, entries: list[Entry]) -> None:
        self._entries = entries
        self._length = len(entries)

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, index: int) -> Entry: ...

    @overload
    def __getitem__(self, index: slice) -> list[Entry]: ...

    def __getitem__(self, index: int | slice) -> Entry | list[Entry]:
        if isinstance(index, slice):
            start, stop, step = index.indices(self._length)
            return self._entries[start:stop:step]
        position = index + self._length if index < 0 else index
        if not 0 <= position < self._length:
            raise IndexError(f"request {index} of {self._length} recorded")
        return self._entries[position]

    def __iter__(self) -> Iterator[Entry]:
        return itertools.islice(self._entries, self._length)


T = TypeVar("T")

#: Names one journal entry: ``(generation, index)``. The generation changes
#: at every reset, so a ticket taken before a reset names nothing after it.
Ticket = tuple[int, int]

#: A server-side error as kept: ``(index, message, traceback)``; ``index``
#: is the position of the request that caused it in the journal (None when
#: no request did), ``traceback`` None when there is none.
ErrorRecord = tuple[int | None, str, str | None]


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

    def record(self, entry: Entry) -> Ticket:
        """
        A request has arrived: append its entry to the journal (it becomes
        the current ``server.request``). An entry whose outcome is already
        answered is recorded done in the same atomic step.

        :return: the ticket that :meth:`complete` and :meth:`add_error` take.
        """

    def complete(self, ticket: Ticket, outcome: Outcome) -> None:
        """
        The request of ``ticket`` has its ``outcome`` now (usually: it has
        been answered). Nothing happens if a reset came since.
        """

    def add_error(self, ticket: Ticket | None, message: str, traceback: str | None) -> None:
        """
        Something went wrong while answering the request of ``ticket`` (None:
        no request in particular). Dropped if a reset came since.
        """

    def entry(self, ticket: Ticket) -> Entry | None:
        """The entry of ``ticket``, or None if a reset came since."""

    def last_request(self) -> Entry | None:
        """The latest entry, or None."""

    def history(self) -> History:
        """
        Every entry since start or reset, oldest first, as a snapshot that
        costs the same however many there are.
        """

    def journal(self) -> tuple[int, History]:
        """The current generation and :meth:`history`, read in one step."""

    def errors(self) -> list[tuple[Entry | None, str, str | None]]:
        """Every error since start or reset, oldest first, with its entry."""

    def take_errors(self) -> list[tuple[Entry | None, str, str | None]]:
        """:meth:`errors`, forgotten in the same atomic step."""

    def add_websocket(self, event: WebSocketEvent) -> None:
        """
        Append an event to the WebSocket journal (a connection opened or
        ending, a message: :mod:`txtestserver._model.websocket`).
        """

    def websocket_journal(self) -> tuple[list[dict[str, Any]], list[tuple[Any, ...]]]:
        """
        The WebSocket journal since start or reset: the connections (copies,
        each with its ``route``) and the messages (flat tuples, the route
        first), oldest first.
        """

    def reset(self) -> None:
        """
        Forget the journal (WebSocket's too) and the errors (a new generation begins); every
        slot of the table emptied.
        """
