"""
Streams and faults in the resource, with a fake clock: when each piece of a
stream is written, when a throttled body ends, when a request counts as
answered, and that a client that leaves mid-stream leaves no pending call.
No real time or sockets: treq's ``StubTreq`` carries the requests (the real
clients are in test_streams.py and test_answer_faults.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.web.iweb import UNKNOWN_LENGTH

from tests.unit.test_http_resource import set_response, settled
from txtestserver._http.resource import CaptureResource
from txtestserver._model.record import FAULT
from txtestserver._model.record import answered as is_answered
from txtestserver._model.table import ONCE, RESPONSE
from txtestserver._state.memory import MemoryStore


class Stream:
    """One server over a MemoryStore, a Clock, and StubTreq as the client."""

    def __init__(self, **response: Any) -> None:
        self.store = MemoryStore()
        for key, value in response.items():
            set_response(self.store, RESPONSE, key, value)
        self.clock = Clock()
        self.answered: list[int] = []
        resource = CaptureResource(self.store, self.clock, lambda ticket: self.answered.append(1))
        self.client = StubTreq(resource)
        self.received: list[bytes] = []
        self.collected: list[Any] = []

    def get(self, method: str = "GET") -> Any:
        """Send a request; collect the body's pieces as they arrive."""
        response = settled(self.client.request(method, "http://example.test/"))
        self.client.flush()
        assert len(response) == 1, "the status line and headers come at once"
        self.collected = settled(self.client.collect(response[0], self.received.append))
        self.client.flush()
        return response[0]

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.client.flush()

    def pump(self, step: float, times: int) -> None:
        """Advance ``times`` steps: each runs what falls due in it."""
        for _ in range(times):
            self.advance(step)

    @property
    def done(self) -> bool:
        return is_answered(self.store.last_request())

    @property
    def body(self) -> bytes:
        return b"".join(self.received)


def test_chunks_without_delay_are_all_written_at_once() -> None:
    stream = Stream(chunks=[b"one ", "two ", b"three"])
    response = stream.get()
    assert response.length is UNKNOWN_LENGTH  # chunked (the framing: test_streams.py)
    assert stream.body == b"one two three"
    assert stream.collected == [None] and stream.done and stream.answered == [1]
    assert stream.clock.getDelayedCalls() == []


def test_each_piece_is_written_when_due_and_the_stream_ends_with_the_last() -> None:
    stream = Stream(chunks=[b"a", b"b", b"c"], chunk_delay=1.0)
    stream.get()
    assert stream.received == [b"a"]
    assert not stream.done  # recorded, still streaming
    stream.advance(0.999)
    assert stream.received == [b"a"]
    stream.advance(0.001)
    assert stream.received == [b"a", b"b"]
    stream.advance(1.0)
    # The last piece ends the stream: no chunk_delay after it.
    assert stream.received == [b"a", b"b", b"c"]
    assert stream.collected == [None] and stream.done and stream.answered == [1]
    assert stream.clock.getDelayedCalls() == []


def test_a_long_stream_without_delay_gives_the_reactor_back() -> None:
    piece = b"x" * 1024
    stream = Stream(chunks=[piece] * 1000)
    stream.get()
    assert 0 < len(stream.body) < 1000 * 1024  # a first burst, then the rest
    assert len(stream.clock.getDelayedCalls()) == 1
    for _ in range(10):
        stream.advance(0)
    assert stream.body == piece * 1000 and stream.done


def test_a_generator_is_read_as_the_stream_goes() -> None:
    pulled: list[int] = []

    def pieces() -> Iterator[bytes]:
        for n in range(3):
            pulled.append(n)
            yield b"%d" % n

    stream = Stream(chunks=pieces(), chunk_delay=5.0)
    stream.get()
    # The first piece is written, the second taken (to know the stream goes on).
    assert (stream.received, pulled) == ([b"0"], [0, 1])
    stream.advance(5)
    assert (stream.received, pulled) == ([b"0", b"1"], [0, 1, 2])
    stream.advance(5)
    assert stream.body == b"012" and stream.done


def test_a_throttled_body_trickles_at_the_rate_with_its_length() -> None:
    stream = Stream(data=b"x" * 100, throttle=100)  # one second
    response = stream.get()
    assert response.length == 100  # a Content-Length, not chunked
    assert stream.body == b""  # each slice (1/20 s of bytes) after its time
    stream.pump(0.05, 10)
    assert len(stream.body) == 50
    stream.pump(0.05, 9)
    assert len(stream.body) == 95 and not stream.done
    stream.pump(0.05, 1)
    assert len(stream.body) == 100
    assert stream.done and stream.collected == [None]  # with the last byte
    assert stream.clock.getDelayedCalls() == []


def test_a_slow_rate_writes_a_byte_at_a_time() -> None:
    stream = Stream(data=b"abc", throttle=2)
    stream.get()
    assert stream.received == []
    stream.pump(0.5, 2)
    assert stream.received == [b"a", b"b"]
    assert not stream.done
    stream.pump(0.5, 1)
    assert stream.body == b"abc" and stream.done


def test_throttled_chunks_add_the_rate_to_the_delay() -> None:
    stream = Stream(chunks=[b"aa", b"bb"], chunk_delay=1.0, throttle=2)
    stream.get()
    stream.pump(0.5, 2)
    assert stream.body == b"aa"
    stream.pump(0.5, 2)  # the 1 s delay
    assert stream.body == b"aa"
    stream.pump(0.5, 1)  # then the first byte's time
    assert stream.body == b"aab"
    stream.pump(0.5, 1)
    assert stream.body == b"aabb" and stream.done


def test_a_client_that_leaves_mid_stream_leaves_no_pending_call() -> None:
    stream = Stream(chunks=[b"a", b"b", b"c"], chunk_delay=10.0)
    response = settled(stream.client.get("http://example.test/"))
    stream.client.flush()
    assert len(stream.clock.getDelayedCalls()) == 1
    response[0].original.deliverBody(_Leaver())
    stream.client.flush()
    assert stream.clock.getDelayedCalls() == []
    assert not stream.done and stream.answered == []


def test_sleep_comes_before_the_stream() -> None:
    stream = Stream(chunks=[b"a", b"b"], chunk_delay=1.0, sleep=2.0)
    response = settled(stream.client.get("http://example.test/"))
    stream.client.flush()
    assert response == []
    stream.advance(2.0)
    assert len(response) == 1


@pytest.mark.parametrize("method", ["HEAD", "GET"])
def test_an_empty_stream_ends_at_once(method: str) -> None:
    stream = Stream(chunks=[b"never" if method == "HEAD" else b""])
    stream.get(method)
    assert stream.body == b"" and stream.done
    assert stream.clock.getDelayedCalls() == []


def test_a_generator_that_fails_mid_stream_cuts_the_connection(
    logged_errors: list[dict[str, Any]],
) -> None:
    def pieces() -> Iterator[Any]:
        yield b"first"
        yield 42

    stream = Stream(chunks=pieces(), chunk_delay=1.0)
    stream.get()
    stream.advance(1.0)
    assert stream.body == b"first"
    assert len(stream.collected) == 1 and stream.collected[0] is not None  # a failure
    assert not stream.done
    assert [e["log_format"] for e in logged_errors] == [
        "response['chunks'] gave a int, not bytes or str: the connection was cut"
    ]
    logged_errors.clear()
    assert stream.clock.getDelayedCalls() == []
    [(_, message, traceback)] = stream.store.errors()
    assert message == "response['chunks'] gave a int, not bytes or str: the connection was cut"
    assert traceback is None


def test_no_answer_and_stall_are_never_done() -> None:
    for fault in ("no_answer", "stall"):
        stream = Stream(fault=fault)
        response = settled(stream.client.get("http://example.test/"))
        stream.client.flush()
        stream.advance(3600)
        assert len(response) == (1 if fault == "stall" else 0)  # only stall sends headers
        assert not stream.done and stream.answered == []
        assert stream.store.history()[-1][FAULT] == fault


def test_a_fault_after_a_sleep_is_done_once_carried_out() -> None:
    stream = Stream(data=b"body")
    set_response(stream.store, ONCE, "fault", "empty")
    set_response(stream.store, ONCE, "sleep", 1.0)
    settled(stream.client.get("http://example.test/"))
    stream.client.flush()
    assert not stream.done
    stream.advance(1.0)
    assert stream.done and stream.answered == [1]
    assert stream.store.history()[-1][FAULT] == "empty"
    stream.get()  # the next request: a normal answer, no fault recorded
    assert stream.body == b"body" and stream.store.history()[-1][FAULT] is None


class _Leaver:
    """A body receiver that drops the connection at the first byte."""

    def makeConnection(self, transport: Any) -> None:
        self.transport = transport

    def dataReceived(self, data: bytes) -> None:
        self.transport.stopProducing()

    def connectionLost(self, reason: Any) -> None:
        pass
