"""The answer when the configured one cannot be produced: :class:`ErrorAnswer`."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from ..writing import render_error

if TYPE_CHECKING:
    from ..exchange import Exchange

__all__ = ["ErrorAnswer"]


class ErrorAnswer(NamedTuple):
    """
    The configured answer could not be produced: ``code`` with ``message``
    as a plain-text body; the message is logged and reported as a
    server-side error (with ``traceback`` when an exception caused it).
    """

    code: int
    message: str
    sleep: float = 0.0
    immediate: bool = True
    closes: bool = False
    fault: str | None = None
    traceback: str | None = None

    def render(self, exchange: Exchange) -> None:
        render_error(exchange, self.code, self.message, self.traceback)
