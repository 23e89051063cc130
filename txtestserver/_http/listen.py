"""
Where a server listens: the serving set-up that both engines call
(:func:`serve`), and the port it returns (:class:`Listener`).

The socket is made here, from the :class:`~txtestserver._config.ServerConfig`
alone, so a new way of listening (TLS, say) is a change to :func:`listen`,
not to the engines (the scheme of the URLs follows ``config.tls``).
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.error import CannotListenError

from .._config import ServerConfig
from .._errors import TestServerError
from .._state.store import StateStore, Ticket
from .._twisted_compat import close_failed_listener, without_alpn_of_its_own
from .._types import ServingReactor
from .resource import CaptureResource
from .site import ServerSite
from .sockets import Sockets
from .tls import Credentials, server_tls, tls_factory

__all__ = ["Listener", "listen", "listen_backlog", "serve"]

#: Where Linux says how long a listen queue may be.
_SOMAXCONN_FILE = "/proc/sys/net/core/somaxconn"


@functools.cache
def listen_backlog(path: str = _SOMAXCONN_FILE) -> int:
    """
    The listen backlog: the longest queue the system allows.

    Twisted's default of 50 overflows when a test opens connections faster
    than the reactor accepts them (2,000 quick connects, or any while the
    server is busy): the kernel drops the overflowing handshakes and each
    client retries only after a second. The system caps the backlog at its
    ``somaxconn`` anyway, so asking for that costs nothing more.

    :param path: the file holding the system's limit (Linux); where it cannot
        be read, :data:`socket.SOMAXCONN`.
    """
    try:
        with open(path, "rb") as f:
            value = int(f.read().strip())
    except (OSError, ValueError):
        return socket.SOMAXCONN
    return value if value > 0 else socket.SOMAXCONN


def listen(
    reactor: ServingReactor,
    config: ServerConfig,
    factory: Any,
    credentials: Credentials | None = None,
) -> Any:
    """
    Listen on the config's address and port; with ``config.tls``, serve TLS
    with ``credentials`` in front of ``factory``.

    :return: the listening port (an ``IListeningPort``).
    :raise TestServerError: the address or port cannot be bound (the message
        names both), or TLS is asked for without credentials.
    """
    if config.tls:
        if credentials is None:
            raise TestServerError("tls=True needs credentials to serve")
        # The clock that flushes TLS writes is the serving reactor: Twisted's
        # default is the global reactor, which does not serve a TestServer
        # (its writes would wait for ever, or run in another thread).
        factory = tls_factory(
            server_tls(config, credentials),
            without_alpn_of_its_own(factory),
            clock=reactor,
            report=factory.connection_error,
        )
    try:
        return reactor.listenTCP(
            config.port, factory, backlog=listen_backlog(), interface=config.address
        )
    except CannotListenError as e:
        close_failed_listener(e)
        raise TestServerError(
            f"cannot listen on {config.address} port {config.port}: {e.socketError}"
        ) from e


class Listener:
    """
    A site served on a port; :meth:`stop` also drops every open connection.

    :ivar port: the real port.
    """

    def __init__(self, listening: Any, site: ServerSite, websockets: Sockets) -> None:
        self._listening = listening
        self._site = site
        #: Its WebSocket connections (the test's pushes go there).
        self.websockets = websockets
        self.port: int = listening.getHost().port

    def stop(self) -> Deferred[None]:
        """Stop listening and drop open connections; fire when all is closed."""
        stopped = self._listening.stopListening()
        dropped = self._site.drop_all()
        closed = self._site.resource.close()  # connections to upstreams (forward)
        waits = [d for d in (stopped, dropped, closed) if isinstance(d, Deferred)]
        done: Deferred[Any] = DeferredList(waits, fireOnOneErrback=True, consumeErrors=True)
        return done.addCallback(lambda _: None)


def serve(
    reactor: ServingReactor,
    config: ServerConfig,
    store: StateStore,
    on_answered: Callable[[Ticket], None],
    credentials: Credentials | None = None,
    *,
    on_arrived: Callable[[Ticket], None] | None = None,
    on_websocket: Callable[[], None] | None = None,
) -> Listener:
    """
    Serve the one resource over ``store`` as ``config`` says. The thread
    engine calls this in the test process, the server process in itself.

    :param reactor: runs the server.
    :param config: where to listen, keep-alive and limits.
    :param store: where the response is read and requests are recorded.
    :param on_answered: called in the reactor thread with the ticket of each
        answered request.
    :param credentials: the key and certificate that ``config.tls`` serves.
    :param on_arrived: called in the reactor thread with the ticket of each
        request recorded before its answer is complete.
    :param on_websocket: called in the reactor thread after each event of
        the WebSocket journal (a connection opened or ending, a message).
    :raise TestServerError: the address or port cannot be bound.
    """
    resource = CaptureResource(store, reactor, on_answered, config=config, on_arrived=on_arrived)
    resource.websockets = Sockets(reactor, store, on_websocket)
    site = ServerSite(resource, config, reactor, resource.report_error)
    if config.proxy:
        if credentials is None:
            raise TestServerError("proxy=True needs credentials to issue tunnel certificates")
        from .issuer import Issuer

        site.issuer = Issuer(credentials, config)
    return Listener(listen(reactor, config, site, credentials), site, resource.websockets)
