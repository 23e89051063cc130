"""The response rules in isolation: key names, precedence, building an answer."""

from __future__ import annotations

import pytest

from txtestserver import TestServerError
from txtestserver._model.keys import KEYS, build, canonical_key, resolve, validate


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
        ({}, {}, KEYS["data"], []),
        ({"data": b"p"}, {}, b"p", []),
        ({"data": b"p", "get.data": b"pg"}, {}, b"pg", []),
        ({"get.data": b"pg"}, {"data": b"o"}, b"o", ["data"]),
        ({}, {"post.data": b"op"}, KEYS["data"], []),  # another method's once value stays
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
        validate("callback", lambda request: b"", portable=True)
    with pytest.raises(TestServerError, match="cannot be an iterator"):
        validate("data", iter([b"a"]), portable=True)


def test_build_iterator_then_exhausted() -> None:
    values = dict(KEYS, data=iter([b"one", "two"]))
    assert build(values).body == b"one"
    assert build(values).body == b"two"
    exhausted = build(values)
    assert exhausted.code == 500
    assert exhausted.error is not None and "exhausted" in exhausted.error


def test_build_encodes_str_with_charset() -> None:
    assert build(dict(KEYS, data="é", charset="latin-1")).body == b"\xe9"
