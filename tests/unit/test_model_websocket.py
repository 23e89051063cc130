"""
A WebSocket route as data (``txtestserver/_model/websocket.py``): its rules
cross the codec, are used up inside a table update, and the journal keeps
what ``clip`` says.
"""

from __future__ import annotations

import re

from txtestserver._http.websocket import check_rule
from txtestserver._model.table import RESPONSE, ResponseTable
from txtestserver._model.websocket import clip, matches, script, take_rule
from txtestserver._state.codec import decode, encode


def table_with(*rules: dict[str, object]) -> tuple[ResponseTable, int]:
    table = ResponseTable()
    route = table.add_route("ws", {})
    value = dict(script([], True, None, None, False, None), rules=list(rules))
    table.set(RESPONSE, "websocket", value, route)
    table.saved()
    return table, route


def test_a_compiled_pattern_crosses_the_codec_and_still_matches() -> None:
    rule = check_rule("t", re.compile(r"^count \d+$", re.I), ["ok"], None, None, -1, 0.0)
    crossed = decode(encode(rule))
    assert crossed == rule
    assert matches(crossed["when"], "COUNT 12")
    assert not matches(crossed["when"], "count x")
    assert not matches(crossed["when"], b"count 1")  # a str pattern, a binary message
    binary = decode(encode(check_rule("t", re.compile(b"^\x00"), None, None, None, -1, 0.0)))
    assert matches(binary["when"], b"\x00x") and not matches(binary["when"], "\x00x")


def test_a_counted_rule_is_used_up_in_the_update_and_an_endless_one_changes_nothing() -> None:
    once = check_rule("t", "hi", ["first"], None, None, 1, 0.0)
    always = check_rule("t", None, ["any"], None, None, -1, 0.0)
    table, route = table_with(once, always)
    rule, callbacks = take_rule(table, route, "hi", use=False)
    assert rule == once and callbacks == [] and not table.changed
    assert take_rule(table, route, "hi")[0] == once
    assert table.touched == {route}
    table.saved()
    assert take_rule(table, route, "hi")[0] == always
    assert not table.changed
    assert take_rule(table, 999, "hi") == (None, [])  # a route that is gone


def test_clip_keeps_up_to_the_limit_and_cuts_text_between_characters() -> None:
    assert clip("short", None) == ("short", 5, False)
    assert clip("short", 5) == ("short", 5, False)
    assert clip("ééé", 3) == ("é", 6, True)
    assert clip(b"abcdef", 0) == (b"", 6, True)
