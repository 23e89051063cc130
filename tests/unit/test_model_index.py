"""
The route index in isolation: it finds the route a plain walk over every
route (newest first) would find, and with thousands of pattern routes it
tries only those that can match, with patterns compiled once.
"""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from txtestserver._model.index import RouteIndex, literal_prefix, unreachable
from txtestserver._model.routes import Facts, conditions, matches, shadows
from txtestserver._model.table import ResponseTable, RouteState


def record(uri: bytes, method: bytes = b"GET") -> Any:
    return (
        method,
        uri,
        b"",
        b"",
        "127.0.0.1",
        b"HTTP/1.1",
        0.0,
        1,
        (None, "http", "127.0.0.1", None),
    )


_PATHS = [
    None,
    "/a",
    "/a/b",
    "/ab",
    re.compile(r"/a/.*"),
    re.compile(r"/a/\w"),
    re.compile(r"/ab?"),
    re.compile(r"/A.*", re.IGNORECASE),
    re.compile(r"/a|/b"),
    re.compile(r".*"),
]
_route = st.tuples(
    st.sampled_from(_PATHS),
    st.sampled_from([None, "GET", "POST"]),
    st.sampled_from([None, {"q": "1"}]),
)
_request = st.tuples(
    st.sampled_from([b"/", b"/a", b"/a/b", b"/ab", b"/a/bc", b"/A/x", b"/b", b"/a?q=1"]),
    st.sampled_from([b"GET", b"POST", b"PUT"]),
)


@settings(max_examples=300, deadline=None)
@given(
    routes=st.lists(_route, max_size=12),
    removed=st.sets(st.integers(0, 11)),
    requests=st.lists(_request, min_size=1, max_size=5),
)
def test_the_index_finds_what_a_walk_over_every_route_finds(
    routes: list[Any], removed: set[int], requests: list[Any]
) -> None:
    states = [
        RouteState(number + 1, f"r{number}", conditions(path, method=method, query=query))
        for number, (path, method, query) in enumerate(routes)
    ]
    index = RouteIndex(states)
    for number in sorted(removed):
        if number < len(states):
            index.remove(states[number])
    kept = [state for number, state in enumerate(states) if number not in removed]
    for uri, method in requests:
        facts = Facts(record(uri, method))
        walked = next((s for s in reversed(kept) if matches(s.when, facts)), None)
        assert index.find(facts) is walked


def test_literal_prefix() -> None:
    assert literal_prefix(r"/items/\d+", 0) == "/items/"
    assert literal_prefix(r"/ab*", 0) == "/a"
    assert literal_prefix(r"/ab{2}", 0) == "/a"
    assert literal_prefix(r"/a.b", 0) == "/a"
    assert literal_prefix(r"/plain", 0) == "/plain"
    assert literal_prefix(r"/a|/b", 0) == ""
    assert literal_prefix(r"/A", re.IGNORECASE) == ""
    assert literal_prefix(r"(?i)/A", 0) == ""


def test_thousands_of_pattern_routes_try_only_those_that_can_match(monkeypatch: Any) -> None:
    """
    Defect 14: with 2,000 regex routes a request tries only the routes whose
    literal prefix its path has, and no pattern is compiled per request (re
    caches 512).
    """
    table = ResponseTable()
    for number in range(2000):
        table.add_route(f"r{number}", conditions(re.compile(rf"/r{number}/\d+")))
    table.add_route("literal", conditions("/x", method="GET"))
    table.add_route("anywhere", conditions(None, method="DELETE"))
    index: RouteIndex = table._index
    compiled: list[Any] = []
    real = re.compile
    monkeypatch.setattr(re, "compile", lambda *a: compiled.append(a) or real(*a))

    def tried(uri: bytes, method: bytes = b"GET") -> list[str]:
        return [entry.route.name or "" for entry in index.candidates(Facts(record(uri, method)))]

    assert tried(b"/r1234/5") == ["anywhere", "r1234"]
    assert tried(b"/nothing/here") == ["anywhere"]
    assert tried(b"/x") == ["anywhere", "literal"]
    assert tried(b"/x", b"POST") == ["anywhere"]
    for uri, name in [(b"/r1234/5", "r1234"), (b"/r1234/x", None), (b"/x", "literal")]:
        taken = table.take(record(uri))
        assert taken is not None if name else taken is None
        assert taken is None or taken.route == name
    assert compiled == []


@settings(max_examples=300, deadline=None)
@given(routes=st.lists(_route, max_size=12))
def test_unreachable_finds_what_comparing_every_pair_finds(routes: list[Any]) -> None:
    states = [
        RouteState(number + 1, f"r{number}", conditions(path, method=method, query=query))
        for number, (path, method, query) in enumerate(routes)
    ]
    every_pair = []
    for number, older in enumerate(states):
        newer = next((n for n in states[number + 1 :] if shadows(n.when, older.when)), None)
        if newer is not None:
            every_pair.append((older, newer))
    assert unreachable(states) == every_pair
