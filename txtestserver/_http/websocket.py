"""
WebSocket connections after their ``101``: the :class:`WebSocketConnection`
protocol that a connection becomes once the answer kind
(:mod:`.answers.websocket`) has taken it over from twisted.web
(``take_over`` in :mod:`.request`).

The frames are wsproto's (sans-IO): this module feeds it the bytes that
arrive and writes the bytes it makes. The script is plain data in the
route's ``response['websocket']`` (:mod:`txtestserver._model.websocket`),
so it is the same in both engines: what to send on connect, and the reply
rules, each matched against a whole received message, and taken from the
store's table at each message.
"""

from __future__ import annotations

import functools
import json
import re
import struct
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import maybeDeferred
from twisted.internet.protocol import Protocol
from twisted.internet.protocol import connectionDone as CONNECTION_DONE
from twisted.logger import Logger
from twisted.python.failure import Failure
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Event,
    Message,
    Ping,
    Pong,
    TextMessage,
)
from wsproto.frame_protocol import CloseReason

from .._errors import TestServerError
from .._model.websocket import MESSAGE_KEYS
from .ws_frames import OPCODE_CLOSE, OPCODE_PING, OPCODE_TEXT, frame

if TYPE_CHECKING:
    from .sockets import Sockets

__all__ = [
    "FAULTS",
    "WebSocketConnection",
    "check_close",
    "check_message",
    "check_rule",
]

_log = Logger()

#: Seconds the server waits for the client's close frame after its own
#: before it closes the TCP connection anyway.
CLOSE_WAIT = 2.0


def check_message(where: str, value: Any) -> str | bytes:
    """
    One message of a script as it goes on the wire: str is a text message,
    bytes a binary one, a dict or list is sent as JSON text.

    :raise TestServerError: any other value.
    """
    if isinstance(value, (str, bytes)):
        return value
    if isinstance(value, bytearray):
        return bytes(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    raise TestServerError(
        f"{where}: a message is str (text), bytes (binary), or a dict or list (sent as "
        f"JSON text), not {value!r}"
    )


def _check_item(where: str, item: Any) -> list[Any]:
    """A message to send, or ``(message, delay)``: ``[message, delay]``."""
    if isinstance(item, tuple):
        if len(item) != 2:
            raise TestServerError(
                f"{where}: a message with a delay is (message, seconds), not {item!r}"
            )
        message, delay = item
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not delay >= 0:
            raise TestServerError(f"{where}: a message's delay is seconds >= 0, not {delay!r}")
        return [check_message(where, message), float(delay)]
    return [check_message(where, item), 0.0]


def check_close(where: str, value: Any) -> tuple[int, str] | None:
    """``close=``: None, a code, or ``(code, reason)``."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, "")
    if (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and isinstance(value[0], int)
        and isinstance(value[1], str)
        and 1000 <= value[0] <= 4999
    ):
        return (value[0], value[1])
    raise TestServerError(
        f"{where}: close= is a code from 1000 to 4999 or (code, reason), not {value!r}"
    )


def check_rule(
    where: str,
    when: Any,
    send: Sequence[Any] | None,
    close: Any,
    fault: str | None,
    count: int,
    delay: float,
    echo: bool = False,
    slow: float | None = None,
) -> dict[str, Any]:
    """
    A reply rule (or the connect script, with ``when`` None) as plain data
    (:mod:`txtestserver._model.websocket`): a compiled pattern becomes
    ``(pattern, flags)``.
    """
    if isinstance(when, re.Pattern):
        when = (when.pattern, when.flags)
    elif not (when is None or isinstance(when, (str, bytes, dict))):
        raise TestServerError(
            f"{where}: when= is a text, bytes, a compiled pattern, a dict (a JSON subset) "
            f"or None (any message), not {when!r}"
        )
    if isinstance(send, (str, bytes, dict)):
        send = [send]
    messages = [_check_item(where, m) for m in (send or ())]
    if fault is not None and fault not in FAULTS:
        raise TestServerError(
            f"{where}: unknown fault {fault!r}; use one of {', '.join(sorted(FAULTS))}"
        )
    if isinstance(count, bool) or not isinstance(count, int) or not (count == -1 or count >= 1):
        raise TestServerError(f"{where}: count= is an int >= 1, or -1 (every time), not {count!r}")
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not delay >= 0:
        raise TestServerError(f"{where}: delay= is a number of seconds >= 0, not {delay!r}")
    if slow is not None and (
        isinstance(slow, bool) or not isinstance(slow, (int, float)) or not slow > 0
    ):
        raise TestServerError(f"{where}: slow= is bytes per second > 0, or None, not {slow!r}")
    return {
        "slow": None if slow is None else float(slow),
        "when": when,
        "send": messages,
        "close": check_close(where, close),
        "fault": fault,
        "count": count,
        "delay": float(delay),
        "echo": echo,
    }


#: The faults a script or the test may raise: name -> what the connection does.
FAULTS: dict[str, Callable[[WebSocketConnection], None]] = {}


def _fault(name: str) -> Callable[[Callable[[WebSocketConnection], None]], Any]:
    def register(function: Callable[[WebSocketConnection], None]) -> Any:
        FAULTS[name] = function
        return function

    return register


@_fault("reset")
def _reset(connection: WebSocketConnection) -> None:
    """TCP RST, once what was written is sent (the 101, the messages before it)."""
    from .request import reset_when_sent, unsent

    connection.finish("dropped")
    connection.stalled = True  # nothing more is written
    tcp = _tcp(connection.transport)
    # Bytes in Twisted's buffers get written first; the pull producer is asked
    # again only when they are (so not at all when none are).
    if unsent(connection.transport, kernel=False) or connection.pending():
        reset_when_sent(tcp)
    else:
        tcp.abortConnection()


@_fault("drop")
def _drop(connection: WebSocketConnection) -> None:
    """FIN without a close frame."""
    connection.finish("dropped")
    connection.lose()


@_fault("no_close_reply")
def _no_close_reply(connection: WebSocketConnection) -> None:
    """The client's close is never answered (the connection stays open)."""
    connection.answer_close = False


@_fault("stall")
def _stall(connection: WebSocketConnection) -> None:
    """Nothing more is read or written (the client's own timeout must see it)."""
    connection.stalled = True
    connection.transport.pauseProducing()


def _bad_frame(name: str, data: bytes) -> None:
    """A fault that writes one frame breaking the protocol: the client closes (1002, 1007)."""

    def write(connection: WebSocketConnection) -> None:
        connection.write_bytes(data)

    write.__doc__ = f"{name}: one frame that breaks the protocol."
    FAULTS[name] = write


_bad_frame("bad_opcode", frame(0x3, b"reserved opcode"))
_bad_frame("reserved_bits", frame(OPCODE_TEXT, b"rsv", rsv=0b100))
_bad_frame("masked_frame", frame(OPCODE_TEXT, b"masked", mask=b"\x01\x02\x03\x04"))
_bad_frame("oversize_control", frame(OPCODE_PING, b"x" * 126))
_bad_frame("fragmented_control", frame(OPCODE_PING, b"part", fin=False))
_bad_frame("invalid_utf8", frame(OPCODE_TEXT, b"\xff\xfe\xfd"))
_bad_frame("bad_close_code", frame(OPCODE_CLOSE, struct.pack("!H", 1005)))


@_fault("truncated_frame")
def _truncated(connection: WebSocketConnection) -> None:
    """Half a frame (the header announces 10 bytes, 3 come), then a close (FIN)."""
    connection.write_bytes(frame(OPCODE_TEXT, b"hal", length=10))
    connection.finish("dropped")
    connection.lose()


def _tcp(transport: Any) -> Any:
    while getattr(transport, "transport", None) is not None:
        transport = transport.transport
    return transport


class WebSocketConnection(Protocol):
    """
    One WebSocket connection after its handshake; also what an
    ``on_message`` callback gets: ``send``, ``close``, ``ping``, ``id`` and
    the serving ``reactor``.

    :param sockets: the site's :class:`~txtestserver._http.sockets.Sockets`.
    :param route: the id of its route.
    :param script: the route's script at the handshake (its settings and
        what it sends on connect; the reply rules are read at each message).
    :param number: its id (``request['connection']`` of its handshake).
    :param subprotocol: the subprotocol chosen, or None.
    :param report: records a server-side error (strict mode's unmatched message).
    :param strict: a message no rule answers is a server-side error.
    :param extensions: the wsproto extensions negotiated (permessage-deflate).
    """

    transport: Any

    def __init__(
        self,
        sockets: Sockets,
        route: int,
        script: dict[str, Any],
        number: int,
        subprotocol: str | None,
        report: Callable[[str], None],
        strict: bool,
        extensions: Sequence[Any] = (),
    ) -> None:
        self.sockets = sockets
        self.route = route
        self.script = script
        self.id = number
        self.subprotocol = subprotocol
        self.reactor = sockets.reactor
        #: How it ends, as journaled: closed (a time), closed_by, close_code, close_reason.
        self._journal: dict[str, Any] = {
            "closed": None,
            "closed_by": None,
            "close_code": None,
            "close_reason": None,
        }
        self._opened = False
        self._report = report
        self._strict = strict
        self._ws = Connection(ConnectionType.SERVER, extensions=list(extensions))
        self._parts: list[str | bytes] = []
        self._size = 0
        self._frames = 0
        self._closer: Any = None
        #: The client's close gets the server's close in return.
        self.answer_close = True
        #: Nothing more is read or written.
        self.stalled = False
        # Pacing (slow=): bytes per second, the bytes waiting, the timer, and
        # a close that waits for them.
        self._slow: float | None = None
        self._queue = bytearray()
        self._pump: Any = None
        self._lose_after = False
        # The delayed steps of the script, cancelled when the connection ends.
        self._timers: list[Any] = []

    # -- the connection -------------------------------------------------------

    def connectionMade(self) -> None:
        # Messages are small and each is written at once: Nagle's algorithm
        # would hold one back for the client's delayed ACK (40 ms a round trip).
        tcp = _tcp(self.transport)
        if hasattr(tcp, "setTcpNoDelay"):
            tcp.setTcpNoDelay(True)
        # Opened in the next turn: the handshake's request is journaled by then.
        self._later(0, self._open)

    def _open(self) -> None:
        """Journal the connection, and run the script's ``on_connect``."""
        if self._opened:
            return
        self._opened = True
        self.sockets.add(("o", self.route, self.id, self.subprotocol, self.reactor.seconds()))
        if self._journal["closed"] is not None:  # it ended before the next turn
            self._end_changed()
            return
        self.sockets.open.setdefault(self.route, {})[self.id] = self
        if self.script["connect"] is not None:
            self.run(self.script["connect"], None)

    def dataReceived(self, data: bytes) -> None:
        self._open()  # bytes that came with the handshake come before the next turn
        if self.stalled or self._journal["closed"] is not None:
            return
        self._ws.receive_data(data)
        for event in self._ws.events():
            self._event(event)
            if self._journal["closed"] is not None:
                return

    def connectionLost(self, reason: Failure = CONNECTION_DONE) -> None:
        for timer in (self._closer, self._pump, *self._timers):
            if timer is not None and timer.active():
                timer.cancel()
        self._pump = None
        self.finish("dropped", 1006, "")
        self._open()  # (ended before the next turn: journaled now, opened and closed)

    def finish(self, by: str, code: int | None = None, reason: str | None = None) -> None:
        """The connection is over: journal how, once."""
        journal = self._journal
        if journal["closed"] is not None:
            return
        journal["closed"] = self.reactor.seconds()
        if journal["closed_by"] is None:
            journal["closed_by"] = by
        if journal["close_code"] is None:
            journal["close_code"], journal["close_reason"] = code, reason
        self.sockets.open.get(self.route, {}).pop(self.id, None)
        self._end_changed()

    def _end_changed(self) -> None:
        """Journal what is known of how the connection ends (once it is journaled)."""
        if self._opened:
            j = self._journal
            self.sockets.add(
                ("c", self.id, j["closed"], j["closed_by"], j["close_code"], j["close_reason"])
            )

    # -- receiving ------------------------------------------------------------

    def _event(self, event: Event) -> None:
        if isinstance(event, Message):
            self._part(event)
        elif isinstance(event, Ping):
            self._log_message("received", "ping", bytes(event.payload))
            if self.script["auto_pong"]:
                self._write(event.response(), "pong", bytes(event.payload))
        elif isinstance(event, Pong):
            self._log_message("received", "pong", bytes(event.payload))
        elif isinstance(event, CloseConnection):
            journal = self._journal
            if self._ws.state is not ConnectionState.OPEN:
                self._log_message("received", "close", event.reason or "")
            if self._ws.state is ConnectionState.REMOTE_CLOSING:
                journal["closed_by"] = "client"
                journal["close_code"], journal["close_reason"] = event.code, event.reason
                if self.answer_close:
                    self._write(event.response(), "close", event.reason or "")
                    self.lose()
                    self.finish("client")
                else:
                    self._end_changed()
            elif self._ws.state is ConnectionState.OPEN:
                # wsproto's verdict on a frame that breaks the protocol: close with its code.
                self.close(event.code, event.reason or "")
                self.lose()
                self.finish("server")
            else:  # the reply to the server's close
                self.lose()
                self.finish("server")

    def _part(self, event: Message[Any]) -> None:
        self._parts.append(event.data)
        self._size += len(event.data)
        if event.frame_finished:
            self._frames += 1
        limit = self.script["max_message_size"]
        if limit is not None and self._size > limit:
            self.close(1009, f"message over {limit} bytes")
            return
        if not event.message_finished:
            return
        parts, self._parts = self._parts, []
        data: str | bytes = (
            "".join(parts)  # type: ignore[arg-type]
            if isinstance(event, TextMessage)
            else b"".join(parts)  # type: ignore[arg-type]
        )
        fragmented, self._frames, self._size = self._frames > 1, 0, 0
        self._log_message(
            "received", "text" if isinstance(data, str) else "binary", data, fragmented
        )
        self._respond(data)

    def _respond(self, data: str | bytes) -> None:
        rule, callbacks = self.sockets.take(self.route, data)
        for callback in callbacks:
            message = dict(zip(MESSAGE_KEYS, self._last, strict=True), data=data)
            d = maybeDeferred(callback, self, message)
            d.addErrback(self._callback_failed)
        if rule is not None:
            self.run(rule, data)
        elif not callbacks:
            if self._strict:
                self._report(
                    f"WebSocket connection {self.id}: no reply rule matched the message "
                    f"{data!r} (strict mode): add ws.reply(when=...) for it"
                )

    def _callback_failed(self, failure: Failure) -> None:
        message = f"WebSocket on_message callback failed: {failure.getErrorMessage()}"
        _log.failure("txtestserver: {reason}", failure, reason=message)
        self._report(message)

    # -- the script ------------------------------------------------------------

    def run(self, rule: dict[str, Any], data: str | bytes | None) -> None:
        """Carry out a rule (or the connect script) after its delay."""
        if rule["delay"]:
            self._later(rule["delay"], self._carry_out, rule, data)
        else:
            self._carry_out(rule, data)

    def _carry_out(self, rule: dict[str, Any], data: str | bytes | None) -> None:
        steps: list[tuple[float, Callable[[], None]]] = []
        if rule["echo"] and data is not None:
            echoed = data
            steps.append((0.0, lambda: self.send(echoed)))
        for message, delay in rule["send"]:
            steps.append((delay, functools.partial(self.send, message)))
        if rule["close"] is not None:
            code, reason = rule["close"]
            steps.append((0.0, lambda: self.close(code, reason)))
        if rule["fault"] is not None:
            name = rule["fault"]
            steps.append((0.0, lambda: self.fault(name)))
        self._steps(steps, rule["slow"])

    def _later(self, delay: float, function: Callable[..., None], *args: Any) -> None:
        """Call ``function(*args)`` in ``delay`` seconds, unless the connection ends first."""
        self._timers = [t for t in self._timers if t.active()]
        self._timers.append(self.reactor.callLater(delay, function, *args))

    def _steps(self, steps: list[tuple[float, Callable[[], None]]], slow: float | None) -> None:
        """Take the steps in order, each after its delay, paced by ``slow``."""
        while steps:
            if self._journal["closed"] is not None or self.stalled:
                return
            delay, action = steps[0]
            if delay > 0:
                steps[0] = (0.0, action)
                self._later(delay, self._steps, steps, slow)
                return
            steps.pop(0)
            self._slow = slow
            try:
                action()
            finally:
                self._slow = None

    # -- sending ---------------------------------------------------------------

    def send(self, message: str | bytes) -> None:
        """Send a text (str) or binary (bytes) message, in frames of ``fragment`` bytes if set."""
        if self._ws.state is not ConnectionState.OPEN or self.stalled:
            return
        kind = "text" if isinstance(message, str) else "binary"
        size = self.script["fragment"]
        make: Any = TextMessage if isinstance(message, str) else BytesMessage
        if size is None or len(message) <= size:
            self.write_bytes(self._ws.send(make(data=message)))
            fragmented = False
        else:
            pieces = [message[i : i + size] for i in range(0, len(message), size)]
            last = len(pieces) - 1
            out = [
                self._ws.send(make(data=piece, message_finished=i == last))
                for i, piece in enumerate(pieces)
            ]
            self.write_bytes(b"".join(out))
            fragmented = True
        self._log_message("sent", kind, message, fragmented)

    def ping(self, payload: bytes = b"") -> None:
        """Send a ping."""
        if self._ws.state is ConnectionState.OPEN and not self.stalled:
            self._write(Ping(payload=payload), "ping", payload)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake; the TCP connection closes on the client's reply."""
        if self._ws.state is not ConnectionState.OPEN or self.stalled:
            return
        journal = self._journal
        journal["closed_by"] = "server"
        journal["close_code"], journal["close_reason"] = code, reason
        self._end_changed()
        self._write(CloseConnection(code=code, reason=reason), "close", reason)
        self._closer = self.reactor.callLater(CLOSE_WAIT, self._close_anyway)

    def _close_anyway(self) -> None:
        self.lose()
        self.finish("server")

    def fault(self, name: str) -> None:
        """Misbehave now (:data:`FAULTS`)."""
        FAULTS[name](self)

    # -- the wire, paced or not -------------------------------------------------

    #: Seconds between two paced writes.
    TICK = 0.05

    def write_bytes(self, data: bytes) -> None:
        """Write ``data``, paced while a ``slow=`` rule runs or paced bytes wait."""
        if self._slow is None and not self._queue:
            self.transport.write(data)
            return
        self._queue += data
        if self._pump is None:
            self._next_piece()

    def _next_piece(self) -> None:
        self._pump = None
        if not self._queue:
            if self._lose_after:
                self.transport.loseConnection()
            return
        rate = self._slow or self._rate
        size = max(1, int(rate * self.TICK))
        piece, self._queue[:size] = bytes(self._queue[:size]), b""
        self.transport.write(piece)
        self._rate = rate
        self._pump = self.reactor.callLater(self.TICK, self._next_piece)

    _rate = 1.0

    def pending(self) -> bool:
        """Paced bytes wait to be written."""
        return bool(self._queue)

    def lose(self) -> None:
        """Close the TCP connection (FIN) once the paced bytes are written."""
        if self._queue or self._pump is not None:
            self._lose_after = True
            return
        self.transport.loseConnection()

    def _write(self, event: Event, kind: str, data: str | bytes) -> None:
        self.write_bytes(self._ws.send(event))
        self._log_message("sent", kind, data)

    def _log_message(
        self, direction: str, kind: str, data: str | bytes, fragmented: bool = False
    ) -> None:
        self._open()
        kept, size, truncated = self.sockets.keep(self.route, data, self.script["journal_limit"])
        fields = (
            self.id,
            direction,
            kind,
            kept,
            self.reactor.seconds(),
            fragmented,
            size,
            truncated,
        )
        self._last = fields
        self.sockets.add(("m", self.route, *fields))


def close_reason_name(code: int) -> str:
    """The name of a close code (``1000`` -> ``NORMAL_CLOSURE``), or ``''``."""
    try:
        return CloseReason(code).name
    except ValueError:
        return ""
