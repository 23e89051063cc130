"""
Why a request nobody expected got ``404`` (strict mode, or a server with
routes): the words.

:func:`unexpected` names the route closest to the request (:func:`closest`)
and says how the request differs from it, condition by condition (each
condition's ``differ`` in :data:`~txtestserver._model.routes.CONDITIONS`).
Nothing here knows HTTP or Twisted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .record import PROXY, VIA, Record
from .routes import CONDITIONS, Facts, describe

__all__ = ["closest", "unexpected"]


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
        missed = [kind for kind, value in when.items() if not CONDITIONS[kind].match(value, facts)]
        differences = [d for kind in missed for d in CONDITIONS[kind].differ(when[kind], facts)]
        score = (
            sum(kind in ("path", "pattern") for kind in missed),
            int("method" in missed),
            len(differences),
        )
        if best is None or score <= best[0]:
            best = (score, name, when, differences)
    return None if best is None else best[1:]


def _hosts(facts: Facts, routes: Sequence[tuple[int, str, Mapping[str, Any]]]) -> str:
    """The host asked for, and the hosts the routes know (proxy mode's words)."""
    known = sorted(
        {CONDITIONS["host"].show(when["host"])[5:] for _, _, when in routes if "host" in when}
    )
    shown = ", ".join(known) if known else "none (no route names a host)"
    return f"host {facts.host or '(none)'!r} was asked for; the routes know the hosts {shown}; "


def unexpected(
    record: Record, routes: Sequence[tuple[int, str, Mapping[str, Any]]], strict: bool = True
) -> str:
    """
    The message for a request that nothing expected (the server answers it
    ``404``): the closest route and how the request differs from it.

    :param strict: strict mode is why (else: the server has routes, and no
        ``response``, ``response_once`` or queued answer of the server's own
        covers the request).
    """
    message = "unexpected request (strict mode): " if strict else "unexpected request: "
    facts = Facts(record)
    found = closest(routes, facts)
    if record[VIA][PROXY] is not None or any("host" in when for _, _, when in routes):
        message += _hosts(facts, routes)
    if found is None:
        return message + (
            "no route, queued answer, response_once or response value expects it, "
            "and there is no route"
        )
    name, when, differences = found
    described = describe(when)
    shown = repr(name) if name == described else f"{name!r} ({described})"
    if not strict:
        message += (
            "no server.response, response_once or queued answer of the server covers it "
            "(once a server has routes, a request no route matches is answered 404); "
        )
    return message + f"no route matches it; the closest is route {shown}: " + "; ".join(differences)
