"""
A recorded request: the flat :data:`Record` kept for each request, and
:func:`parse`, which makes the ``server.request`` dict of it.

The record is a plain tuple of bytes and str, made in the reactor thread
(:mod:`txtestserver._http.capture`) with no parsing at all, so recording
costs little and 200,000 kept records put no load on the garbage collector
(tuples of atomic values are untracked). The parsing into args, headers,
cookies and files happens in :func:`parse`, when a test reads the request.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_to_bytes

from multidict import CIMultiDict, MultiDict
from multipart import MultipartError, MultipartSegment, PushMultipartParser, parse_options_header

__all__ = ["Record", "empty", "parse", "with_fault"]

#: ``(method, uri, headers, body, client_ip, fault)``: ``method`` and ``uri``
#: as the client sent them; ``headers`` as ``b"Name: value\r\n"`` lines in
#: arrival order (repeats kept); ``body`` the raw bytes (cut at the server's
#: limit); ``fault`` the answer side: the ``response['fault']`` the request was
#: answered with, or None for a normal answer.
Record = tuple[bytes, bytes, bytes, bytes, str, str | None]


def with_fault(record: Record, fault: str) -> Record:
    """``record`` answered with ``response['fault']`` ``fault``."""
    return (*record[:5], fault)


def empty(charset: str = "utf-8") -> dict[str, Any]:
    """The ``server.request`` dict before any request has arrived."""
    return {
        "args": MultiDict[str](),
        "headers": CIMultiDict[str](),
        "cookies": {},
        "path": None,
        "method": None,
        "data": None,
        "files": {},
        "client_ip": None,
        "fault": None,
        "done": False,
        "charset": charset,
    }


def parse(record: Record, charset: str) -> dict[str, Any]:
    """
    Decode a record into the ``server.request`` dict (without ``done``).

    :param record: what :func:`capture` made.
    :param charset: decodes the path, the query, form fields and headers;
        bytes that are not valid in it become U+FFFD (headers fall back to
        latin-1, which keeps every byte).
    """
    method, uri, raw_headers, body, client_ip, fault = record
    raw_path, _, query = uri.partition(b"?")
    headers = CIMultiDict[str]()
    for line in raw_headers.split(b"\r\n"):
        if line:
            name, _, value = line.partition(b": ")
            headers.add(name.decode("latin-1"), _header_text(value, charset))
    args = MultiDict[str](_parse_qs(query, charset))
    files: dict[str, list[dict[str, Any]]] = {}
    ctype, options = parse_options_header(headers.get("Content-Type", ""))
    if ctype == "application/x-www-form-urlencoded":
        args.extend(_parse_qs(body, charset))
    elif ctype == "multipart/form-data" and options.get("boundary"):
        _parse_multipart(body, options["boundary"], charset, args, files)
    return {
        "args": args,
        "headers": headers,
        "cookies": _parse_cookies(headers.getall("Cookie", [])),
        "path": unquote_to_bytes(raw_path).decode(charset, "replace"),
        "method": method.decode("latin-1").upper(),
        "data": body,
        "files": files,
        "client_ip": client_ip,
        "fault": fault,
        "charset": charset,
    }


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
