"""
A route (``server.route(...)``): the answer to the requests that meet its
conditions, with its own ``response``, ``response_once``, queue and
``requests``.

A :class:`Route` holds no state: it is the route's id in the store's
:class:`~txtestserver._model.table.ResponseTable` plus views on it, so it
works the same in either engine, and once the route is removed every use
says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._model.table import ONCE, RESPONSE
from ._response import Response, queued_answer
from ._state.store import StateStore
from ._views import HarContext, RequestsView, RequestView, ResponseView

__all__ = ["Route"]


class Route:
    """
    One route of a server; made by ``server.route(...)``.

    :ivar response: what the route answers (same keys, defaults and checks as
        ``server.response``; it does not fall back to ``server.response``).
    :ivar response_once: what it answers to the next request it answers only.
    :ivar requests: the requests it answered, oldest first.
    """

    __module__ = "txtestserver"  # documented and shown where it is imported from

    def __init__(
        self,
        store: StateStore,
        route: int,
        name: str,
        when: dict[str, Any],
        *,
        portable: bool,
        request: RequestView,
        waiter: Callable[[int, str, int, float], Any],
        har: HarContext | None = None,
    ) -> None:
        self._store = store
        self._id = route
        self._name = name
        self._when = when
        self._portable = portable
        self.response = ResponseView(store, slot=RESPONSE, portable=portable, route=route)
        self.response_once = ResponseView(store, slot=ONCE, portable=portable, route=route)
        self.requests = (
            RequestsView(store, request, route=route)
            if har is None
            else RequestsView(store, request, route=route, har=har)
        )
        self._waiter = waiter

    @property
    def id(self) -> int:
        """The route's id, unique in its server (never reused)."""
        return self._id

    @property
    def name(self) -> str:
        """Its name: ``request['route']`` of the requests it answered."""
        return self._name

    @property
    def conditions(self) -> dict[str, Any]:
        """What a request must meet, as data (``{'path': '/x', 'method': 'GET'}``)."""
        return dict(self._when)

    def add_response(
        self,
        response: Response | None = None,
        count: int = 1,
        method: str | None = None,
        **values: Any,
    ) -> None:
        """
        Queue an answer for the next ``count`` requests this route answers
        (as ``server.add_response``, for this route): queued answers come
        first, in order, then ``response_once``, then ``response``. A queued
        answer is whole: a key it does not give has its default.

        :param response: a :class:`~txtestserver.Response`; or give the
            response keys as keywords (``code=503, json={...}``).
        :param count: how many requests get it; -1: every one from now on.
        :param method: only requests of this method; None: any.
        :raise TestServerError: a value can never work, or the route was removed.
        """
        answer = queued_answer(
            response,
            count,
            method,
            values,
            portable=self._portable,
            where="route.add_response()",
        )
        route = self._id
        self._store.update(lambda table: table.enqueue(answer, route))

    def wait(self, count: int = 1, timeout: float = 5.0) -> Any:
        """
        Wait until this route has answered ``count`` requests since start or
        reset (those answered already count), as the server's face waits:
        it blocks with :class:`~txtestserver.TestServer`, returns a Deferred
        with :class:`~txtestserver.DeferredTestServer` and a coroutine with
        :class:`~txtestserver.AsyncTestServer`.

        :param count: how many requests.
        :param timeout: seconds before :class:`~txtestserver.WaitTimeoutError`,
            whose message says what did arrive and which route answered it.
        :return: the first ``count`` requests it answered, oldest first, as
            dicts like the items of ``route.requests``.
        :raise WaitTimeoutError: fewer requests than ``count`` took this route in time.
        :raise TestServerError: the route was removed, or ``timeout`` is not valid.
        """
        return self._waiter(self._id, self._name, count, timeout)

    def remove(self) -> None:
        """
        Stop answering: requests it matched go to other routes or to the
        server's own answer (``404`` when the test set none for them).

        :raise TestServerError: the route was removed already.
        """
        route = self._id
        self._store.update(lambda table: table.remove_route(route))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Route):
            return NotImplemented
        return self._store is other._store and self._id == other._id

    def __hash__(self) -> int:
        return hash(self._id)

    def __repr__(self) -> str:
        return f"<route {self._id}: {self._name}>"
