"""
A WebSocket route (``server.websocket(...)``): a route whose answer is a
WebSocket handshake, with its script (what the server sends on connect and
in reply), pushes from the test, and the journal of its connections and
messages with waits on it.

The live side (the connections, the frames) is
:mod:`txtestserver._http.websocket`, wherever the engine serves; this is
the test's side, in any face and either engine. The script is plain data
in the route's ``response['websocket']`` (:mod:`txtestserver._model.websocket`),
changed in one store update, so it reaches a server process as the rest
of the table does; the journal is the store's; a push is one ``_call`` of
the server's face that hands it to the engine (in this process, or a line
to the server process); a wait is one ``_run`` (it blocks, returns a
Deferred or a coroutine as the face's waits do), woken by the engine's
WebSocket events.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._errors import TestServerError, WaitTimeoutError
from ._http.websocket import FAULTS, check_close, check_rule
from ._model.record import CONNECTION, WEBSOCKET
from ._model.table import RESPONSE
from ._model.websocket import CONNECTION_KEYS, MESSAGE_KEYS
from ._route import Route

if TYPE_CHECKING:
    from ._core import ServerCore, Step

__all__ = ["WebSocketRoute"]


class WebSocketRoute(Route):
    """
    One WebSocket route of a server; made by ``server.websocket(...)``. It
    is a :class:`~txtestserver.Route` (it is in ``server.routes``, its
    handshakes are in ``requests``), answered by a WebSocket conversation.

    The script (:meth:`on_connect`, :meth:`reply`, :meth:`echo`,
    :meth:`reject`, :meth:`on_message`) may be set before or while the
    server runs; the pushes (:meth:`send`, :meth:`ping`, :meth:`close`,
    :meth:`drop`, :meth:`fault`) act at once on the open connections, and
    the waits return as the face's waits do.
    """

    __module__ = "txtestserver"

    def __init__(self, server: ServerCore, path: str | None, **route: Any) -> None:
        super().__init__(**route)
        self._server = server
        self._path = path

    def _change(self, change: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        """Replace the route's script by ``change(script)``, in one store update."""
        route = self.id

        def apply(table: Any) -> None:
            current = table.slot(RESPONSE, route).get("websocket")
            if current is None:
                raise TestServerError(
                    "this WebSocket route was removed (route.remove() or server.reset()): "
                    "make a new one with server.websocket(...)"
                )
            table.set(RESPONSE, "websocket", change(current), route)

        self._store.update(apply)

    # -- the script -------------------------------------------------------------

    @property
    def url(self) -> str:
        """``ws://host:port/path`` (``wss://`` with ``tls=True``); a pattern route has no URL."""
        if self._path is None:
            raise TestServerError(
                "ws.url needs a route with a literal path: use server.get_url(path, scheme='ws')"
            )
        return self._server.get_url(self._path, scheme="ws")

    def on_connect(
        self,
        send: Sequence[Any] | str | bytes | None = None,
        delay: float = 0.0,
        close: tuple[int, str] | int | None = None,
        fault: str | None = None,
        slow: float | None = None,
    ) -> None:
        """
        What the server does when a client connects: send these messages
        (str: text, bytes: binary, dict or list: JSON text; ``(message,
        seconds)`` to wait before that one), then close or raise a fault
        (:doc:`websocket`), after ``delay`` seconds.

        :param slow: write what it sends at this many bytes per second.
        """
        rule = check_rule("ws.on_connect()", None, send, close, fault, -1, delay, slow=slow)
        self._change(lambda script: dict(script, connect=rule))

    def reply(
        self,
        when: str | bytes | re.Pattern[Any] | Mapping[str, Any] | None = None,
        send: Sequence[Any] | str | bytes | None = None,
        close: tuple[int, str] | int | None = None,
        fault: str | None = None,
        count: int = -1,
        delay: float = 0.0,
        slow: float | None = None,
    ) -> None:
        """
        A reply rule: a received message that meets ``when`` gets these
        messages (each may be ``(message, seconds)``: sent that long after
        the one before), then the close or fault, after ``delay`` seconds. The first
        rule registered that a message meets (and that is not used up) answers it.

        :param when: the text exactly (str), the bytes exactly, a compiled
            pattern found in the message, a dict that the message parsed as
            JSON includes (a subset, by type as well as value), or None: any message.
        :param count: how many messages it answers; -1 (the default): every one.
        :param slow: write what it sends at this many bytes per second.
        """
        rule = check_rule(
            "ws.reply()",
            dict(when) if isinstance(when, Mapping) else when,
            send,
            close,
            fault,
            count,
            delay,
            slow=slow,
        )
        self._change(lambda script: dict(script, rules=[*script["rules"], rule]))

    def echo(self, count: int = -1) -> None:
        """Send every received message back as it came (a rule matching any message)."""
        rule = check_rule("ws.echo()", None, None, None, None, count, 0.0, echo=True)
        self._change(lambda script: dict(script, rules=[*script["rules"], rule]))

    def reject(
        self, code: int = 403, headers: Mapping[str, str] | None = None, data: bytes | str = b""
    ) -> None:
        """Refuse the handshake as plain HTTP (the client fails to connect)."""
        if isinstance(code, bool) or not isinstance(code, int) or not 200 <= code <= 599:
            raise TestServerError(
                f"ws.reject(code) is an HTTP status from 200 to 599, not {code!r}"
            )
        body = data.encode() if isinstance(data, str) else bytes(data)
        rejection = (code, list((headers or {}).items()), body)
        self._change(lambda script: dict(script, rejection=rejection))

    def on_message(self, callback: Callable[[Any, dict[str, Any]], Any]) -> None:
        """
        Call ``callback(connection, message)`` in the serving reactor's
        thread for each message received (after the reply rules):
        ``connection`` has ``send``, ``close``, ``ping``, ``id`` and
        ``reactor``; ``message`` is an entry like those of :attr:`messages`.
        It may return a Deferred. Thread engine only: a function cannot
        cross to the subprocess engine's server process (reply rules can).
        """
        if not callable(callback):
            raise TestServerError(f"ws.on_message() takes a callable, not {callback!r}")
        if self._portable:
            raise TestServerError(
                "ws.on_message(): a function cannot cross to the server process of the "
                "subprocess engine; script the answers as data with ws.reply(when=..., "
                "send=..., close=..., fault=...) or ws.echo(), or use engine='thread'"
            )
        self._change(lambda script: dict(script, callbacks=[*script["callbacks"], callback]))

    # -- pushing ------------------------------------------------------------------

    def _push(self, what: str, action: str, args: list[Any], connection: int | None) -> Any:
        """Hand a push to the engine, in the reactor thread (at once, on the open connections)."""
        self._server._check_running(f"ws.{what}")
        if connection is not None:
            open_ = [c["id"] for c in self._journal()[0] if c["closed"] is None]
            if connection not in open_:
                raise TestServerError(
                    f"no open WebSocket connection {connection!r}; open: {open_ or 'none'}"
                )
        engine, route = self._server._engine, self.id
        return self._server._call(f"ws.{what}", 0.0, engine.push, route, action, args, connection)

    def send(self, message: Any, connection: int | None = None) -> Any:
        """
        Send ``message`` (str: text, bytes: binary, dict or list: JSON text)
        to every open connection, or to one (its id).
        """
        from ._http.websocket import check_message

        return self._push("send()", "send", [check_message("ws.send()", message)], connection)

    def ping(self, payload: bytes = b"", connection: int | None = None) -> Any:
        """Send a ping."""
        if not isinstance(payload, bytes):
            raise TestServerError(f"ws.ping(payload) is bytes, not {payload!r}")
        return self._push("ping()", "ping", [payload], connection)

    def close(self, code: int = 1000, reason: str = "", connection: int | None = None) -> Any:
        """Start the closing handshake with ``code`` and ``reason``."""
        code, reason = check_close("ws.close()", (code, reason)) or (code, reason)
        return self._push("close()", "close", [code, reason], connection)

    def drop(self, connection: int | None = None) -> Any:
        """Close the TCP connection without a close frame (``closed_by`` is ``'dropped'``)."""
        return self._push("drop()", "fault", ["drop"], connection)

    def fault(self, name: str, connection: int | None = None) -> Any:
        """Raise a fault now (``reset``, ``drop``, ``no_close_reply``, ``stall``...)."""
        if name not in FAULTS:
            raise TestServerError(
                f"ws.fault(): unknown fault {name!r}; use one of {', '.join(sorted(FAULTS))}"
            )
        return self._push("fault()", "fault", [name], connection)

    # -- the journal ------------------------------------------------------------------

    def _journal(self) -> tuple[list[dict[str, Any]], list[tuple[Any, ...]]]:
        """This route's connections and messages (as the store keeps them)."""
        route = self.id
        connections, messages = self._store.websocket_journal()
        return (
            [c for c in connections if c["route"] == route],
            [m for m in messages if m[0] == route],
        )

    @property
    def connections(self) -> list[dict[str, Any]]:
        """
        One dict per connection since start or reset: ``id`` (the
        handshake's ``request['connection']``), ``request`` (the handshake,
        like ``server.request``), ``subprotocol``, ``opened`` and ``closed``
        (times), ``closed_by`` (``'client'``, ``'server'`` or
        ``'dropped'``), ``close_code`` and ``close_reason``.
        """
        found = self._journal()[0]
        if not found:
            return []
        handshakes = {
            entry[CONNECTION]: entry
            for entry in self._store.history()
            if entry[WEBSOCKET] is not None
        }
        result = []
        for journal in found:
            entry = {key: journal[key] for key in CONNECTION_KEYS}
            handshake = handshakes.get(entry["id"])
            entry["request"] = None if handshake is None else self._server._decode(handshake)
            result.append(entry)
        return result

    @property
    def messages(self) -> list[dict[str, Any]]:
        """
        One dict per message in both directions: ``connection`` (its id),
        ``direction`` (``'received'`` or ``'sent'``), ``type`` (``'text'``,
        ``'binary'``, ``'ping'``, ``'pong'`` or ``'close'``), ``data`` (str
        for text and for a close's reason, else bytes; once the route's
        ``journal_limit`` is spent, what was left of it), ``time``,
        ``fragmented`` (it came, or went, in more than one frame), ``size``
        (its bytes on the wire, UTF-8 for text) and ``truncated`` (``data``
        was cut).
        """
        return [dict(zip(MESSAGE_KEYS, m[1:], strict=True)) for m in self._journal()[1]]

    # -- waits ------------------------------------------------------------------------

    def wait_connections(self, count: int = 1, timeout: float = 5.0) -> Any:
        """
        Wait until ``count`` connections have opened since start or reset;
        return their entries (as :attr:`connections`).
        """

        def look() -> list[dict[str, Any]] | None:
            found = self.connections
            return found[:count] if len(found) >= count else None

        def arrived() -> str:
            return f"{len(self._journal()[0])} connection(s) opened"

        return self._wait(f"wait_connections({count})", look, arrived, timeout)

    def wait_messages(
        self, count: int = 1, direction: str | None = "received", timeout: float = 5.0
    ) -> Any:
        """
        Wait until ``count`` messages of ``direction`` (``'received'``,
        ``'sent'``, or None: both) are in the journal; return the first ``count``.
        """
        if direction not in ("received", "sent", None):
            raise TestServerError(
                f"wait_messages(direction) is 'received', 'sent' or None, not {direction!r}"
            )

        def look() -> list[dict[str, Any]] | None:
            found = [m for m in self.messages if direction is None or m["direction"] == direction]
            return found[:count] if len(found) >= count else None

        return self._wait(
            f"wait_messages({count}, direction={direction!r})", look, self._arrived, timeout
        )

    def wait_for(self, predicate: Callable[[dict[str, Any]], object], timeout: float = 5.0) -> Any:
        """
        Wait for the first entry of :attr:`messages` for which
        ``predicate(entry)`` is true (those already there count); the
        predicate runs in the caller's thread or task.
        """
        if not callable(predicate):
            raise TestServerError(
                f"ws.wait_for() takes a function of a message dict, not {predicate!r}"
            )

        def look() -> dict[str, Any] | None:
            return next((m for m in self.messages if predicate(m)), None)

        name = getattr(predicate, "__name__", None) or repr(predicate)
        return self._wait(f"wait_for({name})", look, self._arrived, timeout)

    def wait_closed(self, connection: int | None = None, timeout: float = 5.0) -> Any:
        """
        Wait until connection ``connection`` is closed (return its entry),
        or with None until at least one connection opened and every one is
        closed (return them all).
        """

        def look() -> Any:
            found = self.connections
            if connection is not None:
                mine = [c for c in found if c["id"] == connection]
                return mine[0] if mine and mine[0]["closed"] is not None else None
            if found and all(c["closed"] is not None for c in found):
                return found
            return None

        def arrived() -> str:
            found = self._journal()[0]
            shut = sum(c["closed"] is not None for c in found)
            return f"{len(found)} connection(s) opened, {shut} closed"

        return self._wait(f"wait_closed({connection!r})", look, arrived, timeout)

    def _arrived(self) -> str:
        messages = self.messages
        shown = ", ".join(f"{m['direction']} {m['type']} {m['data']!r}" for m in messages[-5:])
        return f"{len(messages)} message(s) so far" + (f" (the latest: {shown})" if shown else "")

    def _wait(
        self, what: str, look: Callable[[], Any], arrived: Callable[[], str], timeout: float
    ) -> Any:
        from ._core import check_seconds

        timeout = check_seconds(f"{what}(timeout)", timeout)
        self._server._check_running(f"ws.{what}")
        return self._server._run(f"ws.{what}", self._steps(what, look, arrived, timeout))

    def _steps(
        self, what: str, look: Callable[[], Any], arrived: Callable[[], str], timeout: float
    ) -> Generator[Step, Any, Any]:
        server = self._server
        deadline = time.monotonic() + timeout
        while True:
            seen = server._websocket_events  # before looking: an event after it wakes the wait
            found = look()
            if found is not None:
                return found
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeoutError(f"ws.{what}: not within {timeout} s; {arrived()}")
            yield remaining, server._next_websocket_event, (seen, remaining)

    def __repr__(self) -> str:
        return f"<websocket route {self.id}: {self.name}>"
