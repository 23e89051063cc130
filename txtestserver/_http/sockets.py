"""
The WebSocket side of one serving site (:class:`Sockets`): its open
connections by route, their journal events into the store, the reply rules
taken from the store's table, and the test's pushes. It imports neither
wsproto nor the connection's module: every server has one, and only a
server with WebSocket routes loads them (:mod:`.websocket`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

from .._model.websocket import WebSocketEvent, clip, take_rule
from .._state.store import StateStore
from .._types import TimeReactor

if TYPE_CHECKING:
    from .websocket import WebSocketConnection

__all__ = ["PUSHES", "Sockets"]

_log = Logger()


class Sockets:
    """
    The WebSocket side of one serving site: its open connections by route,
    the way their events reach the journal (the store, then
    ``on_change``), the reply rules taken from the store's table, and the
    test's pushes (:meth:`push`: called in the serving reactor's thread,
    in this process or, for the subprocess engine, from a line on the
    server process's stdin).

    :param reactor: the serving reactor.
    :param store: holds the scripts (the routes' ``response['websocket']``)
        and the journal.
    :param on_change: called after each event journaled (wakes the waits).
    """

    def __init__(
        self, reactor: TimeReactor, store: StateStore, on_change: Callable[[], None] | None = None
    ) -> None:
        self.reactor = reactor
        self.store = store
        self._on_change = on_change
        #: The open connections: route id -> connection id -> connection.
        self.open: dict[int, dict[int, WebSocketConnection]] = {}
        #: Bytes of message data journaled so far, by route (its ``journal_limit``).
        self._kept: dict[int, int] = {}

    def keep(self, route: int, data: str | bytes, limit: int | None) -> tuple[Any, int, bool]:
        """
        ``data`` as the journal keeps it (:func:`~txtestserver._model.websocket.clip`):
        as much as is left of the route's ``limit`` (None: no limit), which it spends.
        """
        spent = self._kept.get(route, 0)
        kept, size, truncated = clip(data, None if limit is None else max(0, limit - spent))
        if limit is not None:
            self._kept[route] = spent + (size if not truncated else limit - spent)
        return kept, size, truncated

    def add(self, event: WebSocketEvent) -> None:
        """Journal one event (:mod:`txtestserver._model.websocket`), then say so."""
        self.store.add_websocket(event)
        if self._on_change is not None:
            try:
                self._on_change()
            except Exception:
                _log.failure("txtestserver: the WebSocket event hook failed")

    def take(self, route: int, data: str | bytes) -> tuple[dict[str, Any] | None, list[Any]]:
        """
        The reply rule of ``route`` that ``data`` meets (a use of it taken)
        and the route's callbacks: read without the lock, updated only to
        use up a counted rule.
        """
        rule, callbacks = self.store.read(lambda table: take_rule(table, route, data, use=False))
        if rule is not None and rule["count"] > 0:
            return self.store.update(lambda table: take_rule(table, route, data))
        return rule, callbacks

    def push(self, route: int, action: str, args: Sequence[Any], connection: int | None) -> None:
        """
        The test's push: ``action`` (``send``, ``ping``, ``close``,
        ``fault``) with ``args`` on every open connection of ``route``, or
        on connection ``connection`` if it is still open.
        """
        if action not in PUSHES:
            raise ValueError(f"unknown WebSocket push {action!r}")
        found = self.open.get(route, {})
        if connection is None:
            targets = list(found.values())
        else:
            targets = [found[connection]] if connection in found else []
        for target in targets:
            getattr(target, action)(*args)


#: The pushes a test may make: each is the connection's method of that name.
PUSHES = frozenset({"send", "ping", "close", "fault"})
