"""
What the server answers: the ``response`` keys, their defaults, their checks,
and how the values for one request are chosen.

Nothing here knows HTTP or Twisted. The store keeps the values a test set
(:data:`ResponseState`); :func:`resolve` picks the ones that apply to one
request method; :func:`build` turns them into the :class:`Answer` that the
renderer writes.
"""

from __future__ import annotations

import codecs
import importlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

from .._errors import TestServerError

__all__ = [
    "KEYS",
    "Answer",
    "ResponseState",
    "build",
    "canonical_key",
    "check_charset",
    "load_callback",
    "resolve",
    "split_key",
    "validate",
]

#: The keys of ``server.response``, each with its default value.
KEYS: Mapping[str, Any] = {
    "code": 200,
    "data": b"",
    "headers": [],
    "cookies": [],
    "callback": None,
    "sleep": 0.0,
    "charset": "utf-8",
}

#: What a store keeps for ``response`` or ``response_once``: key -> value, where
#: a key is a plain key (``"data"``) or a method-specific one (``"post.data"``).
ResponseState = dict[str, Any]

_HINT_SUBPROCESS = (
    "the subprocess engine keeps the response in files, so only data "
    "(bytes, str, numbers, lists) can cross to the server process"
)


def split_key(key: object) -> tuple[str | None, str]:
    """
    Split a response key into its method and its plain key.

    :param key: ``"data"`` or ``"post.data"`` (any case for the method).
    :return: ``(None, "data")`` or ``("POST", "data")``.
    :raise TestServerError: the key names no response value.
    """
    if not isinstance(key, str):
        raise TestServerError(f"response keys are str, not {type(key).__name__}")
    method, dot, name = key.rpartition(".")
    if name not in KEYS:
        raise TestServerError(
            f"unknown response key {key!r}: use one of {', '.join(KEYS)}, "
            f"optionally prefixed with a method such as 'post.data'"
        )
    if dot and (not method or not method.isalpha()):
        raise TestServerError(
            f"bad response key {key!r}: the prefix must be an HTTP method, as in 'post.{name}'"
        )
    return (method.upper() if dot else None), name


def canonical_key(key: object) -> str:
    """``'POST.data'`` -> ``'post.data'``: the form a store keeps keys in."""
    method, name = split_key(key)
    return f"{method.lower()}.{name}" if method else name


def validate(key: str, value: Any, *, portable: bool) -> Any:
    """
    Check one value a test assigns to ``response[key]`` and normalise it.

    :param key: the response key, plain or method-specific.
    :param value: the assigned value.
    :param portable: the value must cross a process boundary as data
        (subprocess engine): callables and iterators are refused.
    :return: the value to store.
    :raise TestServerError: the value can never work; the message says why.
    """
    _, name = split_key(key)
    if name == "code":
        if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
            raise TestServerError(
                f"response[{key!r}] must be an int from 100 to 599, not {value!r}"
            )
        return value
    if name == "data":
        if isinstance(value, (bytes, str)):
            return value
        if isinstance(value, (bytearray, memoryview)):
            return bytes(value)
        if isinstance(value, Iterator):
            if portable:
                raise TestServerError(
                    f"response[{key!r}] cannot be an iterator: {_HINT_SUBPROCESS}. "
                    "Set response_once for each answer instead, or use the thread engine"
                )
            return value
        raise TestServerError(
            f"response[{key!r}] must be bytes, str or an iterator of them, "
            f"not {type(value).__name__}"
        )
    if name in ("headers", "cookies"):
        return _pairs(key, value)
    if name == "callback":
        if value is None:
            return None
        if isinstance(value, str):
            load_callback(value)  # fail now, not at the first request
            return value
        if callable(value):
            if portable:
                raise TestServerError(
                    f"response[{key!r}] cannot be a function object: {_HINT_SUBPROCESS}. "
                    "Give it as an import string instead: 'package.module:function'"
                )
            return value
        raise TestServerError(
            f"response[{key!r}] must be a callable or 'package.module:function', not {value!r}"
        )
    if name == "sleep":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise TestServerError(
                f"response[{key!r}] must be a number of seconds >= 0, not {value!r}"
            )
        return float(value)
    return check_charset(f"response[{key!r}]", value)


def check_charset(where: str, value: object) -> str:
    """
    Check a charset a test sets (``response['charset']``, ``request['charset']``).

    :param where: names the setting in the error message.
    :raise TestServerError: not a str, or no codec has that name.
    """
    if not isinstance(value, str):
        raise TestServerError(f"{where} must be a str, not {value!r}")
    try:
        codecs.lookup(value)
    except LookupError:
        raise TestServerError(f"{where}: unknown charset {value!r}") from None
    return value


def _pairs(key: str, value: Any) -> list[tuple[str, str]]:
    """Normalise headers or cookies to a list of ``(name, value)`` str pairs."""
    items = value.items() if isinstance(value, Mapping) else value
    try:
        pairs = [(name, val) for name, val in items]
    except (TypeError, ValueError):
        raise TestServerError(
            f"response[{key!r}] must be a dict or a list of (name, value) pairs, not {value!r}"
        ) from None
    result = []
    for name, val in pairs:
        name = _text(key, name)
        val = _text(key, val)
        if not name or any(c in name for c in ":\r\n\t ;="):
            raise TestServerError(f"response[{key!r}]: bad name {name!r}")
        if "\r" in val or "\n" in val:
            raise TestServerError(f"response[{key!r}]: the value of {name!r} contains a line break")
        result.append((name, val))
    return result


def _text(key: str, item: object) -> str:
    if isinstance(item, bytes):
        return item.decode("latin-1")
    if isinstance(item, (str, int, float)) and not isinstance(item, bool):
        return str(item)
    raise TestServerError(f"response[{key!r}]: names and values are str, not {item!r}")


def load_callback(spec: str) -> Callable[..., Any]:
    """
    Import a callback given as ``'package.module:function'``.

    :raise TestServerError: the string is malformed or names nothing callable.
    """
    module_name, colon, attr = spec.partition(":")
    if not colon or not module_name or not attr:
        raise TestServerError(f"callback {spec!r} must have the form 'package.module:function'")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except Exception as e:
        raise TestServerError(f"cannot import callback {spec!r}: {e!r}") from e
    if not callable(target):
        raise TestServerError(f"callback {spec!r} is not callable")
    return target  # type: ignore[no-any-return]


def resolve(
    permanent: Mapping[str, Any], once: Mapping[str, Any], method: str
) -> tuple[dict[str, Any], list[str]]:
    """
    Choose the value of every response key for one request.

    Precedence, highest first: ``response_once['<method>.key']``,
    ``response_once['key']``, ``response['<method>.key']``, ``response['key']``,
    the default.

    :param permanent: what the test set in ``response``.
    :param once: what the test set in ``response_once``.
    :param method: the request method, upper case.
    :return: the chosen values, and the ``response_once`` keys this request
        uses up (the store removes them in the same atomic step).
    """
    prefix = method.lower() + "."
    chosen = dict(KEYS)
    used = []
    for name in KEYS:
        specific = prefix + name
        if specific in once:
            chosen[name] = once[specific]
            used.append(specific)
            if name in once:
                used.append(name)
        elif name in once:
            chosen[name] = once[name]
            used.append(name)
        elif specific in permanent:
            chosen[name] = permanent[specific]
        elif name in permanent:
            chosen[name] = permanent[name]
    return chosen, used


class Answer(NamedTuple):
    """
    Everything the renderer needs to answer one request.

    A NamedTuple, not a frozen dataclass: one is made per request, and it is
    four times cheaper to make.

    :ivar error: when set, the configured answer could not be produced (an
        exhausted iterator): the client gets ``code`` with this text as body.
    """

    code: int
    body: bytes
    headers: list[tuple[str, str]]
    cookies: list[tuple[str, str]]
    callback: Callable[..., Any] | None
    sleep: float
    charset: str
    error: str | None = None


def build(values: Mapping[str, Any]) -> Answer:
    """
    Turn resolved values into an :class:`Answer`.

    Takes the next item of an iterator ``data``, encodes ``str`` data with the
    charset and imports a callback given as an import string.
    """
    charset: str = values["charset"]
    data = values["data"]
    error = None
    code: int = values["code"]
    if isinstance(data, Iterator):
        try:
            data = next(data)
        except StopIteration:
            data = b""
            code = 500
            error = "response['data'] iterator is exhausted: every item has been served"
    if isinstance(data, str):
        data = data.encode(charset)
    elif not isinstance(data, bytes):
        code = 500
        error = f"response['data'] iterator gave {type(data).__name__}, not bytes or str"
        data = b""
    callback = values["callback"]
    if isinstance(callback, str):
        callback = load_callback(callback)
    return Answer(
        code=code,
        body=data,
        headers=values["headers"],
        cookies=values["cookies"],
        callback=callback,
        sleep=values["sleep"],
        charset=charset,
        error=error,
    )
