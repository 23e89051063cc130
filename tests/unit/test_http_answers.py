"""Choosing and building an answer from the values a request took."""

from __future__ import annotations

from typing import Any

from txtestserver._http.answers import ErrorAnswer, StaticAnswer, choose
from txtestserver._model.keys import defaults


def build(values: dict[str, Any]) -> Any:
    answer = choose(values)
    assert isinstance(answer, (StaticAnswer, ErrorAnswer))
    return answer


def test_build_iterator_then_exhausted() -> None:
    values = dict(defaults(), data=iter([b"one", "two"]))
    assert build(values).body == b"one"
    assert build(values).body == b"two"
    exhausted = build(values)
    assert exhausted.code == 500
    assert isinstance(exhausted, ErrorAnswer) and "exhausted" in exhausted.message


def test_build_encodes_str_with_charset() -> None:
    assert build(dict(defaults(), data="é", charset="latin-1")).body == b"\xe9"
