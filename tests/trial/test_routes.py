"""
Routes, answer queues, JSON and the test_server compatibility API through
the Deferred API (``DeferredTestServer``) in trial, with treq as the client,
in every engine.
"""

from __future__ import annotations

import re
from typing import Any

import treq
from twisted.internet.defer import gatherResults, inlineCallbacks
from twisted.trial.unittest import TestCase

from tests.trial._server import StartedServer
from txtestserver import Response, TestServerError


class RouteTests(StartedServer):
    """Mixed into a TestCase per engine."""

    # Provided by TestCase; declared for type checkers.
    assertEqual: Any
    assertRaises: Any

    @inlineCallbacks
    def answer(self, method: str = "GET", path: str = "/", **kwargs: Any) -> Any:
        """(code, headers, body) of one request."""
        response = yield treq.request(method, self.server.get_url(path), pool=self.pool, **kwargs)
        body = yield treq.content(response)
        return response.code, response.headers, body

    @inlineCallbacks
    def test_routes_conditions_and_precedence(self) -> Any:
        self.server.response["code"] = 404
        token = self.server.route("/api/token", method="POST", form={"grant": "x"})
        token.response["json"] = {"token": "t"}
        items = self.server.route(re.compile(r"/items/\d+"))
        items.response["data"] = b"item"
        special = self.server.route("/items/7", headers={"X-Special": "yes"})
        special.response["data"] = b"special"
        code, headers, body = yield self.answer("POST", "/api/token", data={"grant": "x"})
        self.assertEqual((code, body), (200, b'{"token": "t"}'))
        self.assertEqual(headers.getRawHeaders("content-type"), ["application/json"])
        code, _, _ = yield self.answer("POST", "/api/token", data={"grant": "y"})
        self.assertEqual(code, 404)
        _, _, body = yield self.answer("GET", "/items/7")
        self.assertEqual(body, b"item")
        _, _, body = yield self.answer("GET", "/items/7", headers={"X-Special": ["yes"]})
        self.assertEqual(body, b"special")
        self.assertEqual([r.path for r in items.requests], ["/items/7"])
        self.assertEqual(len(token.requests), 1)
        self.assertEqual(token.requests[0].args["grant"], "x")
        self.assertEqual(self.server.routes, [token, items, special])

    @inlineCallbacks
    def test_route_queue_then_response(self) -> Any:
        flaky = self.server.route("/flaky")
        flaky.add_response(code=503, count=2)
        flaky.response["json"] = {"ok": True}
        codes = []
        for _ in range(3):
            code, _, body = yield self.answer("GET", "/flaky")
            codes.append(code)
        self.assertEqual(codes, [503, 503, 200])
        self.assertEqual(body, b'{"ok": true}')

    @inlineCallbacks
    def test_concurrent_requests_take_each_queued_answer_once(self) -> Any:
        for n in range(10):
            self.server.add_response(data=b"%d" % n)
        answers = yield gatherResults([self.answer() for _ in range(12)])
        bodies = sorted(body for _, _, body in answers)
        self.assertEqual(bodies, sorted([b"%d" % n for n in range(10)] + [b"", b""]))

    @inlineCallbacks
    def test_server_queue_with_response_objects(self) -> Any:
        self.server.add_response(Response(data=b"post", status=201), method="POST")
        self.server.add_response(Response(data=b"any", headers=[("X-Q", "1")]))
        code, _, body = yield self.answer("POST")
        self.assertEqual((code, body), (201, b"post"))
        _, headers, body = yield self.answer("GET")
        self.assertEqual((body, headers.getRawHeaders("x-q")), (b"any", ["1"]))
        _, _, body = yield self.answer("GET")
        self.assertEqual(body, b"")

    @inlineCallbacks
    def test_get_request_json_and_attributes(self) -> Any:
        self.assertRaises(TestServerError, self.server.get_request)
        yield self.answer("PUT", "/doc?v=2", json={"title": "t"})
        request = self.server.get_request()
        self.assertEqual(request.method, "PUT")
        self.assertEqual((request.path, request.json), ("/doc", {"title": "t"}))
        self.assertEqual(self.server.request.args["v"], "2")

    @inlineCallbacks
    def test_generator_callback_and_handler_methods(self) -> Any:
        self.server.route("/slow").response["callback"] = "tests.callbacks:sleeps_then_returns"
        self.server.route("/handler").response["callback"] = "tests.callbacks:handler_methods"
        _, _, body = yield self.answer("GET", "/slow")
        self.assertEqual(body, b"returned after a pause")
        code, headers, body = yield self.answer("GET", "/handler")
        self.assertEqual(code, 201)
        self.assertEqual(headers.getRawHeaders("x-step"), ["one", "two"])
        self.assertEqual(body, "written, ещё, and finished".encode())

    @inlineCallbacks
    def test_reset_removes_routes_and_queues(self) -> Any:
        route = self.server.route("/r")
        route.response["data"] = b"route"
        self.server.add_response(data=b"queued", count=-1)
        self.server.reset()
        self.assertEqual(self.server.routes, [])
        _, _, body = yield self.answer("GET", "/r")
        self.assertEqual(body, b"")
        self.assertRaises(TestServerError, route.remove)


class ThreadEngineTests(RouteTests, TestCase):
    engine = "thread"


class SubprocessEngineTests(RouteTests, TestCase):
    engine = "subprocess"
