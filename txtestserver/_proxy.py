"""
The test's side of proxy mode (``proxy=True``): :class:`ProxyMethods`, the
public methods every face has through ``ServerCore``: where a client finds
the proxy (:attr:`~ProxyMethods.proxy_url`, :meth:`~ProxyMethods.client_env`,
:meth:`~ProxyMethods.patch_env`) and how a ``CONNECT`` goes wrong on purpose
(:meth:`~ProxyMethods.tunnel`).

The server side is in ``_http/proxy.py`` (the target a request meant, 407),
``_http/answers/tunnel.py`` (the ``CONNECT`` answer), ``_http/tunnel.py``
(the connection inside) and ``_http/issuer.py`` (its certificates).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ._errors import TestServerError
from ._model.keys import TUNNEL_CERTIFICATES, TUNNEL_FAULTS

if TYPE_CHECKING:
    from ._config import ServerConfig
    from ._route import Route

__all__ = ["ProxyMethods"]

#: The variables :meth:`ProxyMethods.client_env` sets, each under both
#: spellings that clients read (curl reads only ``http_proxy`` in lower case).
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
_CA_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


class ProxyMethods:
    """The proxy methods of a server (mixed into ``ServerCore``)."""

    if TYPE_CHECKING:
        config: ServerConfig

        def _tls(self, what: str) -> Any: ...

        def get_url(
            self, path: str = "", port: int | None = None, scheme: str | None = None
        ) -> str: ...

        def route(self, path: Any, method: str | None = None, **more: Any) -> Route: ...

    def _proxy(self, what: str) -> None:
        if not self.config.proxy:
            raise TestServerError(f"{what} is for a proxy: make the server with proxy=True")

    @property
    def proxy_url(self) -> str:
        """
        The URL of the server as a proxy (``http://127.0.0.1:PORT``), for a
        client's ``proxies=`` or ``proxy=`` argument.

        :raise TestServerError: the server was made without ``proxy=True``,
            or is not running.
        """
        self._proxy("proxy_url")
        return self.get_url().rstrip("/")

    @property
    def socks_url(self) -> str:
        """
        The URL of the server as a SOCKS5 proxy, ``socks5://127.0.0.1:PORT``:
        the same port as :attr:`proxy_url` (a connection's first byte tells
        SOCKS from HTTP). ``socks5h://`` (the client sends the host name, not
        an address it looked up) works too, and is what a test of a host
        that does not exist needs.

        :raise TestServerError: the server was made without ``proxy=True``,
            or is not running.
        """
        self._proxy("socks_url")
        return "socks5" + self.proxy_url[len("http") :]

    def client_env(self) -> dict[str, str]:
        """
        The environment variables that send a client (or a child process)
        through this proxy and make it trust the certificates of its
        tunnels: ``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY`` (each in
        lower case too), ``NO_PROXY`` empty (every host goes through the
        proxy), and ``SSL_CERT_FILE``, ``REQUESTS_CA_BUNDLE`` and
        ``CURL_CA_BUNDLE`` naming :attr:`ca_path`. Which client reads which
        is in the docs (:doc:`proxy`).

        :raise TestServerError: the server was made without ``proxy=True``,
            or is not running.
        """
        self._proxy("client_env()")
        url = self.proxy_url
        env = {name: url for name in _PROXY_VARIABLES[:3]}
        env["NO_PROXY"] = ""
        env.update({name.lower(): value for name, value in env.items()})
        ca_path: str = self._tls("client_env()").ca_path
        env.update({name: ca_path for name in _CA_VARIABLES})
        return env

    @contextlib.contextmanager
    def patch_env(self) -> Iterator[dict[str, str]]:
        """
        ``with server.patch_env(): ...``: :meth:`client_env` set in
        ``os.environ`` for the block, then each variable restored as it was
        (removed if it was not set). Yields the variables set.

        :raise TestServerError: the server was made without ``proxy=True``,
            or is not running.
        """
        env = self.client_env()
        saved = {name: os.environ.get(name) for name in env}
        os.environ.update(env)
        try:
            yield env
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def tunnel(
        self,
        host: str | re.Pattern[str],
        *,
        code: int = 200,
        fault: str | None = None,
        certificate: str | None = None,
        port: int | None = None,
    ) -> Route:
        """
        What the proxy does to a ``CONNECT`` to ``host`` instead of a good
        tunnel: a route on the ``CONNECT`` (its ``requests`` are those
        ``CONNECT`` requests). A SOCKS5 client asking for ``host`` gets the
        same (a status other than 200: SOCKS5's "not allowed by ruleset"),
        and its attempt is one of the route's ``requests`` too.

        :param host: as for ``route(host=...)``.
        :param code: answer this status instead of ``200`` (``403``,
            ``502``...), with a plain-text body, and close.
        :param fault: ``'reset'``: a TCP reset right after the ``200``;
            ``'stall'``: no answer at all (the client's timeout ends it).
        :param certificate: the tunnel's TLS serves a bad certificate:
            ``'expired'``, ``'wrong_name'`` (for another host) or
            ``'unknown_authority'`` (from an authority no client trusts).
        :param port: the ``CONNECT``'s port too (None: any).
        :raise TestServerError: the server is no proxy, or a value can never
            work (the message says which).
        """
        self._proxy("tunnel()")
        if fault not in (None, *TUNNEL_FAULTS):
            raise TestServerError(
                f"tunnel(fault=...) is None or one of {', '.join(TUNNEL_FAULTS)}, not {fault!r}"
            )
        if certificate not in (None, *TUNNEL_CERTIFICATES):
            raise TestServerError(
                f"tunnel(certificate=...) is None or one of {', '.join(TUNNEL_CERTIFICATES)}, "
                f"not {certificate!r}"
            )
        shown = host if isinstance(host, str) else f"re{host.pattern!r}"
        route = self.route(None, "CONNECT", host=host, port=port, name=f"tunnel {shown}")
        route.response["tunnel"] = {"code": code, "fault": fault, "certificate": certificate}
        return route
