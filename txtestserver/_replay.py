"""
A recorded conversation served again: ``server.load_har(path)`` (and
``txtestserver --har FILE``) turns the entries of a HAR file into routes.

Entries whose requests are the same under the chosen matchers (``match_on``,
as vcrpy names them) become one route, whose answer queue holds their
recorded answers in the order they were recorded: repeated requests take
them in sequence, and the last one answers every request after it. The
routes go through :func:`~txtestserver._routes_file.load_routes` as one
routes document, so a file that cannot serve leaves no route behind, and
they are data only, so they serve both engines. A request no entry matches
is answered ``404`` naming the closest entry, and recorded as a server-side
error (``server.check()``, the pytest fixtures), as for any server with
routes.

The matchers are a registry (:data:`MATCHERS`): each makes the route
conditions of one part of a recorded request.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import unquote, urlsplit

from ._errors import TestServerError

if TYPE_CHECKING:
    from ._core import ServerCore
    from ._route import Route

__all__ = [
    "HAR",
    "MATCHERS",
    "MODES",
    "Format",
    "Recording",
    "answer_of",
    "check_replay",
    "har_routes",
    "load_entries",
    "read_har",
]

#: The record modes, as pytest-recording names them.
MODES = ("none", "once", "new_episodes", "all")

#: Request headers no matcher compares: they change with the server, the
#: connection or the client's framing, not with what the client asks.
UNMATCHED_HEADERS = frozenset(
    {"host", "content-length", "connection", "keep-alive", "transfer-encoding", "te"}
)
#: Response headers a replayed answer does not repeat: the server writes its
#: own framing and date, and a HAR holds the body decoded (no
#: ``Content-Encoding`` applies to it).
UNREPLAYED_HEADERS = frozenset(
    {"content-length", "transfer-encoding", "connection", "keep-alive", "date", "content-encoding"}
)


def _url(request: Mapping[str, Any]) -> tuple[str, str]:
    parts = urlsplit(request["url"])
    return unquote(parts.path or "/"), parts.query


def _fields(
    pairs: Iterable[Mapping[str, Any]], skip: frozenset[str] = frozenset()
) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for pair in pairs:
        name = str(pair["name"])
        if name.lower() not in skip:
            fields.setdefault(name, []).append(str(pair.get("value", "")))
    return fields


def _method(request: Mapping[str, Any]) -> dict[str, Any]:
    return {"method": str(request["method"]).upper()}


def _path(request: Mapping[str, Any]) -> dict[str, Any]:
    return {"path": _url(request)[0]}


def _query(request: Mapping[str, Any]) -> dict[str, Any]:
    fields = _fields(request.get("queryString", []))
    return {"query": fields} if fields else {}


def _whole_url(request: Mapping[str, Any]) -> dict[str, Any]:
    return {**_path(request), **_query(request)}


def _body(request: Mapping[str, Any]) -> dict[str, Any]:
    return {"data": request_body(request)}


def _headers(request: Mapping[str, Any]) -> dict[str, Any]:
    fields = _fields(request.get("headers", []), UNMATCHED_HEADERS)
    return {"headers": fields} if fields else {}


#: The matchers of ``match_on``: each gives the route conditions that a
#: replayed request must meet for that part of the recorded one. ``url`` is
#: the path and the query (the host is this server's); ``query`` and
#: ``headers`` require the recorded fields (extra ones pass); ``body`` the
#: exact body.
MATCHERS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "method": _method,
    "url": _whole_url,
    "path": _path,
    "query": _query,
    "body": _body,
    "headers": _headers,
}


def request_body(request: Mapping[str, Any]) -> bytes:
    """The body of a HAR request (``postData``; base64 when its comment says so)."""
    post = request.get("postData")
    if not post:
        return b""
    text = str(post.get("text", ""))
    if post.get("comment") == "base64" or post.get("encoding") == "base64":
        return base64.b64decode(text)
    return text.encode("utf-8")


def answer_of(response: Mapping[str, Any], entry: Mapping[str, Any]) -> dict[str, Any]:
    """
    The response keys that answer as ``response`` (a HAR response) did:
    its status, headers (less :data:`UNREPLAYED_HEADERS`) and body; a
    recorded fault (``_fault``) is carried out again, and a body recorded in
    pieces (``_chunks``: ``[seconds after the one before, size]`` each, a
    forwarded stream's) is sent in the same pieces at the same pace.
    """
    fault = entry.get("_fault")
    if fault is not None:
        return {"fault": fault}
    content = response.get("content", {})
    text = str(content.get("text", ""))
    body = base64.b64decode(text) if content.get("encoding") == "base64" else text.encode("utf-8")
    answer: dict[str, Any] = {
        "code": int(response.get("status") or 200),
        "headers": [
            [str(pair["name"]), str(pair.get("value", ""))]
            for pair in response.get("headers", [])
            if str(pair["name"]).lower() not in UNREPLAYED_HEADERS
        ],
    }
    pieces = entry.get("_chunks") or []
    if len(pieces) > 1 and sum(int(size) for _, size in pieces) == len(body):
        chunks, offset = [], 0
        for _, size in pieces:
            chunks.append(body[offset : offset + int(size)])
            offset += int(size)
        answer["chunks"] = chunks
        answer["chunk_times"] = [float(seconds) for seconds, _ in pieces]
    elif body:
        answer["data"] = body
    return answer


def read_har(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """
    The entries of a HAR file.

    :raise TestServerError: the file cannot be read, is not JSON or holds no
        ``log.entries`` list (the message names it).
    """
    where = f"the HAR file {os.fspath(path)!r}"
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise TestServerError(f"cannot read {where}: {e}") from None
    except ValueError as e:
        raise TestServerError(f"{where} is not valid JSON: {e}") from None
    entries = document.get("log", {}).get("entries") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise TestServerError(f"{where} holds no log.entries list: is it a HAR file?")
    return entries


def check_replay(mode: str, match_on: Sequence[str]) -> tuple[str, ...]:
    """
    Check ``mode`` and ``match_on``; the matchers as a tuple.

    :raise TestServerError: an unknown mode or matcher (the message lists them).
    """
    if mode not in MODES:
        raise TestServerError(f"mode is one of {', '.join(MODES)}, not {mode!r}")
    if isinstance(match_on, str):
        match_on = (match_on,)
    unknown = [name for name in match_on if name not in MATCHERS]
    if unknown:
        raise TestServerError(
            f"match_on names {', '.join(map(repr, unknown))}: the matchers are "
            f"{', '.join(MATCHERS)}"
        )
    return tuple(match_on)


def _origin(request: Mapping[str, Any]) -> dict[str, Any]:
    """The host and port a request was meant for (a proxy replays by them), if its URL names one."""
    parts = urlsplit(request["url"])
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return {}
    return {"host": parts.hostname, "port": parts.port or (443 if parts.scheme == "https" else 80)}


def har_routes(
    entries: Sequence[Mapping[str, Any]], match_on: Sequence[str], by_host: bool = False
) -> list[dict[str, Any]]:
    """
    The routes document's ``routes`` for ``entries``: one route per distinct
    request under ``match_on``, its queue the recorded answers in order
    (the last one answers every request after it). Routes with more
    conditions come later, so they win over the ones they refine (a route
    registered later answers first).

    :param by_host: each route also wants the host and port of its entry's
        URL (a proxy replays: two hosts may serve the same path). A
        ``CONNECT`` is left out: the proxy answers it itself.
    """
    groups: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
    for number, entry in enumerate(entries):
        try:
            request, response = entry["request"], entry["response"]
            if by_host and str(request["method"]).upper() == "CONNECT":
                continue
            conditions: dict[str, Any] = _origin(request) if by_host else {}
            for name in match_on:
                conditions.update(MATCHERS[name](request))
            answer = answer_of(response, entry)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise TestServerError(
                f"HAR entry {number} is not a request and response: {e!r}"
            ) from None
        key = json.dumps(conditions, sort_keys=True, default=repr)
        groups.setdefault(key, (conditions, []))[1].append(answer)
    routes = []
    for conditions, answers in groups.values():
        queue = [{**answer, "count": 1} for answer in answers]
        queue[-1]["count"] = -1
        route = dict(conditions)
        route["name"] = "recorded " + _name(conditions)
        route["queue"] = queue
        routes.append(route)
    routes.sort(key=_specificity)
    return routes


def _name(conditions: Mapping[str, Any]) -> str:
    query = conditions.get("query")
    target = conditions.get("path", "*")
    if query:
        target += "?" + "&".join(f"{k}={v}" for k, values in query.items() for v in values)
    if "host" in conditions:
        target = f"{conditions['host']}:{conditions['port']}{target}"
    return f"{conditions.get('method', '*')} {target}"


def _specificity(route: Mapping[str, Any]) -> int:
    return sum(len(route.get(name) or ()) for name in ("query", "headers")) + ("data" in route)


class Format(NamedTuple):
    """
    A kind of recording file: a HAR file, or a vcrpy cassette
    (:mod:`txtestserver._cassette`).

    :ivar name: how messages name it.
    :ivar read: its entries, as HAR entries.
    :ivar write: a HAR document written as this kind of file.
    """

    name: str
    read: Callable[[str | os.PathLike[str]], list[dict[str, Any]]]
    write: Callable[[dict[str, Any], Path], Path]


def _write_har(document: dict[str, Any], path: Path) -> Path:
    from ._har import write_har

    return write_har(document, path)


#: HAR files (``load_har``).
HAR = Format("HAR file", read_har, _write_har)


def load_entries(
    server: ServerCore, entries: Sequence[Mapping[str, Any]], match_on: Sequence[str]
) -> list[Route]:
    """
    Add the routes that replay HAR ``entries`` to ``server``.

    :return: the routes added.
    """
    from ._routes_file import load_routes

    return load_routes(server, {"routes": har_routes(entries, match_on, server.config.proxy)})


class Recording:
    """
    A file being recorded (``load_har`` or ``load_cassette`` in mode
    ``once``, ``new_episodes`` or ``all``): the entries it keeps from
    before, then the exchanges forwarded since, written at ``stop()``,
    ``reset()`` or ``save_har()``.

    :param path: the file.
    :param kept: its entries kept from before (``new_episodes``), else none.
    :param kind: what kind of file it is.
    """

    def __init__(self, path: Path, kept: list[dict[str, Any]], kind: Format = HAR) -> None:
        self.path = path
        self.kept = kept
        self.kind = kind

    def save(self, document: dict[str, Any]) -> Path:
        """
        Write the kept entries and the forwarded ones of ``document`` (the
        server's journal as HAR, redacted) to the file.
        """
        log = document["log"]
        forwarded = [entry for entry in log["entries"] if "_forwarded" in entry]
        return self.kind.write({"log": {**log, "entries": self.kept + forwarded}}, self.path)
