"""The fixture every trial TestCase here shares: a started server and a client pool."""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.web.client import HTTPConnectionPool

from txtestserver import DeferredTestServer


class StartedServer:
    """
    Mixed into a trial TestCase: ``self.server``, a started
    DeferredTestServer on ``engine``, stopped after the test, and
    ``self.pool``, a treq connection pool of the test's own (treq's global
    pool would leave a timer behind).
    """

    engine = "thread"
    #: More keyword arguments for the server (``tls=True``, say).
    options: dict[str, Any] = {}  # noqa: RUF012  (read only)

    # Provided by TestCase; declared for type checkers.
    addCleanup: Any

    def setUp(self) -> Any:
        self.pool = HTTPConnectionPool(reactor, persistent=False)
        self.addCleanup(self.pool.closeCachedConnections)
        self.server = DeferredTestServer(engine=self.engine, **self.options)
        self.addCleanup(self.server.stop)
        return self.server.start()
