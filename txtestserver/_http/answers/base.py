"""
What every answer kind shares: the :class:`Answer` interface, and the
:class:`Head` (status, headers, cookies, charset) of the kinds that write
the test's status and headers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from twisted.internet.defer import Deferred

from ..writing import start

if TYPE_CHECKING:  # the exchange renders answers; it imports this package
    from ..exchange import Exchange

__all__ = ["Answer", "Head"]


class Answer(Protocol):
    """
    One kind of answer, made for one request.

    :ivar sleep: seconds to wait (without blocking the reactor) before
        :meth:`render`.
    :ivar immediate: :meth:`render` does all it will do before it returns
        (it finishes the request, or carries out a fault) and runs no test
        code, so the request may be recorded once it is answered (one store
        update instead of two).
    :ivar closes: :meth:`render` ends the exchange by closing the
        connection instead of finishing the request (a fault, raw bytes):
        the request counts as answered once :meth:`render` has returned.
    :ivar fault: the ``response['fault']`` this answer carries out, recorded
        with the request (``request['fault']``); None for a normal answer.
    """

    @property
    def sleep(self) -> float: ...

    @property
    def immediate(self) -> bool: ...

    @property
    def closes(self) -> bool: ...

    @property
    def fault(self) -> str | None: ...

    def render(self, exchange: Exchange) -> Deferred[Any] | None:
        """
        Write the answer on ``exchange.request``; return a Deferred if it
        finishes later (the exchange cancels it when the client leaves or
        the server stops).
        """


class Head(NamedTuple):
    """
    The status line and headers the test set: ``code``, ``headers`` and
    ``cookies`` (``(name, value)`` lists), and the ``charset`` that encodes
    str bodies and goes into the default ``Content-Type``; ``problem``, a
    server-side error to report when the answer starts though it is sent
    as set (an exhausted ``data`` iterator answers 405, as test_server did,
    and is an error of the test all the same).
    """

    code: int
    headers: list[tuple[str, str]]
    cookies: list[tuple[str, str]]
    charset: str
    problem: str | None = None

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> Head:
        """The head of the response values a request took."""
        return cls(values["code"], values["headers"], values["cookies"], values["charset"])

    def start(self, exchange: Exchange) -> None:
        """
        Write this head onto the exchange's request (sent with the first
        body bytes); report its problem, if it has one.
        """
        if self.problem is not None:
            exchange.report(self.problem)
        start(exchange.request, self.code, exchange.reply, self.headers, self.cookies, self.charset)
