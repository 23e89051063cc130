"""
The value codec of the state files: response values as JSON data, and back.

The format is data only: bytes are ``{"b": BASE64}``, tuples ``{"t":
[...]}``, dicts with str keys ``{"d": {...}}``, so every byte value, header
order and repeats survive, and nothing read from a file is ever executed
(no pickle). A large value lives in a file of its own
(:mod:`txtestserver._state.tables`).
"""

from __future__ import annotations

import base64
from typing import Any

from .._errors import TestServerError

__all__ = ["decode", "encode"]


def encode(value: Any) -> Any:
    """
    A response value as JSON data: bytes become ``{"b": BASE64}``, tuples
    ``{"t": [...]}``, dicts with str keys ``{"d": {...}}``; str, numbers,
    bools, None and lists stay as they are.

    :raise TestServerError: the value is not plain data.
    """
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, bytes):
        return {"b": base64.b64encode(value).decode("ascii")}
    if isinstance(value, tuple):
        return {"t": [encode(item) for item in value]}
    if isinstance(value, list):
        return [encode(item) for item in value]
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {"d": {key: encode(item) for key, item in value.items()}}
    raise TestServerError(
        f"{type(value).__name__} cannot be stored for the server process: only bytes, "
        "str, numbers, bools, None, lists, tuples and dicts with str keys cross the "
        "process boundary"
    )


def decode(data: Any) -> Any:
    """The inverse of :func:`encode`."""
    if isinstance(data, list):
        return [decode(item) for item in data]
    if isinstance(data, dict):
        if "b" in data:
            return base64.b64decode(data["b"])
        if "d" in data:
            return {key: decode(item) for key, item in data["d"].items()}
        return tuple(decode(item) for item in data["t"])
    return data
