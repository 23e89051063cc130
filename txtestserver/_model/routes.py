"""
What a route matches: its conditions, as plain data.

A route's conditions (``when``) are a dict of condition kind -> value, made
and checked in the test process by :func:`conditions` and matched in the
server (either engine) by :func:`matches`. Each kind is one
:class:`Condition` of the registry :data:`CONDITIONS` (one :func:`register`
call, as hyperlink registers a scheme): how its value is checked, how a
request meets it, how a request that misses it differs from it (strict
mode's words), how it is shown in a route's name, and when one value of it
covers another (a route that can never answer). :func:`conditions`,
:func:`matches`, :func:`describe`, :func:`shadows` and
:mod:`~txtestserver._model.strict` all read the registry. Only the
request line's kinds (``path``, ``pattern``, ``method``) are named
elsewhere: :func:`describe` shows them first, the route index looks routes
up by them, and strict mode ranks a route that shares them as closer. A new
kind is one :func:`register` call. The values are plain data (str, bytes, lists and dicts of
them, JSON data), so they cross to a server process as they are; a compiled
pattern crosses as its source and flags.

A request is looked at through :class:`Facts`, which parses only what the
conditions ask for (a route on the path alone never parses headers or body).
Nothing here knows HTTP or Twisted.
"""

from __future__ import annotations

import difflib
import json as jsonlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any
from urllib.parse import unquote_to_bytes

from multidict import CIMultiDict, MultiDict

from .._errors import TestServerError
from .keys import json_data
from .record import (
    BODY,
    HEADERS,
    HOST,
    METHOD,
    SCHEME,
    URI,
    VIA,
    Record,
    body_fields,
    parse_headers,
    parse_json,
    parse_query,
    split_authority,
)

__all__ = [
    "CONDITIONS",
    "Condition",
    "Facts",
    "conditions",
    "describe",
    "matches",
    "register",
    "same_json",
    "shadows",
]

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

    @property
    def scheme(self) -> str:
        """The scheme the client meant (``''`` for a ``CONNECT``)."""
        return self._record[VIA][SCHEME]

    @cached_property
    def _authority(self) -> tuple[str | None, int | None]:
        return split_authority(self._record[VIA][HOST], self._record[VIA][SCHEME])

    @property
    def host(self) -> str:
        """The host the client meant, lower case (``''`` when it named none)."""
        return self._authority[0] or ""

    @property
    def port(self) -> int | None:
        """The port the client meant (the scheme's when it named none)."""
        return self._authority[1]

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


# -- the registry --------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """
    One kind of route condition: everything about it, in one place.

    :ivar name: the kind: its key in a route's conditions and, when
        ``keyword`` is true, the keyword of ``server.route()`` that gives it.
    :ivar check: ``check(value) -> data``: the value a test gives, checked
        and made plain data (it crosses to a server process); raises
        :class:`~txtestserver.TestServerError` saying what to give instead.
    :ivar match: ``match(data, facts) -> bool``: the request meets it.
    :ivar differ: ``differ(data, facts) -> [str]``: how a request that
        misses it differs from it, in words (strict mode's 404, the
        unrouted 404); called only when ``match`` is false.
    :ivar show: ``show(data) -> str``: the condition in a route's name
        (``query={'q': 'x'}``).
    :ivar covers: ``covers(data, other) -> bool``: every request that meets
        the conditions ``other`` (a route's ``when``) meets this one; False
        when unsure. A route whose conditions all cover an older route's
        makes the older one unreachable (:func:`shadows`).
    :ivar keyword: given as a keyword of ``server.route()``; false for
        ``pattern``, which is the ``path`` argument given as a compiled
        pattern.
    """

    name: str
    check: Callable[[Any], Any]
    match: Callable[[Any, Facts], bool]
    differ: Callable[[Any, Facts], list[str]]
    show: Callable[[Any], str]
    covers: Callable[[Any, Mapping[str, Any]], bool]
    keyword: bool = True


#: Condition kind -> its :class:`Condition`, cheapest first: a request is
#: tested against a route's conditions in this order and the first that
#: fails ends the test.
CONDITIONS: dict[str, Condition] = {}


def register(
    name: str,
    *,
    check: Callable[[Any], Any],
    match: Callable[[Any, Facts], bool],
    differ: Callable[[Any, Facts], list[str]],
    covers: Callable[[Any, Mapping[str, Any]], bool],
    show: Callable[[Any], str] | None = None,
    keyword: bool = True,
) -> Condition:
    """
    Add a kind of route condition to :data:`CONDITIONS` (after the others:
    register the cheap ones first); return it. ``show`` defaults to
    ``name=value``. The fields are those of :class:`Condition`.
    """
    if show is None:
        show = lambda value: f"{name}={value!r}"  # noqa: E731
    condition = CONDITIONS[name] = Condition(name, check, match, differ, show, covers, keyword)
    return condition


def matches(when: Mapping[str, Any], facts: Facts) -> bool:
    """Whether a request meets every condition of ``when``."""
    for kind, value in when.items():
        if not CONDITIONS[kind].match(value, facts):
            return False
    return True


def shadows(newer: Mapping[str, Any], older: Mapping[str, Any]) -> bool:
    """
    Whether a route with the conditions ``newer``, registered after one with
    ``older``, answers every request the older one matches, so that the
    older one can never answer (the most recent match wins). Identical
    conditions are not counted: registering them again replaces a route on
    purpose (a test overriding a fixture's route).
    """
    if dict(newer) == dict(older):
        return False
    return all(CONDITIONS[kind].covers(value, older) for kind, value in newer.items())


# -- making (test process) ----------------------------------------------------------------


def conditions(
    path: str | re.Pattern[str] | None, *, face: str = "route()", **given: Any
) -> dict[str, Any]:
    """
    Check a route's conditions and make them plain data.

    :param path: the ``path`` argument of ``server.route()``: a str (the
        ``path`` condition), a compiled pattern (``pattern``) or None (any).
    :param face: names the public method in messages
        (``'TestServer.route()'``).
    :param given: the other conditions, by name (:data:`CONDITIONS`); None
        means "any".
    :return: condition kind -> value, in the order of :data:`CONDITIONS`.
    :raise TestServerError: a condition can never hold, cannot cross to a
        server process, or has no such name; the message says which and why.
    """
    when: dict[str, Any] = {}
    if path is not None:
        kind = "pattern" if isinstance(path, re.Pattern) else "path"
        when[kind] = CONDITIONS[kind].check(path)
    for name, value in given.items():
        condition = CONDITIONS.get(name)
        if condition is None or not condition.keyword:
            raise TestServerError(_unknown(face, name))
        if value is not None:
            when[name] = condition.check(value)
    return {kind: when[kind] for kind in CONDITIONS if kind in when}


def _unknown(face: str, name: str) -> str:
    """The message for a keyword of ``route()`` that is no condition."""
    known = ["path", *(c.name for c in CONDITIONS.values() if c.keyword and c.name != "path")]
    close = difflib.get_close_matches(name, [*known, "name"], n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return (
        f"{face} got an unexpected keyword argument {name!r}{hint}: its conditions are "
        f"{', '.join(known)}, and name= names the route"
    )


def describe(when: Mapping[str, Any]) -> str:
    """
    A route's conditions in a line, as a request line starts, then the other
    conditions: ``POST /api/token query={'q': 'x'}`` (``*`` is any method,
    ``<any path>`` any path).
    """
    shown = {kind: CONDITIONS[kind].show(value) for kind, value in when.items()}
    method = shown.pop("method", "*")
    target = shown.pop("path", None) or shown.pop("pattern", None) or "<any path>"
    return " ".join([method, target, *shown.values()])


# -- the conditions ---------------------------------------------------------------------

#: Characters of a value quoted in a message.
_QUOTED = 60


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    if isinstance(value, (dict, list)):
        text = jsonlib.dumps(value, sort_keys=True)
    return text if len(text) <= _QUOTED else text[: _QUOTED - 3] + "..."


def _check_path(path: Any) -> str:
    if not isinstance(path, str):
        raise TestServerError(
            "a route path is a str ('/api/token'), a compiled pattern "
            f"(re.compile(r'/items/\\d+')) or None (any path), not {path!r}"
        )
    if not path.startswith("/"):
        raise TestServerError(f"a route path starts with '/': {path!r}")
    if "?" in path:
        raise TestServerError(
            f"a route path has no query ({path!r}): match the query with query={{...}}"
        )
    return path


def _check_pattern(path: re.Pattern[Any]) -> list[Any]:
    if not isinstance(path.pattern, str):
        raise TestServerError(
            "route patterns match the decoded path, a str: compile a str pattern, "
            f"not {path.pattern!r}"
        )
    return [path.pattern, path.flags]


@lru_cache(maxsize=4096)
def _compile(source: str, flags: int) -> re.Pattern[str]:
    """
    A pattern compiled once (``re`` caches 512: a table of thousands would
    compile one per use). The route index keeps its own; this serves the
    words for a request nothing expects, which try every route.
    """
    return re.compile(source, flags)


def _pattern(value: list[Any], facts: Facts) -> bool:
    return _compile(*value).fullmatch(facts.path) is not None


def _pattern_covers(value: list[Any], other: Mapping[str, Any]) -> bool:
    if "pattern" in other:
        return list(other["pattern"]) == list(value)
    if "path" in other:
        return _compile(*value).fullmatch(other["path"]) is not None
    return False


def _check_method(method: Any) -> str:
    if not isinstance(method, str) or not method.isalpha():
        raise TestServerError(f"a route method is a name such as 'POST', not {method!r}")
    return method.upper()


def _check_data(data: Any) -> bytes:
    if isinstance(data, str):
        data = data.encode("utf-8")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TestServerError(f"route data is the exact body, bytes or str, not {data!r}")
    return bytes(data)


def _fields(what: str) -> Callable[[Any], dict[str, Any]]:
    """The check of ``{name: str or list of str}`` conditions (``query``, ...)."""

    def check(value: Any) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise TestServerError(f"route {what} is a dict of name -> value, not {value!r}")
        result: dict[str, Any] = {}
        for name, item in value.items():
            if not isinstance(name, str) or not name:
                raise TestServerError(f"route {what}: names are non-empty str, not {name!r}")
            if isinstance(item, (list, tuple)):
                result[name] = [_field(what, name, one) for one in item]
            else:
                result[name] = _field(what, name, item)
        return result

    return check


def _field(what: str, name: str, item: Any) -> str:
    """One field value: a str, or an int as its digits (``page=2`` is ``'2'``)."""
    if isinstance(item, str):
        return item
    if isinstance(item, int) and not isinstance(item, bool):
        return str(item)
    raise TestServerError(
        f"route {what}[{name!r}] is a str (or an int, matched as its digits), or a list "
        f"of them for a repeated name, not {item!r}"
    )


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


def _fields_differ(what: str, found: Any, wanted: Mapping[str, Any]) -> list[str]:
    """How ``found`` (a MultiDict) misses the ``wanted`` fields."""
    differences = []
    for name, value in wanted.items():
        values = found.getall(name, [])
        if values == value if isinstance(value, list) else value in values:
            continue
        if not values:
            differences.append(f"no {what} {name!r} (the route wants {_short(value)!r})")
        else:
            shown = values[0] if len(values) == 1 else values
            differences.append(
                f"{what} {name}={_short(shown)!r} (the route wants {_short(value)!r})"
            )
    return differences


def _fields_cover(kind: str, fold: Callable[[str], str] = str) -> Callable[..., bool]:
    """
    ``covers`` of a fields condition: each wanted field is wanted by the
    other route too (the same list; or a str the other wants, or one of
    the values of its list). ``fold``: how names compare.
    """

    def covers(value: Mapping[str, Any], other: Mapping[str, Any]) -> bool:
        theirs = {fold(name): item for name, item in other.get(kind, {}).items()}
        for name, item in value.items():
            their = theirs.get(fold(name))
            if their is None:
                return False
            if isinstance(item, list):
                if their != item:
                    return False
            elif item != their and not (isinstance(their, list) and item in their):
                return False
        return True

    return covers


def same_json(a: Any, b: Any) -> bool:
    """
    JSON equality by type as well as value, nested: ``true`` is not ``1`` and
    ``false`` is not ``0`` (Python's ``==`` says they are); numbers compare
    by value (``1`` is ``1.0``: JSON has one number type).
    """
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[key], b[key]) for key in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b  # str, None


def _json(value: Any, facts: Facts) -> bool:
    found = facts.json
    return found is not NOT_JSON and same_json(found, value)


def _json_differ(value: Any, facts: Facts) -> list[str]:
    if facts.json is NOT_JSON:
        return [f"a body that is not JSON (the route wants the JSON {_short(value)})"]
    return [f"the JSON body {_short(facts.json)} (the route wants {_short(value)})"]


def _same(kind: str) -> Callable[[Any, Mapping[str, Any]], bool]:
    """``covers`` of a condition that holds for one value only."""
    return lambda value, other: kind in other and other[kind] == value


register(
    "path",
    check=_check_path,
    match=lambda value, facts: facts.path == value,
    differ=lambda value, facts: [f"path {facts.path!r} (the route wants {value!r})"],
    show=str,
    covers=_same("path"),
)
register(
    "pattern",
    check=_check_pattern,
    match=_pattern,
    differ=lambda value, facts: [
        f"path {facts.path!r} does not match the route's pattern {value[0]!r}"
    ],
    show=lambda value: f"re{value[0]!r}",
    covers=_pattern_covers,
    keyword=False,
)
register(
    "method",
    check=_check_method,
    match=lambda value, facts: facts.method == value,
    differ=lambda value, facts: [f"method {facts.method} (the route wants {value})"],
    show=str,
    covers=_same("method"),
)


def _check_host(host: Any) -> str | list[Any]:
    if isinstance(host, re.Pattern):
        if not isinstance(host.pattern, str):
            raise TestServerError(f"a route host pattern is a str pattern, not {host.pattern!r}")
        return [host.pattern, host.flags | re.IGNORECASE]
    if not isinstance(host, str) or not host or any(c in host for c in "/@ "):
        raise TestServerError(
            "a route host is a host name or address such as 'api.example.com', or a "
            f"compiled pattern (re.compile(r'.*\\.example\\.com')), not {host!r}"
        )
    if host.startswith("["):
        host = host[1:].rstrip("]")
    elif host.count(":") == 1:
        raise TestServerError(
            f"a route host has no port ({host!r}): give the port as port={host.partition(':')[2]}"
        )
    return str(host).lower()


def _host(value: str | list[Any], facts: Facts) -> bool:
    if isinstance(value, str):
        return facts.host == value
    return _compile(*value).fullmatch(facts.host) is not None


def _host_shown(value: str | list[Any]) -> str:
    return f"host={value!r}" if isinstance(value, str) else f"host=re{value[0]!r}"


def _host_covers(value: str | list[Any], other: Mapping[str, Any]) -> bool:
    theirs = other.get("host")
    if theirs is None:
        return False
    if isinstance(value, str) or not isinstance(theirs, str):
        return bool(theirs == value)
    return _compile(*value).fullmatch(theirs) is not None


def _check_scheme(scheme: Any) -> str:
    if scheme not in ("http", "https"):
        raise TestServerError(f"a route scheme is 'http' or 'https', not {scheme!r}")
    return str(scheme)


def _check_port(port: Any) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise TestServerError(f"a route port is an int from 1 to 65535, not {port!r}")
    return port


register(
    "host",
    check=_check_host,
    match=_host,
    differ=lambda value, facts: [
        f"host {facts.host or '(none)'!r} (the route wants {_host_shown(value)[5:]})"
    ],
    show=_host_shown,
    covers=_host_covers,
)
register(
    "scheme",
    check=_check_scheme,
    match=lambda value, facts: facts.scheme == value,
    differ=lambda value, facts: [
        f"scheme {facts.scheme or '(none)'!r} (the route wants {value!r})"
    ],
    covers=_same("scheme"),
)
register(
    "port",
    check=_check_port,
    match=lambda value, facts: facts.port == value,
    differ=lambda value, facts: [f"port {facts.port} (the route wants {value})"],
    covers=_same("port"),
)
register(
    "query",
    check=_fields("query"),
    match=lambda value, facts: _includes(facts.query, value),
    differ=lambda value, facts: _fields_differ("query field", facts.query, value),
    covers=_fields_cover("query"),
)
register(
    "headers",
    check=_fields("headers"),
    match=lambda value, facts: _includes(facts.headers, value),
    differ=lambda value, facts: _fields_differ("header", facts.headers, value),
    covers=_fields_cover("headers", str.lower),
)
register(
    "data",
    check=_check_data,
    match=lambda value, facts: facts.body == value,
    differ=lambda value, facts: [
        f"a body of {len(facts.body)} bytes, {_short(facts.body)} "
        f"(the route wants exactly {_short(value)})"
    ],
    covers=_same("data"),
)
register(
    "form",
    check=_fields("form"),
    match=lambda value, facts: _includes(facts.form, value),
    differ=lambda value, facts: _fields_differ("form field", facts.form, value),
    covers=_fields_cover("form"),
)
register(
    "json",
    check=lambda value: json_data("route json", value),
    match=_json,
    differ=_json_differ,
    covers=lambda value, other: "json" in other and same_json(other["json"], value),
)
