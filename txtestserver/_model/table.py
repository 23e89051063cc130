"""
What the server answers, as plain data: the :class:`ResponseTable`.

The table has slots (:data:`SLOTS`): ``response`` (permanent) and ``once``
(taken by the next request it applies to), and a queue: answers served in
order, each a number of times (``server.add_response``). Each slot and each
queued answer maps response keys, plain (``"data"``) or method-specific
(``"post.data"``), to checked values. The table also holds the routes
(``server.route(...)``): each is its conditions
(:mod:`~txtestserver._model.routes`) with slots and a queue of its own,
found through a :class:`~txtestserver._model.index.RouteIndex`. The
server's own slots and queue are a route too (id None): the unconditioned
one, tried after every other, so every method reaches any route's slots the
same way.

:meth:`ResponseTable.take` is the one place that decides which values answer
a request, and uses up what it takes; the stores run it atomically
(:meth:`~txtestserver._state.store.StateStore.update`), the memory store
under a lock, the file store under a file lock, so two requests never take
the same ``once`` value or queued answer. It also decides that nothing the
test set expects a request (strict mode, or a table with routes), which the
server then answers ``404`` (:mod:`~txtestserver._model.strict`).

The views (``server.response``, ``route.response_once``, ...) are windows on
one slot each. The table is plain data: the file store writes it as one
JSON document (:meth:`ResponseTable.to_data`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

from .._errors import TestServerError
from .index import RouteIndex, unreachable
from .keys import defaults
from .record import METHOD, Record
from .routes import Facts

__all__ = ["ONCE", "RESPONSE", "SLOTS", "QueuedAnswer", "ResponseTable", "RouteState", "Taken"]

#: The permanent answer (``server.response``).
RESPONSE = "response"
#: The answer for the next request it applies to (``server.response_once``).
ONCE = "once"
#: The slots of a table, in precedence order: a ``once`` value beats the
#: permanent one.
SLOTS = (ONCE, RESPONSE)

#: ``count`` of a queued answer served forever.
FOREVER = -1


class Taken(NamedTuple):
    """
    What :meth:`ResponseTable.take` gives for one request.

    :ivar values: the value of every response key.
    :ivar route_id: the id of the route that answers, or None (the server's
        own answer).
    :ivar route: the name of that route, or None.
    """

    values: dict[str, Any]
    route_id: int | None
    route: str | None


def _taken(values: dict[str, Any], route_id: int | None, route: str | None) -> Taken:
    # tuple.__new__ skips the NamedTuple's Python-level __new__ (once per request).
    taken: Taken = _new_tuple(Taken, (values, route_id, route))
    return taken


_new_tuple: Any = tuple.__new__


class QueuedAnswer:
    """
    One answer of a queue.

    :ivar method: the method it is for (upper case), or None: any.
    :ivar count: how many more requests it answers; :data:`FOREVER`: all.
    :ivar values: response key -> checked value.
    """

    __slots__ = ("count", "method", "values")

    def __init__(self, method: str | None, count: int, values: dict[str, Any]) -> None:
        self.method = method
        self.count = count
        self.values = values


class RouteState:
    """
    One route: its conditions, slots and queue. The server's own answer is
    a route too: the unconditioned one, tried last.

    :ivar id: unique in its table, never reused (a view of a removed route
        cannot reach a newer one); None for the server's own answer.
    :ivar name: names it in the journal (``request['route']``); None for the
        server's own answer.
    :ivar when: the conditions (:func:`~txtestserver._model.routes.conditions`).
    """

    __slots__ = ("id", "name", "queue", "slots", "when")

    def __init__(
        self,
        id: int | None,
        name: str | None,
        when: dict[str, Any],
        slots: Mapping[str, Mapping[str, Any]] | None = None,
        queue: list[QueuedAnswer] | None = None,
    ) -> None:
        self.id = id
        self.name = name
        self.when = when
        self.slots: dict[str, dict[str, Any]] = {
            slot: dict((slots or {}).get(slot, {})) for slot in SLOTS
        }
        self.queue: list[QueuedAnswer] = queue or []

    def where(self, separator: str) -> str:
        """How messages name it: ``"route 'api'"`` and the separator; the server: ``""``."""
        return "" if self.name is None else f"route {self.name!r}{separator}"

    def covers(self, method: str) -> bool:
        """
        Whether something the test set answers a request of ``method``
        (upper case): a queued answer for it (or any method), a
        ``response_once`` or ``response`` key for it (or plain).
        """
        if any(answer.method in (None, method) for answer in self.queue):
            return True
        prefix = method.lower() + "."
        return any(
            "." not in key or key.startswith(prefix) for slot in self.slots.values() for key in slot
        )


class ResponseTable:
    """
    The answers a test set, by route, slot and key.

    Methods that name a ``route`` (an id) work on that route's slots and
    queue; ``route=None`` is the server's own answer: the unconditioned
    route, tried after every other.

    :ivar changed: a method changed the table since it was made or loaded
        (the file store then writes it back).
    :ivar touched: the ids of the routes (None: the server's own) whose
        slots, queue or existence changed since then, so that the file
        store writes only those (:meth:`changes`).
    :ivar cleared: :meth:`clear` ran since then: the whole table changed.
    """

    def __init__(
        self,
        slots: Mapping[str, Mapping[str, Any]] | None = None,
        queue: list[QueuedAnswer] | None = None,
        routes: list[RouteState] | None = None,
        next_id: int = 1,
    ) -> None:
        self._server = RouteState(None, None, {}, slots, queue)
        self._routes: list[RouteState] = routes or []
        self._by_id: dict[int | None, RouteState] = {None: self._server}
        self._by_id.update((route.id, route) for route in self._routes)
        self._index = RouteIndex(self._routes)
        self._next_id = next_id
        self.changed = False
        self.touched: set[int | None] = set()
        self.cleared = False

    # -- what the views do ----------------------------------------------------------

    def slot(self, slot: str, route: int | None = None) -> dict[str, Any]:
        """A copy of one slot: key -> value."""
        return dict(self._route(route).slots[slot])

    def set(self, slot: str, key: str, value: Any, route: int | None = None) -> None:
        """Set one (checked, canonical) key of a slot."""
        self._route(route).slots[slot][key] = value
        self._touch(route)

    def delete(self, slot: str, key: str, route: int | None = None) -> None:
        """Remove one key of a slot; ``KeyError`` if it is not set."""
        del self._route(route).slots[slot][key]
        self._touch(route)

    def enqueue(self, answer: QueuedAnswer, route: int | None = None) -> None:
        """Add an answer at the end of a queue."""
        self._route(route).queue.append(answer)
        self._touch(route)

    def queue(self, route: int | None = None) -> list[QueuedAnswer]:
        """The answers still queued, next first (the table's own objects)."""
        return list(self._route(route).queue)

    def add_route(self, name: str, when: dict[str, Any]) -> int:
        """Register a route (it wins over every route before it); return its id."""
        route = RouteState(self._next_id, name, when)
        self._next_id += 1
        self._routes.append(route)
        self._by_id[route.id] = route
        self._index.add(route)
        self._touch(route.id)
        return self._next_id - 1

    def remove_route(self, route: int) -> None:
        """Remove a route; removing it again is an error (as is removing the server)."""
        state = self._route(route)
        self._routes.remove(state)
        del self._by_id[route]
        self._index.remove(state)
        self._touch(route)

    def routes(self) -> list[tuple[int, str, dict[str, Any]]]:
        """``(id, name, conditions)`` of each route, in registration order."""
        return [(route.id, route.name, route.when) for route in self._routes]  # type: ignore[misc]

    def clear(self) -> None:
        """Every slot and queue empty, no route: the defaults answer."""
        for values in self._server.slots.values():
            values.clear()
        self._server.queue = []
        self._routes = []  # ids are not reused: views of old routes stay dead
        self._by_id = {None: self._server}
        self._index = RouteIndex()
        self.changed = True
        self.cleared = True

    def _touch(self, route: int | None) -> None:
        self.changed = True
        self.touched.add(route)

    def saved(self) -> None:
        """The table is as its store holds it: nothing changed since."""
        self.changed = False
        self.touched.clear()
        self.cleared = False

    def _route(self, route: int | None) -> RouteState:
        try:
            return self._by_id[route]
        except KeyError:
            raise TestServerError(
                "this route was removed (route.remove() or server.reset()): "
                "make a new one with server.route(...)"
            ) from None

    def every_value(self) -> Iterator[tuple[str, str, Any]]:
        """
        ``(where, key, value)`` for every value in the table: the slots and
        queued answers of the server and of each route. ``where`` names the
        mapping for messages (``"route 'api' response_once"``).
        """
        for route in (self._server, *self._routes):
            yield from route_values(route)

    # -- what the server does ---------------------------------------------------------

    def take(self, record: Record, strict: bool = False) -> Taken | None:
        """
        The value of every response key for one request, and the route that
        answers it; uses up the ``once`` values and the queued answer it
        takes. None when nothing the test set expects the request: nothing
        is used up, and the server answers ``404`` (:func:`~txtestserver.
        _model.strict.unexpected` says why).

        The route: of the routes whose conditions the request meets, the one
        registered last; if none, the server's own answer, the unconditioned
        route. That one answers a request only with what the test set for it
        (a queued answer, ``response_once`` or ``response`` for its method)
        once the table has a route or in strict mode; with no route and not
        strict, it answers every request (with the defaults if nothing is
        set). Whichever answers, the head of its queue (the first answer
        queued for the request's method, else the first for any method) is
        the whole answer, over the defaults; with nothing queued,
        precedence is, highest first, ``once``, ``response``, the default.
        Within each, a method-specific key (``'post.data'``) beats the plain
        one, and a method-specific ``once`` value uses up the plain one too
        (both applied to this request). A route never falls back to the
        server's values: it answers over the defaults.

        :param record: the request, as recorded.
        :param strict: strict mode: the server's own answer, too, answers
            only with what the test set.
        """
        method = record[METHOD].decode("latin-1")
        if self._routes:
            route = self._index.find(Facts(record)) or self._server
        else:  # the usual case: no route, the server answers
            route = self._server
            if not strict:
                return _taken(self._resolve(method, route), None, None)
        if route is self._server and not route.covers(method.upper()):
            return None
        return _taken(self._resolve(method, route), route.id, route.name)

    def _resolve(self, method: str, route: RouteState) -> dict[str, Any]:
        prefix = method.lower() + "."
        chosen = defaults()
        slots = route.slots
        if route.queue:
            head = self._pop(route, method.upper())
            if head is not None:  # a queued answer is whole: over the defaults only
                for name in chosen:
                    key = prefix + name
                    if key in head:
                        chosen[name] = head[key]
                    elif name in head:
                        chosen[name] = head[name]
                return chosen
        once = slots[ONCE]
        permanent = slots[RESPONSE]
        if not once and not permanent:
            return chosen
        cut = len(prefix)
        # Lowest precedence first, each layer over the one before; only the
        # keys that were set are visited, however many keys there are.
        specific: list[tuple[str, Any]] = []
        for key, value in permanent.items():
            if "." not in key:
                chosen[key] = value
            elif key.startswith(prefix):
                specific.append((key[cut:], value))
        for name, value in specific:
            chosen[name] = value
        if once:
            taken = [key for key in once if "." not in key]
            taken += [key for key in once if key.startswith(prefix)]  # after: they win
            for key in taken:
                chosen[key[cut:] if "." in key else key] = once.pop(key)
            if taken:
                self._touch(route.id)
        return chosen

    def _pop(self, route: RouteState, method: str) -> dict[str, Any] | None:
        """Take one use of the queued answer for ``method`` (else for any method)."""
        chosen = None
        queue = route.queue
        for answer in queue:
            if answer.method == method:
                chosen = answer
                break
            if chosen is None and answer.method is None:
                chosen = answer
        if chosen is None:
            return None
        if chosen.count != FOREVER:
            chosen.count -= 1
            if chosen.count <= 0:
                queue.remove(chosen)
            self._touch(route.id)
        return chosen.values

    # -- what the test did not mean -----------------------------------------------------

    def unused(self) -> list[str]:
        """
        What the test set up for requests that never came: each queued
        answer (but those served for ever) and each ``response_once`` key,
        of the server and of each route, in words (strict mode reports them
        in ``check()``).
        """
        found = []
        for route in (self._server, *self._routes):
            found += _unused(route.slots[ONCE], route.queue, route.where(": "))
        return found

    def shadowed(self) -> list[str]:
        """
        The routes that can never answer, in words: a route registered after
        one matches every request the older one matches (the most recent
        match wins), so the older one is unreachable. ``check()`` reports
        them.
        """
        return [
            f"route {older.name!r} can never answer: route {newer.name!r}, registered after "
            "it, matches every request it matches, and the most recent match wins; register "
            "the more specific route last"
            for older, newer in unreachable(self._routes)
        ]

    # -- as data ------------------------------------------------------------------------

    def to_data(self, encode: Callable[[Any], Any]) -> dict[str, Any]:
        """
        The table as JSON-ready data (a queue and the routes only when there
        are any, so the usual table stays small).

        :param encode: turns one value into JSON data.
        """
        data = _slots_data(self._server.slots, encode)
        if self._server.queue:
            data["queue"] = _queue_data(self._server.queue, encode)
        if self._routes:
            data["routes"] = [_route_data(route, encode) for route in self._routes]
        if self._next_id != 1:
            data["next_id"] = self._next_id
        return data

    @classmethod
    def from_data(cls, data: Mapping[str, Any], decode: Callable[[Any], Any]) -> ResponseTable:
        """The inverse of :meth:`to_data`."""
        return cls(
            _slots_from(data, decode),
            _queue_from(data.get("queue", ()), decode),
            [
                RouteState(
                    route["id"],
                    route["name"],
                    decode(route["when"]),
                    _slots_from(route, decode),
                    _queue_from(route["queue"], decode),
                )
                for route in data.get("routes", ())
            ],
            data.get("next_id", 1),
        )

    # -- as changes ---------------------------------------------------------------------

    def changes(self, encode: Callable[[Any], Any]) -> Iterator[tuple[int | None, Any]]:
        """
        What changed since the table was saved (:attr:`touched`), one change
        per route, as ``(route id, JSON-ready data)``: the route's whole
        state (``{"r": ..., "n": next id}``), or ``{"x": id}`` for a
        removed one; in id order, so that :meth:`apply` adds new routes in
        registration order. Each route is encoded when its change is taken.
        """
        for id in sorted(self.touched, key=lambda id: -1 if id is None else id):
            route = self._by_id.get(id)
            if route is None:
                yield id, {"x": id}
            else:
                yield id, {"r": _route_data(route, encode), "n": self._next_id}

    def apply(self, change: Mapping[str, Any], decode: Callable[[Any], Any]) -> RouteState | None:
        """
        Apply one change of :meth:`changes` (written by another process);
        return the route as it is now (None: removed).
        """
        if "x" in change:
            state = self._by_id.pop(change["x"], None)
            if state is not None:
                self._routes.remove(state)
                self._index.remove(state)
            return None
        data = change["r"]
        state = self._by_id.get(data["id"])
        slots = _slots_from(data, decode)
        queue = _queue_from(data["queue"], decode)
        if state is None:
            state = RouteState(data["id"], data["name"], decode(data["when"]), slots, queue)
            self._routes.append(state)
            self._by_id[state.id] = state
            self._index.add(state)
        else:
            state.slots = slots
            state.queue = queue
        self._next_id = max(self._next_id, change["n"])
        return state

    def route_state(self, route: int | None) -> RouteState | None:
        """The route of id ``route`` (None: the server's own), or None if there is none."""
        return self._by_id.get(route)

    def route_states(self) -> list[RouteState]:
        """The server's own route, then every route."""
        return [self._server, *self._routes]


def route_values(route: RouteState) -> Iterator[tuple[str, str, Any]]:
    """``(where, key, value)`` for every value of one route (see ``every_value``)."""
    owner = route.where(" ")
    for slot, values in route.slots.items():
        name = "response_once" if slot == ONCE else "response"
        for key, value in values.items():
            yield owner + name, key, value
    for number, answer in enumerate(route.queue, 1):
        for key, value in answer.values.items():
            yield f"{owner}queued answer {number}", key, value


def _route_data(route: RouteState, encode: Callable[[Any], Any]) -> dict[str, Any]:
    data: dict[str, Any] = {"id": route.id, "queue": _queue_data(route.queue, encode)}
    if route.id is not None:
        data.update(name=route.name, when=encode(route.when))
    data.update(_slots_data(route.slots, encode))
    return data


def _slots_data(slots: dict[str, dict[str, Any]], encode: Callable[[Any], Any]) -> dict[str, Any]:
    return {
        slot: {key: encode(value) for key, value in values.items()}
        for slot, values in slots.items()
    }


def _slots_from(data: Mapping[str, Any], decode: Callable[[Any], Any]) -> dict[str, Any]:
    return {
        slot: {key: decode(value) for key, value in data.get(slot, {}).items()} for slot in SLOTS
    }


def _queue_data(queue: list[QueuedAnswer], encode: Callable[[Any], Any]) -> list[Any]:
    return [
        [answer.method, answer.count, {key: encode(value) for key, value in answer.values.items()}]
        for answer in queue
    ]


def _queue_from(data: Any, decode: Callable[[Any], Any]) -> list[QueuedAnswer]:
    return [
        QueuedAnswer(method, count, {key: decode(value) for key, value in values.items()})
        for method, count, values in data
    ]


def _unused(once: dict[str, Any], queue: list[QueuedAnswer], where: str) -> list[str]:
    found = [f"{where}response_once[{key!r}] was never used" for key in once]
    for answer in queue:
        if answer.count == FOREVER:
            continue
        values = ", ".join(f"{key}={_short(value)}" for key, value in answer.values.items())
        method = f" for {answer.method}" if answer.method else ""
        left = answer.count
        found.append(f"{where}a queued answer{method} ({values}) was not used up: {left} left")
    return found


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
