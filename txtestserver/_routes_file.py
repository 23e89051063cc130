"""
A whole conversation written down: the routes document that
``server.load_routes(path)`` and ``txtestserver --routes FILE`` read.

The document is JSON, or TOML when the file name ends in ``.toml``. It is
data only, so it serves both engines, and it uses the names a test uses::

    {
      "response": {"code": 404},
      "routes": [
        {"path": "/api/token", "method": "POST",
         "response": {"json": {"token": "t"}}},
        {"pattern": "/items/\\\\d+", "name": "item",
         "queue": [{"code": 503, "count": 2}],
         "response": {"json": {"id": 1}}}
      ]
    }

Each entry of ``routes`` takes :meth:`~txtestserver.TestServer.route`'s
keyword names (``path``, or ``pattern`` for a regular expression, ``method``,
``host`` (a name: a proxy's routes), ``scheme``, ``port``, ``query``,
``headers``, ``json``, ``form``, ``data``, ``name``), plus
``response`` and ``response_once`` (dicts of response keys) and ``queue``
(a list of answers, each a dict of response keys with an optional
``count``). At the top level, ``response``, ``response_once`` and ``queue``
(whose answers may also name a ``method``) are the server's own.

Everything is checked before anything is set, as far as a document can be
(its shape, the names, the patterns); when a value is refused while the
routes are added, the routes added so far are removed again, so a server is
never left with half a document.
"""

from __future__ import annotations

import difflib
import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import TestServerError

if TYPE_CHECKING:
    from ._core import ServerCore
    from ._route import Route

__all__ = ["load_routes", "read_document"]

#: The names an entry of ``routes`` may hold: route()'s conditions, then its answers.
CONDITION_NAMES = (
    "path",
    "pattern",
    "method",
    "host",
    "scheme",
    "port",
    "query",
    "headers",
    "json",
    "form",
    "data",
    "name",
)
ANSWER_NAMES = ("response", "response_once", "queue")
ROUTE_NAMES = CONDITION_NAMES + ANSWER_NAMES
SERVER_NAMES = ("routes", *ANSWER_NAMES)


def read_document(path: str | Path) -> dict[str, Any]:
    """
    Read a routes document: TOML when the name ends in ``.toml``, else JSON.

    :param path: the file.
    :raise TestServerError: the file cannot be read or parsed (the message
        names it and where it fails).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise TestServerError(f"cannot read the routes file {str(path)!r}: {e}") from None
    try:
        if path.suffix.lower() == ".toml":
            if sys.version_info >= (3, 11):
                import tomllib
            else:  # pragma: no cover - Python 3.10
                import tomli as tomllib
            document: Any = tomllib.loads(text)
        else:
            document = json.loads(text)
    except ValueError as e:  # json.JSONDecodeError and tomllib.TOMLDecodeError
        kind = "TOML" if path.suffix.lower() == ".toml" else "JSON"
        raise TestServerError(f"the routes file {str(path)!r} is not valid {kind}: {e}") from None
    if not isinstance(document, dict):
        raise TestServerError(
            f"the routes file {str(path)!r} must hold an object with a 'routes' list, "
            f"not a {type(document).__name__}"
        )
    return document


def _unknown(name: str, known: tuple[str, ...], where: str) -> TestServerError:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return TestServerError(
        f"{where}: unknown name {name!r}{hint}; the names are {', '.join(known)}"
    )


def _check_shape(document: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    """The entries of ``routes``, each checked for its names and types."""
    for name in document:
        if name not in SERVER_NAMES:
            raise _unknown(name, SERVER_NAMES, where)
    routes = document.get("routes", [])
    if not isinstance(routes, list):
        raise TestServerError(f"{where}: 'routes' is a list, not {type(routes).__name__}")
    _check_answers(document, where)
    checked = []
    for number, entry in enumerate(routes):
        at = f"{where}: routes[{number}]"
        if not isinstance(entry, dict):
            raise TestServerError(f"{at} is an object, not {type(entry).__name__}")
        for name in entry:
            if name not in ROUTE_NAMES:
                raise _unknown(name, ROUTE_NAMES, at)
        if "path" in entry and "pattern" in entry:
            raise TestServerError(f"{at} gives both 'path' and 'pattern': give one")
        pattern = entry.get("pattern")
        if pattern is not None:
            if not isinstance(pattern, str):
                raise TestServerError(f"{at}: 'pattern' is a str, not {type(pattern).__name__}")
            try:
                re.compile(pattern)
            except re.error as e:
                raise TestServerError(
                    f"{at}: 'pattern' {pattern!r} does not compile: {e}"
                ) from None
        _check_answers(entry, at)
        checked.append(entry)
    return checked


def _check_answers(entry: Mapping[str, Any], where: str) -> None:
    for slot in ("response", "response_once"):
        values = entry.get(slot, {})
        if not isinstance(values, dict):
            raise TestServerError(
                f"{where}: {slot!r} is an object of response keys, not {type(values).__name__}"
            )
    queue = entry.get("queue", [])
    if not isinstance(queue, list) or not all(isinstance(answer, dict) for answer in queue):
        raise TestServerError(f"{where}: 'queue' is a list of objects of response keys")


def _answer(target: Any, entry: Mapping[str, Any], where: str, *, server: bool) -> None:
    """Set ``entry``'s answers on ``target`` (the server or one of its routes)."""
    try:
        for slot in ("response", "response_once"):
            view = getattr(target, slot)
            for key, value in entry.get(slot, {}).items():
                view[key] = value
    except TestServerError as e:
        raise TestServerError(f"{where}: {e}") from None
    for number, answer in enumerate(entry.get("queue", [])):
        values = dict(answer)
        count = values.pop("count", 1)
        if server:
            values.setdefault("method", None)
        try:
            target.add_response(count=count, **values)
        except (TestServerError, TypeError) as e:
            raise TestServerError(f"{where}: 'queue'[{number}]: {e}") from None


def load_routes(server: ServerCore, source: str | Path | Mapping[str, Any]) -> list[Route]:
    """
    Add the routes and answers of a routes document to ``server``.

    :param server: a server of any face or engine.
    :param source: the file (JSON, or TOML by its suffix), or the document
        itself as a dict.
    :return: the routes added, in the document's order.
    :raise TestServerError: the document is malformed or a value can never
        work; the message names the file, the entry and the name, and no
        route of the document is left on the server.
    """
    if isinstance(source, Mapping):
        document, where = source, "the routes document"
    else:
        document, where = read_document(source), f"routes file {str(source)!r}"
    entries = _check_shape(document, where)
    added: list[Route] = []
    try:
        for number, entry in enumerate(entries):
            at = f"{where}: routes[{number}]"
            conditions = {name: entry[name] for name in CONDITION_NAMES if name in entry}
            pattern = conditions.pop("pattern", None)
            path = re.compile(pattern) if pattern is not None else conditions.pop("path", None)
            try:
                route = server.route(path, **conditions)
            except TestServerError as e:
                raise TestServerError(f"{at}: {e}") from None
            added.append(route)
            _answer(route, entry, at, server=False)
        _answer(server, document, where, server=True)
    except BaseException:
        for route in added:
            route.remove()
        raise
    return added
