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

    :param address: the interface to bind (default ``127.0.0.1``; an IPv6
        address such as ``::1`` works too).
    :param port: the port to bind; 0 (the default) picks a free one.
    :param engine: ``'thread'`` serves from this reactor; ``'subprocess'``
        serves from a child process.
    :param reactor: the reactor to use; the global one by default.
    :param body_limit: keep at most this many bytes of each request body in
        ``request['data']`` (default 64 MiB; 0 keeps none).
    :param header_count_limit: header lines one request may have (default
        500); a request with more gets ``400 Bad Request``.
    :param header_size_limit: bytes the request line and header lines of one
        request may hold (default 64 KiB); a request with more gets ``400 Bad
        Request``, or its connection closed if one line alone is longer.
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
