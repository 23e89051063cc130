"""
Strict mode's words: why a request nobody expected got ``404``.

:func:`unexpected` names the route closest to the request (:func:`closest`)
and says how the request differs from it, condition by condition
(:data:`DIFFERENCES`). Nothing here knows HTTP or Twisted.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .record import Record
from .routes import CONDITIONS, NOT_JSON, Facts, describe

__all__ = ["DIFFERENCES", "closest", "unexpected"]

#: Characters of a value quoted in a message.
_QUOTED = 60


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    if isinstance(value, (dict, list)):
        text = json.dumps(value, sort_keys=True)
    return text if len(text) <= _QUOTED else text[: _QUOTED - 3] + "..."


def _fields_differ(what: str, found: Any, wanted: Mapping[str, Any]) -> list[str]:
    """How ``found`` (a MultiDict) misses the ``wanted`` fields."""
    differences = []
    for name, value in wanted.items():
        values = found.getall(name, [])
        want = value if isinstance(value, list) else [value]
        if isinstance(value, list) and values == want:
            continue
        if not isinstance(value, list) and value in values:
            continue
        if not values:
            differences.append(f"no {what} {name!r} (the route wants {_short(value)!r})")
        else:
            shown = values[0] if len(values) == 1 else values
            differences.append(
                f"{what} {name}={_short(shown)!r} (the route wants {_short(value)!r})"
            )
    return differences


def _path(value: Any, facts: Facts) -> list[str]:
    return [f"path {facts.path!r} (the route wants {value!r})"]


def _pattern(value: Any, facts: Facts) -> list[str]:
    return [f"path {facts.path!r} does not match the route's pattern {value[0]!r}"]


def _method(value: Any, facts: Facts) -> list[str]:
    return [f"method {facts.method} (the route wants {value})"]


def _data(value: Any, facts: Facts) -> list[str]:
    return [
        f"a body of {len(facts.body)} bytes, {_short(facts.body)} "
        f"(the route wants exactly {_short(value)})"
    ]


def _json(value: Any, facts: Facts) -> list[str]:
    if facts.json is NOT_JSON:
        return [f"a body that is not JSON (the route wants the JSON {_short(value)})"]
    return [f"the JSON body {_short(facts.json)} (the route wants {_short(value)})"]


#: Condition kind -> ``differences(value, facts)``: how a request that
#: misses the condition differs from it, in words.
DIFFERENCES: dict[str, Callable[[Any, Facts], list[str]]] = {
    "path": _path,
    "pattern": _pattern,
    "method": _method,
    "query": lambda value, facts: _fields_differ("query field", facts.query, value),
    "headers": lambda value, facts: _fields_differ("header", facts.headers, value),
    "data": _data,
    "form": lambda value, facts: _fields_differ("form field", facts.form, value),
    "json": _json,
}


def closest(
    routes: Sequence[tuple[int, str, Mapping[str, Any]]], facts: Facts
) -> tuple[str, Mapping[str, Any], list[str]] | None:
    """
    The route closest to a request that matched none: ``(name, conditions,
    differences)``, or None when there is no route.

    Closest: a route whose path (or pattern) the request meets beats one
    whose path it misses; then one whose method it meets; then the one with
    the fewest other differences; among equals the latest registered (as
    routes win).

    :param routes: ``(id, name, conditions)`` in registration order.
    """
    best: tuple[tuple[int, int, int], str, Mapping[str, Any], list[str]] | None = None
    for _, name, when in routes:
        missed = [kind for kind, value in when.items() if not CONDITIONS[kind](value, facts)]
        differences = [d for kind in missed for d in DIFFERENCES[kind](when[kind], facts)]
        score = (
            sum(kind in ("path", "pattern") for kind in missed),
            int("method" in missed),
            len(differences),
        )
        if best is None or score <= best[0]:
            best = (score, name, when, differences)
    return None if best is None else best[1:]


def unexpected(record: Record, routes: Sequence[tuple[int, str, Mapping[str, Any]]]) -> str:
    """
    The message for a request that nothing expected, in strict mode: the
    closest route and how the request differs from it.
    """
    message = "unexpected request (strict mode): "
    found = closest(routes, Facts(record))
    if found is None:
        return message + (
            "no route, queued answer, response_once or response value expects it, "
            "and there is no route"
        )
    name, when, differences = found
    described = describe(when)
    shown = repr(name) if name == described else f"{name!r} ({described})"
    return message + f"no route matches it; the closest is route {shown}: " + "; ".join(differences)
