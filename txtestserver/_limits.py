"""
How much of a request the server accepts and keeps: one frozen
:class:`Limits` value, made once from the public keyword parameters and
handed to whichever engine serves (the server process receives it as plain
data).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from ._errors import TestServerError

__all__ = [
    "DEFAULT_BODY_LIMIT",
    "DEFAULT_HEADER_COUNT_LIMIT",
    "DEFAULT_HEADER_SIZE_LIMIT",
    "DEFAULT_LIMITS",
    "Limits",
]

#: Bytes of each request body kept in ``request['data']``.
DEFAULT_BODY_LIMIT = 64 * 1024 * 1024
#: Header lines accepted in one request.
DEFAULT_HEADER_COUNT_LIMIT = 500
#: Bytes accepted in the request line plus all header lines of one request.
DEFAULT_HEADER_SIZE_LIMIT = 64 * 1024


@dataclass(frozen=True)
class Limits:
    """
    The limits of one server. The field names are the keyword parameters of
    :class:`~txtestserver.TestServer` and
    :class:`~txtestserver.DeferredTestServer`.

    :ivar body_limit: bytes of each request body kept in ``request['data']``
        (the rest is read and dropped; the client still gets its answer).
    :ivar header_count_limit: header lines accepted in one request; a request
        with more gets ``400 Bad Request`` and its connection closed.
    :ivar header_size_limit: bytes accepted in the request line plus all
        header lines (without line ends); a request with more gets ``400 Bad
        Request``, or, when one line alone is longer, its connection closed.
    """

    body_limit: int = DEFAULT_BODY_LIMIT
    header_count_limit: int = DEFAULT_HEADER_COUNT_LIMIT
    header_size_limit: int = DEFAULT_HEADER_SIZE_LIMIT

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            lowest = 0 if field.name == "body_limit" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
                raise TestServerError(
                    f"{field.name} must be an int of at least {lowest}, not {value!r}"
                )


#: The limits of a server made without limit parameters.
DEFAULT_LIMITS = Limits()
