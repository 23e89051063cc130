"""
Answers known in advance: :class:`StaticAnswer` (``response['data']``, an
iterator's next item too) and :func:`json_answer` (``response['json']``).
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from twisted.logger import Logger

from ..writing import bodiless, finish
from .base import Head
from .error import ErrorAnswer

if TYPE_CHECKING:
    from ..exchange import Exchange

__all__ = ["EXHAUSTED", "StaticAnswer", "body_refused", "json_answer"]

_log = Logger()

#: The body of the answer to a request after an iterator ``data`` is
#: exhausted (with status 405), as test_server answered.
EXHAUSTED = b"data generator has no more data"
#: The server-side error of that answer.
EXHAUSTED_PROBLEM = (
    "the response['data'] iterator is exhausted, every item has been served: the request "
    "was answered 405; give the iterator more items, or expect fewer requests"
)


class StaticAnswer(NamedTuple):
    """
    Status, headers, cookies and a body, all known in advance.

    A NamedTuple, not a frozen dataclass: one is made per request, and it is
    four times cheaper to make.
    """

    head: Head
    body: bytes
    sleep: float
    immediate: bool = True
    closes: bool = False
    fault: str | None = None

    @property
    def code(self) -> int:
        """The status."""
        return self.head.code

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> StaticAnswer | ErrorAnswer:
        """
        Takes the next item of an iterator ``data`` and encodes ``str`` data
        with the charset. An exhausted iterator answers ``405`` with the body
        ``data generator has no more data``, as test_server did, and is a
        server-side error (the head's ``problem``); an item that
        is not bytes or str gives an :class:`ErrorAnswer`.
        """
        head = Head.from_values(values)
        data = values["data"]
        if isinstance(data, Iterator):
            try:
                data = next(data)
            except StopIteration:
                _log.warn("txtestserver answers 405: {problem}", problem=EXHAUSTED_PROBLEM)
                return cls(
                    head._replace(code=405, problem=EXHAUSTED_PROBLEM), EXHAUSTED, values["sleep"]
                )
        if isinstance(data, str):
            data = data.encode(head.charset)
        elif not isinstance(data, bytes):
            return ErrorAnswer(
                500,
                f"response['data'] iterator gave {type(data).__name__}, not bytes or str",
                values["sleep"],
            )
        if data and bodiless(head.code):
            return body_refused(head.code, "data", values["sleep"])
        return cls(head, data, values["sleep"])

    def render(self, exchange: Exchange) -> None:
        request = exchange.request
        self.head.start(exchange)
        finish(request, self.body)


def body_refused(code: int, key: str, sleep: float) -> ErrorAnswer:
    """
    The test set a body for a status that has none (RFC 9110: 1xx, 204 and
    304): a server-side error that says so, answered 500.
    """
    return ErrorAnswer(
        500,
        f"response['code'] {code} has no body (RFC 9110: 1xx, 204 and 304 answers have "
        f"none), but response['{key}'] gives one: leave response['{key}'] unset (or empty) "
        "for this code, or choose another code",
        sleep,
    )


def json_answer(values: Mapping[str, Any]) -> StaticAnswer | ErrorAnswer:
    """
    ``response['json']``: the value as a JSON document, encoded with the
    response charset, with ``Content-Type: application/json`` unless the
    test set a content type (``; charset=...`` added for a charset other
    than UTF-8). It wins over ``data``.
    """
    charset: str = values["charset"]
    if bodiless(values["code"]):
        return body_refused(values["code"], "json", values["sleep"])
    text = json.dumps(values["json"], ensure_ascii=False)
    try:
        body = text.encode(charset)
    except UnicodeEncodeError:  # \u escapes: ASCII, which every charset here encodes
        body = json.dumps(values["json"]).encode(charset)
    head = Head.from_values(values)
    if not any(name.lower() == "content-type" for name, _ in head.headers):
        utf8 = codecs.lookup(charset).name == "utf-8"
        ctype = "application/json" if utf8 else f"application/json; charset={charset}"
        head = head._replace(headers=[("Content-Type", ctype), *head.headers])
    return StaticAnswer(head, body, values["sleep"])
