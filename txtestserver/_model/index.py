"""
Which route answers a request, found without trying every route: the
:class:`RouteIndex` of a :class:`~txtestserver._model.table.ResponseTable`.

A route on an exact path is found by ``(method, path)`` (a dict look-up); a
route on a pattern by the pattern's literal prefix (one look-up per prefix
length in use); only the routes on no path are tried for every request. The
index keeps each pattern compiled (``re``'s own cache holds 512 patterns, so
a table of thousands would compile one per request). The candidates are then
tried newest first, on the rest of their conditions
(:func:`~txtestserver._model.routes.matches`): the most recent match wins,
as if every route were tried in turn.

A pattern is run by ``re``, which holds the GIL: a catastrophic pattern
(``(a+)+$``) freezes the thread engine's whole test process until it ends;
the subprocess engine runs it in its own process.
"""

from __future__ import annotations

import re
from bisect import bisect_left, insort
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .routes import Facts, matches, shadows

if TYPE_CHECKING:
    from .table import RouteState

__all__ = ["RouteIndex", "literal_prefix", "unreachable"]

#: What ends a pattern's literal prefix: any character with a meaning.
_SPECIAL = frozenset(".^$*+?{}[]\\|()")
#: What makes the character before it optional or repeated.
_QUANTIFIERS = frozenset("*+?{")


def literal_prefix(source: str, flags: int) -> str:
    """
    The text every path a pattern matches (from the start) begins with:
    ``'/items/'`` for ``r'/items/\\d+'``; ``''`` when unsure (an
    alternation, case-insensitive or verbose flags).
    """
    if flags & (re.IGNORECASE | re.VERBOSE) or "|" in source:
        return ""
    end = 0
    while end < len(source) and source[end] not in _SPECIAL:
        end += 1
    if end < len(source) and source[end] in _QUANTIFIERS:
        end = max(end - 1, 0)  # 'ab*': the b is optional
    return source[:end]


class _Entry:
    """One route in the index: the route, its compiled pattern, its other conditions."""

    __slots__ = ("pattern", "rest", "route")

    def __init__(self, route: RouteState, pattern: re.Pattern[str] | None) -> None:
        self.route = route
        self.pattern = pattern
        self.rest = {k: v for k, v in route.when.items() if k not in ("path", "pattern")}


class RouteIndex:
    """The routes of a table by what their path condition says; see the module."""

    def __init__(self, routes: Iterable[RouteState] = ()) -> None:
        self._literal: dict[tuple[str | None, str], list[_Entry]] = {}
        self._patterns: dict[str, list[_Entry]] = {}
        self._lengths: list[int] = []  # the prefix lengths in use, ascending
        self._anywhere: list[_Entry] = []
        for route in routes:
            self.add(route)

    def add(self, route: RouteState) -> None:
        """Index a route (registered after every route indexed so far)."""
        self._bucket(route.when, create=True).append(_Entry(route, _compiled(route.when)))

    def remove(self, route: RouteState) -> None:
        """Forget a route."""
        bucket = self._bucket(route.when, create=False)
        bucket[:] = [entry for entry in bucket if entry.route is not route]

    def find(self, facts: Facts) -> RouteState | None:
        """The newest route whose conditions the request meets, or None."""
        path = facts.path
        for entry in self.candidates(facts):
            if entry.pattern is not None and entry.pattern.fullmatch(path) is None:
                continue
            if matches(entry.rest, facts):
                return entry.route
        return None

    def candidates(self, facts: Facts) -> list[_Entry]:
        """
        The routes that may match a request, newest first: those on its
        exact path (for its method or any), those on a pattern whose literal
        prefix its path starts with, and those on any path.
        """
        path = facts.path
        found: list[_Entry] = []
        if self._literal:
            found += self._literal.get((facts.method, path), ())
            found += self._literal.get((None, path), ())
        for length in self._lengths:
            if length > len(path):
                break
            found += self._patterns.get(path[:length], ())
        found += self._anywhere
        if len(found) > 1:
            found.sort(key=_newest_first)
        return found

    def _bucket(self, when: Mapping[str, Any], *, create: bool) -> list[_Entry]:
        if "path" in when:
            key = (when.get("method"), when["path"])
            return self._literal.setdefault(key, []) if create else self._literal.get(key, [])
        if "pattern" in when:
            prefix = literal_prefix(*when["pattern"])
            if create and prefix not in self._patterns:
                self._patterns[prefix] = []
                self._lengths = sorted({len(p) for p in self._patterns})
            return self._patterns.get(prefix, [])
        return self._anywhere


def _compiled(when: Mapping[str, Any]) -> re.Pattern[str] | None:
    if "pattern" not in when:
        return None
    source, flags = when["pattern"]
    return re.compile(source, flags)


def _newest_first(entry: _Entry) -> int:
    return -(entry.route.id or 0)


def unreachable(routes: Sequence[RouteState]) -> list[tuple[RouteState, RouteState]]:
    """
    ``(older, newer)`` for each route that can never answer, in registration
    order: ``newer`` is the first route registered after ``older`` that
    matches every request it matches (:func:`~txtestserver._model.routes.shadows`).

    Only the routes that can be covered are compared: for a route on a
    path, the older ones on the same path; for one on a pattern, those on
    the same pattern and those on a path with the pattern's literal prefix;
    a route on any path is compared with every older one.

    :param routes: in registration order.
    """
    found: dict[int, tuple[RouteState, RouteState]] = {}
    by_path: dict[str, list[RouteState]] = {}
    paths: list[str] = []  # sorted: the paths with a given prefix are a range
    by_pattern: dict[tuple[str, int], list[RouteState]] = {}
    for number, newer in enumerate(routes):
        when = newer.when
        older: Sequence[RouteState]
        if "path" in when:
            older = by_path.get(when["path"], [])
        elif "pattern" in when:
            source, flags = when["pattern"]
            prefix = literal_prefix(source, flags)
            older = list(by_pattern.get((source, flags), []))
            for position in range(bisect_left(paths, prefix), len(paths)):
                if not paths[position].startswith(prefix):
                    break
                older += by_path[paths[position]]
        else:
            older = routes[:number]
        for route in older:
            if id(route) not in found and shadows(when, route.when):
                found[id(route)] = (route, newer)
        if "path" in when:
            if when["path"] not in by_path:
                insort(paths, when["path"])
            by_path.setdefault(when["path"], []).append(newer)
        elif "pattern" in when:
            by_pattern.setdefault((source, flags), []).append(newer)
    return [found[id(route)] for route in routes if id(route) in found]
