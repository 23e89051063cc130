"""
How one server is set up: a frozen :class:`ServerConfig`.

The faces build it once from their constructor's keyword parameters (checked
here, so a bad value fails in the test's own line) and from ``start()``; both
engines receive the same value, and the subprocess engine hands it to the
server process as one JSON document (:meth:`ServerConfig.to_json`).

A new setting is one field here (with its check in :data:`_CHECKS`), one
keyword parameter of :class:`~txtestserver._core.ServerCore`, and the code
that reads it.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

from ._errors import TestServerError

__all__ = [
    "DEFAULT_BODY_LIMIT",
    "DEFAULT_HEADER_COUNT_LIMIT",
    "DEFAULT_HEADER_SIZE_LIMIT",
    "ServerConfig",
]

#: Bytes of each request body kept in ``request['data']``.
DEFAULT_BODY_LIMIT = 64 * 1024 * 1024
#: Header lines accepted in one request.
DEFAULT_HEADER_COUNT_LIMIT = 500
#: Bytes accepted in the request line plus all header lines of one request.
DEFAULT_HEADER_SIZE_LIMIT = 64 * 1024


def _address(name: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise TestServerError(
            f"{name} must name an interface such as '127.0.0.1' (the default), not "
            f"{value!r}: an empty address would listen on every interface; "
            "say '0.0.0.0' if you mean that"
        )


def _port(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise TestServerError(
            f"{name} must be an int from 0 to 65535 (0: any free port), not {value!r}"
        )


def _flag(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise TestServerError(f"{name} must be True or False, not {value!r}")


def _one_of(*allowed: object) -> Callable[[str, object], None]:
    def check(name: str, value: object) -> None:
        if value not in allowed or isinstance(value, bool):
            raise TestServerError(
                f"{name} must be one of {', '.join(map(repr, allowed))}, not {value!r}"
            )

    return check


def _at_least(lowest: int) -> Callable[[str, object], None]:
    def check(name: str, value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
            raise TestServerError(f"{name} must be an int of at least {lowest}, not {value!r}")

    return check


def _credentials(name: str, value: object) -> None:
    if value is None:
        return
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not all(isinstance(part, str) for part in value)
        or ":" in value[0]
    ):
        raise TestServerError(
            f"{name} is None (no proxy authentication) or a (user, password) pair of str, "
            f"the user without ':', such as ('user', 'secret'); not {value!r}"
        )


#: The check of each field: ``check(name, value)`` raises TestServerError.
_CHECKS: dict[str, Callable[[str, object], None]] = {
    "address": _address,
    "port": _port,
    "keep_alive": _flag,
    "body_limit": _at_least(0),
    "header_count_limit": _at_least(1),
    "header_size_limit": _at_least(1),
    "strict": _flag,
    "tls": _flag,
    "client_cert": _one_of(None, "optional", "required"),
    "http2": _flag,
    "proxy": _flag,
    "proxy_auth": _credentials,
}


@dataclass(frozen=True)
class ServerConfig:
    """
    The settings of one server run. The field names are the keyword
    parameters of the server classes (``keep_alive`` is ``start()``'s).

    :ivar address: the interface to bind.
    :ivar port: the port to bind; 0 picks a free one.
    :ivar keep_alive: keep connections open between requests.
    :ivar body_limit: bytes of each request body kept in ``request['data']``
        (the rest is read and dropped; the client still gets its answer).
    :ivar header_count_limit: header lines accepted in one request; a request
        with more gets ``400 Bad Request`` and its connection closed.
    :ivar header_size_limit: bytes accepted in the request line plus all
        header lines (without line ends); a request with more gets ``400 Bad
        Request``, or, when one line alone is longer, its connection closed.
    :ivar strict: a request that nothing the test set expects (no route
        matches it, no queued or ``response_once`` answer takes it, no
        ``response`` key applies to it) is answered ``404`` and recorded as a
        server-side error.
    :ivar tls: serve HTTPS, with a certificate issued at start by the
        certificate authority of the test process.
    :ivar client_cert: ask clients for a certificate issued by that
        authority: ``'required'`` (a client without one fails the handshake)
        or ``'optional'``; None asks for none.
    :ivar http2: offer HTTP/2 (ALPN ``h2``, then ``http/1.1``); needs
        ``tls`` (or ``proxy``, inside its tunnels) and the
        ``txtestserver[http2]`` extra.
    :ivar proxy: also be a proxy on the same port: absolute-form requests,
        ``CONNECT`` tunnels (TLS terminated with a certificate issued for
        the name asked) and SOCKS5, all answered by the routes.
    :ivar proxy_auth: ``(user, password)`` the proxy requires (``407``
        without them), or None.
    """

    address: str = "127.0.0.1"
    port: int = 0
    keep_alive: bool = False
    body_limit: int = DEFAULT_BODY_LIMIT
    header_count_limit: int = DEFAULT_HEADER_COUNT_LIMIT
    header_size_limit: int = DEFAULT_HEADER_SIZE_LIMIT
    strict: bool = False
    tls: bool = False
    client_cert: str | None = None
    http2: bool = False
    proxy: bool = False
    proxy_auth: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        for field in fields(self):
            _CHECKS[field.name](field.name, getattr(self, field.name))
        if self.proxy_auth is not None:
            object.__setattr__(self, "proxy_auth", tuple(self.proxy_auth))
            if not self.proxy:
                raise TestServerError("proxy_auth needs proxy=True: it is the proxy's")
        for name in ("client_cert", "http2"):
            # HTTP/2 also works inside the TLS tunnels of a proxy.
            tls = self.tls or (self.proxy and name == "http2")
            if getattr(self, name) and not tls:
                raise TestServerError(
                    f"{name}={getattr(self, name)!r} needs tls=True: client certificates "
                    "and HTTP/2 (negotiated by ALPN) exist only over TLS"
                )
        if self.http2 and importlib.util.find_spec("h2") is None:
            raise TestServerError(
                "http2=True needs the h2 package: pip install 'txtestserver[http2]'"
            )

    def to_json(self) -> str:
        """The config as one JSON document (for the server process)."""
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, document: str | bytes) -> ServerConfig:
        """
        The inverse of :meth:`to_json`; every field is checked again.

        :raise TestServerError: not a config document, or a bad value.
        """
        try:
            data: Any = json.loads(document)
            return cls(**data)
        except (ValueError, TypeError) as e:
            raise TestServerError(f"not a server configuration: {e}") from e


#: The configuration of a server made with no parameters.
DEFAULT_CONFIG = ServerConfig()
