"""
The thread engine: serves from the reactor of the face (crochet's thread for
the blocking API, trial's reactor for the Deferred API), state in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet.defer import Deferred, succeed

from .._config import ServerConfig
from .._errors import TestServerError
from .._http.listen import Listener, serve
from .._http.tls import Credentials
from .._state.memory import MemoryStore
from .._state.store import StateStore, Ticket
from .._types import ServingReactor

__all__ = ["ThreadEngine"]


class ThreadEngine:
    """
    Serves in this process.

    :param reactor: the reactor to listen on.
    :param call_timeout: unused: nothing here waits for another process.
    """

    portable = False

    def __init__(self, reactor: ServingReactor, call_timeout: float = 10.0) -> None:
        self._reactor = reactor
        self.store: StateStore = MemoryStore()
        self._listener: Listener | None = None

    @property
    def pid(self) -> int | None:
        """None: this process serves."""
        return None

    def start(
        self,
        config: ServerConfig,
        on_answered: Callable[[Ticket], None],
        on_lost: Callable[[TestServerError], None],
        credentials: Credentials | None = None,
        on_arrived: Callable[[Ticket], None] | None = None,
        on_websocket: Callable[[], None] | None = None,
    ) -> Deferred[int]:
        self._listener = serve(
            self._reactor,
            config,
            self.store,
            on_answered,
            credentials,
            on_arrived=on_arrived,
            on_websocket=on_websocket,
        )
        return succeed(self._listener.port)

    def push(self, route: int, action: str, args: Sequence[Any], connection: int | None) -> None:
        if self._listener is not None:
            self._listener.websockets.push(route, action, args, connection)

    def stop(self) -> Deferred[None]:
        listener, self._listener = self._listener, None
        if listener is None:
            return succeed(None)
        return listener.stop()
