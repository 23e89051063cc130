"""
CaptureResource in memory, with a fake clock: timing behaviour (``sleep``)
without real time or sockets. treq's ``StubTreq`` carries the requests.
"""

from __future__ import annotations

from typing import Any

from treq.testing import StubTreq
from twisted.internet.task import Clock

from txtestserver._http.resource import CaptureResource
from txtestserver._model.keys import canonical_key, check_value
from txtestserver._model.record import answered as is_answered
from txtestserver._model.table import ONCE, RESPONSE
from txtestserver._state.memory import MemoryStore


def set_response(store: MemoryStore, slot: str, key: str, value: Any) -> None:
    value = check_value(key, value, portable=False)
    store.update(lambda table: table.set(slot, canonical_key(key), value))


def make(
    sleep: float | None = None, **response: Any
) -> tuple[StubTreq, Clock, MemoryStore, list[int]]:
    store = MemoryStore()
    for key, value in response.items():
        set_response(store, RESPONSE, key, value)
    if sleep is not None:
        set_response(store, RESPONSE, "sleep", sleep)
    clock = Clock()
    done: list[int] = []
    resource = CaptureResource(store, clock, lambda ticket: done.append(1))
    return StubTreq(resource), clock, store, done


def settled(d: Any) -> list[Any]:
    """A list that receives the outcome of ``d`` once it has one."""
    box: list[Any] = []
    d.addBoth(box.append)
    return box


def test_sleep_answers_exactly_after_the_delay() -> None:
    client, clock, store, done = make(sleep=2.0, data=b"late")
    answered = settled(client.get("http://example.test/"))
    client.flush()
    # Recorded at once, not answered yet.
    record = store.last_request()
    is_done = is_answered(record)
    assert record is not None and not is_done
    assert answered == []
    clock.advance(1.999)
    client.flush()
    assert answered == []
    clock.advance(0.001)
    client.flush()
    body = settled(client.content(answered[0]))
    client.flush()
    assert body == [b"late"]
    assert done == [1]
    assert is_answered(store.last_request()) is True
    assert clock.getDelayedCalls() == []


def test_sleep_is_per_method() -> None:
    client, clock, _, _ = make(**{"post.sleep": 5.0})
    answered = settled(client.get("http://example.test/"))
    client.flush()
    assert len(answered) == 1  # only POST sleeps
    posted = settled(client.post("http://example.test/", data=b"x"))
    client.flush()
    assert posted == []
    clock.advance(5)
    client.flush()
    assert len(posted) == 1


def test_client_that_gives_up_leaves_no_pending_call() -> None:
    client, clock, store, done = make(sleep=10.0)
    answered = client.get("http://example.test/")
    client.flush()
    assert len(clock.getDelayedCalls()) == 1
    answered.cancel()  # the client disconnects
    client.flush()
    assert clock.getDelayedCalls() == []
    assert done == []
    assert is_answered(store.last_request()) is False
    answered.addErrback(lambda _: None)


def test_zero_sleep_schedules_nothing() -> None:
    client, clock, _, done = make(data=b"now")
    answered = settled(client.get("http://example.test/"))
    client.flush()
    assert len(answered) == 1
    assert clock.getDelayedCalls() == []
    assert done == [1]


def test_done_is_false_while_the_latest_request_is_in_progress() -> None:
    client, clock, store, _ = make(**{"post.sleep": 5.0})
    settled(client.get("http://example.test/first"))
    client.flush()
    assert is_answered(store.last_request()) is True
    settled(client.post("http://example.test/second", data=b"x"))
    client.flush()
    record = store.last_request()
    is_done = is_answered(record)
    assert record is not None and record[1] == b"/second"
    assert is_done is False  # not the first request's flag
    clock.advance(5)
    client.flush()
    assert is_answered(store.last_request()) is True


def test_an_older_request_answered_late_does_not_mark_the_latest_done() -> None:
    client, clock, store, _ = make(sleep=5.0)
    set_response(store, ONCE, "sleep", 1.0)  # only the first request sleeps 1 s
    settled(client.get("http://example.test/old"))
    client.flush()
    settled(client.get("http://example.test/new"))
    client.flush()
    clock.advance(1)  # the old one is answered; the new one still sleeps
    client.flush()
    record = store.last_request()
    is_done = is_answered(record)
    assert record is not None and record[1] == b"/new"
    assert is_done is False
    clock.advance(4)
    client.flush()
    assert is_answered(store.last_request()) is True
