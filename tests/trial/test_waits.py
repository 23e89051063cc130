"""
The waits and the journal of the Deferred face (``DeferredTestServer``) in
trial, with treq as the client: waits begun before the client sends, waits
cancelled halfway (trial itself then fails the test if a timer is left in
the reactor), server-side errors. Every TestCase runs against every engine.
"""

from __future__ import annotations

from typing import Any

import treq
from twisted.internet import reactor
from twisted.internet.defer import CancelledError, gatherResults, inlineCallbacks
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from tests.trial._server import StartedServer
from txtestserver import DeferredTestServer, ServerSideError, WaitTimeoutError


class WaitTests(StartedServer):
    """Mixed into a TestCase per engine."""

    # Provided by TestCase; declared for type checkers.
    assertEqual: Any
    assertIn: Any
    assertFailure: Any
    assertRaises: Any
    flushLoggedErrors: Any

    @inlineCallbacks
    def get(self, path: str = "/", method: str = "GET") -> Any:
        response = yield treq.request(method, self.server.get_url(path), pool=self.pool)
        yield treq.content(response)
        return response.code

    def later(self, seconds: float, path: str) -> Any:
        """A request sent ``seconds`` from now."""
        return deferLater(reactor, seconds, lambda: None).addCallback(lambda _: self.get(path))

    @inlineCallbacks
    def test_wait_requests_begun_before_the_client_sends(self) -> Any:
        waiting = self.server.wait_requests(2, timeout=10)
        sent = gatherResults([self.later(0.01, "/a"), self.later(0.05, "/b")])
        requests = yield waiting
        yield sent
        self.assertEqual([r["path"] for r in requests], ["/a", "/b"])
        self.assertEqual([r["response_code"] for r in requests], [200, 200])

    @inlineCallbacks
    def test_wait_for_begun_before_the_client_sends(self) -> Any:
        waiting = self.server.wait_for(lambda r: r["method"] == "POST", timeout=10)
        sent = gatherResults([self.later(0.01, "/get"), self.later(0.02, "/post")])
        yield sent
        self.assertEqual((yield self.get("/post", method="POST")), 200)
        request = yield waiting
        self.assertEqual(request["path"], "/post")

    @inlineCallbacks
    def test_wait_for_counts_requests_answered_before_it(self) -> Any:
        yield self.get("/earlier")
        request = yield self.server.wait_for(lambda r: r["path"] == "/earlier", timeout=0)
        self.assertEqual(request["response_code"], 200)

    @inlineCallbacks
    def test_a_wait_cancelled_halfway_leaves_nothing_behind(self) -> Any:
        waiting = self.server.wait_requests(3, timeout=30)
        yield self.get("/one")  # the wait has seen one of its three
        waiting.cancel()
        yield self.assertFailure(waiting, CancelledError)
        self.assertEqual(self.server._waits._pending, [])
        # A later request wakes nothing; trial checks that no timer is left.
        yield self.get("/two")

    @inlineCallbacks
    def test_wait_request_cancelled(self) -> Any:
        waiting = self.server.wait_request(30)
        waiting.cancel()
        yield self.assertFailure(waiting, CancelledError)
        self.assertEqual(self.server._waits._pending, [])

    @inlineCallbacks
    def test_timeout_says_what_arrived(self) -> Any:
        yield self.get("/only")
        error = yield self.assertFailure(
            self.server.wait_requests(2, timeout=0.05), WaitTimeoutError
        )
        self.assertIn("1 of the 2 requests waited for was answered within 0.05 s", str(error))
        self.assertIn("'GET /only HTTP/1.1' (answered 200)", str(error))

    @inlineCallbacks
    def test_route_wait_begun_before_the_client_sends(self) -> Any:
        token = self.server.route("/token", method="POST", name="token")
        waiting = token.wait(count=2, timeout=10)
        yield self.get("/token")  # a GET: not the route's
        yield self.get("/token", method="POST")
        yield self.get("/other", method="POST")
        yield self.get("/token", method="POST")
        requests = yield waiting
        self.assertEqual([(r["method"], r["route"]) for r in requests], [("POST", "token")] * 2)

    @inlineCallbacks
    def test_route_wait_cancelled_halfway(self) -> Any:
        token = self.server.route("/token", name="token")
        waiting = token.wait(count=2, timeout=30)
        yield self.get("/token")  # one of the two
        waiting.cancel()
        yield self.assertFailure(waiting, CancelledError)
        self.assertEqual(self.server._waits._pending, [])

    @inlineCallbacks
    def test_strict_mode(self) -> Any:
        strict = DeferredTestServer(engine=self.engine, strict=True)
        yield strict.start()
        self.addCleanup(strict.stop)
        strict.route("/api/token", method="POST", name="token")
        response = yield treq.get(strict.get_url("/api/token"), pool=self.pool)
        body = yield treq.content(response)
        self.assertEqual(response.code, 404)
        self.assertIn(b"the closest is route 'token' (POST /api/token): method GET", body)
        self.assertEqual([e["request"]["path"] for e in strict.errors], ["/api/token"])
        self.assertRaises(ServerSideError, strict.check)
        self.flushLoggedErrors()

    @inlineCallbacks
    def test_server_side_errors(self) -> Any:
        self.server.response["callback"] = "tests.callbacks:raises"
        self.assertEqual((yield self.get("/boom")), 500)
        self.assertEqual([e["request"]["path"] for e in self.server.errors], ["/boom"])
        try:
            self.server.check()
        except ServerSideError as e:
            self.assertIn("GET /boom HTTP/1.1: response['callback'] raised ValueError", str(e))
        else:
            self.fail("check() did not raise")  # type: ignore[attr-defined]
        self.assertEqual(list(self.server.errors), [])
        self.flushLoggedErrors(ValueError)


class ThreadEngineWaitTests(WaitTests, TestCase):
    engine = "thread"


class SubprocessEngineWaitTests(WaitTests, TestCase):
    engine = "subprocess"
