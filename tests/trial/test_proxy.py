"""
Proxy mode under trial, with Twisted's own clients: ``ProxyAgent`` for plain
HTTP (absolute-form requests), and for HTTPS an ``Agent`` whose endpoint
opens a ``CONNECT`` tunnel by hand, then TLS in it (Twisted has no tunneling
agent). Each TestCase runs against every engine.
"""

from __future__ import annotations

from typing import Any

from treq import content
from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.ssl import Certificate, optionsForClientTLS
from twisted.trial.unittest import TestCase
from twisted.web.client import Agent, ProxyAgent
from zope.interface import implementer

from tests.trial._server import StartedServer

API = "api.example.com"


@implementer(IStreamClientEndpoint)
class ConnectTunnel:
    """
    An endpoint through an HTTP proxy's ``CONNECT``: the tunnel, then TLS
    for ``host`` (trusting ``trusted``), then the protocol ``connect()`` is
    given.
    """

    def __init__(self, proxy_port: int, host: str, port: int, trusted: Certificate) -> None:
        self._proxy = TCP4ClientEndpoint(reactor, "127.0.0.1", proxy_port)
        self._target = f"{host}:{port}".encode()
        self._tls = optionsForClientTLS(host, trustRoot=trusted)

    def connect(self, factory: Any) -> Deferred[Any]:
        ready: Deferred[Any] = Deferred()
        endpoint = self

        class Tunnel(Protocol):
            inner: Any = None
            head = b""

            def connectionMade(self) -> None:
                target = endpoint._target
                self.transport.write(b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target))

            def dataReceived(self, data: bytes) -> None:
                if self.inner is not None:
                    self.inner.dataReceived(data)
                    return
                self.head += data
                if b"\r\n\r\n" not in self.head:
                    return
                if not self.head.startswith(b"HTTP/1.1 200 "):
                    self.transport.loseConnection()
                    ready.errback(ConnectionError(self.head.decode("latin-1")))
                    return
                self.transport.startTLS(endpoint._tls)
                self.inner = factory.buildProtocol(self.transport.getPeer())
                self.inner.makeConnection(self.transport)
                ready.callback(self.inner)

            def connectionLost(self, reason: Any = None) -> None:
                if self.inner is not None:
                    self.inner.connectionLost(reason)

        self._proxy.connect(Factory.forProtocol(Tunnel)).addErrback(ready.errback)
        return ready


class ProxyTests(StartedServer):
    """Mixed into a TestCase per engine."""

    options: dict[str, Any] = {"proxy": True}  # noqa: RUF012

    assertEqual: Any

    @inlineCallbacks
    def test_proxy_agent_for_plain_http(self) -> Any:
        self.server.route("/v1", host=API).response["data"] = b"plain"
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.server.port)
        agent = ProxyAgent(endpoint, reactor, pool=self.pool)
        response = yield agent.request(b"GET", f"http://{API}/v1".encode())
        self.assertEqual((yield content(response)), b"plain")
        self.assertEqual(self.server.request["proxy"]["kind"], "absolute")
        self.assertEqual(self.server.request["url"], f"http://{API}/v1")

    @inlineCallbacks
    def test_an_agent_through_a_connect_tunnel(self) -> Any:
        self.server.route("/v1", host=API).response["data"] = b"secret"
        with open(self.server.ca_path, "rb") as f:
            trusted = Certificate.loadPEM(f.read())
        port = self.server.port

        class Tunnels:
            def endpointForURI(self, uri: Any) -> ConnectTunnel:
                return ConnectTunnel(port, uri.host.decode(), uri.port, trusted)

        agent = Agent.usingEndpointFactory(reactor, Tunnels(), pool=self.pool)
        response = yield agent.request(b"GET", f"https://{API}/v1".encode())
        self.assertEqual((yield content(response)), b"secret")
        request = self.server.request
        self.assertEqual((request["url"], request["proxy"]["sni"]), (f"https://{API}/v1", API))


class ThreadEngineProxyTests(ProxyTests, TestCase):
    engine = "thread"


class SubprocessEngineProxyTests(ProxyTests, TestCase):
    engine = "subprocess"
