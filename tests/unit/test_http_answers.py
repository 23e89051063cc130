"""Choosing and building an answer from the values a request took."""

from __future__ import annotations

from typing import Any

import pytest

from txtestserver._http.answers import CallbackAnswer, ErrorAnswer, StaticAnswer, choose
from txtestserver._http.answers.faults import FAULTS as FAULT_FUNCTIONS
from txtestserver._http.answers.faults import FaultAnswer, RawAnswer
from txtestserver._http.answers.streams import StreamAnswer
from txtestserver._model.keys import FAULTS, check_value, defaults


def build(values: dict[str, Any]) -> Any:
    answer = choose(values)
    assert isinstance(answer, (StaticAnswer, ErrorAnswer))
    return answer


def test_build_iterator_then_exhausted() -> None:
    values = dict(defaults(), data=iter([b"one", "two"]))
    assert build(values).body == b"one"
    assert build(values).body == b"two"
    # Exhausted: 405 and test_server's body (issue 12; it was a 500 error before).
    exhausted = build(values)
    assert exhausted.code == 405
    assert isinstance(exhausted, StaticAnswer)
    assert exhausted.body == b"data generator has no more data"


def test_build_iterator_item_of_another_type_is_an_error() -> None:
    wrong = build(dict(defaults(), data=iter([42])))
    assert wrong.code == 500
    assert isinstance(wrong, ErrorAnswer) and "iterator gave int" in wrong.message


def test_build_encodes_str_with_charset() -> None:
    assert build(dict(defaults(), data="é", charset="latin-1")).body == b"\xe9"


# -- streams, faults and raw answers ---------------------------------------------------


@pytest.mark.parametrize(
    ("set_keys", "kind"),
    [
        ({"raw": b"HTTP/1.1 200 OK\r\n\r\n", "fault": "reset", "callback": print}, RawAnswer),
        ({"fault": "reset", "callback": print, "chunks": [b"a"]}, FaultAnswer),
        ({"callback": print, "chunks": [b"a"], "throttle": 10}, CallbackAnswer),
        ({"chunks": [b"a"], "throttle": 10}, StreamAnswer),
        ({"throttle": 10}, StreamAnswer),  # the plain body, trickling
        ({"chunk_delay": 1.0}, StaticAnswer),  # no pieces: nothing to space out
    ],
    ids=["raw", "fault", "callback", "chunks", "throttle", "static"],
)
def test_kind_precedence(set_keys: dict[str, Any], kind: type) -> None:
    """raw > fault > callback > chunks > static; throttle streams the plain body."""
    values = defaults()
    for key, value in set_keys.items():
        values[key] = check_value(key, value, portable=False)
    assert type(choose(values)) is kind


def test_every_kind_sleeps_first_and_names_its_fault() -> None:
    for extra in ({"raw": b"x"}, {"fault": "empty"}, {"chunks": []}, {"throttle": 1}, {}):
        answer = choose(dict(defaults(), sleep=2.5, **extra))
        assert answer.sleep == 2.5
        assert answer.fault == extra.get("fault")
        assert answer.closes == ("raw" in extra or "fault" in extra)


def test_only_stall_and_no_answer_leave_a_request_unanswered() -> None:
    for fault in FAULTS:
        answer = choose(dict(defaults(), fault=fault))
        assert answer.closes is (fault not in ("stall", "no_answer")), fault


def test_throttle_of_an_exhausted_iterator_is_the_405_answer() -> None:
    # An exhausted iterator answers 405 (issue 12; it was a 500 error before),
    # throttled like any body.
    values = dict(defaults(), data=iter([]), throttle=10.0)
    answer = choose(values)
    assert answer.code == 405
    assert answer.pieces == [b"data generator has no more data"]


def test_fault_names_match_their_functions() -> None:
    assert set(FAULT_FUNCTIONS) == set(FAULTS)
