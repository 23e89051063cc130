"""
Streams and faults through the Deferred API with treq, in trial, in both
engines: what treq raises for each fault (the ``treq`` column of
tests/_clients.py, which the docs show), what it receives from each kind of
stream, and that nothing is left (the server's own account before stop();
trial's check of its reactor after each test: no timer, no socket).
"""

from __future__ import annotations

import json
from typing import Any

import treq
from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.protocol import Protocol
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from tests._clients import (
    FAULT_OUTCOMES,
    HANGING,
    PATIENCE,
    TIMEOUT,
    Outcome,
    full_name,
    resolve,
    underlying,
)
from tests._leaks import PROBE
from tests.trial._server import StartedServer
from txtestserver import ndjson, sse

BODY = b"0123456789" * 10
PIECES = [b"alpha ", "beta ", b"gamma"]
JOINED = b"alpha beta gamma"


class StreamTests(StartedServer):
    """Mixed into a TestCase per engine."""

    assertEqual: Any
    assertIn: Any
    assertNotIn: Any
    assertTrue: Any
    assertGreaterEqual: Any
    fail: Any

    def setUp(self) -> Any:
        d = super().setUp()
        d.addCallback(lambda _: self.server.response.__setitem__("data", BODY))
        return d

    def get(self, path: str = "/", **kwargs: Any) -> Deferred[Any]:
        return treq.get(self.server.get_url(path), pool=self.pool, **kwargs)

    @inlineCallbacks
    def fault(self, fault: str) -> Any:
        """treq meets ``fault``: assert what it raises and what was recorded."""
        self.server.response["fault"] = fault
        timeout = TIMEOUT if fault in HANGING else PATIENCE
        try:
            response = yield self.get(f"/{fault}", timeout=timeout)
            # treq's timeout ends with the headers; the body needs its own.
            yield treq.content(response).addTimeout(timeout, reactor)
        except Exception as error:
            expected = FAULT_OUTCOMES[fault]["treq"]
            kind = type(error)
            raised = expected.raised if kind is resolve(expected.raised) else full_name(kind)
            seen = Outcome(raised, underlying(error), len(self.server.requests))
            self.assertEqual(seen, expected)
        else:
            self.fail(f"treq got an answer to {fault!r}")
        self.assertEqual([r["fault"] for r in self.server.requests], [fault])
        self.assertEqual(self.server.request["done"], fault not in HANGING)
        del self.server.response["fault"]
        if fault != "stall":  # (treq keeps a stalled connection open: see FAULT_OUTCOMES)
            yield self.nothing_held()
        response = yield self.get("/after")
        self.assertEqual((yield treq.content(response)), BODY)

    @inlineCallbacks
    def nothing_held(self) -> Any:
        """The server holds no connection and no pending call (10 s to settle)."""
        for _ in range(1000):
            for key, value in PROBE.items():
                self.server.response_once[key] = value
            response = yield self.get("/leak-probe")
            found = json.loads((yield treq.content(response)))
            if found == {"connections": 0, "pending": []}:
                return
            yield deferLater(reactor, 0.01, lambda: None)
        self.fail(f"the server still holds {found}")

    def test_reset(self) -> Any:
        return self.fault("reset")

    def test_empty(self) -> Any:
        return self.fault("empty")

    def test_garbage(self) -> Any:
        return self.fault("garbage")

    def test_malformed_chunk(self) -> Any:
        return self.fault("malformed_chunk")

    def test_truncated(self) -> Any:
        return self.fault("truncated")

    def test_reset_mid_body(self) -> Any:
        return self.fault("reset_mid_body")

    def test_stall(self) -> Any:
        return self.fault("stall")

    def test_no_answer(self) -> Any:
        return self.fault("no_answer")

    @inlineCallbacks
    def test_chunks_arrive_piece_by_piece(self) -> Any:
        """
        Thread engine: each piece is produced only once treq has received the
        one before it, so the stream completes only if each was flushed on
        its own. Subprocess engine (a generator cannot cross): a list.
        """
        seen: list[bytes] = []

        def gated() -> Any:
            for number, piece in enumerate(PIECES):
                while len(seen) < number:
                    yield b""  # nothing to send yet: look again after chunk_delay
                yield piece

        delay = 0.005 if self.engine == "thread" else 0.05
        self.server.response_once["chunks"] = gated() if self.engine == "thread" else PIECES
        self.server.response_once["chunk_delay"] = delay
        began = reactor.seconds()
        response = yield self.get("/chunks")
        yield treq.collect(response, seen.append)
        self.assertEqual(b"".join(seen), JOINED)
        self.assertGreaterEqual(reactor.seconds() - began, 2 * delay)
        self.assertEqual(self.server.request["done"], True)
        response = yield self.get("/after")
        self.assertEqual((yield treq.content(response)), BODY)

    @inlineCallbacks
    def test_method_specific_sse(self) -> Any:
        events: list[Any] = ["hello", {"event": "update", "data": {"n": 1}, "id": "1"}]
        self.server.response["get.chunks"] = sse(events)
        self.server.response["headers"] = {"Content-Type": "text/event-stream"}
        response = yield self.get("/events")
        self.assertEqual(response.headers.getRawHeaders("content-type"), ["text/event-stream"])
        self.assertEqual((yield treq.content(response)), b"".join(sse(events)))
        posted = yield treq.post(self.server.get_url(), data=b"x", pool=self.pool)
        self.assertEqual((yield treq.content(posted)), BODY)

    @inlineCallbacks
    def test_ndjson(self) -> Any:
        objects = [{"n": 1}, {"n": 2}]
        self.server.response["chunks"] = ndjson(objects)
        response = yield self.get()
        lines = (yield treq.content(response)).splitlines()
        self.assertEqual([json.loads(line) for line in lines], objects)

    @inlineCallbacks
    def test_throttle(self) -> Any:
        self.server.response["data"] = b"t" * 200
        self.server.response["throttle"] = 1000
        began = reactor.seconds()
        response = yield self.get()
        self.assertEqual(response.length, 200)
        self.assertEqual((yield treq.content(response)), b"t" * 200)
        self.assertGreaterEqual(reactor.seconds() - began, 0.18)

    @inlineCallbacks
    def test_raw(self) -> Any:
        self.server.response["raw"] = b"HTTP/1.1 299 Odd\r\nX-Odd: yes\r\n\r\nraw body"
        response = yield self.get()
        self.assertEqual((response.code, response.phrase), (299, b"Odd"))
        self.assertEqual(response.headers.getRawHeaders("x-odd"), ["yes"])
        self.assertEqual((yield treq.content(response)), b"raw body")
        self.assertEqual(self.server.request["done"], True)

    @inlineCallbacks
    def test_client_leaves_mid_stream(self) -> Any:
        self.server.response["chunks"] = [b"first", b"never"]
        self.server.response["chunk_delay"] = 30.0
        response = yield self.get("/leaving")
        leaver = Leaver()
        response.deliverBody(leaver)
        yield leaver.lost
        self.assertEqual(leaver.received, [b"first"])
        self.assertEqual(self.server.request["done"], False)
        del self.server.response["chunks"]
        yield self.nothing_held()

    @inlineCallbacks
    def test_stop_mid_stream(self) -> Any:
        self.server.response["chunks"] = [b"first", b"never"]
        self.server.response["chunk_delay"] = 30.0
        response = yield self.get("/stopped")
        pieces: list[bytes] = []
        arrived: Deferred[None] = Deferred()

        def got(piece: bytes) -> None:
            pieces.append(piece)
            if not arrived.called:
                arrived.callback(None)

        collected = treq.collect(response, got)
        yield arrived
        yield self.server.stop()
        failure = yield collected.addCallbacks(lambda _: None, lambda f: [f])
        self.assertTrue(failure is not None, "the cut stream must not look complete")
        self.assertEqual(pieces, [b"first"])
        self.assertEqual(self.server.request["done"], False)
        # trial checks that the stop left no timer and no socket behind.


class Leaver(Protocol):
    """A body receiver that drops the connection once the first piece is in."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.lost: Deferred[None] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.received.append(data)
        transport: Any = self.transport
        transport.stopProducing()  # IBodyReceiver: abort the connection

    def connectionLost(self, reason: Any = None) -> None:
        self.lost.callback(None)


class ThreadEngineStreamTests(StreamTests, TestCase):
    engine = "thread"


class SubprocessEngineStreamTests(StreamTests, TestCase):
    engine = "subprocess"
