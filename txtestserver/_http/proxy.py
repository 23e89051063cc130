"""
The server as a proxy, at the HTTP level: what a request's target says about
the host the client meant (:func:`target`: absolute form, ``CONNECT``, a
request inside a tunnel), the proxy credentials it presented
(:func:`credentials`), and the answers that refuse it before any route is
asked (:func:`refusal`: ``407`` without the right credentials).

A request that came directly has no proxy; one in absolute form
(``GET http://api.example.com/x HTTP/1.1``) is ``{"kind": "absolute"}``,
a ``CONNECT`` is ``{"kind": "connect"}``, and a request inside a tunnel has
its tunnel's (:mod:`.tunnel` sets it on the connection).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import TYPE_CHECKING, Any

from .._model.record import HOST, METHOD, PROXY, VIA, Record, split_authority
from .._model.routes import Facts, matches

if TYPE_CHECKING:
    from .._state.store import StateStore
    from .answers import Answer

__all__ = ["answer", "credentials", "proxy_json", "refusal", "target"]

#: The schemes of an absolute-form target (RFC 9112, 3.2.2).
_ABSOLUTE = (b"http://", b"https://")


def credentials(request: Any) -> tuple[str, str] | None:
    """
    The ``(user, password)`` of the request's ``Proxy-Authorization: Basic``
    header, or None (no header, another scheme, or not decodable).
    """
    value = request.requestHeaders.getRawHeaders(b"proxy-authorization")
    if not value:
        return None
    scheme, _, token = value[0].strip().partition(b" ")
    if scheme.lower() != b"basic":
        return None
    try:
        text = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, _, password = text.partition(":")
    return user, password


def proxy_json(
    kind: str, authority: str, scheme: str, sni: str | None, auth: tuple[str, str] | None
) -> str:
    """
    ``request['proxy']`` as the journal keeps it (JSON text): ``target`` is
    ``host:port``, the port filled in from the scheme, or None when the
    client named none (a SOCKS5 client refused before its request).
    """
    host, port = split_authority(authority, scheme)
    shown = f"[{host}]" if host and ":" in host else host
    return json.dumps(
        {
            "kind": kind,
            "target": f"{shown}:{port}" if authority else None,
            "sni": sni,
            "auth": None if auth is None else list(auth),
        },
        separators=(",", ":"),
    )


def target(request: Any, connection: Any) -> tuple[str, str, bytes, str | None]:
    """
    What the client meant: ``(scheme, authority, uri, proxy)``, ``uri`` in
    origin form (``/path?query``), ``proxy`` the JSON text of
    ``request['proxy']`` or None.

    :param request: the twisted.web request.
    :param connection: its connection, which says the scheme (``scheme``:
        TLS or not, in a tunnel too) and the tunnel it came through
        (``proxy``), when it knows them.
    """
    uri: bytes = request.uri
    proxy: str | None = getattr(connection, "proxy", None)
    scheme: str = getattr(connection, "scheme", "") or ("https" if request.isSecure() else "http")
    if request.method == b"CONNECT":
        authority = uri.decode("latin-1").lower()
        return "", authority, uri, proxy_json("connect", authority, "", None, credentials(request))
    if uri[:8].lower().startswith(_ABSOLUTE):
        given, _, rest = uri.partition(b"://")
        end = min((i for i in map(rest.find, (b"/", b"?")) if i >= 0), default=len(rest))
        authority = rest[:end].decode("latin-1").lower()
        path = rest[end:]
        uri = path if path.startswith(b"/") else b"/" + path
        scheme = given.decode("latin-1").lower()
        if proxy is None:
            proxy = proxy_json("absolute", authority, scheme, None, credentials(request))
        return scheme, authority, uri, proxy
    host = request.requestHeaders.getRawHeaders(b"host")
    authority = host[0].decode("latin-1").lower() if host else ""
    return scheme, authority, uri, proxy


def refusal(record_proxy: str | None, wanted: tuple[str, str] | None) -> str | None:
    """
    Why a request through the proxy is refused before any route is asked
    (the ``407`` body), or None.

    :param record_proxy: the request's ``proxy`` as the journal keeps it.
    :param wanted: the credentials the proxy requires (``proxy_auth``).
    """
    if wanted is None or record_proxy is None:
        return None
    presented = json.loads(record_proxy)["auth"]
    if presented is not None and tuple(presented) == wanted:
        return None
    if presented is None:
        return (
            "proxy authentication required: this proxy was started with proxy_auth; "
            "send Proxy-Authorization: Basic with its user and password"
        )
    return f"proxy authentication failed: wrong user or password (user {presented[0]!r})"


#: A ``CONNECT`` target: ``host:port`` (RFC 9110, 9.3.6), the host a name or
#: an address (IPv6 in brackets).
_TARGET = re.compile(r"(\[[0-9a-f:.]+\]|[a-z0-9_.-]+):([0-9]{1,5})")


def bad_target(authority: str) -> str | None:
    """Why a ``CONNECT`` target is malformed (the ``400``'s words), or None."""
    found = _TARGET.fullmatch(authority)
    if found is not None and 0 < int(found.group(2)) < 65536:
        return None
    return (
        f"a CONNECT to a malformed target {authority[:100]!r}: a CONNECT names host:port, "
        "such as api.example.com:443 or [::1]:8443"
    )


def answer(
    record: Record, store: StateStore, wanted: tuple[str, str] | None
) -> tuple[Answer, int | None, str | None] | None:
    """
    The proxy's own answer to a request that came through it, before any
    route is asked; None when the routes answer it (a request in absolute
    form, or inside a tunnel, with the right credentials).

    :param record: the request, which came through the proxy.
    :param store: the response table: a ``CONNECT`` takes what
        ``server.tunnel()`` set for its host (a route on the ``CONNECT``
        method and that host, with ``response['tunnel']``).
    :param wanted: the credentials the proxy requires (``proxy_auth``).
    :return: ``(answer, route_id, route)``.
    """
    from .answers.tunnel import ProxyAuthAnswer, TunnelAnswer

    why = refusal(record[VIA][PROXY], wanted)
    if why is not None:
        return ProxyAuthAnswer(why), None, None
    if record[METHOD] != b"CONNECT":
        return None
    problem = bad_target(record[VIA][HOST])
    if problem is not None:
        from .answers.error import ErrorAnswer

        return ErrorAnswer(400, problem), None, None
    facts = Facts(record)
    routes = store.read(lambda table: table.routes())
    if any(when.get("method") == "CONNECT" and matches(when, facts) for _, _, when in routes):
        taken = store.update(lambda table: table.take(record))
        if taken is not None and taken.values["tunnel"] is not None:
            return TunnelAnswer.from_values(taken.values), taken.route_id, taken.route
    return TunnelAnswer(), None, None
