"""
The ``StateStore`` contract (``txtestserver/_state/store.py``), one set of
checks run against every store: the thread engine's ``MemoryStore``, the
subprocess engine's ``SwitchStore`` before a server process runs (memory)
and while one does (files), and a ``FileStore`` attached to that directory
(the server process's view). Each store must say the same thing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from txtestserver._model.record import RECORD_FIELDS, Entry
from txtestserver._model.table import RESPONSE
from txtestserver._state.files import FileStore
from txtestserver._state.memory import MemoryStore
from txtestserver._state.store import StateStore
from txtestserver._state.switch import SwitchStore

OK = (True, 200, None, None, None)


def entry(n: int) -> Entry:
    """A journal entry of request ``n``, not answered yet."""
    return (
        b"GET",
        b"/%d" % n,
        b"",
        b"body %d" % n,
        "127.0.0.1",
        b"HTTP/1.1",
        1764000000.0 + n,
        n,
        (None, "http", "127.0.0.1:80", None),
        False,
        None,
        None,
        None,
        None,
    )


def answered(n: int) -> Entry:
    return entry(n)[:RECORD_FIELDS] + OK


@pytest.fixture(params=["memory", "switch-memory", "switch-files", "file-attached"])
def store(request: pytest.FixtureRequest) -> Iterator[StateStore]:
    kind = request.param
    if kind == "memory":
        yield MemoryStore()
        return
    switch = SwitchStore(lock_timeout=5)
    if kind == "switch-memory":
        yield switch
        return
    directory = switch.create()
    try:
        yield switch if kind == "switch-files" else FileStore(directory)
    finally:
        switch.close()


def test_the_table_is_read_and_updated(store: StateStore) -> None:
    store.update(lambda table: table.set(RESPONSE, "code", 201))
    assert store.read(lambda table: table.slot(RESPONSE)) == {"code": 201}


def test_requests_are_recorded_completed_and_read_back(store: StateStore) -> None:
    first = store.record(entry(0))
    second = store.record(answered(1))
    assert first[1] == 0 and second == (first[0], 1)
    store.complete(first, OK)
    assert store.entry(first) == answered(0)
    assert store.last_request() == answered(1)
    assert list(store.history()) == [answered(0), answered(1)]
    generation, history = store.journal()
    assert generation == first[0] and list(history) == [answered(0), answered(1)]


def test_errors_name_their_request_and_are_taken_once(store: StateStore) -> None:
    ticket = store.record(answered(0))
    store.add_error(ticket, "it failed", "Traceback ...")
    store.add_error(None, "no request in particular", None)
    expected = [
        (answered(0), "it failed", "Traceback ..."),
        (None, "no request in particular", None),
    ]
    assert store.errors() == expected
    assert store.take_errors() == expected
    assert store.errors() == [] and store.take_errors() == []


def test_a_reset_begins_a_generation_that_old_tickets_do_not_reach(store: StateStore) -> None:
    store.update(lambda table: table.set(RESPONSE, "data", b"x"))
    old = store.record(entry(0))
    store.reset()
    later: list[Callable[[], Any]] = [
        lambda: store.complete(old, OK),
        lambda: store.add_error(old, "too late", None),
    ]
    for call in later:
        call()
    assert store.entry(old) is None
    assert store.last_request() is None and list(store.history()) == []
    assert store.errors() == []
    assert store.read(lambda table: table.slot(RESPONSE)) == {}
    new = store.record(entry(1))
    assert new == (old[0] + 1, 0)
    assert store.journal()[0] == old[0] + 1


def test_the_websocket_journal_folds_its_events(store: StateStore) -> None:
    store.add_websocket(("o", 3, 7, "v2", 1.5))
    store.add_websocket(("m", 3, 7, "received", "text", "hé", 1.6, False, 3, False))
    store.add_websocket(("m", 3, 7, "sent", "binary", b"\x00\xff", 1.7, True, 2, False))
    store.add_websocket(("c", 7, None, "server", 1001, "bye"))
    store.add_websocket(("c", 7, 1.8, "server", 1001, "bye"))
    store.add_websocket(("c", 99, 1.9, "client", 1000, ""))  # unknown: ignored
    connections, messages = store.websocket_journal()
    assert connections == [
        {
            "route": 3,
            "id": 7,
            "subprotocol": "v2",
            "opened": 1.5,
            "closed": 1.8,
            "closed_by": "server",
            "close_code": 1001,
            "close_reason": "bye",
        }
    ]
    assert messages == [
        (3, 7, "received", "text", "hé", 1.6, False, 3, False),
        (3, 7, "sent", "binary", b"\x00\xff", 1.7, True, 2, False),
    ]
    connections[0]["closed"] = None  # a copy
    assert store.websocket_journal()[0][0]["closed"] == 1.8
    store.reset()
    assert store.websocket_journal() == ([], [])


def test_the_websocket_journal_moves_with_the_state() -> None:
    """What a SwitchStore kept in memory goes into the files at create, and back at close."""
    switch = SwitchStore(lock_timeout=5)
    switch.add_websocket(("o", 1, 2, None, 1.0))
    directory = switch.create()
    try:
        attached = FileStore(directory)
        assert attached.websocket_journal()[0][0]["id"] == 2
        attached.add_websocket(("m", 1, 2, "received", "binary", b"x", 1.1, False, 1, False))
    finally:
        switch.close()
    assert switch.websocket_journal()[1] == [
        (1, 2, "received", "binary", b"x", 1.1, False, 1, False)
    ]


def test_a_reset_never_reuses_a_route_id(store: StateStore) -> None:
    """The server keys its open WebSocket connections by route id: never an old one again."""
    old = store.update(lambda table: table.add_route("old", {}))
    store.reset()
    assert store.update(lambda table: table.add_route("new", {})) > old
