"""
HTTPS, mutual TLS and HTTP/2 through the Deferred API (``DeferredTestServer``)
in trial's reactor, with treq over ``server.tls_client_policy()`` as the
client (and httpx in a thread for HTTP/2, which treq does not speak). Each
TestCase runs against every engine: the subclasses at the bottom set
``engine``.
"""

from __future__ import annotations

from typing import Any

import httpx
from treq.client import HTTPClient
from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.ssl import Certificate
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase
from twisted.web.client import Agent, BrowserLikePolicyForHTTPS, ResponseNeverReceived

from tests.trial._server import StartedServer


class TLSTests(StartedServer):
    """Mixed into a TestCase per engine."""

    options: dict[str, Any] = {"tls": True, "http2": True}  # noqa: RUF012

    # Provided by TestCase; declared for type checkers.
    assertEqual: Any
    assertTrue: Any
    assertFailure: Any

    def client(self, policy: Any = None) -> HTTPClient:
        """treq over an Agent that trusts the server (or as ``policy`` says)."""
        if policy is None:
            policy = self.server.tls_client_policy()
        return HTTPClient(Agent(reactor, contextFactory=policy, pool=self.pool))

    @inlineCallbacks
    def test_treq_over_tls(self) -> Any:
        self.server.response["data"] = b"secret"
        url = self.server.get_url("/tls?x=1")
        self.assertTrue(url.startswith("https://127.0.0.1:"))
        response = yield self.client().post(url, data=b"body")
        self.assertEqual(response.code, 200)
        self.assertEqual((yield response.content()), b"secret")
        yield self.server.wait_request(5)
        self.assertEqual(self.server.request["path"], "/tls")
        self.assertEqual(self.server.request["data"], b"body")

    @inlineCallbacks
    def test_host_name_localhost(self) -> Any:
        url = self.server.get_url("/by-name").replace("127.0.0.1", "localhost")
        response = yield self.client().get(url)
        self.assertEqual(response.code, 200)
        yield response.content()

    @inlineCallbacks
    def test_client_that_does_not_trust_the_authority_fails(self) -> Any:
        untrusting = self.client(BrowserLikePolicyForHTTPS())
        yield self.assertFailure(untrusting.get(self.server.get_url()), ResponseNeverReceived)
        self.assertEqual(len(self.server.requests), 0)

    @inlineCallbacks
    def test_http2_client_in_a_thread(self) -> Any:
        self.server.response["data"] = b"h2"
        context = self.server.client_ssl_context()
        url = self.server.get_url("/h2")

        def fetch() -> tuple[str, bytes]:
            with httpx.Client(http2=True, verify=context, timeout=10) as client:
                response = client.get(url)
                return response.http_version, response.content

        answer = yield deferToThread(fetch)
        self.assertEqual(answer, ("HTTP/2", b"h2"))
        self.assertEqual(self.server.request["path"], "/h2")


class MutualTLSTests(StartedServer):
    """Mixed into a TestCase per engine."""

    options: dict[str, Any] = {"tls": True, "client_cert": "required"}  # noqa: RUF012

    assertEqual: Any
    assertFailure: Any

    def client(self, policy: Any) -> HTTPClient:
        return HTTPClient(Agent(reactor, contextFactory=policy, pool=self.pool))

    @inlineCallbacks
    def test_policy_presents_the_client_certificate(self) -> Any:
        response = yield self.client(self.server.tls_client_policy()).get(self.server.get_url())
        self.assertEqual(response.code, 200)
        yield response.content()
        self.assertEqual(len(self.server.requests), 1)

    @inlineCallbacks
    def test_a_client_without_a_certificate_is_refused(self) -> Any:
        with open(self.server.ca_path, "rb") as f:
            trusting = BrowserLikePolicyForHTTPS(trustRoot=Certificate.loadPEM(f.read()))
        yield self.assertFailure(
            self.client(trusting).get(self.server.get_url()), ResponseNeverReceived
        )
        self.assertEqual(len(self.server.requests), 0)


class ThreadEngineTLSTests(TLSTests, TestCase):
    engine = "thread"


class SubprocessEngineTLSTests(TLSTests, TestCase):
    engine = "subprocess"


class ThreadEngineMutualTLSTests(MutualTLSTests, TestCase):
    engine = "thread"


class SubprocessEngineMutualTLSTests(MutualTLSTests, TestCase):
    engine = "subprocess"
