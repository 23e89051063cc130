"""
The Deferred API: :class:`DeferredTestServer`, for code that runs in the
reactor thread (trial TestCases, Twisted programs).
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, maybeDeferred

from ._core import ServerCore

__all__ = ["DeferredTestServer"]


class DeferredTestServer(ServerCore):
    """
    A test HTTP server whose ``start``, ``stop`` and ``wait_request`` return
    Deferreds. Everything else is the same as :class:`~txtestserver.TestServer`.

    The constructor's parameters are those of every face
    (:class:`~txtestserver._core.ServerCore`); ``reactor`` is the reactor to
    serve from (the global one by default).
    """

    __test__ = False  # not a pytest test class, despite the name

    def start(self, keep_alive: bool = False) -> Deferred[None]:
        """
        Start listening.

        :param keep_alive: keep connections open between requests (by
            default each response closes its connection, as test_server does).
        :return: fires once the server accepts connections; ``server.port``
            is then the real port.
        """
        return maybeDeferred(self._start, keep_alive)

    def stop(self) -> Deferred[None]:
        """
        Stop: no listening port, no open connection, no pending call left.

        :return: fires once everything is released.
        """
        return maybeDeferred(self._stop)

    def wait_request(self, timeout: float = 5.0) -> Deferred[None]:
        """
        Wait until ``request['done']`` is true (at once if it already is).

        :param timeout: seconds before failing with
            :class:`~txtestserver.WaitTimeoutError`.
        """
        return maybeDeferred(self._wait_request, timeout)
