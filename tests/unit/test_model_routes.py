"""
The route conditions in isolation: the registry (``CONDITIONS``) and what
derives from it: ``conditions()``, ``describe()``, ``matches()``, strict
mode's differences, ``shadows()``, and ``route()``'s keywords.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import pytest

from txtestserver import TestServerError
from txtestserver._core import ServerCore
from txtestserver._model.routes import CONDITIONS, Facts, conditions, describe, matches, shadows
from txtestserver._model.strict import closest


def record(
    uri: bytes = b"/",
    method: bytes = b"GET",
    headers: bytes = b"",
    body: bytes = b"",
    scheme: str = "http",
    host: str = "127.0.0.1:8080",
) -> Any:
    return (
        method,
        uri,
        headers,
        body,
        "127.0.0.1",
        b"HTTP/1.1",
        0.0,
        1,
        (None, scheme, host, None),
    )


#: For each condition: ``(route() arguments, a request that meets it, one
#: that misses it, what describe() shows)``. A new condition needs its row.
EXAMPLES: dict[str, tuple[dict[str, Any], Any, Any, str]] = {
    "path": ({"path": "/a"}, record(b"/a?x=1"), record(b"/b"), "* /a"),
    "pattern": (
        {"path": re.compile(r"/items/\d+")},
        record(b"/items/42"),
        record(b"/items/x"),
        "* re'/items/\\\\d+'",
    ),
    "method": ({"method": "post"}, record(method=b"POST"), record(), "POST <any path>"),
    "host": (
        {"host": "API.example.com"},
        record(host="api.example.com:8443"),
        record(host="example.com"),
        "* <any path> host='api.example.com'",
    ),
    "scheme": (
        {"scheme": "https"},
        record(scheme="https"),
        record(),
        "* <any path> scheme='https'",
    ),
    "port": ({"port": 443}, record(scheme="https", host="a"), record(), "* <any path> port=443"),
    "query": (
        {"query": {"page": 2}},
        record(b"/?page=2&x=1"),
        record(b"/?page=3"),
        "* <any path> query={'page': '2'}",
    ),
    "headers": (
        {"headers": {"X-K": "v"}},
        record(headers=b"x-k: v\r\n"),
        record(),
        "* <any path> headers={'X-K': 'v'}",
    ),
    "data": ({"data": "d"}, record(body=b"d"), record(body=b"e"), "* <any path> data=b'd'"),
    "form": (
        {"form": {"n": "a"}},
        record(headers=b"Content-Type: application/x-www-form-urlencoded\r\n", body=b"n=a"),
        record(body=b"n=a"),
        "* <any path> form={'n': 'a'}",
    ),
    "json": (
        {"json": {"on": True}},
        record(body=b'{"on": true}'),
        record(body=b'{"on": 1}'),
        "* <any path> json={'on': True}",
    ),
}


def test_every_condition_has_an_example() -> None:
    assert set(EXAMPLES) == set(CONDITIONS)


@pytest.mark.parametrize("kind", list(EXAMPLES))
def test_each_condition_agrees_with_what_derives_from_it(kind: str) -> None:
    arguments, meets, misses, shown = EXAMPLES[kind]
    arguments = dict(arguments)
    when = conditions(arguments.pop("path", None), **arguments)
    assert list(when) == [kind]
    condition = CONDITIONS[kind]
    assert describe(when) == shown
    assert matches(when, Facts(meets)) and condition.match(when[kind], Facts(meets))
    assert not matches(when, Facts(misses))
    differences = condition.differ(when[kind], Facts(misses))
    assert differences and all(isinstance(text, str) and text for text in differences)
    found = closest([(1, "r", when)], Facts(misses))
    assert found is not None and found[2] == differences
    assert condition.covers(when[kind], when)  # a condition covers itself
    assert not condition.covers(when[kind], {})  # and not a route on nothing


def test_route_keywords_are_the_registered_conditions() -> None:
    parameters = inspect.signature(ServerCore.route).parameters
    explicit = {name for name, p in parameters.items() if p.kind is not p.VAR_KEYWORD}
    keywords = {name for name, condition in CONDITIONS.items() if condition.keyword}
    assert explicit - {"self", "name"} == keywords
    assert any(p.kind is p.VAR_KEYWORD for p in parameters.values())  # a new one works at once


def test_conditions_keep_the_registry_order() -> None:
    when = conditions("/a", json={"x": 1}, method="GET", query={"q": "1"})
    assert list(when) == [kind for kind in CONDITIONS if kind in when]


def test_an_unknown_keyword_suggests_the_closest_and_names_the_face() -> None:
    with pytest.raises(TestServerError) as raised:
        conditions("/a", face="TestServer.route()", jsno={"x": 1})
    message = str(raised.value)
    assert message.startswith("TestServer.route() got an unexpected keyword argument 'jsno'")
    assert "(did you mean 'json'?)" in message
    with pytest.raises(TestServerError, match="pattern"):
        conditions("/a", pattern=["/a", 0])  # given as path=re.compile(...), not by name


@pytest.mark.parametrize(
    ("found", "wanted", "same"),
    [
        (True, 1, False),
        (False, 0, False),
        (1, True, False),
        (1, 1.0, True),
        ({"a": [True]}, {"a": [1]}, False),
        ({"a": [0, {"b": False}]}, {"a": [0, {"b": False}]}, True),
        ({"a": [0, {"b": 0}]}, {"a": [0, {"b": False}]}, False),
        (None, False, False),
        ("1", 1, False),
        ([1, 2], [1, 2, 3], False),
    ],
)
def test_json_compares_by_type_as_well(found: Any, wanted: Any, same: bool) -> None:
    import json

    when = conditions(None, json=wanted)
    assert matches(when, Facts(record(body=json.dumps(found).encode()))) is same


@pytest.mark.parametrize(
    ("older", "newer", "shadowed"),
    [
        ({"path": "/items", "query": {"page": "2"}}, {"path": "/items"}, True),
        ({"path": "/items"}, {"path": "/items", "query": {"page": "2"}}, False),
        ({"path": "/items"}, {"path": "/items"}, False),  # the same: an override on purpose
        ({"path": "/a", "method": "GET"}, {"path": None}, True),
        ({"path": "/a"}, {"path": "/b"}, False),
        ({"path": "/items/1"}, {"path": re.compile(r"/items/\d+")}, True),
        ({"path": re.compile(r"/items/\d+")}, {"path": "/items/1"}, False),
        ({"path": "/a", "headers": {"X-K": "v"}}, {"path": "/a", "headers": {"x-k": "v"}}, True),
        ({"path": "/a", "query": {"t": ["1", "2"]}}, {"path": "/a", "query": {"t": "1"}}, True),
        ({"path": "/a", "query": {"t": "1"}}, {"path": "/a", "query": {"t": ["1"]}}, False),
        ({"path": "/a", "json": {"x": 1}}, {"path": "/a", "method": "POST"}, False),
        ({"path": "/a", "json": {"x": True}}, {"path": "/a", "json": {"x": 1}}, False),
    ],
)
def test_shadows(older: dict[str, Any], newer: dict[str, Any], shadowed: bool) -> None:
    def when(arguments: dict[str, Any]) -> dict[str, Any]:
        arguments = dict(arguments)
        return conditions(arguments.pop("path"), **arguments)

    assert shadows(when(newer), when(older)) is shadowed
