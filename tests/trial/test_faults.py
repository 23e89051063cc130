"""
Client and lifecycle faults through the Deferred API, in trial: the same
faults as tests/test_faults.py, seen from a Twisted program whose reactor
also runs the server (thread engine). trial itself then checks that nothing
is left in the reactor after each test: no timer, no socket.
"""

from __future__ import annotations

from typing import Any

import treq
from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults, inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.task import deferLater
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from tests.trial._server import StartedServer
from txtestserver import TestServerError

SLEEP = 30.0


class RawClient(Protocol):
    """Sends bytes as given; ``answer`` fires with all it got once closed."""

    def __init__(self, data: bytes, half_close: bool) -> None:
        self.data = data
        self.half_close = half_close
        self.received: list[bytes] = []
        self.answer: Deferred[bytes] = Deferred()

    def connectionMade(self) -> None:
        transport: Any = self.transport
        transport.write(self.data)
        if self.half_close:
            transport.loseWriteConnection()

    def dataReceived(self, data: bytes) -> None:
        self.received.append(data)

    def readConnectionLost(self) -> None:
        transport: Any = self.transport
        transport.loseConnection()

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.answer.callback(b"".join(self.received))


class FaultTests(StartedServer):
    """Mixed into a TestCase per engine."""

    assertEqual: Any
    assertTrue: Any
    assertIn: Any
    assertFailure: Any
    fail: Any

    def setUp(self) -> Any:
        d = super().setUp()
        d.addCallback(lambda _: self.server.response.__setitem__("data", b"ok"))
        return d

    @inlineCallbacks
    def raw(self, data: bytes, half_close: bool = True) -> Any:
        """Send raw bytes; return the client protocol once connected."""
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.server.port or 0)
        client = yield connectProtocol(endpoint, RawClient(data, half_close))
        return client

    @inlineCallbacks
    def until(self, condition: Any, what: str) -> Any:
        """Poll ``condition`` (state may live in another process), 10 s at most."""
        for _ in range(2000):
            if condition():
                return
            yield deferLater(reactor, 0.005, lambda: None)
        self.fail(f"timed out waiting for {what}")

    @inlineCallbacks
    def check_serving(self) -> Any:
        response = yield treq.post(self.server.get_url("/normal?x=1"), data=b"body", pool=self.pool)
        body = yield treq.content(response)
        self.assertEqual((response.code, body), (200, b"ok"))
        request = self.server.request.copy()
        self.assertEqual(
            (request["path"], request["args"]["x"], request["data"], request["done"]),
            ("/normal", "1", b"body", True),
        )

    def sleep_timers(self) -> list[Any]:
        """Pending ``sleep`` timers of the thread engine (deferLater calls)."""
        now = reactor.seconds()
        return [
            call
            for call in reactor.getDelayedCalls()
            if isinstance(getattr(call.func, "__self__", None), Deferred)
            and now < call.getTime() <= now + SLEEP + 1
        ]

    # -----------------------------------------------------------------------------------

    @inlineCallbacks
    def test_malformed_then_normal(self) -> Any:
        for data in (
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"GET /\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ):
            client = yield self.raw(data)
            answer = yield client.answer
            self.assertTrue(answer == b"" or answer.startswith(b"HTTP/1.1 400"), answer)
        self.assertEqual(len(self.server.requests), 0)
        yield self.check_serving()

    @inlineCallbacks
    def test_half_closed_client_is_answered(self) -> Any:
        client = yield self.raw(b"GET /half HTTP/1.1\r\n\r\n", half_close=True)
        answer = yield client.answer
        self.assertTrue(answer.startswith(b"HTTP/1.1 200 OK"), answer)
        self.assertTrue(answer.endswith(b"\r\n\r\nok"), answer)

    @inlineCallbacks
    def test_client_leaves_during_sleep(self) -> Any:
        self.server.response["sleep"] = SLEEP
        client = yield self.raw(b"GET /sleepy HTTP/1.1\r\n\r\n", half_close=False)
        yield self.until(lambda: self.server.request["path"] == "/sleepy", "the request")
        if self.engine == "thread":
            self.assertEqual(len(self.sleep_timers()), 1)
        client.transport.abortConnection()
        yield client.answer
        if self.engine == "thread":
            yield self.until(lambda: not self.sleep_timers(), "the sleep to be cancelled")
        self.assertEqual(self.server.request["done"], False)
        del self.server.response["sleep"]
        yield self.check_serving()

    @inlineCallbacks
    def test_stop_with_requests_in_flight(self) -> Any:
        self.server.response["sleep"] = SLEEP
        sleeping = [
            treq.get(self.server.get_url(f"/in-flight/{i}"), pool=self.pool) for i in range(5)
        ]
        mid_body = yield self.raw(b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\nx", False)
        yield self.until(lambda: len(self.server.requests) == 5, "the sleeping requests")
        waiting = self.server.wait_request(SLEEP)
        yield self.server.stop()
        yield self.assertFailure(waiting, TestServerError)
        outcomes = yield gatherResults(
            [d.addCallbacks(lambda _: "answered", lambda _: "dropped") for d in sleeping]
        )
        self.assertEqual(outcomes, ["dropped"] * 5)
        self.assertEqual((yield mid_body.answer), b"")
        if self.engine == "thread":
            self.assertEqual(self.sleep_timers(), [])
        # Stopped twice is harmless; started again it serves.
        yield self.server.stop()
        yield self.server.start()
        del self.server.response["sleep"]
        yield self.check_serving()

    @inlineCallbacks
    def test_client_that_leaves_cancels_a_callbacks_deferred(self) -> Any:
        self.server.response["callback"] = "tests.callbacks:answers_in_20_s"
        client = yield self.raw(b"GET /pending HTTP/1.1\r\n\r\n", half_close=False)
        yield self.until(lambda: self.server.request["path"] == "/pending", "the request")
        if self.engine == "thread":
            self.assertEqual(len(self.sleep_timers()), 1)
        client.transport.abortConnection()
        yield client.answer
        if self.engine == "thread":
            yield self.until(lambda: not self.sleep_timers(), "the callback's timer to go")
        self.server.response["callback"] = None
        yield self.check_serving()

    @inlineCallbacks
    def test_stop_cancels_a_callbacks_deferred(self) -> Any:
        """trial fails the test if the callback's timer is left in the reactor."""
        self.server.response["callback"] = "tests.callbacks:answers_in_20_s"
        client = yield self.raw(b"GET /pending HTTP/1.1\r\n\r\n", half_close=False)
        yield self.until(lambda: self.server.request["path"] == "/pending", "the request")
        yield self.server.stop()
        self.assertEqual((yield client.answer), b"")
        if self.engine == "thread":
            self.assertEqual(self.sleep_timers(), [])


class ThreadEngineFaultTests(FaultTests, TestCase):
    engine = "thread"


class SubprocessEngineFaultTests(FaultTests, TestCase):
    engine = "subprocess"
