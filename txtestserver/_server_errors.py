"""
Server-side errors as a test sees them: the dicts of ``server.errors`` and
the text of :class:`~txtestserver.ServerSideError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._model.record import Entry, parse, request_line

__all__ = ["describe_errors", "error_dicts"]

#: An error with its entry, as the stores give it.
Problem = tuple["Entry | None", str, "str | None"]


def error_dicts(problems: Sequence[Problem], charset: str) -> list[dict[str, Any]]:
    """
    ``{"message": str, "traceback": str or None, "request": dict or None}``
    for each error, the request decoded with ``charset``.
    """
    return [
        {
            "message": message,
            "traceback": traceback,
            "request": None if entry is None else parse(entry, charset),
        }
        for entry, message, traceback in problems
    ]


def describe_errors(problems: Sequence[Problem]) -> str:
    """
    The text of a :class:`~txtestserver.ServerSideError`: how many errors,
    then each, numbered, with its request line and traceback.
    """
    count = len(problems)
    noun = "error" if count == 1 else "errors"
    lines = [f"the server had {count} {noun} while answering (oldest first):"]
    for number, (entry, message, traceback) in enumerate(problems, 1):
        where = "no request in particular" if entry is None else request_line(entry)
        lines.append(f"{number}. {where}: {message}")
        if traceback:
            lines.extend("   " + line for line in traceback.rstrip().splitlines())
    return "\n".join(lines)
