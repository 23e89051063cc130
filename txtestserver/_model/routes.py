"""
What a route matches: its conditions, as plain data.

A route's conditions (``when``) are a dict of condition kind -> value, made
and checked in the test process by :func:`conditions` and matched in the
server (either engine) by :func:`matches`. Each kind is one entry of
:data:`CONDITIONS`: the function that says whether a request meets it. The
values are plain data (str, bytes, lists and dicts of them, JSON data), so
they cross to a server process as they are; a compiled pattern crosses as
its source and flags.

A request is looked at through :class:`Facts`, which parses only what the
conditions ask for (a route on the path alone never parses headers or body).
Nothing here knows HTTP or Twisted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any
from urllib.parse import unquote_to_bytes

from multidict import CIMultiDict, MultiDict

from .._errors import TestServerError
from .keys import json_data
from .record import (
    BODY,
    HEADERS,
    METHOD,
    URI,
    Record,
    body_fields,
    parse_headers,
    parse_json,
    parse_query,
)

__all__ = ["CONDITIONS", "Facts", "conditions", "describe", "matches"]

#: Routes decode the path, the query and form fields with this charset
#: (``request['charset']`` is a setting of the test process, which the
#: server process does not see).
ROUTE_CHARSET = "utf-8"

#: What :attr:`Facts.json` is when the body is not JSON (JSON's ``null`` is
#: None, so None cannot say it).
NOT_JSON = object()


class Facts:
    """
    One request as the conditions see it, each part parsed on first use.

    :param record: the request as recorded.
    """

    def __init__(self, record: Record) -> None:
        self._record = record

    @cached_property
    def path(self) -> str:
        """The decoded path, without the query."""
        raw = self._record[URI].partition(b"?")[0]
        return unquote_to_bytes(raw).decode(ROUTE_CHARSET, "replace")

    @cached_property
    def method(self) -> str:
        """The method, upper case."""
        return self._record[METHOD].decode("latin-1").upper()

    @cached_property
    def query(self) -> MultiDict[str]:
        """The query string's fields."""
        return parse_query(self._record[URI].partition(b"?")[2], ROUTE_CHARSET)

    @cached_property
    def headers(self) -> CIMultiDict[str]:
        """The headers (names case-insensitive)."""
        return parse_headers(self._record[HEADERS], ROUTE_CHARSET)

    @property
    def body(self) -> bytes:
        """The body as received (cut at the server's body limit)."""
        return self._record[BODY]

    @cached_property
    def form(self) -> MultiDict[str]:
        """The fields of an urlencoded or multipart body (not the query's)."""
        fields = MultiDict[str]()
        body_fields(self.headers, self.body, ROUTE_CHARSET, fields, {})
        return fields

    @cached_property
    def json(self) -> Any:
        """The body parsed as JSON, or :data:`NOT_JSON`."""
        if not self.body:
            return NOT_JSON
        value = parse_json(self.body)
        if value is None and self.body.strip() != b"null":
            return NOT_JSON
        return value


# -- matching -----------------------------------------------------------------------------


def _includes(found: MultiDict[str] | CIMultiDict[str], wanted: Mapping[str, Any]) -> bool:
    """
    ``wanted`` is a subset of ``found``: a str value must be one of the
    values of its name; a list must be all the values of its name, in order.
    """
    for name, value in wanted.items():
        values = found.getall(name, [])
        if isinstance(value, list):
            if values != value:
                return False
        elif value not in values:
            return False
    return True


def _pattern(value: list[Any], facts: Facts) -> bool:
    source, flags = value
    return re.compile(source, flags).fullmatch(facts.path) is not None


#: Condition kind -> ``match(value, facts)``, cheapest first: a request is
#: tested against a route's conditions in this order and the first that
#: fails ends the test.
CONDITIONS: dict[str, Callable[[Any, Facts], bool]] = {
    "path": lambda value, facts: facts.path == value,
    "pattern": _pattern,
    "method": lambda value, facts: facts.method == value,
    "query": lambda value, facts: _includes(facts.query, value),
    "headers": lambda value, facts: _includes(facts.headers, value),
    "data": lambda value, facts: facts.body == value,
    "form": lambda value, facts: _includes(facts.form, value),
    "json": lambda value, facts: facts.json == value and facts.json is not NOT_JSON,
}


def matches(when: Mapping[str, Any], facts: Facts) -> bool:
    """Whether a request meets every condition of ``when``."""
    for kind, value in when.items():
        if not CONDITIONS[kind](value, facts):
            return False
    return True


# -- making (test process) ----------------------------------------------------------------


def conditions(
    path: str | re.Pattern[str] | None,
    *,
    method: str | None = None,
    query: Mapping[str, Any] | None = None,
    headers: Mapping[str, Any] | None = None,
    json: Any = None,
    form: Mapping[str, Any] | None = None,
    data: bytes | str | None = None,
) -> dict[str, Any]:
    """
    Check a route's conditions and make them plain data.

    The parameters are those of ``server.route()``; None means "any".

    :return: condition kind -> value, in the order of :data:`CONDITIONS`.
    :raise TestServerError: a condition can never hold or cannot cross to a
        server process; the message says which and why.
    """
    given: dict[str, Any] = {}
    if isinstance(path, re.Pattern):
        if not isinstance(path.pattern, str):
            raise TestServerError(
                "route patterns match the decoded path, a str: compile a str pattern, "
                f"not {path.pattern!r}"
            )
        given["pattern"] = [path.pattern, path.flags]
    elif isinstance(path, str):
        if not path.startswith("/"):
            raise TestServerError(f"a route path starts with '/': {path!r}")
        if "?" in path:
            raise TestServerError(
                f"a route path has no query ({path!r}): match the query with query={{...}}"
            )
        given["path"] = path
    elif path is not None:
        raise TestServerError(
            "a route path is a str ('/api/token'), a compiled pattern "
            f"(re.compile(r'/items/\\d+')) or None (any path), not {path!r}"
        )
    if method is not None:
        if not isinstance(method, str) or not method.isalpha():
            raise TestServerError(f"a route method is a name such as 'POST', not {method!r}")
        given["method"] = method.upper()
    if query is not None:
        given["query"] = _fields("query", query)
    if headers is not None:
        given["headers"] = _fields("headers", headers)
    if data is not None:
        if isinstance(data, str):
            data = data.encode("utf-8")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TestServerError(f"route data is the exact body, bytes or str, not {data!r}")
        given["data"] = bytes(data)
    if form is not None:
        given["form"] = _fields("form", form)
    if json is not None:
        given["json"] = json_data("route json", json)
    return {kind: given[kind] for kind in CONDITIONS if kind in given}


def _fields(what: str, value: Any) -> dict[str, Any]:
    """``{name: str or list of str}``, checked."""
    if not isinstance(value, Mapping):
        raise TestServerError(f"route {what} is a dict of name -> value, not {value!r}")
    result: dict[str, Any] = {}
    for name, item in value.items():
        if not isinstance(name, str) or not name:
            raise TestServerError(f"route {what}: names are non-empty str, not {name!r}")
        if isinstance(item, (list, tuple)):
            if not all(isinstance(one, str) for one in item):
                raise TestServerError(f"route {what}[{name!r}]: the values are str: {item!r}")
            result[name] = list(item)
        elif isinstance(item, str):
            result[name] = item
        else:
            raise TestServerError(
                f"route {what}[{name!r}] is a str, or a list of str for a repeated name, "
                f"not {item!r}"
            )
    return result


def describe(when: Mapping[str, Any]) -> str:
    """A route's conditions in a line (``POST /api/token query={'q': 'x'}``)."""
    parts = [when.get("method", "*")]
    if "path" in when:
        parts.append(when["path"])
    elif "pattern" in when:
        parts.append(f"re{when['pattern'][0]!r}")
    else:
        parts.append("<any path>")
    parts.extend(f"{kind}={value!r}" for kind, value in when.items() if kind in _EXTRA)
    return " ".join(parts)


_EXTRA = ("query", "headers", "data", "form", "json")
