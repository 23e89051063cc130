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
