"""The response table in isolation: key names and precedence."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from txtestserver import TestServerError
from txtestserver._model.keys import KEYS, canonical_key, check_value
from txtestserver._model.table import ONCE, RESPONSE, ResponseTable


def resolve(
    permanent: dict[str, Any], once: dict[str, Any], method: str
) -> tuple[dict[str, Any], list[str]]:
    """Take one request's values; return them and the once keys it used up."""
    table = ResponseTable({RESPONSE: permanent, ONCE: once})
    record = (
        method.encode(),
        b"/",
        b"",
        b"",
        "127.0.0.1",
        b"HTTP/1.1",
        0.0,
        1,
        (None, "http", "", None),
    )
    values = table.take(record).values
    return values, sorted(set(once) - set(table.slot(ONCE)))


def test_precedence_once_specific_beats_everything() -> None:
    permanent = {"data": b"p", "post.data": b"p-post"}
    once = {"data": b"o", "post.data": b"o-post"}
    values, used = resolve(permanent, once, "POST")
    assert values["data"] == b"o-post"
    # Both once keys that applied to this request are used up.
    assert sorted(used) == ["data", "post.data"]


@pytest.mark.parametrize(
    ("permanent", "once", "expected", "used"),
    [
        ({}, {}, KEYS["data"].default, []),
        ({"data": b"p"}, {}, b"p", []),
        ({"data": b"p", "get.data": b"pg"}, {}, b"pg", []),
        ({"get.data": b"pg"}, {"data": b"o"}, b"o", ["data"]),
        ({}, {"post.data": b"op"}, KEYS["data"].default, []),  # another method's once value stays
    ],
)
def test_precedence(permanent: dict, once: dict, expected: bytes, used: list[str]) -> None:
    values, consumed = resolve(permanent, once, "GET")
    assert values["data"] == expected
    assert consumed == used


def test_canonical_key() -> None:
    assert canonical_key("POST.data") == "post.data"
    assert canonical_key("code") == "code"
    with pytest.raises(TestServerError, match="unknown response key"):
        canonical_key("post.nope")


def test_portable_values_refuse_functions_and_iterators() -> None:
    with pytest.raises(TestServerError, match="import string"):
        check_value("callback", lambda request: b"", portable=True)
    with pytest.raises(TestServerError, match="cannot be an iterator"):
        check_value("data", iter([b"a"]), portable=True)


def reference_take(
    permanent: dict[str, Any], once: dict[str, Any], method: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The precedence rule written out key by key: the values, and what stays in once."""
    prefix = method.lower() + "."
    once = dict(once)
    chosen = {}
    for name, key in KEYS.items():
        specific = prefix + name
        if specific in once:
            chosen[name] = once.pop(specific)
            once.pop(name, None)
        elif name in once:
            chosen[name] = once.pop(name)
        elif specific in permanent:
            chosen[name] = permanent[specific]
        elif name in permanent:
            chosen[name] = permanent[name]
        else:
            chosen[name] = key.default
    return chosen, once


_slot_keys = st.sampled_from(
    [f"{m}{name}" for m in ("", "get.", "post.", "delete.") for name in ("data", "code", "fault")]
)


@settings(max_examples=300, deadline=None)
@given(
    permanent=st.dictionaries(_slot_keys, st.integers()),
    once=st.dictionaries(_slot_keys, st.integers()),
    method=st.sampled_from(["GET", "POST", "PUT", "get"]),
)
def test_take_follows_the_precedence_rule(
    permanent: dict[str, Any], once: dict[str, Any], method: str
) -> None:
    table = ResponseTable({RESPONSE: permanent, ONCE: once})
    values = table.take((method.encode(), b"/", b"", b"", "127.0.0.1", None)).values  # type: ignore[arg-type]
    expected, left = reference_take(permanent, once, method)
    assert values == expected
    assert table.slot(ONCE) == left
    assert table.changed == (left != once)
