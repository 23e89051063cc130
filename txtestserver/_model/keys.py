"""
The ``response`` keys: one registry (:data:`KEYS`) holding each key's
default and its check.

A key's check is the only place that decides what a value may be, for the
test process (when a test assigns it) and for the server process (when it
reads the state back), and whether it may cross to a server process: with
``portable=True`` a check refuses callables and iterators, so everything a
portable check passes is plain data (bytes, str, numbers, bools, None, lists
and tuples of them) that the file store can write as JSON.

A new key is one :func:`register` call (and, if it makes a new kind of
answer, an entry in :data:`txtestserver._http.answers.KINDS`). Nothing here
knows HTTP or Twisted.
"""

from __future__ import annotations

import codecs
import difflib
import importlib
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .._errors import TestServerError

__all__ = [
    "FAULTS",
    "KEYS",
    "ResponseKey",
    "canonical_key",
    "check_charset",
    "check_token",
    "check_value",
    "defaults",
    "json_data",
    "load_callback",
    "register",
    "split_key",
]

#: ``check(where, value, portable) -> value``: normalise a value or raise
#: TestServerError. ``where`` names the setting in messages
#: (``"response['post.data']"``).
Check = Callable[[str, Any, bool], Any]


@dataclass(frozen=True)
class ResponseKey:
    """
    One key of ``server.response``.

    :ivar name: the plain key (``"data"``).
    :ivar default: its value when no test set it.
    :ivar check: normalises a value or raises TestServerError.
    """

    name: str
    default: Any
    check: Check


#: The keys of ``server.response``, in the order the docs list them.
KEYS: dict[str, ResponseKey] = {}


#: Every key's default (kept up to date by :func:`register`).
_DEFAULTS: dict[str, Any] = {}


def register(name: str, default: Any, check: Check) -> ResponseKey:
    """Add a response key to :data:`KEYS`; return it."""
    key = KEYS[name] = ResponseKey(name, default, check)
    _DEFAULTS[name] = default
    return key


def defaults() -> dict[str, Any]:
    """Every key's default, as a new dict (made for each request: a copy)."""
    return _DEFAULTS.copy()


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
        close = difflib.get_close_matches(name, KEYS, n=1)
        hint = f" (did you mean {method + dot + close[0]!r}?)" if close else ""
        raise TestServerError(
            f"unknown response key {key!r}{hint}: use one of {', '.join(KEYS)}, "
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


def check_value(key: str, value: Any, *, portable: bool, where: str = "response") -> Any:
    """
    Check one value of ``response[key]`` and normalise it.

    :param key: the response key, plain or method-specific.
    :param value: the value.
    :param portable: the value must cross a process boundary as data
        (subprocess engine): callables and iterators are refused.
    :param where: the name of the mapping, for messages.
    :return: the value to store.
    :raise TestServerError: the value can never work; the message says why.
    """
    _, name = split_key(key)
    return KEYS[name].check(f"{where}[{key!r}]", value, portable)


_HINT_SUBPROCESS = (
    "the subprocess engine keeps the response in files, so only data "
    "(bytes, str, numbers, lists) can cross to the server process"
)


# -- the checks ------------------------------------------------------------------------


def _check_code(where: str, value: Any, portable: bool) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
        raise TestServerError(f"{where} must be an int from 100 to 599, not {value!r}")
    return value


def _check_data(where: str, value: Any, portable: bool) -> Any:
    if isinstance(value, (bytes, str)):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, Iterator):
        if portable:
            raise TestServerError(
                f"{where} cannot be an iterator: {_HINT_SUBPROCESS}. "
                "Set response_once for each answer instead, or use the thread engine"
            )
        return value
    raise TestServerError(
        f"{where} must be bytes, str or an iterator of them, not {type(value).__name__}"
    )


#: The characters of an HTTP token (RFC 9110, section 5.6.2): what header
#: names (and cookie names, RFC 6265) are made of.
TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def check_token(where: str, name: str) -> str:
    """
    Check a header or cookie name against the token grammar of RFC 9110.

    Twisted refuses other names only when the answer is written, when the
    request would get a generic 500 and never be recorded: refused here,
    they fail in the test's own line.

    :param where: names the setting in the error message.
    :raise TestServerError: the name is empty or has a character a token
        cannot have; the message names the character and its position.
    """
    if not name:
        raise TestServerError(f"{where}: a name cannot be empty")
    for position, char in enumerate(name):
        if char not in TOKEN_CHARS:
            raise TestServerError(
                f"{where}: bad name {name!r}: {char!r} (U+{ord(char):04X}) at position "
                f"{position} is not allowed; names are HTTP tokens (RFC 9110): ASCII "
                "letters, digits and !#$%&'*+-.^_`|~"
            )
    return name


def _check_pairs(where: str, value: Any, portable: bool) -> list[tuple[str, str]]:
    """
    Headers or cookies: a list of ``(name, value)`` str pairs; names are
    HTTP tokens (:func:`check_token`), values have no line break.
    """
    items = value.items() if isinstance(value, Mapping) else value
    try:
        pairs = [(name, val) for name, val in items]
    except (TypeError, ValueError):
        raise TestServerError(
            f"{where} must be a dict or a list of (name, value) pairs, not {value!r}"
        ) from None
    result = []
    for name, val in pairs:
        name = check_token(where, _text(where, name))
        val = _text(where, val)
        if "\r" in val or "\n" in val:
            raise TestServerError(f"{where}: the value of {name!r} contains a line break")
        check_field_value(where, name, val)
        result.append((name, val))
    return result


#: Characters a header or cookie value cannot hold (RFC 9110, 5.5): the
#: controls but horizontal tab (C0, DEL and C1, which holds NEL), and the
#: Unicode line and paragraph separators, which some clients take for a
#: line break.
_FORBIDDEN_IN_VALUES = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def check_field_value(where: str, name: str, value: str) -> None:
    """
    Refuse a header or cookie value HTTP forbids, naming the character.

    :param where: names the setting in the error message.
    :raise TestServerError: the value has a control character (but tab),
        NEL or U+2028/U+2029; ``response['raw']`` sends such bytes on purpose.
    """
    found = _FORBIDDEN_IN_VALUES.search(value)
    if found is not None:
        char = found.group()
        raise TestServerError(
            f"{where}: the value of {name!r} contains {char!r} (U+{ord(char):04X}) at "
            f"position {found.start()}, which HTTP forbids in a field value (RFC 9110, "
            "5.5); to send such bytes on purpose, use response['raw']"
        )


def _text(where: str, item: object) -> str:
    if isinstance(item, bytes):
        return item.decode("latin-1")
    if isinstance(item, (str, int, float)) and not isinstance(item, bool):
        return str(item)
    raise TestServerError(f"{where}: names and values are str, not {item!r}")


def _check_callback(where: str, value: Any, portable: bool) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        load_callback(value)  # fail now, not at the first request
        return value
    if callable(value):
        if portable:
            raise TestServerError(
                f"{where} cannot be a function object: {_HINT_SUBPROCESS}. "
                "Give it as an import string instead: 'package.module:function'"
            )
        return value
    raise TestServerError(f"{where} must be a callable or 'package.module:function', not {value!r}")


def _check_websocket(where: str, value: Any, portable: bool) -> Any:
    """
    None, or a WebSocket route's script (:mod:`txtestserver._model.websocket`),
    made by ``server.websocket()`` and changed by its methods only; in a
    portable table, without ``on_message`` functions.
    """
    if value is None:
        return None
    if not isinstance(value, dict) or not {"subprotocols", "connect", "rules"} <= value.keys():
        raise TestServerError(
            f"{where} is set by server.websocket() and its methods, not {value!r}"
        )
    if portable and value.get("callbacks"):
        raise TestServerError(
            f"{where}: ws.on_message() functions cannot cross to the server process: "
            f"{_HINT_SUBPROCESS}; script the answers with ws.reply() instead"
        )
    return value


#: What ``server.tunnel()`` may do to a ``CONNECT`` instead of a good tunnel.
TUNNEL_FAULTS = ("reset", "stall")
#: The bad certificates a tunnel may serve.
TUNNEL_CERTIFICATES = ("expired", "wrong_name", "unknown_authority")


def _check_tunnel(where: str, value: Any, portable: bool) -> Any:
    """
    None, or what a proxy does to a ``CONNECT`` (set by ``server.tunnel()``):
    ``{"code": int, "fault": None or one of TUNNEL_FAULTS, "certificate":
    None or one of TUNNEL_CERTIFICATES}``.
    """
    if value is None:
        return None
    if not isinstance(value, Mapping) or set(value) != {"code", "fault", "certificate"}:
        raise TestServerError(
            f"{where} is set by server.tunnel(host, code=..., fault=..., certificate=...), "
            f"not {value!r}"
        )
    code = _check_code(where + "['code']", value["code"], portable)
    if value["fault"] not in (None, *TUNNEL_FAULTS):
        raise TestServerError(
            f"a tunnel fault is None or one of {', '.join(TUNNEL_FAULTS)}, not {value['fault']!r}"
        )
    if value["certificate"] not in (None, *TUNNEL_CERTIFICATES):
        raise TestServerError(
            f"a tunnel certificate is None (a good one) or one of "
            f"{', '.join(TUNNEL_CERTIFICATES)}, not {value['certificate']!r}"
        )
    return {"code": code, "fault": value["fault"], "certificate": value["certificate"]}


def _check_sleep(where: str, value: Any, portable: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise TestServerError(f"{where} must be a number of seconds >= 0, not {value!r}")
    return float(value)


def _check_chunk_times(where: str, value: Any, portable: bool) -> list[float] | None:
    """
    None, or the seconds to wait before each piece of ``chunks`` (a recorded
    stream's pace: the first before the first piece); it replaces
    ``chunk_delay`` for the pieces it covers.
    """
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise TestServerError(f"{where} must be a list of seconds, one per piece, not {value!r}")
    return [_check_sleep(f"{where}[{i}]", seconds, portable) for i, seconds in enumerate(value)]


def _check_forward(where: str, value: Any, portable: bool) -> str | bool | None:
    """
    None, or the upstream a request is forwarded to: an ``http://`` or
    ``https://`` URL with a host (its path, if any, is put before the
    request's), or True, the host each request was meant for (a proxy's:
    :mod:`txtestserver._http.answers.forward`).
    """
    if value is None or value is True:
        return value
    from urllib.parse import urlsplit

    if not isinstance(value, str):
        raise TestServerError(f"{where} must be an upstream URL (str), not {value!r}")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TestServerError(
            f"{where} must be an http:// or https:// URL with a host, like "
            f"'http://127.0.0.1:8080', not {value!r}"
        )
    try:
        parts.port  # noqa: B018 (raises for a port out of range)
    except ValueError as e:
        raise TestServerError(f"{where}: {value!r}: {e}") from None
    return value.rstrip("/")


def _check_forward_verify(where: str, value: Any, portable: bool) -> bool | str:
    """
    How a forwarded request checks its upstream's TLS certificate: True
    (the system's trust store), False (not at all), or the path of a PEM
    file of CA certificates to trust (made absolute: the server process
    reads it).
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, (str, os.PathLike)):
        path = os.path.abspath(os.fspath(value))
        if not os.path.isfile(path):
            raise TestServerError(
                f"{where}: the CA file {path!r} does not exist: give the path of a PEM "
                "file of CA certificates (an upstream txtestserver's ca_path), True for "
                "the system's trust store, or False not to verify"
            )
        return path
    raise TestServerError(
        f"{where} must be True, False or the path of a CA file (PEM), not {value!r}"
    )


def _check_chunks(where: str, value: Any, portable: bool) -> Any:
    """
    None, or the pieces of a streamed body: a list of bytes or str (kept as
    a list); in the thread engine any other iterable too (a generator), kept
    as it is and read while the answer streams.
    """
    if value is None:
        return None
    if isinstance(value, (bytes, str, bytearray, memoryview)):
        raise TestServerError(
            f"{where} must be a list of pieces (bytes or str), not one "
            f"{type(value).__name__}: use response['data'] for a body in one piece"
        )
    if isinstance(value, (list, tuple)):
        pieces = []
        for piece in value:
            if isinstance(piece, (bytearray, memoryview)):
                piece = bytes(piece)
            if not isinstance(piece, (bytes, str)):
                raise TestServerError(
                    f"{where}: every piece must be bytes or str, not {type(piece).__name__}"
                )
            pieces.append(piece)
        return pieces
    if not isinstance(value, Iterable):
        raise TestServerError(
            f"{where} must be a list of bytes or str pieces, not {type(value).__name__}"
        )
    if portable:
        raise TestServerError(
            f"{where} cannot be a {type(value).__name__}: {_HINT_SUBPROCESS}. "
            "Give a list of pieces (list(generator) if it is finite), or use the thread engine"
        )
    return value


def _check_throttle(where: str, value: Any, portable: bool) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise TestServerError(
            f"{where} must be a number of bytes per second > 0 (or None), not {value!r}"
        )
    return float(value)


#: The values of ``response['fault']``: how the server misbehaves instead of
#: answering. :mod:`txtestserver._http.answers.faults` carries each one out.
FAULTS = (
    "reset",
    "empty",
    "garbage",
    "malformed_chunk",
    "truncated",
    "reset_mid_body",
    "stall",
    "no_answer",
)


def _check_fault(where: str, value: Any, portable: bool) -> str | None:
    if value is None or value in FAULTS:
        return value  # type: ignore[no-any-return]
    raise TestServerError(f"{where} must be None or one of {', '.join(FAULTS)}; not {value!r}")


def _check_raw(where: str, value: Any, portable: bool) -> bytes | str | None:
    if value is None or isinstance(value, (bytes, str)):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TestServerError(
        f"{where} must be bytes (the exact answer, status line included) or None, "
        f"not {type(value).__name__}"
    )


def _check_json(where: str, value: Any, portable: bool) -> Any:
    return None if value is None else json_data(where, value)


def json_data(where: str, value: Any) -> Any:
    """
    ``value`` as JSON data, normalised as it will be sent or compared
    (tuples become lists, keys str).

    :raise TestServerError: not JSON data (a set, bytes, NaN, ...).
    """
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as e:
        raise TestServerError(
            f"{where} must be JSON data (dict, list, str, int, float, bool), not "
            f"{type(value).__name__}: {e}"
        ) from None


def _check_flag(where: str, value: Any, portable: bool) -> bool:
    if not isinstance(value, bool):
        raise TestServerError(f"{where} must be True or False, not {value!r}")
    return value


def check_charset(where: str, value: object, portable: bool = True) -> str:
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


register("code", 200, _check_code)
register("data", b"", _check_data)
register("headers", [], _check_pairs)
register("cookies", [], _check_pairs)
register("callback", None, _check_callback)
register("sleep", 0.0, _check_sleep)
register("charset", "utf-8", check_charset)
register("chunks", None, _check_chunks)
register("chunk_delay", 0.0, _check_sleep)
register("chunk_times", None, _check_chunk_times)
register("throttle", None, _check_throttle)
register("fault", None, _check_fault)
register("raw", None, _check_raw)
register("json", None, _check_json)
register("close", False, _check_flag)
register("websocket", None, _check_websocket)
register("tunnel", None, _check_tunnel)
register("forward", None, _check_forward)
register("forward_verify", True, _check_forward_verify)
