"""The response key registry: one default and one check per key."""

from __future__ import annotations

from typing import Any

import pytest

from txtestserver import TestServer, TestServerError
from txtestserver._model.keys import KEYS, check_value, defaults


def test_every_key_has_its_default_in_the_view(server: TestServer) -> None:
    assert {name: server.response[name] for name in KEYS} == defaults()


@pytest.mark.parametrize("name", sorted(KEYS))
def test_every_default_passes_its_own_check(name: str) -> None:
    assert check_value(name, KEYS[name].default, portable=True) == KEYS[name].default


@pytest.mark.parametrize(
    ("key", "value"),
    [("code", 99), ("sleep", -1), ("charset", "no-such-codec"), ("headers", 5)],
)
def test_the_same_check_applies_to_every_slot_and_method(
    server: TestServer, key: str, value: Any
) -> None:
    for view, name in ((server.response, "response"), (server.response_once, "response_once")):
        for where in (key, f"post.{key}"):
            with pytest.raises(TestServerError, match=rf"{name}\['{where}'\]"):
                view[where] = value


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("chunks", b"abc", "list of pieces"),
        ("chunks", "abc", "list of pieces"),
        ("chunks", [b"a", 1], "every piece must be bytes or str"),
        ("chunks", 42, "list of bytes or str pieces"),
        ("chunk_delay", -1, "seconds >= 0"),
        ("chunk_delay", "1", "seconds >= 0"),
        ("throttle", 0, "bytes per second > 0"),
        ("throttle", True, "bytes per second > 0"),
        ("fault", "explode", "one of reset, empty, garbage, malformed_chunk"),
        ("fault", "", "one of reset"),
        ("raw", 42, "must be bytes"),
    ],
)
def test_stream_and_fault_values_are_checked(key: str, value: Any, message: str) -> None:
    for portable in (False, True):
        with pytest.raises(TestServerError, match=message):
            check_value(key, value, portable=portable)


def test_chunks_cross_to_the_server_process_only_as_a_list() -> None:
    assert check_value("chunks", (b"a", bytearray(b"b"), "c"), portable=True) == [b"a", b"b", "c"]
    generator = (piece for piece in [b"a"])
    assert check_value("chunks", generator, portable=False) is generator
    with pytest.raises(TestServerError, match=r"cannot be a generator.*list\(generator\)"):
        check_value("chunks", generator, portable=True)
    assert check_value("post.chunks", None, portable=True) is None
