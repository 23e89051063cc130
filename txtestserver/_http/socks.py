"""
SOCKS5 on the proxy's own port (RFC 1928, with no authentication or RFC
1929's username and password; ``CONNECT`` to an IPv4, IPv6 or domain-name
address): :class:`Socks5`, the protocol a connection becomes when its first
byte is ``0x05`` (:func:`sniff`). Once the client is connected, the
connection is a :class:`~txtestserver._http.tunnel.Tunnel`, as after an HTTP
``CONNECT``: TLS or plain HTTP inside, answered by the routes.

On the same port as HTTP, not a port of its own: no HTTP request starts
with the byte ``0x05`` (a method is a token of letters) and no TLS
handshake does (``0x16``), so the first byte tells them apart at no cost,
and a client needs one address for every kind of proxy.

A greeting of another SOCKS version (``0x04``: SOCKS4) is refused with that
version's own failure reply, and a SOCKS5 message that breaks the protocol
with a failure reply where one exists; either way the connection closes at
once and the problem is a server-side error (``server.errors``).

Each SOCKS5 attempt that gets an answer is an entry of the journal, as an
HTTP ``CONNECT`` is (method ``CONNECT``, ``http_version`` ``'SOCKS/5'``,
``request['proxy']['kind']`` ``'socks5'``), its ``response_code`` the
status an HTTP ``CONNECT`` would have got for the same (:data:`STATUS`):
a client's proxy code, authentication included, is tested with the journal
whichever kind of proxy it speaks. It goes through the store's ``record``
and the resource's ``answered``, so the waits see it as any request.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure

from .._model.record import Record, outcome

if TYPE_CHECKING:
    from .answers.tunnel import TunnelAnswer

__all__ = ["SOCKS4_REFUSED", "STATUS", "Socks5", "sniff"]

#: The server-side error for a SOCKS4 client.
SOCKS4_REFUSED = (
    "a SOCKS4 client connected to the proxy: only SOCKS5 is served "
    "(use socks5:// or socks5h:// in the proxy URL)"
)

_NO_AUTH, _USER_PASSWORD, _NO_METHOD = 0x00, 0x02, 0xFF
_CONNECT = 0x01
_IPV4, _DOMAIN, _IPV6 = 0x01, 0x03, 0x04
#: Reply codes (RFC 1928, 6).
_SUCCEEDED, _NOT_ALLOWED, _COMMAND, _ADDRESS_TYPE = 0x00, 0x02, 0x07, 0x08
#: The journal's method of each SOCKS5 command (RFC 1928, 4).
_COMMANDS = {_CONNECT: b"CONNECT", 0x02: b"BIND", 0x03: b"UDP-ASSOCIATE"}

#: The ``response_code`` a SOCKS5 attempt is recorded with, by how it ended:
#: the status an HTTP ``CONNECT`` gets for the same. (A refusal by
#: ``server.tunnel(code=...)`` is recorded with that code, a tunnel with
#: 200, a stall with none.)
STATUS = {
    "no method": 407,  # greeting: no credentials offered, proxy_auth wants them (05 FF)
    "other method": 400,  # greeting: only methods this proxy does not serve (05 FF)
    "wrong credentials": 407,  # RFC 1929 failure (01 01)
    "command": 501,  # not CONNECT (05 07)
    "address": 400,  # unknown address type, malformed name (05 08)
    "version": 400,  # a request of another version (05 02)
}


def sniff(data: bytes) -> str | None:
    """
    What the first bytes of a connection to a proxy say: ``'socks5'``,
    ``'socks4'``, or None (HTTP or TLS).
    """
    first = data[:1]
    if first == b"\x05":
        return "socks5"
    if first == b"\x04":
        return "socks4"
    return None


def _reply(code: int) -> bytes:
    """A reply to the request, bound to 0.0.0.0:0 (the address is the client's business)."""
    return bytes([5, code, 0, _IPV4, 0, 0, 0, 0, 0, 0])


class Socks5(Protocol):
    """
    One SOCKS5 client: greeting, authentication, request, then a tunnel.

    :param site: the server's site (its config: ``proxy_auth``; its tunnels;
        its resource, whose store keeps the journal).
    :param peer: the client's address.
    :param report: records a server-side error of this connection.
    :param channel: the connection this one took over: its number
        (``request['connection']``), and its ``track``, which keeps a stalled
        attempt for ``stop()`` to record as aborted.
    """

    def __init__(
        self, site: Any, peer: Any, report: Callable[[str], None], channel: Any = None
    ) -> None:
        self.site = site
        self.peer = peer
        self.report = report
        self.channel = channel
        self._buffer = b""
        self._step: Callable[[], bool] = self._greeting
        self._auth: tuple[str, str] | None = None
        self._tunnel: Any = None

    def dataReceived(self, data: bytes) -> None:
        if self._tunnel is not None:
            self._tunnel.dataReceived(data)
            return
        self._buffer += data
        # Each step consumes one message and says whether another may follow.
        while self._tunnel is None and self._step():
            pass
        if self._tunnel is not None and self._buffer:
            rest, self._buffer = self._buffer, b""
            self._tunnel.dataReceived(rest)

    def _write(self, data: bytes) -> None:
        transport: Any = self.transport
        transport.write(data)

    def _take(self, count: int) -> bytes | None:
        if len(self._buffer) < count:
            return None
        taken, self._buffer = self._buffer[:count], self._buffer[count:]
        return taken

    def _refuse(
        self,
        answer: bytes,
        problem: str | None,
        code: int,
        method: bytes = b"CONNECT",
        authority: str = "",
        route: tuple[int | None, str | None] = (None, None),
    ) -> bool:
        """
        Send a failure reply, close, and record the attempt.

        :param answer: the reply, as SOCKS5 (or RFC 1929) has it.
        :param problem: the server-side error it is, or None (the client's
            business: wrong credentials, a refusal the test set).
        :param code: the attempt's ``response_code`` (:data:`STATUS`).
        :param method: the command asked for (``CONNECT``).
        :param authority: the target asked for, ``''`` before the request.
        :param route: the id and name of the ``server.tunnel()`` route that refused.
        """
        transport: Any = self.transport
        transport.write(answer)
        transport.loseConnection()
        if problem is not None:
            self.report(problem)
        self._attempt(self._record(method, authority), code, route)
        self._step = lambda: False
        return False

    def _record(self, method: bytes, authority: str) -> Record:
        """The attempt as a journal record, like an HTTP ``CONNECT``'s."""
        from .proxy import proxy_json

        proxy = proxy_json("socks5", authority, "", None, self._auth)
        return (
            method,
            authority.encode("ascii", "replace"),
            b"",
            b"",
            getattr(self.peer, "host", ""),
            b"SOCKS/5",
            self.site.reactor.seconds(),
            getattr(self.channel, "number", 0),
            (None, "", authority, proxy),
        )

    def _attempt(
        self,
        record: Record,
        code: int | None,
        route: tuple[int | None, str | None] = (None, None),
        fault: str | None = None,
    ) -> None:
        """
        Record the attempt in the journal and wake the waits: answered with
        ``code``, or, with None, still waiting (a stall).
        """
        resource = self.site.resource
        done = code is not None
        ticket = resource.store.record(record + outcome(done, code, *route, fault))
        if done:
            resource.answered(ticket)
            return
        resource.arrived(ticket)
        track = getattr(self.channel, "track", None)
        if track is not None:
            track(_Stalled(resource.store, ticket, route, fault))

    def _greeting(self) -> bool:
        head = self._buffer[:2]
        if len(head) < 2 or len(self._buffer) < 2 + head[1]:
            return False
        _, count = self._take(2) or b"\0\0"
        methods = self._take(count) or b""
        wanted = _NO_AUTH if self.site.config.proxy_auth is None else _USER_PASSWORD
        if wanted not in methods:
            # RFC 1928: no acceptable method; the client closes. Not the
            # server's fault: a client that offers no credentials to a proxy
            # that wants them (or only credentials to one that does not).
            why = "no method" if wanted == _USER_PASSWORD else "other method"
            return self._refuse(bytes([5, _NO_METHOD]), None, STATUS[why])
        self._write(bytes([5, wanted]))
        self._step = self._password if wanted == _USER_PASSWORD else self._request
        return True

    def _password(self) -> bool:
        buffer = self._buffer
        if len(buffer) < 2:
            return False
        user_end = 2 + buffer[1]
        if len(buffer) < user_end + 1 or len(buffer) < user_end + 1 + buffer[user_end]:
            return False
        message = self._take(user_end + 1 + buffer[user_end]) or b""
        user = message[2:user_end].decode("utf-8", "replace")
        password = message[user_end + 1 :].decode("utf-8", "replace")
        self._auth = (user, password)
        if self._auth != self.site.config.proxy_auth:
            # RFC 1929: failure, then close; recorded with what was presented.
            return self._refuse(b"\x01\x01", None, STATUS["wrong credentials"])
        self._write(b"\x01\x00")
        self._step = self._request
        return True

    def _request(self) -> bool:
        buffer = self._buffer
        if len(buffer) < 5:
            return False
        kind = buffer[3]
        length = {_IPV4: 4, _IPV6: 16, _DOMAIN: 1 + buffer[4]}.get(kind)
        if length is None:
            return self._refuse(
                _reply(_ADDRESS_TYPE),
                f"a SOCKS5 request with an unknown address type {kind}",
                STATUS["address"],
                _COMMANDS.get(buffer[1], b"COMMAND-%d" % buffer[1]),
            )
        if len(buffer) < 4 + length + 2:
            return False
        message = self._take(4 + length + 2) or b""
        method = _COMMANDS.get(message[1], b"COMMAND-%d" % message[1])
        raw = message[4 : 4 + length]
        (port,) = struct.unpack("!H", message[-2:])
        if kind == _DOMAIN:
            host = raw[1:].decode("ascii", "replace")
            authority = f"{host.lower()}:{port}"
        elif kind == _IPV4:
            authority = f"{ipaddress.IPv4Address(raw)}:{port}"
        else:
            authority = f"[{ipaddress.IPv6Address(raw)}]:{port}"
        if message[0] != 5:
            return self._refuse(
                _reply(_NOT_ALLOWED),
                f"a SOCKS5 request of version {message[0]}, not 5",
                STATUS["version"],
                method,
                authority,
            )
        if message[1] != _CONNECT:
            return self._refuse(
                _reply(_COMMAND),
                f"a SOCKS5 request for command {message[1]}: only CONNECT (1) is served",
                STATUS["command"],
                method,
                authority,
            )
        record = self._record(method, authority)
        found = self._rule(record)
        if found is None:
            return self._refuse(
                _reply(_ADDRESS_TYPE),
                f"a SOCKS5 request for a malformed address {authority!r}",
                STATUS["address"],
                method,
                authority,
            )
        rule, route = found
        if rule.code != 200:  # server.tunnel(code=...): the ruleset refuses
            return self._refuse(_reply(_NOT_ALLOWED), None, rule.code, method, authority, route)
        if rule.fault == "stall":
            self._attempt(record, None, route, rule.fault)
            self._step = lambda: False
            return False
        self._write(_reply(_SUCCEEDED))
        self._attempt(record, 200, route, rule.fault)
        if rule.fault == "reset":
            from .request import reset_when_sent

            reset_when_sent(self.transport)
            self._step = lambda: False
            return False
        from .tunnel import Tunnel

        tunnel = Tunnel(self.site, "socks5", authority, self._auth, rule.certificate, self.peer)
        tunnel.makeConnection(self.transport)  # type: ignore[no-untyped-call]
        self._tunnel = tunnel
        return False

    def _rule(self, record: Record) -> tuple[TunnelAnswer, tuple[int | None, str | None]] | None:
        """
        What ``server.tunnel()`` set for this target (a route on ``CONNECT``
        and its host), as for an HTTP ``CONNECT``: a
        :class:`~.answers.tunnel.TunnelAnswer` and the id and name of the
        route that set it (None, None: the proxy's own yes); None for a
        malformed target.
        """
        from .answers.tunnel import TunnelAnswer
        from .proxy import answer

        found = answer(record, self.site.resource.store, None)
        if found is None or not isinstance(found[0], TunnelAnswer):
            return None  # a malformed target
        return found[0], (found[1], found[2])

    def connectionLost(self, reason: Failure | None = None) -> None:
        if self._tunnel is not None:
            self._tunnel.connectionLost(reason)


class _Stalled:
    """
    A stalled SOCKS5 attempt, kept by its connection as an unanswered
    exchange is: ``stop()`` records it as aborted, as it does a stalled
    ``CONNECT``.
    """

    done = False

    def __init__(
        self, store: Any, ticket: Any, route: tuple[int | None, str | None], fault: str | None
    ) -> None:
        self._store = store
        self._ticket = ticket
        self._route = route
        self._fault = fault

    def abort(self, reason: str) -> None:
        """The connection is cut before any reply: say why in the entry."""
        self._store.complete(self._ticket, outcome(False, None, *self._route, self._fault, reason))
