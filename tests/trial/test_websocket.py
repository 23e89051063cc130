"""
A WebSocket route of a ``DeferredTestServer`` in trial, with Twisted's own
WebSocket client (``twisted.web.websocket``, Twisted 25.5 and later): the
waits and pushes return Deferreds.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.trial.unittest import SkipTest, TestCase

from tests.trial._server import StartedServer

try:
    from twisted.web.websocket import WebSocketClientEndpoint
except ImportError:  # Twisted before 25.5
    WebSocketClientEndpoint = None


class _Client:
    """A twisted.web.websocket protocol that keeps what it gets."""

    def __init__(self) -> None:
        self.received: list[Any] = []
        self.arrived: Deferred[None] | None = None
        self.lost: Deferred[None] = Deferred()
        self.transport: Any = None

    def negotiationStarted(self, transport: Any) -> None:
        self.transport = transport

    def negotiationFinished(self) -> None:
        pass

    def textMessageReceived(self, message: str) -> None:
        self._got(message)

    def bytesMessageReceived(self, data: bytes) -> None:
        self._got(data)

    def pongReceived(self, payload: bytes) -> None:
        pass

    def connectionLost(self, reason: Any) -> None:
        self.lost.callback(None)

    def _got(self, message: Any) -> None:
        self.received.append(message)
        arrived, self.arrived = self.arrived, None
        if arrived is not None:
            arrived.callback(None)

    def next(self) -> Deferred[None]:
        self.arrived = Deferred()
        return self.arrived


class _Factory:
    def __init__(self) -> None:
        self.client = _Client()

    def buildProtocol(self, url: str) -> _Client:
        return self.client


class DeferredWebSocketTests(StartedServer, TestCase):
    def setUp(self) -> Any:
        if WebSocketClientEndpoint is None:
            raise SkipTest("twisted.web.websocket needs Twisted 25.5")
        return super().setUp()

    @inlineCallbacks
    def test_script_push_and_waits(self) -> Any:
        ws = self.server.websocket("/chat")
        ws.on_connect(send=["hello"])
        ws.echo()
        factory = _Factory()
        client = factory.client
        arrived = client.next()
        endpoint = WebSocketClientEndpoint.new(reactor, ws.url)
        yield endpoint.connect(factory)
        yield arrived
        self.assertEqual(client.received, ["hello"])
        arrived = client.next()
        client.transport.sendTextMessage("echo me")
        yield arrived
        self.assertEqual(client.received[-1], "echo me")
        (connection,) = yield ws.wait_connections(1)
        arrived = client.next()
        yield ws.send(b"pushed", connection=connection["id"])
        yield arrived
        self.assertEqual(client.received[-1], b"pushed")
        messages = yield ws.wait_messages(1, direction="received")
        self.assertEqual(messages[0]["data"], "echo me")
        yield ws.close(1001, "restart")
        yield client.lost
        closed = yield ws.wait_closed(connection["id"])
        self.assertEqual((closed["closed_by"], closed["close_code"]), ("server", 1001))


class DeferredWebSocketSubprocessTests(DeferredWebSocketTests):
    """The same conversation with the subprocess engine (Deferreds woken by its event lines)."""

    engine = "subprocess"
