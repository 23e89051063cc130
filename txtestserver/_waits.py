"""
Waiting for requests: the pending waits of one server.

A wait is woken by the engine's "answered" events, each naming the journal
entry it completed (a :data:`~txtestserver._state.store.Ticket`); nothing
polls. Every wait first looks at the journal as it is (requests answered
before the wait began count), then at each answered entry once:

- :class:`LatestWait`: the latest request is answered (``wait_request``);
- :class:`CountWait`: ``count`` answered requests that a test ``want``\\ s
  (every one for ``wait_requests``, those of one route for ``route.wait``,
  those a predicate accepts for ``wait_for``).

Everything here runs in the reactor thread, except :class:`PredicateScan`:
``wait_for`` runs the test's predicate in the waiting caller's thread or
task, over the journal it reads there, and waits in the reactor thread only
for the next answer (:class:`NextAnswerWait`), so a slow predicate slows its
own wait and no other server's requests. A wait that times out, is cancelled
or is failed leaves no timer and no reference behind (:class:`Waits`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ._errors import WaitTimeoutError
from ._model.record import ANSWERED, CODE, ROUTE, Entry, answered, request_line
from ._state.store import StateStore, Ticket

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred
from ._types import TimeReactor

__all__ = ["CountWait", "LatestWait", "NextAnswerWait", "PredicateScan", "Wait", "Waits"]

#: Request lines quoted in a timeout message.
LINES_QUOTED = 3


class Wait:
    """
    One pending wait.

    :ivar what: names the call in messages (``"wait_requests(3)"``).
    """

    what: str
    deferred: Deferred[Any] | None = None
    timer: Any = None
    #: A timeout ends the wait with None, not :class:`WaitTimeoutError`
    #: (the caller decides what the time running out means).
    quiet = False

    def begin(self, generation: int, history: Sequence[Entry]) -> bool:
        """Look at the journal as it is; true when the wait is over already."""
        raise NotImplementedError

    def answered(self, ticket: Ticket, store: StateStore) -> bool:
        """The request of ``ticket`` has been answered; true when the wait is over."""
        raise NotImplementedError

    def result(self) -> Any:
        """What the wait returns once it is over."""
        raise NotImplementedError

    def shortfall(self) -> str:
        """What is still missing, for a timeout message."""
        raise NotImplementedError


class LatestWait(Wait):
    """Until ``request['done']`` is true: the latest request is answered."""

    what = "wait_request()"

    def begin(self, generation: int, history: Sequence[Entry]) -> bool:
        return answered(history[-1] if history else None)

    def answered(self, ticket: Ticket, store: StateStore) -> bool:
        return answered(store.last_request())

    def result(self) -> None:
        return None

    def shortfall(self) -> str:
        return "no request was answered"


class CountWait(Wait):
    """
    Until ``count`` answered requests satisfy ``want``; the result is the
    first ``count`` of them, oldest first, each decoded by ``decode``.

    :param what: names the call in messages.
    :param count: how many requests.
    :param want: which answered entries count (None: every one); an
        exception it raises fails the wait.
    :param decode: turns an entry into the dict the test gets.
    :param single: return the one dict instead of a list (``wait_for``).
    """

    def __init__(
        self,
        what: str,
        count: int,
        want: Callable[[Entry], bool] | None,
        decode: Callable[[Entry], dict[str, Any]],
        single: bool = False,
    ) -> None:
        self.what = what
        self._count = count
        self._want = want
        self._decode = decode
        self._single = single
        self._found: dict[int, Entry] = {}
        self._generation: int | None = None
        # Entries [0, _scanned) have been looked at; _pending are those of
        # them that were not answered yet (their answered event is to come).
        self._scanned = 0
        self._pending: set[int] = set()

    def begin(self, generation: int, history: Sequence[Entry]) -> bool:
        self._generation = generation
        self._found = {}
        self._pending = set()
        self._scanned = len(history)
        for index, entry in enumerate(history):
            if not entry[ANSWERED]:
                self._pending.add(index)
            elif self._consider(index, entry):
                return True
        return False

    def answered(self, ticket: Ticket, store: StateStore) -> bool:
        generation, index = ticket
        if generation != self._generation:
            # A reset came: start again from the journal as it is now.
            current, history = store.journal()
            return self.begin(current, history)
        if index < self._scanned:
            if index not in self._pending:
                return False  # seen answered when the wait began
            self._pending.discard(index)
        entry = store.entry(ticket)
        if entry is None:
            return False  # a reset came since; its events will follow
        return self._consider(index, entry)

    def _consider(self, index: int, entry: Entry) -> bool:
        if self._want is None or self._want(entry):
            self._found[index] = entry
        return len(self._found) >= self._count

    def result(self) -> Any:
        chosen = [self._decode(self._found[i]) for i in sorted(self._found)[: self._count]]
        return chosen[0] if self._single else chosen

    def shortfall(self) -> str:
        found = len(self._found)
        if self._single:
            return "no answered request matched"
        return f"{found} of the {self._count} requests waited for {_was(found)} answered"


class NextAnswerWait(Wait):
    """
    Until the server has answered more than ``seen`` requests in all (its
    answered events, counted by ``count()``): what ``wait_for`` waits for in
    the reactor thread between two looks at the journal. Its timeout ends
    it quietly.
    """

    what = "wait_for()"
    quiet = True

    def __init__(self, seen: int, count: Callable[[], int]) -> None:
        self._seen = seen
        self._count = count

    def begin(self, generation: int, history: Sequence[Entry]) -> bool:
        return self._count() > self._seen

    def answered(self, ticket: Ticket, store: StateStore) -> bool:
        return True

    def result(self) -> None:
        return None

    def shortfall(self) -> str:
        return "no request was answered"


class PredicateScan:
    """
    The first answered entry that a test's predicate accepts, looked for
    over successive readings of the journal, each entry judged once (an
    entry not answered at one look is judged at a later one). Runs in the
    caller's thread or task.

    :param predicate: takes the decoded request; an exception it raises is
        raised to the caller.
    :param decode: turns an entry into the dict the predicate gets.
    """

    def __init__(
        self,
        predicate: Callable[[dict[str, Any]], object],
        decode: Callable[[Entry], dict[str, Any]],
    ) -> None:
        self._predicate = predicate
        self._decode = decode
        self._generation: int | None = None
        self._scanned = 0
        self._pending: list[int] = []

    def look(self, generation: int, history: Sequence[Entry]) -> dict[str, Any] | None:
        """The oldest entry of ``history`` not judged yet that is answered and accepted."""
        if generation != self._generation:  # the first look, or a reset came
            self._generation, self._scanned, self._pending = generation, 0, []
        candidates = self._pending + list(range(self._scanned, len(history)))
        self._scanned = len(history)
        self._pending = []
        for position, index in enumerate(candidates):
            entry = history[index]
            if not entry[ANSWERED]:
                self._pending.append(index)
                continue
            request = self._decode(entry)
            if self._predicate(request):
                self._pending += candidates[position + 1 :]
                return request
        return None


def _was(n: int) -> str:
    return "was" if n == 1 else "were"


def describe_arrivals(history: Sequence[Entry], url: str | None) -> str:
    """
    What did arrive, for a timeout message: the count and the last request
    lines with their state, or a hint that the client may not reach the
    server at all.
    """
    if not history:
        where = f" at {url}" if url else ""
        return f"no request arrived since start or reset (does the client reach the server{where}?)"
    described = []
    for entry in history[-LINES_QUOTED:]:
        if not entry[ANSWERED]:
            state = "not answered yet"
        elif entry[CODE] is None:
            state = "answered without a status"
        else:
            state = f"answered {entry[CODE]}"
        if entry[ROUTE] is not None:
            state += f" by route {entry[ROUTE]!r}"
        described.append(f"{request_line(entry)!r} ({state})")
    count = len(history)
    noun = "request" if count == 1 else "requests"
    last = "the last" if count > LINES_QUOTED else ("it" if count == 1 else "they")
    return f"{count} {noun} arrived since start or reset; {last}: " + ", ".join(described)


class Waits:
    """
    The pending waits of one server: started against its store, woken by
    its answered events, timed out by its reactor.

    :param store: the journal.
    :param reactor: runs the timeouts.
    :param url: the server's URL for messages (None when unknown).
    """

    def __init__(
        self, store: StateStore, reactor: TimeReactor, url: Callable[[], str | None]
    ) -> None:
        self._store = store
        self._reactor = reactor
        self._url = url
        self._pending: list[Wait] = []

    def __len__(self) -> int:
        return len(self._pending)

    def start(self, wait: Wait, timeout: float) -> Deferred[Any]:
        """
        Begin ``wait``; fire with its result once it is over, or fail with
        :class:`~txtestserver.WaitTimeoutError` after ``timeout`` seconds.
        Cancelling the Deferred forgets the wait and its timer.
        """
        from twisted.internet.defer import Deferred, succeed

        generation, history = self._store.journal()
        if wait.begin(generation, history):
            return succeed(wait.result())
        d: Deferred[Any] = Deferred(lambda _: self._forget(wait))
        wait.deferred = d
        wait.timer = self._reactor.callLater(timeout, self._timed_out, wait, timeout)
        self._pending.append(wait)
        return d

    def answered(self, ticket: Ticket) -> None:
        """The request of ``ticket`` has been answered: wake what it completes."""
        for wait in list(self._pending):
            try:
                over = wait.answered(ticket, self._store)
            except Exception:
                from twisted.python.failure import Failure

                self._end(wait, Failure())
            else:
                if over:
                    self._end(wait, wait.result())

    def fail_all(self, error: Exception) -> None:
        """Fail every pending wait (the server stopped or died)."""
        from twisted.python.failure import Failure

        for wait in list(self._pending):
            self._end(wait, Failure(error))

    def _timed_out(self, wait: Wait, timeout: float) -> None:
        wait.timer = None
        if wait.quiet:
            self._end(wait, None)
            return
        history = self._store.history()
        message = f"{wait.what}: {wait.shortfall()} within {timeout} s; " + describe_arrivals(
            history, self._url()
        )
        from twisted.python.failure import Failure

        self._end(wait, Failure(WaitTimeoutError(message)))

    def _end(self, wait: Wait, result: Any) -> None:
        d = wait.deferred
        self._forget(wait)
        if d is None:
            return
        wait.deferred = None
        from twisted.python.failure import Failure

        if isinstance(result, Failure):
            d.errback(result)
        else:
            d.callback(result)

    def _forget(self, wait: Wait) -> None:
        if wait in self._pending:
            self._pending.remove(wait)
        if wait.timer is not None:
            if wait.timer.active():
                wait.timer.cancel()
            wait.timer = None
