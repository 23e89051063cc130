"""
Where the HTTP side runs: the :class:`Engine` interface and the registry of
engines (:data:`ENGINES`), chosen by name with :func:`make_engine`.

- ``thread`` (:mod:`.thread`): serves from the reactor the face runs.
- ``subprocess`` (:mod:`.subprocess`, :mod:`.child`, :mod:`.wire`): a child
  Python process serves; the state crosses as files.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from .._config import ServerConfig
from .._errors import TestServerError
from .._state.store import StateStore, Ticket
from .._types import ProcessReactor

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from .._http.tls import Credentials

__all__ = ["ENGINES", "Engine", "make_engine"]


class Engine(Protocol):
    """
    Runs the HTTP side of one server. All methods are called in the reactor
    thread.

    :ivar store: the state the views read and write.
    :ivar portable: response values must be plain data (they cross a process
        boundary), so callables and iterators are refused when assigned.
    """

    store: StateStore
    portable: bool

    @property
    def pid(self) -> int | None:
        """The id of the process that serves while it runs, if not this one; else None."""

    def start(
        self,
        config: ServerConfig,
        on_answered: Callable[[Ticket], None],
        on_lost: Callable[[TestServerError], None],
        credentials: Credentials | None = None,
        on_arrived: Callable[[Ticket], None] | None = None,
        on_websocket: Callable[[], None] | None = None,
    ) -> Deferred[int]:
        """
        Listen as ``config`` says; fire with the real port.

        :param on_answered: call with the ticket of each answered request.
        :param on_arrived: call with the ticket of each request recorded
            before its answer is complete (a ``sleep``, a stream, a
            ``stall``): for those answered at once, ``on_answered`` alone.
        :param on_lost: call if the server dies on its own (with the reason).
        :param credentials: what ``config.tls`` serves.
        :param on_websocket: call after each event of the WebSocket journal
            (a connection opened or ending, a message), once it is in the store.
        """

    def push(self, route: int, action: str, args: Sequence[Any], connection: int | None) -> None:
        """
        The test's push to the open WebSocket connections of ``route`` (all,
        or the one of id ``connection``): ``action`` is ``send``, ``ping``,
        ``close`` or ``fault``, ``args`` its arguments (plain data).
        """

    def stop(self) -> Deferred[None]:
        """Stop listening, drop every connection, release everything."""


#: Engine name -> ``"module:class"``, imported on first use (the subprocess
#: engine's modules are not loaded by a process that never uses it).
ENGINES: dict[str, str] = {
    "thread": f"{__name__}.thread:ThreadEngine",
    "subprocess": f"{__name__}.subprocess:SubprocessEngine",
}


def make_engine(name: str, reactor: ProcessReactor, *, call_timeout: float) -> Engine:
    """
    The engine called ``name``, serving from ``reactor``.

    :param call_timeout: the longest an engine may block a call waiting for
        something outside this process (the server process's state lock).

    :raise TestServerError: no engine has that name.
    """
    target = ENGINES.get(name) if isinstance(name, str) else None
    if target is None:
        raise TestServerError(
            f"unknown engine {name!r}: use {' or '.join(repr(n) for n in ENGINES)}"
        )
    module, _, cls = target.partition(":")
    factory: Callable[..., Engine] = getattr(importlib.import_module(module), cls)
    return factory(reactor, call_timeout=call_timeout)
