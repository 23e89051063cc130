"""
The request journal: one flat :data:`Entry` per request, and :func:`parse`,
which makes the ``server.request`` dict of it.

An entry is a plain tuple of atomic values (bytes, str, numbers, bools,
None): a :data:`Record` of what the client sent, made in the reactor thread
(:mod:`txtestserver._http.capture`) with no parsing at all, followed by an
:data:`Outcome` saying how the server answered. Recording costs little and
200,000 kept entries put no load on the garbage collector (tuples of atomic
values are untracked). The parsing into args, headers, cookies and files
happens in :func:`parse`, when a test reads the request.

A new journal field is one more position: in :data:`Record` when it is known
on arrival (set in ``capture``), in :data:`Outcome` when it is known when
answered (set by :func:`outcome`, which the request's exchange calls); then
one named position below, one key in :func:`parse` and :func:`empty`, and,
for bytes, one name in :data:`BYTES_FIELDS` (the file store's line codec).
Code reads fields by these names, never by number. Keep entries
flat: no dict, list or object inside.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote_to_bytes

from multidict import CIMultiDict, MultiDict

if TYPE_CHECKING:
    # Imported where a body is parsed (multipart costs a first import).
    from multipart import MultipartSegment

__all__ = [
    "ABORTED",
    "ANSWERED",
    "ANSWER_TIME",
    "BODY",
    "BYTES_FIELDS",
    "CLIENT_CERT",
    "CLIENT_IP",
    "CODE",
    "CONNECTION",
    "FAULT",
    "FORWARDED",
    "HEADERS",
    "HOST",
    "HTTP_VERSION",
    "KEPT_BODY",
    "METHOD",
    "NOT_SENT",
    "PENDING",
    "PROXY",
    "RECORD_FIELDS",
    "RESPONSE_BODY",
    "RESPONSE_HEADERS",
    "RESPONSE_SIZE",
    "ROUTE",
    "ROUTE_ID",
    "SCHEME",
    "SENT",
    "TIME",
    "URI",
    "VIA",
    "WEBSOCKET",
    "Entry",
    "Outcome",
    "Record",
    "RequestDict",
    "Sent",
    "Via",
    "answered",
    "body_fields",
    "empty",
    "outcome",
    "parse",
    "parse_headers",
    "parse_json",
    "parse_query",
    "request_line",
    "split_authority",
]

#: What the client sent, captured once the request is complete:
#: ``(method, uri, headers, body, client_ip, http_version, time, connection,
#: via)``, ``via`` being how the request reached the server, a
#: :data:`Via`: ``(client_cert, scheme, host, proxy)``, one value that
#: requests coming the same way share (eight bytes an entry, not 32).
#: ``method`` and ``http_version`` as the client sent them; ``uri`` the
#: target as the client sent it, in origin form (``/path?query``: an
#: absolute-form target, ``http://host/path``, is split into ``scheme``,
#: ``host`` and this);
#: ``headers`` as ``b"Name: value\r\n"`` lines in arrival order (repeats
#: kept); ``body`` the raw bytes (cut at the server's limit); ``time`` when
#: it arrived (``time.time()`` seconds); ``connection`` the number of the
#: connection it came on (the same for requests on one connection);
#: ``client_cert`` the subject of the certificate the client presented over
#: TLS, as JSON text of ``[name, value]`` pairs (None: none presented);
#: ``scheme`` the scheme the client meant (``'http'``, ``'https'``; ``''``
#: for a ``CONNECT``); ``host`` the authority it meant (``host[:port]``,
#: lower case: the absolute-form target's, else the ``Host`` header's,
#: else a ``CONNECT``'s target); ``proxy`` how it came through the server
#: as a proxy, JSON text of ``{"kind", "target", "sni", "auth"}`` (None:
#: it came directly).
Via = tuple[str | None, str, str, str | None]
#: What was sent in answer: ``(response_headers, response_size,
#: response_body, answer_time)``, one value that equal answers share.
Sent = tuple[str, int | None, str | None, float | None]
#: The :data:`Sent` of a request whose answer has not been sent.
NOT_SENT: Sent = ("", None, None, None)
Record = tuple[bytes, bytes, bytes, bytes, str, bytes, float, int, Via]

#: How the server answered: ``(answered, response_code, route_id, route,
#: fault, aborted, websocket, response_headers, response_size,
#: response_body, answer_time, forwarded)``. ``answered`` becomes true
#: once the answer is complete, or once a fault that closes the connection
#: has been carried out (``done``);
#: ``response_code`` is the status sent (None until then, or when no status
#: line was sent); ``route_id`` and ``route`` identify and name the route
#: that answered (None and None for the server's own answer); ``fault`` is
#: the ``response['fault']`` it was answered with (None: a normal answer);
#: ``aborted`` says why the answer never reached the client whole (the
#: client reset its HTTP/2 stream first, ``stop()`` cut the connection), or
#: is None; an aborted answer has no ``response_code``.
#: ``response_headers``, ``response_size`` and ``response_body`` are what
#: was sent, known once the answer is complete: the header lines as
#: ``"Name: value\r\n"`` text (latin-1), the body's size in bytes and its
#: first :data:`KEPT_BODY` bytes as latin-1 text (text, not bytes, so that
#: a completed outcome crosses the file store's journal as JSON as it is),
#: and ``answer_time``, when an answer given later than the request
#: arrived (a sleep, a stream) was complete (``time.time()`` seconds; None
#: for an answer written at once, complete when it arrived: no float kept
#: per request); ``""``, None, None and None before then. ``forwarded``
#: says that ``response['forward']`` answered from an upstream: JSON text
#: of ``{"upstream": url, "pieces": [[seconds, size], ...]}``, the body's
#: pieces as they came (seconds since the piece before; the body is then
#: kept whole), or None.
#: Every field but ``answered`` and ``response_code`` is known once the
#: answer is taken, so a request recorded before its answer has them too.
Outcome = tuple[
    bool,
    int | None,
    int | None,
    str | None,
    str | None,
    str | None,
    str | None,
    Sent,
    str | None,
]

#: One journal entry: a :data:`Record` followed by its :data:`Outcome`.
Entry = tuple[
    bytes,
    bytes,
    bytes,
    bytes,
    str,
    bytes,
    float,
    int,
    Via,
    bool,
    int | None,
    int | None,
    str | None,
    str | None,
    str | None,
    str | None,
    Sent,
    str | None,
]

#: Positions of the :data:`Record` fields, in a record and in an entry.
#: Code reads a field by its name, never by a number, so that a new field
#: shifts nothing.
METHOD: Final = 0
URI: Final = 1
HEADERS: Final = 2
BODY: Final = 3
CLIENT_IP: Final = 4
HTTP_VERSION: Final = 5
TIME: Final = 6
CONNECTION: Final = 7
VIA: Final = 8
#: The number of :data:`Record` fields; the :data:`Outcome` follows.
RECORD_FIELDS: Final = 9
#: Positions in a :data:`Via` (``entry[VIA][HOST]``).
CLIENT_CERT: Final = 0
SCHEME: Final = 1
HOST: Final = 2
PROXY: Final = 3
#: Positions of the :data:`Outcome` fields in an :data:`Entry`.
ANSWERED: Final = RECORD_FIELDS
CODE: Final = RECORD_FIELDS + 1
ROUTE_ID: Final = RECORD_FIELDS + 2
ROUTE: Final = RECORD_FIELDS + 3
FAULT: Final = RECORD_FIELDS + 4
ABORTED: Final = RECORD_FIELDS + 5
#: A WebSocket handshake's version, offered subprotocols and extensions and
#: the chosen subprotocol, as JSON text (``request['websocket']``), or None.
WEBSOCKET: Final = RECORD_FIELDS + 6
#: What was sent, a :data:`Sent` (the HAR export's response,
#: :mod:`txtestserver._har`).
SENT: Final = RECORD_FIELDS + 7
#: A forwarded answer's upstream and pieces, as JSON text, or None.
FORWARDED: Final = RECORD_FIELDS + 8
#: Positions in a :data:`Sent` (``entry[SENT][RESPONSE_SIZE]``): the
#: response's header lines as sent (latin-1 text), its body's size in bytes,
#: its first :data:`KEPT_BODY` bytes (latin-1 text), and when the answer was
#: complete (None: when the request arrived).
RESPONSE_HEADERS: Final = 0
RESPONSE_SIZE: Final = 1
RESPONSE_BODY: Final = 2
ANSWER_TIME: Final = 3

#: How much of each response body the journal keeps (the size is counted whole).
KEPT_BODY: Final = 64 * 1024

#: Positions of the bytes fields of an entry (the file store writes them as
#: base64; every other field is a JSON value as it is).
BYTES_FIELDS: Final = (METHOD, URI, HEADERS, BODY, HTTP_VERSION)


def outcome(
    done: bool,
    code: int | None,
    route_id: int | None,
    route: str | None,
    fault: str | None,
    aborted: str | None = None,
    websocket: str | None = None,
    sent: Sent = NOT_SENT,
    forwarded: str | None = None,
) -> Outcome:
    """
    An :data:`Outcome`, built in this one place so that a new outcome field
    is added here and where its value is known.

    :param done: the answer is complete (``request['done']``).
    :param code: the status sent, or None.
    :param route_id: the id of the route that answered (None: the server's own answer).
    :param route: that route's name.
    :param fault: the ``response['fault']`` answered with, or None.
    :param aborted: why the answer never reached the client whole, or None.
    :param websocket: the WebSocket handshake as JSON text, or None.
    :param sent: the response's header lines, body size, kept body and
        the time it was complete (see :data:`Outcome`).
    :param forwarded: a forwarded answer's upstream and pieces, as JSON text.
    """
    return (
        done,
        None if aborted else code,
        route_id,
        route,
        fault,
        aborted,
        websocket,
        sent,
        forwarded,
    )


#: The outcome of a request recorded before its normal answer, by no route.
PENDING: Outcome = outcome(False, None, None, None, None)


def answered(entry: Entry | None) -> bool:
    """The entry exists and its answer is complete (``done``)."""
    return entry is not None and entry[ANSWERED]


def request_line(entry: Entry) -> str:
    """``'GET /path?q=1 HTTP/1.1'``, for messages (never raises)."""
    return b" ".join((entry[METHOD], entry[URI], entry[HTTP_VERSION])).decode("latin-1")


class RequestDict(dict[str, Any]):
    """
    A recorded request: a dict whose keys can also be read as attributes
    (``request.path`` is ``request["path"]``), as test_server 0.1's
    ``Request`` objects were read.
    """

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(
                f"a request has no {name!r}: its keys are {', '.join(self)}"
            ) from None


def empty(charset: str = "utf-8") -> RequestDict:
    """The ``server.request`` dict before any request has arrived."""
    return RequestDict(
        {
            "args": MultiDict[str](),
            "headers": CIMultiDict[str](),
            "cookies": {},
            "path": None,
            "method": None,
            "data": None,
            "files": {},
            "client_ip": None,
            "json": None,
            "http_version": None,
            "time": None,
            "connection": None,
            "client_cert": None,
            "scheme": None,
            "host": None,
            "port": None,
            "url": None,
            "proxy": None,
            "response_code": None,
            "route": None,
            "fault": None,
            "aborted": None,
            "websocket": None,
            "done": False,
            "charset": charset,
        }
    )


def parse(entry: Entry, charset: str) -> RequestDict:
    """
    Decode an entry into the ``server.request`` dict (without ``done``).

    :param entry: a journal entry.
    :param charset: decodes the path, the query, form fields and headers;
        bytes that are not valid in it become U+FFFD (headers fall back to
        latin-1, which keeps every byte).
    """
    method, uri, raw_headers, body = entry[METHOD], entry[URI], entry[HEADERS], entry[BODY]
    cert, scheme, authority, proxy = entry[VIA]
    host, port = split_authority(authority, scheme)
    raw_path, _, query = uri.partition(b"?")
    headers = parse_headers(raw_headers, charset)
    args = parse_query(query, charset)
    files: dict[str, list[dict[str, Any]]] = {}
    body_fields(headers, body, charset, args, files)
    return RequestDict(
        {
            "args": args,
            "headers": headers,
            "cookies": _parse_cookies(headers.getall("Cookie", [])),
            "path": unquote_to_bytes(raw_path).decode(charset, "replace"),
            "method": method.decode("latin-1").upper(),
            "data": body,
            "files": files,
            "client_ip": entry[CLIENT_IP],
            "json": parse_json(body),
            "http_version": entry[HTTP_VERSION].decode("latin-1"),
            "time": entry[TIME],
            "connection": entry[CONNECTION],
            "client_cert": None if cert is None else dict(json.loads(cert)),
            "scheme": scheme or None,
            "host": host,
            "port": port,
            "url": f"{scheme}://{authority}{uri.decode('latin-1')}" if scheme else None,
            "proxy": None if proxy is None else _parse_proxy(proxy),
            "response_code": entry[CODE],
            "route": entry[ROUTE],
            "fault": entry[FAULT],
            "aborted": entry[ABORTED],
            "websocket": None if entry[WEBSOCKET] is None else json.loads(entry[WEBSOCKET]),
            "charset": charset,
        }
    )


#: The port a scheme implies when the authority names none.
DEFAULT_PORTS = {"http": 80, "https": 443, "": 443}


def split_authority(authority: str, scheme: str) -> tuple[str | None, int | None]:
    """
    ``'api.example.com:8443'`` as ``('api.example.com', 8443)``; an IPv6
    address loses its brackets; the port defaults to the scheme's (443 for a
    ``CONNECT``, whose scheme is ``''``). ``('', ...)`` is ``(None, None)``.
    """
    if not authority:
        return None, None
    host, port = authority, ""
    if authority.startswith("["):
        host, _, rest = authority[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif authority.count(":") == 1:
        host, _, port = authority.partition(":")
    number = int(port) if port.isdigit() else DEFAULT_PORTS.get(scheme)
    return host, number


def _parse_proxy(text: str) -> dict[str, Any]:
    """``request['proxy']``: the JSON of the record, ``auth`` as a tuple."""
    proxy: dict[str, Any] = json.loads(text)
    if proxy.get("auth") is not None:
        proxy["auth"] = tuple(proxy["auth"])
    return proxy


def parse_headers(raw: bytes, charset: str) -> CIMultiDict[str]:
    """The header lines of a record, in arrival order, repeats kept."""
    headers = CIMultiDict[str]()
    for line in raw.split(b"\r\n"):
        if line:
            name, _, value = line.partition(b": ")
            headers.add(name.decode("latin-1"), _header_text(value, charset))
    return headers


def parse_query(raw: bytes, charset: str) -> MultiDict[str]:
    """A query string (``a=1&b=2``) as a MultiDict, never failing."""
    return MultiDict[str](_parse_qs(raw, charset))


def body_fields(
    headers: CIMultiDict[str],
    body: bytes,
    charset: str,
    args: MultiDict[str],
    files: dict[str, list[dict[str, Any]]],
) -> None:
    """
    Add the form fields of an urlencoded or multipart body to ``args`` and
    its uploads to ``files``; any other body adds nothing.
    """
    from multipart import parse_options_header

    ctype, options = parse_options_header(headers.get("Content-Type", ""))
    if ctype == "application/x-www-form-urlencoded":
        args.extend(_parse_qs(body, charset))
    elif ctype == "multipart/form-data" and options.get("boundary"):
        _parse_multipart(body, options["boundary"], charset, args, files)


def parse_json(body: bytes) -> Any:
    """
    The body parsed as JSON (UTF-8, -16 or -32), or None when it is empty or
    not JSON.
    """
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def _header_text(value: bytes, charset: str) -> str:
    try:
        return value.decode(charset)
    except UnicodeDecodeError:
        return value.decode("latin-1")


def _parse_qs(raw: bytes, charset: str) -> list[tuple[str, str]]:
    """
    Decode ``a=1&b=2`` bytes, byte-exact before decoding.

    ``urllib.parse.parse_qsl`` fails on some non-ASCII input; this never does.
    """
    pairs = []
    for field in raw.split(b"&"):
        if not field:
            continue
        name, _, value = field.partition(b"=")
        pairs.append(
            (
                unquote_to_bytes(name.replace(b"+", b" ")).decode(charset, "replace"),
                unquote_to_bytes(value.replace(b"+", b" ")).decode(charset, "replace"),
            )
        )
    return pairs


def _parse_cookies(lines: list[str]) -> dict[str, dict[str, str]]:
    cookies = {}
    for line in lines:
        for item in line.split(";"):
            name, eq, value = item.strip().partition("=")
            if name and eq:
                value = value.strip()
                if len(value) > 1 and value[0] == value[-1] == '"':
                    value = value[1:-1]
                cookies[name] = {"name": name, "value": value}
    return cookies


def _parse_multipart(
    body: bytes,
    boundary: str,
    charset: str,
    args: MultiDict[str],
    files: dict[str, list[dict[str, Any]]],
) -> None:
    """
    Split a multipart body into form fields (added to ``args``) and uploads
    (added to ``files``). A broken body keeps the parts read before the fault;
    the raw bytes stay in ``request['data']`` either way.
    """
    from multipart import MultipartError, MultipartSegment, PushMultipartParser

    segment: MultipartSegment | None = None
    chunks: list[bytes] = []
    try:
        with PushMultipartParser(boundary, header_charset=charset) as parser:
            for event in parser.parse(body):
                if isinstance(event, MultipartSegment):
                    segment, chunks = event, []
                elif event:
                    chunks.append(event)
                elif segment is not None:
                    _add_part(segment, b"".join(chunks), charset, args, files)
                    segment = None
    except MultipartError:
        pass


def _add_part(
    segment: MultipartSegment,
    content: bytes,
    charset: str,
    args: MultiDict[str],
    files: dict[str, list[dict[str, Any]]],
) -> None:
    name = segment.name or ""
    if segment.filename is None:
        args.add(name, content.decode(segment.charset or charset, "replace"))
        return
    files.setdefault(name, []).append(
        {
            "name": name,
            "filename": segment.filename,
            "content_type": segment.content_type or "application/octet-stream",
            "content": content,
        }
    )
