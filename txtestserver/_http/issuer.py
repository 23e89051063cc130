"""
The certificates of a proxy's tunnels: an :class:`Issuer` makes, for each
host a client asks a tunnel for, a certificate issued by the test process's
authority, and keeps its OpenSSL context per name.

It runs where the server runs (the test process, or the server process,
which rebuilds the authority from the PEM files of its state directory),
so it needs the authority's key (:attr:`~.tls.Credentials.authority_key`).
A tunnel that ``server.tunnel()`` gives a bad certificate gets one made
for that purpose (:data:`BAD`): expired, for another name, or from an
authority no client trusts.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable
from typing import Any

from .._config import ServerConfig
from .._errors import TestServerError
from .tls import Credentials, server_tls

__all__ = ["BAD", "WRONG_NAME", "Issuer"]

#: The name a ``wrong_name`` certificate is for.
WRONG_NAME = "wrong-name.txtestserver.invalid"


def _good(issuer: Issuer, name: str) -> Any:
    return issuer.authority.issue_cert(name)


def _expired(issuer: Issuer, name: str) -> Any:
    now = datetime.datetime.now(datetime.timezone.utc)
    return issuer.authority.issue_cert(
        name,
        not_before=now - datetime.timedelta(days=30),
        not_after=now - datetime.timedelta(days=1),
    )


def _wrong_name(issuer: Issuer, name: str) -> Any:
    return issuer.authority.issue_cert(WRONG_NAME)


def _unknown_authority(issuer: Issuer, name: str) -> Any:
    return issuer.stranger().issue_cert(name)


#: ``server.tunnel(certificate=...)`` -> how the leaf is issued (None: a good one).
BAD: dict[str | None, Callable[[Issuer, str], Any]] = {
    None: _good,
    "expired": _expired,
    "wrong_name": _wrong_name,
    "unknown_authority": _unknown_authority,
}


class Issuer:
    """
    Issues and keeps a tunnel certificate per host name (and kind).

    :param credentials: the server's, with the authority's key.
    :param config: ALPN offers ``h2`` in tunnels with ``config.http2``.
    :raise TestServerError: the credentials carry no authority key.
    """

    def __init__(self, credentials: Credentials, config: ServerConfig) -> None:
        if credentials.authority_key is None:
            raise TestServerError("a proxy needs the authority's key to issue certificates")
        self._credentials = credentials
        self._ca_pem = credentials.authority
        self._authority: Any = None
        self._config = config
        self._contexts: dict[tuple[str, str | None], Any] = {}
        self._stranger: Any = None

    @property
    def authority(self) -> Any:
        """The test process's authority, rebuilt on first use (not at start)."""
        if self._authority is None:
            import trustme

            credentials = self._credentials
            key = credentials.authority_key
            assert key is not None  # checked when made
            self._authority = trustme.CA.from_pem(credentials.authority, key)
        return self._authority

    def stranger(self) -> Any:
        """An authority no client trusts (made on first use)."""
        if self._stranger is None:
            import trustme

            self._stranger = trustme.CA(organization_name="txtestserver unknown CA")
        return self._stranger

    def context(self, name: str, bad: str | None, select: Callable[[Any], None]) -> Any:
        """
        The OpenSSL context that serves ``name``'s certificate (issued on
        first use, then kept).

        :param bad: the kind of bad certificate, or None.
        :param select: the SNI callback every context calls.
        """
        key = (name, bad)
        context = self._contexts.get(key)
        if context is None:
            leaf = BAD[bad](self, name)
            pem = leaf.private_key_and_cert_chain_pem.bytes()
            config = dataclasses.replace(self._config, client_cert=None)
            context = server_tls(config, Credentials(pem, self._ca_pem)).context
            context.set_tlsext_servername_callback(select)
            self._contexts[key] = context
        return context
