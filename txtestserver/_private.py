"""
The base of the faces that serve from the private reactor thread
(:class:`~txtestserver.TestServer`, :class:`~txtestserver.AsyncTestServer`),
and the process's one :class:`~txtestserver._reactor_thread.ReactorThread`,
made with the reaper of :mod:`txtestserver._engines.reaping`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ._core import ServerCore, check_seconds
from ._engines.reaping import reap_children_of
from ._errors import TestServerError
from ._reactor_thread import ReactorThread
from ._types import ProcessReactor

__all__ = ["PrivateReactorCore", "reactor_thread"]

_shared: ReactorThread | None = None
_shared_lock = threading.Lock()


def reactor_thread() -> ReactorThread:
    """The process's one private reactor thread (made, not started, on first call)."""
    global _shared
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                _shared = ReactorThread(reap=reap_children_of)
    return _shared


class PrivateReactorCore(ServerCore):
    """
    A face served by :func:`reactor_thread`: the constructor is
    :class:`~txtestserver._core.ServerCore`'s, the reactor is always the
    private one, and each face method is one :meth:`_call` (which a face
    implements over :meth:`ReactorThread.submit
    <txtestserver._reactor_thread.ReactorThread.submit>`).
    """

    @classmethod
    def _reactor_for(cls, reactor: ProcessReactor | None) -> ProcessReactor:
        own: ProcessReactor = reactor_thread().reactor
        if reactor is not None and reactor is not own:
            raise TestServerError(
                f"{cls.__name__} serves from a reactor of its own, in a background thread: "
                "drop reactor= (DeferredTestServer takes a reactor)"
            )
        return own

    def _bound(self, timeout: float) -> float:
        """
        Seconds a call whose own timeout is ``timeout`` may take in all:
        that plus ``call_timeout`` (a bound for a call whose own timeout
        failed to fire). A bad ``timeout`` counts as 0: the call itself
        raises the clear error.
        """
        try:
            extra = check_seconds("timeout", timeout)
        except TestServerError:
            extra = 0.0
        return self._call_timeout + extra

    def _too_slow(self, what: str, seconds: float) -> TestServerError:
        return TestServerError(f"{type(self).__name__}.{what} did not finish within {seconds:g} s")

    def _call(
        self,
        what: str,
        timeout: float,
        function: Callable[..., Any],
        *args: Any,
        undo: Callable[[], Any] | None = None,
    ) -> Any:
        raise NotImplementedError
