"""
The journal as HAR 1.2 (``server.requests.to_har()``, ``server.save_har()``):
one entry per recorded request, with what the client sent and what the
server actually sent back, for a HAR viewer (a browser's devtools) or for
:meth:`~txtestserver.TestServer.load_har` to replay.

It reads the journal's flat entries (:mod:`txtestserver._model.record`)
directly, not the parsed ``server.request`` dicts: 10,000 requests export in
well under a second. Fields HAR does not have are kept in its ``_``-prefixed
custom fields: ``_route`` (the route that answered), ``_fault`` and
``_aborted`` (what a fault or ``stop()`` did to the answer) and, for a
WebSocket handshake, ``_webSocketMessages`` (the field Chromium's devtools
write and read).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from http import HTTPStatus
from pathlib import Path
from typing import Any

from ._model.record import (
    ABORTED,
    ANSWER_TIME,
    BODY,
    CODE,
    CONNECTION,
    FAULT,
    FORWARDED,
    HEADERS,
    HOST,
    HTTP_VERSION,
    METHOD,
    PROXY,
    RESPONSE_BODY,
    RESPONSE_HEADERS,
    RESPONSE_SIZE,
    ROUTE,
    SCHEME,
    SENT,
    TIME,
    URI,
    VIA,
    WEBSOCKET,
    Entry,
)
from ._version import __version__

__all__ = ["DEFAULT_REDACTED", "REDACTED", "Origin", "har_document", "redact", "write_har"]

#: What ``server.forward()`` redacts unless told otherwise.
DEFAULT_REDACTED = ("Authorization", "Cookie", "Set-Cookie", "Proxy-Authorization")

#: What a redacted value becomes.
REDACTED = "REDACTED"

#: The scheme and ``host:port`` of the server, for requests without a
#: ``Host`` header (HTTP/1.0) and for ``serverIPAddress``.
Origin = tuple[str, str, str]

#: WebSocket message types as Chromium's ``_webSocketMessages`` codes them.
_OPCODES = {"text": 1, "binary": 2, "close": 8, "ping": 9, "pong": 10}


def har_document(
    entries: Iterable[Entry],
    origin: Origin,
    messages: Sequence[dict[str, Any]] = (),
    redacted: Sequence[str] = (),
) -> dict[str, Any]:
    """
    A HAR 1.2 document of ``entries``.

    :param entries: journal entries, oldest first.
    :param origin: ``(scheme, host_port, server_ip)`` of the server.
    :param messages: WebSocket messages (``ws.messages`` dicts, with their
        ``connection``), put in ``_webSocketMessages`` of the handshake
        that opened their connection.
    :param redacted: the names of headers, query fields and JSON body
        fields whose values are replaced by :data:`REDACTED` (:func:`redact`).
    """
    by_connection: dict[int, list[dict[str, Any]]] = {}
    for message in messages:
        by_connection.setdefault(message["connection"], []).append(_ws_message(message))
    har_entries = [_entry(entry, origin, by_connection) for entry in entries]
    if redacted:
        names = frozenset(name.lower() for name in redacted)
        for har_entry in har_entries:
            redact(har_entry, names)
    return {
        "log": {
            "version": "1.2",
            "creator": {"name": "txtestserver", "version": __version__},
            "pages": [],
            "entries": har_entries,
        }
    }


def redact(entry: dict[str, Any], names: frozenset[str]) -> None:
    """
    Replace, in one HAR entry, the values of the headers, cookies (when
    ``cookie`` or ``set-cookie`` is named), query fields and JSON body
    fields (at any depth) whose names are in ``names`` (lower case) by
    :data:`REDACTED`.
    """
    request, response = entry["request"], entry["response"]
    for part, cookie in ((request, "cookie"), (response, "set-cookie")):
        for pair in part["headers"]:
            if pair["name"].lower() in names:
                pair["value"] = REDACTED
        if cookie in names:
            for item in part["cookies"]:
                item["value"] = REDACTED
    fields = [pair for pair in request["queryString"] if pair["name"].lower() in names]
    if fields:
        for pair in fields:
            pair["value"] = REDACTED
        request["url"] = _redact_url(request["url"], names)
    post = request.get("postData")
    if post is not None and "comment" not in post:
        post["text"] = _redact_json(post.get("text", ""), names)
    content = response["content"]
    if "encoding" not in content and "text" in content:
        content["text"] = _redact_json(content["text"], names)


def _redact_url(url: str, names: frozenset[str]) -> str:
    from urllib.parse import unquote_plus

    head, mark, query = url.partition("?")
    if not mark:
        return url
    fields = []
    for field in query.split("&"):
        name = field.partition("=")[0]
        fields.append(f"{name}={REDACTED}" if unquote_plus(name).lower() in names else field)
    return head + "?" + "&".join(fields)


def _redact_json(text: str, names: frozenset[str]) -> str:
    """``text`` with the named fields redacted when it is a JSON document, else as it is."""
    if not text or text[0] not in "{[":
        return text
    try:
        document = json.loads(text)
    except ValueError:
        return text
    changed = [False]

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            result = {}
            for key, item in value.items():
                if isinstance(key, str) and key.lower() in names:
                    changed[0] = True
                    result[key] = REDACTED
                else:
                    result[key] = walk(item)
            return result
        if isinstance(value, list):
            return [walk(item) for item in value]
        return value

    redacted = walk(document)
    return json.dumps(redacted) if changed[0] else text


def write_har(document: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """
    Write ``document`` to ``path`` as UTF-8 JSON (whole or not at all: a
    temporary file renamed into place), making its directory if needed.

    :return: the path written.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(temporary, target)
    return target


def _pairs(raw: str | bytes) -> list[dict[str, str]]:
    """``Name: value`` lines as HAR name/value objects, in order, repeats kept."""
    text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
    pairs = []
    for line in text.split("\r\n"):
        if line:
            name, _, value = line.partition(": ")
            pairs.append({"name": name, "value": value})
    return pairs


def _header(pairs: list[dict[str, str]], name: str) -> str | None:
    name = name.lower()
    for pair in pairs:
        if pair["name"].lower() == name:
            return pair["value"]
    return None


def _query(uri: bytes) -> list[dict[str, str]]:
    from urllib.parse import unquote_plus

    _, _, query = uri.partition(b"?")
    pairs = []
    for field in query.decode("latin-1").split("&"):
        if field:
            name, _, value = field.partition("=")
            pairs.append(
                {"name": unquote_plus(name, "utf-8"), "value": unquote_plus(value, "utf-8")}
            )
    return pairs


def _request_cookies(headers: list[dict[str, str]]) -> list[dict[str, str]]:
    cookies = []
    for pair in headers:
        if pair["name"].lower() == "cookie":
            for item in pair["value"].split(";"):
                name, eq, value = item.strip().partition("=")
                if name and eq:
                    cookies.append({"name": name, "value": value})
    return cookies


def _response_cookies(headers: list[dict[str, str]]) -> list[dict[str, Any]]:
    cookies: list[dict[str, Any]] = []
    for pair in headers:
        if pair["name"].lower() == "set-cookie":
            first, *attributes = pair["value"].split(";")
            name, _, value = first.strip().partition("=")
            cookie: dict[str, Any] = {"name": name, "value": value}
            for attribute in attributes:
                key, _, setting = attribute.strip().partition("=")
                key = key.lower()
                if key == "path":
                    cookie["path"] = setting
                elif key == "domain":
                    cookie["domain"] = setting
                elif key == "httponly":
                    cookie["httpOnly"] = True
                elif key == "secure":
                    cookie["secure"] = True
            cookies.append(cookie)
    return cookies


def _content(body: bytes, mime: str) -> dict[str, Any]:
    """HAR's text of a body: as text when it is UTF-8, else base64."""
    try:
        return {"mimeType": mime, "text": body.decode("utf-8")}
    except UnicodeDecodeError:
        return {
            "mimeType": mime,
            "text": base64.b64encode(body).decode("ascii"),
            "encoding": "base64",
        }


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="milliseconds")


def _entry(
    entry: Entry, origin: Origin, messages: dict[int, list[dict[str, Any]]]
) -> dict[str, Any]:
    scheme, host_port, server_ip = origin
    request_headers = _pairs(entry[HEADERS])
    host = _header(request_headers, "host") or host_port
    via = entry[VIA]
    if via[PROXY] is not None and via[SCHEME] and via[HOST]:
        scheme, host = via[SCHEME], via[HOST]  # the URL the client meant (a tunnel's https)
    uri = entry[URI]
    path = uri.decode("latin-1")
    if "://" in path:  # absolute form
        url = path
    elif path.startswith("/") or not via[HOST]:
        url = f"{scheme}://{host}{path}"
    else:  # a CONNECT's or a SOCKS5 attempt's target (authority form), asked of the proxy
        url = f"{scheme}://{via[HOST]}"
    version = entry[HTTP_VERSION].decode("latin-1")
    body = entry[BODY]
    request: dict[str, Any] = {
        "method": entry[METHOD].decode("latin-1"),
        "url": url,
        "httpVersion": version,
        "cookies": _request_cookies(request_headers),
        "headers": request_headers,
        "queryString": _query(uri),
        "headersSize": -1,
        "bodySize": len(body),
    }
    if body:
        post = _content(body, _header(request_headers, "content-type") or "")
        if post.pop("encoding", None):  # HAR 1.2's postData has no encoding field
            post["comment"] = "base64"
        request["postData"] = post
    response_headers = _pairs(entry[SENT][RESPONSE_HEADERS])
    code = entry[CODE]
    size = entry[SENT][RESPONSE_SIZE]
    kept = (entry[SENT][RESPONSE_BODY] or "").encode("latin-1")
    content = _content(kept, _header(response_headers, "content-type") or "")
    content["size"] = size if size is not None else 0
    if size is not None and size > len(kept):
        content["comment"] = f"the first {len(kept)} of {size} bytes"
    response: dict[str, Any] = {
        "status": code or 0,
        "statusText": _status_text(code),
        "httpVersion": version,
        "cookies": _response_cookies(response_headers),
        "headers": response_headers,
        "content": content,
        "redirectURL": _header(response_headers, "location") or "",
        "headersSize": -1,
        "bodySize": size if size is not None else -1,
    }
    started = entry[TIME]
    finished = entry[SENT][ANSWER_TIME]
    # An answer written at once was complete when it arrived (no answer_time).
    wait = max(0.0, (finished - started) * 1000) if finished is not None else 0.0
    har: dict[str, Any] = {
        "startedDateTime": _iso(started),
        "time": wait,
        "request": request,
        "response": response,
        "cache": {},
        "timings": {
            "blocked": -1,
            "dns": -1,
            "connect": -1,
            "ssl": -1,
            "send": 0,
            "wait": wait,
            "receive": 0,
        },
        "serverIPAddress": server_ip,
        "connection": str(entry[CONNECTION]),
        "_route": entry[ROUTE],
    }
    if entry[FAULT] is not None:
        har["_fault"] = entry[FAULT]
        response["comment"] = f"answered with the fault {entry[FAULT]!r}"
    if entry[ABORTED] is not None:
        har["_aborted"] = entry[ABORTED]
        response["comment"] = f"aborted: {entry[ABORTED]}"
    forwarded = entry[FORWARDED]
    if forwarded is not None:
        recorded = json.loads(forwarded)
        har["_forwarded"] = recorded["upstream"]
        # The pieces the upstream's body came in: [seconds after the one before, size].
        har["_chunks"] = recorded["pieces"]
    if entry[WEBSOCKET] is not None:
        har["_resourceType"] = "websocket"
        har["_webSocketMessages"] = messages.get(entry[CONNECTION], [])
    return har


def _status_text(code: int | None) -> str:
    if code is None:
        return ""
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return ""


def _ws_message(message: dict[str, Any]) -> dict[str, Any]:
    """One ``ws.messages`` dict the way Chromium's ``_webSocketMessages`` holds it."""
    data = message["data"]
    if isinstance(data, bytes):
        data = base64.b64encode(data).decode("ascii")
    return {
        "type": "send" if message["direction"] == "received" else "receive",
        "time": message["time"],
        "opcode": _OPCODES.get(message["type"], 1),
        "data": data,
    }


#: A function giving the WebSocket messages to put in an export.
MessagesSource = Callable[[], Sequence[dict[str, Any]]]
