"""
Queued answers: ``add_response`` of the server and of each route, and
test_server 0.1's :class:`Response`, which describes one answer as an object.

``server.add_response(Response(data=b"x", status=503), count=2)`` (0.1's
form) and ``server.add_response(code=503, data=b"x", count=2)`` (keywords:
the keys of ``server.response``) queue the same answer. Both are checked
here, in the test's own line, and become a
:class:`~txtestserver._model.table.QueuedAnswer`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ._errors import TestServerError
from ._model.keys import canonical_key, check_value
from ._model.table import FOREVER, QueuedAnswer

__all__ = ["Response", "queued_answer"]


class Response:
    """
    One answer, as test_server 0.1 described it (for
    ``server.add_response``).

    :param callback: makes the answer when a request comes: a function of
        no argument (test_server 0.1's form) or of the request, or
        ``'package.module:function'``; it returns the body, or a dict
        ``{"type": "response", "status": ..., "headers": ..., "data": ...}``
        as test_server 0.1's callbacks did.
    :param raw_callback: not supported (test_server 0.1 wrote its bytes as
        the whole HTTP response); passing one raises TestServerError.
    :param data: the body (bytes or str); default empty.
    :param headers: a dict or a list of ``(name, value)`` pairs.
    :param sleep: seconds to wait before answering.
    :param status: the status code (default 200).
    """

    __module__ = "txtestserver"  # documented and shown where it is imported from

    def __init__(
        self,
        callback: Callable[..., Any] | str | None = None,
        raw_callback: Callable[..., Any] | None = None,
        data: bytes | str | None = None,
        headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        sleep: float | None = None,
        status: int | None = None,
    ) -> None:
        if raw_callback is not None:
            raise TestServerError(
                "Response(raw_callback=...) is not supported: set the status, headers and "
                "data, or a callback"
            )
        self.callback = callback
        self.data = b"" if data is None else data
        self.headers = [] if headers is None else headers
        self.sleep = 0.0 if sleep is None else sleep
        self.status = 200 if status is None else status

    def values(self) -> dict[str, Any]:
        """The answer as response keys: every key it has, defaults included."""
        values: dict[str, Any] = {
            "code": self.status,
            "data": self.data,
            "headers": self.headers,
            "sleep": self.sleep,
        }
        if self.callback is not None:
            values["callback"] = self.callback
        return values

    def __repr__(self) -> str:
        return f"<Response {self.status} data={self.data!r}>"


def queued_answer(
    response: Response | None,
    count: Any,
    method: Any,
    values: Mapping[str, Any],
    *,
    portable: bool,
    where: str,
) -> QueuedAnswer:
    """
    Check what ``add_response`` was given and make the queued answer.

    :param response: test_server 0.1's form, or None for the keyword form.
    :param count: how many requests it answers; -1: every one from now on.
    :param method: answer only requests of this method (any case); None: any.
    :param values: the keyword form's response keys.
    :param portable: the values must cross to a server process as data.
    :param where: names the call in messages (``"server.add_response()"``).
    :raise TestServerError: a value can never work; the message says why.
    """
    if isinstance(count, bool) or not isinstance(count, int) or not (count > 0 or count == FOREVER):
        raise TestServerError(
            f"{where}: count is how many requests get this answer, an int > 0 "
            f"(or -1: every one from now on), not {count!r}"
        )
    if method is not None and (not isinstance(method, str) or not method.isalpha()):
        raise TestServerError(f"{where}: method is a name such as 'GET', or None, not {method!r}")
    if response is not None:
        if values:
            raise TestServerError(
                f"{where} takes a Response or keywords ({', '.join(values)}), not both"
            )
        if not isinstance(response, Response):
            raise TestServerError(
                f"{where}: the first argument is a txtestserver.Response, not {response!r}; "
                "or give the response keys as keywords (code=..., data=...)"
            )
        values = response.values()
    checked = {
        canonical_key(key): check_value(key, value, portable=portable, where=where)
        for key, value in values.items()
    }
    return QueuedAnswer(None if method is None else method.upper(), count, checked)
