"""
FileStore on its own: the file format, the moves between memory and files,
and the safety rules (private modes, data-only format, no lost update),
with two store objects on one directory standing for the two processes.
"""

from __future__ import annotations

import ast
import json
import os
import pickle
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import txtestserver
from txtestserver import TestServerError
from txtestserver._model.keys import FAULTS
from txtestserver._model.keys import check_value as validate
from txtestserver._model.record import RECORD_FIELDS, Entry, answered, outcome
from txtestserver._model.table import ONCE, QueuedAnswer
from txtestserver._model.table import RESPONSE as PERMANENT
from txtestserver._state.codec import decode, encode
from txtestserver._state.directory import RESPONSE
from txtestserver._state.files import FileStore
from txtestserver._state.switch import SwitchStore
from txtestserver._state.tables import LARGE_VALUE

#: Either store: the test process's (memory, then files) or one on a directory.
Store = FileStore | SwitchStore

ALL_BYTES = bytes(range(256))


def set_response(store: Store, once: bool, key: str, value: Any) -> None:
    slot = ONCE if once else PERMANENT
    store.update(lambda table: table.set(slot, key, value))


def response_state(store: Store, once: bool) -> dict[str, Any]:
    return store.read(lambda table: table.slot(ONCE if once else PERMANENT))


def take_response(store: Store, method: str) -> dict[str, Any]:
    request = (
        method.encode(),
        b"/",
        b"",
        b"",
        "::1",
        b"HTTP/1.1",
        0.0,
        1,
        (None, "http", "[::1]:80", None),
    )
    return store.update(lambda table: table.take(request)).values


#: The outcome of a request answered 200 by no route, without a fault.
OK = outcome(True, 200, None, None, None)


def record(n: int = 0, body: bytes = b"") -> Entry:
    """A journal entry not answered yet."""
    return (
        b"GET",
        b"/%d" % n,
        b"X-N: %d\r\n" % n,
        body,
        "127.0.0.1",
        b"HTTP/1.1",
        1764000000.25 + n,
        n,
        (None, "http", "127.0.0.1:80", None),
        False,
        None,
        None,
        None,
        None,
    )


def done(entry: Entry) -> Entry:
    """``entry`` once answered 200."""
    return entry[:RECORD_FIELDS] + OK


def latest(store: Store) -> tuple[Entry | None, bool]:
    """The latest entry and ``done``."""
    entry = store.last_request()
    return entry, answered(entry)


@pytest.fixture
def stores() -> Iterator[tuple[SwitchStore, FileStore]]:
    """(the test process's store, the server process's store) on one directory."""
    parent = SwitchStore()
    directory = parent.create()
    child = FileStore(directory)
    yield parent, child
    parent.close()


def test_directory_and_files_are_private(stores: tuple[SwitchStore, FileStore]) -> None:
    parent, child = stores
    child.record(record())
    set_response(parent, False, "data", b"x")
    directory = parent.directory
    assert directory is not None
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    names = os.listdir(directory)
    assert {"response.json", "requests.jsonl", "status.json", "lock"} <= set(names)
    for name in names:
        assert stat.S_IMODE(os.stat(os.path.join(directory, name)).st_mode) == 0o600, name


def test_close_keeps_the_final_state_and_removes_the_directory(
    stores: tuple[SwitchStore, FileStore],
) -> None:
    parent, child = stores
    set_response(parent, False, "headers", [("X-A", "1"), ("X-A", "2")])
    set_response(parent, True, "post.data", ALL_BYTES)
    first, second = record(1, ALL_BYTES), record(2)
    child.record(first)
    child.complete(child.record(second), OK)
    directory = parent.directory
    assert directory is not None
    parent.close()
    assert not os.path.exists(directory)
    assert parent.directory is None
    assert response_state(parent, False) == {"headers": [("X-A", "1"), ("X-A", "2")]}
    assert response_state(parent, True) == {"post.data": ALL_BYTES}
    assert list(parent.history()) == [first, done(second)]
    assert latest(parent) == (done(second), True)
    # A new directory starts from that state.
    parent.create()
    assert list(parent.history()) == [first, done(second)]
    assert response_state(parent, True) == {"post.data": ALL_BYTES}
    assert latest(parent)[1] is True


def test_state_set_in_memory_moves_into_the_files() -> None:
    store = SwitchStore()
    set_response(store, False, "code", 201)
    directory = store.create()
    try:
        assert take_response(FileStore(directory), "GET")["code"] == 201
    finally:
        store.close()


def test_take_response_consumes_once_values_for_both_processes(
    stores: tuple[SwitchStore, FileStore],
) -> None:
    parent, child = stores
    set_response(parent, False, "data", b"always")
    set_response(parent, True, "get.data", b"once")
    assert take_response(child, "POST")["data"] == b"always"
    assert take_response(child, "GET")["data"] == b"once"
    assert response_state(parent, True) == {}
    assert take_response(child, "GET")["data"] == b"always"


def test_done_follows_the_latest_request(stores: tuple[SwitchStore, FileStore]) -> None:
    parent, child = stores
    old, new = record(1), record(2)
    old_ticket = child.record(old)
    new_ticket = child.record(new)
    child.complete(old_ticket, OK)  # answered late: does not mark the newer one
    assert latest(parent) == (new, False)
    child.complete(new_ticket, OK)
    assert latest(parent) == (done(new), True)
    child.record(record(3))
    assert latest(parent)[1] is False


def test_a_request_recorded_as_answered_is_done_at_once(
    stores: tuple[SwitchStore, FileStore],
) -> None:
    parent, child = stores
    answered_at_once = done(record(1))
    child.record(answered_at_once)
    assert latest(parent) == (answered_at_once, True)
    child.record(record(2))
    assert latest(parent)[1] is False
    parent.close()
    parent.record(done(record(3)))  # in memory, between runs, the same
    assert latest(parent)[1] is True


def test_reset_in_the_test_process(stores: tuple[SwitchStore, FileStore]) -> None:
    parent, child = stores
    ticket = child.record(record(1))
    set_response(parent, False, "data", b"x")
    assert len(parent.history()) == 1
    parent.reset()
    child.complete(ticket, OK)  # answered after the reset: nothing to mark
    assert latest(parent) == (None, False)
    assert list(parent.history()) == []
    assert response_state(parent, False) == {}
    child.record(record(2))
    assert [r[1] for r in parent.history()] == [b"/2"]


def test_history_is_read_incrementally_and_keeps_identity(
    stores: tuple[SwitchStore, FileStore],
) -> None:
    parent, child = stores
    for n in range(3):
        child.record(record(n))
    first = parent.history()
    child.record(record(3))
    second = parent.history()
    assert [r[1] for r in second] == [b"/0", b"/1", b"/2", b"/3"]
    # Requests already read are not parsed again (the views cache by identity).
    assert all(a is b for a, b in zip(first, second[:3], strict=True))
    assert parent.last_request() is second[-1]


def test_a_held_state_lock_bounds_every_write_and_holds_up_no_read() -> None:
    """The server process holds the lock and does not let go (it is stopped)."""
    parent = SwitchStore(lock_timeout=0.2)
    directory = parent.create()
    child = FileStore(directory)
    try:
        ticket = child.record(done(record(1)))
        writes: list[Callable[[], object]] = [
            lambda: set_response(parent, False, "data", b"x"),
            lambda: set_response(parent, True, "code", 201),
            lambda: parent.update(lambda table: table.delete(PERMANENT, "data")),
            lambda: take_response(parent, "GET"),
            lambda: parent.record(record(2)),
            lambda: parent.complete(ticket, OK),
            lambda: parent.add_error(ticket, "error", None),
            parent.take_errors,
            parent.reset,
        ]
        with child._files.locked():
            for write in writes:
                started = time.monotonic()
                with pytest.raises(TestServerError, match="server process is not responding"):
                    write()
                assert time.monotonic() - started < 10  # bounded, not a timing

            # While one thread waits for the lock, others read at once.
            failed = threading.Event()

            def wait_for_the_lock() -> None:
                try:
                    writes[0]()
                except TestServerError:
                    failed.set()

            # Long enough for the reads to happen meanwhile.
            parent._files._files.lock_timeout = 2.0  # type: ignore[union-attr]
            waiting = threading.Thread(target=wait_for_the_lock)
            waiting.start()
            assert parent.last_request() == done(record(1))
            assert list(parent.history()) == [done(record(1))]
            assert parent.journal()[1][0] == done(record(1))
            assert parent.entry(ticket) == done(record(1))
            assert parent.errors() == []
            assert response_state(parent, False) == {}
            assert waiting.is_alive()
            waiting.join(10)
            assert failed.is_set()
        set_response(parent, False, "data", b"x")  # free again
        assert take_response(child, "GET")["data"] == b"x"
    finally:
        parent.close()


def test_no_update_is_lost_between_two_writers(stores: tuple[SwitchStore, FileStore]) -> None:
    """The server consumes once-values while the test sets others: none is lost."""
    parent, child = stores
    methods = [f"M{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(150)]
    stop = threading.Event()

    other = FileStore(parent.directory)  # a third writer with its own lock

    def consume() -> None:  # each take rewrites response_once
        while not stop.is_set():
            set_response(other, True, "get.data", b"g")
            take_response(child, "GET")

    thread = threading.Thread(target=consume)
    thread.start()
    try:
        for method in methods:
            set_response(parent, True, f"{method.lower()}.code", 201)
    finally:
        stop.set()
        thread.join(10)
    once = response_state(parent, True)
    assert [m for m in methods if f"{m.lower()}.code" not in once] == []


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary(),
        lambda children: st.lists(children) | st.lists(children).map(tuple),
        max_leaves=20,
    )
)
def test_encode_round_trips_exactly(value: object) -> None:
    text = json.dumps(encode(value))
    back = decode(json.loads(text))
    assert repr(back) == repr(value)  # repr: nan == nan, and tuple vs list differ


@given(
    st.tuples(
        st.binary(),
        st.binary(),
        st.binary(),
        st.binary(),
        st.text(),
        st.binary(),
        st.floats(allow_nan=False),
        st.integers(0, 2**53),
        st.tuples(
            st.none() | st.text(),
            st.sampled_from(["http", "https", ""]),
            st.text(),
            st.none() | st.text(),
        ),
        st.booleans(),
        st.none() | st.integers(100, 999),
        st.none() | st.integers(0, 2**53),
        st.none() | st.text(),
        st.none() | st.sampled_from(FAULTS),
    )
)
def test_records_round_trip_exactly(fields: Entry) -> None:
    store = SwitchStore()
    directory = store.create()
    try:
        FileStore(directory).record(fields)
        assert store.last_request() == fields
    finally:
        store.close()


def test_validated_response_values_round_trip(stores: tuple[SwitchStore, FileStore]) -> None:
    parent, child = stores
    values = {
        "data": ALL_BYTES,
        "post.data": "текст",
        "headers": validate("headers", {"X-Bin": b"\xff\xfe".decode("latin-1")}, portable=True),
        "cookies": validate("cookies", [("a", "1"), ("a", "2")], portable=True),
        "sleep": validate("sleep", 0.1, portable=True),
        "callback": "tests.callbacks:returns_bytes",
    }
    for key, value in values.items():
        set_response(parent, False, key, value)
    assert response_state(parent, False) == values
    assert take_response(child, "POST")["data"] == "текст"


def test_objects_that_are_not_data_are_refused(stores: tuple[SwitchStore, FileStore]) -> None:
    parent, _ = stores
    with pytest.raises(TestServerError, match="cannot be stored for the server process"):
        # Dicts with str keys are data (response['json']); these keys are not.
        set_response(parent, False, "data", {1: "a"})
    with pytest.raises(TestServerError, match="cannot be stored for the server process"):
        set_response(parent, False, "callback", len)


class _Payload:
    """Unpickling this would create a file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, ...]:
        return (open, (self.marker, "w"))


def test_a_tampered_state_file_is_an_error_and_runs_nothing(
    stores: tuple[SwitchStore, FileStore], tmp_path: Path
) -> None:
    parent, child = stores
    marker = tmp_path / "executed"
    assert parent.directory is not None
    Path(parent.directory, RESPONSE).write_bytes(pickle.dumps(_Payload(str(marker))))
    with pytest.raises(TestServerError, match="cannot be used"):
        take_response(child, "GET")
    with pytest.raises(TestServerError, match="cannot be used"):
        response_state(parent, False)
    directory = parent.directory
    with pytest.raises(TestServerError, match="cannot be used"):
        parent.close()
    assert not os.path.exists(directory)
    assert not marker.exists()


@pytest.mark.parametrize(
    "slot, table, message",
    [
        ("response", {"code": "abc"}, "response\\['code'\\] must be an int from 100 to 599"),
        ("once", {"code": 99}, "response_once\\['code'\\] must be an int"),
        ("response", {"headers": [{"t": ["X-\u00dc", "v"]}]}, "'\u00dc'.*HTTP tokens"),
        ("response", {"sleep": -1}, "response\\['sleep'\\] must be a number of seconds"),
        ("response", {"nonsense": 1}, "unknown response key 'nonsense'"),
        ("response", {"data": {"f": "../etc/passwd"}}, "names no value file"),
    ],
)
def test_values_read_from_the_files_are_checked_like_a_tests(
    stores: tuple[SwitchStore, FileStore], slot: str, table: dict[str, Any], message: str
) -> None:
    """
    A value that could never have been set (the file was changed by
    something else) is an error naming it, in both processes, and does not
    outlive the run; the journal does.
    """
    parent, child = stores
    child.record(done(record(1)))
    assert parent.directory is not None
    Path(parent.directory, RESPONSE).write_text(json.dumps({slot: table}))
    with pytest.raises(TestServerError, match=f"cannot be used.*{RESPONSE}.*{message}"):
        take_response(child, "GET")
    with pytest.raises(TestServerError, match=message):
        response_state(parent, False)
    with pytest.raises(TestServerError, match=message):
        parent.close()
    # The response from before the start is kept, the journal is not lost.
    assert response_state(parent, False) == {}
    assert [entry[1] for entry in parent.history()] == [b"/1"]


def value_files(store: Store) -> dict[str, bytes]:
    assert store.directory is not None
    names = [n for n in os.listdir(store.directory) if n.startswith("value-")]
    return {n: Path(store.directory, n).read_bytes() for n in names}


def test_large_values_are_files_of_their_own_written_once(
    stores: tuple[SwitchStore, FileStore],
) -> None:
    """
    A large value is written once to a file of its own; the state document
    stays small, so setting other keys and taking once values for a request
    do not read or write the large value again (500 MiB made every request
    take seconds).
    """
    parent, child = stores
    assert parent.directory is not None
    big = bytes(range(256)) * 4096  # 1 MiB
    text = "\u00e9t\u00e9 " * 10_000
    set_response(parent, False, "data", big)
    set_response(parent, False, "post.data", text)
    files = value_files(parent)
    assert sorted(files.values(), key=len) == [text.encode(), big]
    document = Path(parent.directory, RESPONSE)
    stamps = {n: os.stat(os.path.join(parent.directory, n)).st_mtime_ns for n in files}
    for code in (201, 202, 203):
        set_response(parent, False, "code", code)
        set_response(parent, True, "data", b"small")
        assert take_response(child, "GET")["data"] == b"small"
        assert document.stat().st_size < 1024
    assert take_response(child, "GET")["data"] == big
    assert take_response(child, "POST")["data"] == text
    assert response_state(parent, False)["data"] == big
    assert value_files(parent).keys() == files.keys()  # none written again
    assert {n: os.stat(os.path.join(parent.directory, n)).st_mtime_ns for n in files} == stamps

    # A large once value, taken by the server: its file goes with the next write.
    set_response(parent, True, "data", big + b"once")
    assert take_response(child, "GET")["data"] == big + b"once"
    set_response(parent, False, "code", 200)
    assert value_files(parent).keys() == files.keys()
    # A replaced or removed value's file goes; reset removes them all.
    set_response(parent, False, "data", b"x" * LARGE_VALUE)
    assert len(value_files(parent)) == 2 and big not in value_files(parent).values()
    parent.update(lambda table: table.delete(PERMANENT, "post.data"))
    assert list(value_files(parent).values()) == [b"x" * LARGE_VALUE]
    set_response(parent, False, "data", big)
    parent.close()
    assert response_state(parent, False)["data"] == big  # back in memory, whole
    parent.create()
    assert list(value_files(parent).values()) == [big]  # written once for the new run
    parent.reset()
    assert value_files(parent) == {}


def test_routes_and_queued_answers_are_checked_and_keep_large_values_apart(
    stores: tuple[SwitchStore, FileStore],
) -> None:
    parent, child = stores
    assert parent.directory is not None
    big = b"q" * LARGE_VALUE
    route = parent.update(lambda table: table.add_route("api", {"path": "/api"}))
    parent.update(lambda table: table.set(PERMANENT, "data", big, route=route))
    parent.update(lambda table: table.enqueue(QueuedAnswer(None, 1, {"data": big + b"2"})))
    assert sorted(value_files(parent).values()) == [big, big + b"2"]
    assert Path(parent.directory, RESPONSE).stat().st_size < 1024
    assert take_response(child, "GET")["data"] == big + b"2"  # the queued answer
    parent.update(lambda table: table.remove_route(route))
    assert value_files(parent) == {}  # neither is named any more
    # A value no test could set, in a route or a queued answer, is named.
    for data, where in [
        (
            {
                "routes": [
                    {
                        "id": 1,
                        "name": "api",
                        "when": {"d": {}},
                        "queue": [],
                        "response": {"code": 1},
                    }
                ]
            },
            "route 'api' response",
        ),
        ({"queue": [[None, 1, {"code": "x"}]]}, "queued answer 1"),
    ]:
        Path(parent.directory, RESPONSE).write_text(json.dumps(data))
        with pytest.raises(TestServerError, match=f"{where}\\['code'\\] must be an int"):
            response_state(parent, False)
    parent.reset()


def test_a_removed_directory_is_a_clear_error(stores: tuple[SwitchStore, FileStore]) -> None:
    parent, child = stores
    assert parent.directory is not None
    for name in os.listdir(parent.directory):
        os.unlink(os.path.join(parent.directory, name))
    os.rmdir(parent.directory)
    with pytest.raises(TestServerError, match="was the directory removed"):
        parent.last_request()
    with pytest.raises(TestServerError, match="was the directory removed"):
        child.record(record())
    with pytest.raises(TestServerError, match="was the directory removed"):
        parent.close()
    # The store still works from memory afterwards.
    set_response(parent, False, "code", 500)
    assert response_state(parent, False) == {"code": 500}


def test_broken_store_raises_until_closed_again() -> None:
    store = SwitchStore()
    store.create()
    store.close(broken=TestServerError("the server process was killed by signal 9 (SIGKILL)"))
    with pytest.raises(TestServerError, match="signal 9"):
        store.last_request()
    with pytest.raises(TestServerError, match="signal 9"):
        set_response(store, False, "code", 201)
    store.close()
    assert latest(store) == (None, False)


def test_no_pickle_marshal_eval_or_exec_in_the_package() -> None:
    """The state format is data only: nothing in the package can run what a file holds."""
    package = Path(txtestserver.__file__).parent
    forbidden_modules = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill"}
    for source in package.rglob("*.py"):
        tree = ast.parse(source.read_text(), str(source))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert not {a.name.split(".")[0] for a in node.names} & forbidden_modules, source
            elif isinstance(node, ast.ImportFrom):
                assert (node.module or "").split(".")[0] not in forbidden_modules, source
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in {"eval", "exec"}, source


def test_tmpdir_decides_where_state_lives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # forget the cached choice
    store = SwitchStore()
    directory = store.create()
    try:
        assert Path(directory).parent == tmp_path
    finally:
        store.close()


def test_the_parsed_table_is_reused_only_while_the_file_is_unchanged(
    stores: tuple[SwitchStore, FileStore],
) -> None:
    parent, child = stores
    set_response(parent, False, "data", b"one")
    assert take_response(child, "GET")["data"] == b"one"
    assert take_response(child, "GET")["data"] == b"one"  # from the parsed table
    set_response(parent, False, "data", b"two")  # another process wrote the file
    assert take_response(child, "GET")["data"] == b"two"
    set_response(parent, True, "data", b"once")
    assert take_response(child, "GET")["data"] == b"once"
    assert response_state(parent, True) == {}  # the take was written for the parent
    assert take_response(child, "GET")["data"] == b"two"


def test_a_change_that_fails_leaves_no_trace(stores: tuple[SwitchStore, FileStore]) -> None:
    parent, child = stores
    set_response(parent, False, "data", b"kept")
    take_response(child, "GET")  # the child has the table parsed

    def fails(table: Any) -> None:
        table.set(PERMANENT, "data", b"half done")
        raise RuntimeError("in the middle")

    with pytest.raises(RuntimeError):
        child.update(fails)
    assert take_response(child, "GET")["data"] == b"kept"
    assert response_state(parent, False) == {"data": b"kept"}
