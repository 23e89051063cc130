"""
Stream formats for ``response['chunks']``: Server-Sent Events (:func:`sse`)
and newline-delimited JSON (:func:`ndjson`).

Each turns a sequence of events or objects into the pieces of a streamed
body, one piece per event, so that a client sees each event arrive on its
own (``chunk_delay`` apart). A list in gives a list out (it crosses to the
server process of the subprocess engine); an iterator in gives an iterator
out, read as the answer streams (thread engine), so a generator can stream
without end.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, overload

from ._errors import TestServerError

__all__ = ["ndjson", "sse"]

#: The fields an event dict may hold, in the order they are written.
_SSE_FIELDS = ("event", "id", "retry", "data")


@overload
def sse(events: Iterator[str | Mapping[str, Any]]) -> Iterator[bytes]: ...  # type: ignore[overload-overlap]


@overload
def sse(events: Iterable[str | Mapping[str, Any]]) -> list[bytes]: ...


def sse(events: Iterable[str | Mapping[str, Any]]) -> list[bytes] | Iterator[bytes]:
    """
    The pieces of a ``text/event-stream`` body, one per event::

        server.response["headers"] = {"Content-Type": "text/event-stream"}
        server.response["chunks"] = sse(["hello", {"event": "done", "data": "bye"}])

    :param events: each a str (the event's data) or a dict that may hold
        ``data`` (a str, or any other value, sent as JSON), ``event`` (the
        event type), ``id`` and ``retry`` (milliseconds, an int). Data with
        line breaks becomes several ``data:`` lines, as the format requires.
    :return: a list of bytes for a list (or any iterable that is not an
        iterator), an iterator of bytes for an iterator.
    :raise TestServerError: an event cannot be written as SSE (an unknown
        field, a line break in ``event`` or ``id``, a ``retry`` that is not
        an int >= 0).
    """
    if isinstance(events, Iterator):
        return (_sse_event(event) for event in events)
    return [_sse_event(event) for event in events]


def _sse_event(event: str | Mapping[str, Any]) -> bytes:
    fields = {"data": event} if isinstance(event, str) else event
    if not isinstance(fields, Mapping):
        raise TestServerError(f"sse(): an event is a str or a dict, not {type(event).__name__}")
    unknown = set(fields) - set(_SSE_FIELDS)
    if unknown:
        raise TestServerError(
            f"sse(): unknown event field {sorted(unknown)[0]!r}; "
            f"an event dict may hold {', '.join(_SSE_FIELDS)}"
        )
    lines = []
    for name in ("event", "id"):
        if name in fields:
            value = str(fields[name])
            if "\n" in value or "\r" in value or (name == "id" and "\0" in value):
                raise TestServerError(f"sse(): the {name} {value!r} contains a line break")
            lines.append(f"{name}: {value}")
    if "retry" in fields:
        retry = fields["retry"]
        if isinstance(retry, bool) or not isinstance(retry, int) or retry < 0:
            raise TestServerError(f"sse(): retry is an int of milliseconds >= 0, not {retry!r}")
        lines.append(f"retry: {retry}")
    if "data" in fields:
        data = fields["data"]
        text = data if isinstance(data, str) else json.dumps(data)
        lines.extend(f"data: {line}" for line in text.replace("\r\n", "\n").split("\n"))
    return ("\n".join(lines) + "\n\n").encode("utf-8")


@overload
def ndjson(objects: Iterator[Any]) -> Iterator[bytes]: ...  # type: ignore[overload-overlap]


@overload
def ndjson(objects: Iterable[Any]) -> list[bytes]: ...


def ndjson(objects: Iterable[Any]) -> list[bytes] | Iterator[bytes]:
    """
    The pieces of a newline-delimited JSON body (``application/x-ndjson``),
    one JSON document and a newline per object::

        server.response["headers"] = {"Content-Type": "application/x-ndjson"}
        server.response["chunks"] = ndjson([{"n": 1}, {"n": 2}])

    :param objects: anything ``json.dumps`` accepts.
    :return: a list of bytes for a list (or any iterable that is not an
        iterator), an iterator of bytes for an iterator.
    :raise TestServerError: an object cannot be written as JSON.
    """
    if isinstance(objects, Iterator):
        return (_json_line(item) for item in objects)
    return [_json_line(item) for item in objects]


def _json_line(item: Any) -> bytes:
    try:
        return json.dumps(item, ensure_ascii=False).encode("utf-8") + b"\n"
    except (TypeError, ValueError) as e:
        raise TestServerError(f"ndjson(): {item!r} cannot be written as JSON: {e}") from e
