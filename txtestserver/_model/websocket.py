"""
A WebSocket route as plain data, with no HTTP and no Twisted: its script
(``response['websocket']`` of the route, which crosses to a server process
with the rest of the table) and its journal of connections and messages
(kept by every store, :meth:`~txtestserver._state.store.StateStore.add_websocket`).

The script is a dict: the route's settings (``subprotocols``,
``auto_pong``, ``max_message_size``, ``fragment``, ``compression``,
``journal_limit``), ``connect`` (the rule run on connect, or None),
``rules`` (the reply rules, first registered first), ``rejection`` (the
handshake's refusal, or None) and ``callbacks`` (the thread engine's
``on_message`` functions; always empty in a portable table). A rule's
``when`` is None, str, bytes, a dict (a JSON subset) or, for a compiled
pattern, the tuple ``(pattern, flags)``; its ``count`` is used up by
:func:`take_rule`, inside the store's atomic update, as a ``once`` value is.

The journal is a list of events, each a flat tuple of JSON values (bytes
apart): ``("o", route, id, subprotocol, opened)`` a connection opened,
``("c", id, closed, closed_by, close_code, close_reason)`` what it says of
how it ends (sent when that changes), ``("m", route, connection,
direction, type, data, time, fragmented, size, truncated)`` a message.
:class:`SocketJournal` folds them into the entries ``ws.connections`` and
``ws.messages`` show.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

from .table import RESPONSE, ResponseTable

__all__ = [
    "CONNECTION_KEYS",
    "DEFAULT_JOURNAL_LIMIT",
    "MESSAGE_KEYS",
    "SocketJournal",
    "WebSocketEvent",
    "clip",
    "matches",
    "script",
    "take_rule",
]

#: Bytes of message data a route's journal keeps in all, since the route was
#: made or the server started, unless the route says otherwise
#: (``server.websocket(journal_limit=...)``): the same as ``body_limit``'s
#: default. A long run of large messages (Autobahn's cases 12 and 13 kept
#: 1.1 GB) stays bounded; the messages beyond it keep their size.
DEFAULT_JOURNAL_LIMIT = 64 * 1024 * 1024

#: One journal event (see the module's docstring).
WebSocketEvent = tuple[Any, ...]

#: The keys of a ``ws.connections`` entry (``request`` is added by the view).
CONNECTION_KEYS = (
    "id",
    "subprotocol",
    "opened",
    "closed",
    "closed_by",
    "close_code",
    "close_reason",
)
#: The keys of a ``ws.messages`` entry, in the order of an ``"m"`` event after its route.
MESSAGE_KEYS = (
    "connection",
    "direction",
    "type",
    "data",
    "time",
    "fragmented",
    "size",
    "truncated",
)


def script(
    subprotocols: Sequence[str],
    auto_pong: bool,
    max_message_size: int | None,
    fragment: int | None,
    compression: bool,
    journal_limit: int | None,
) -> dict[str, Any]:
    """A new route's script: its settings, nothing to send, no rule."""
    return {
        "subprotocols": list(subprotocols),
        "auto_pong": auto_pong,
        "max_message_size": max_message_size,
        "fragment": fragment,
        "compression": compression,
        "journal_limit": journal_limit,
        "connect": None,
        "rules": [],
        "rejection": None,
        "callbacks": [],
    }


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str | bytes, flags: int) -> re.Pattern[Any]:
    return re.compile(pattern, flags)


def matches(when: Any, data: str | bytes) -> bool:
    """A received message meets a rule's ``when``."""
    if when is None:
        return True
    if isinstance(when, str):
        return isinstance(data, str) and data == when
    if isinstance(when, bytes):
        return isinstance(data, bytes) and data == when
    if isinstance(when, tuple):  # a compiled pattern, as (pattern, flags)
        pattern, flags = when
        if isinstance(data, bytes) != isinstance(pattern, bytes):
            return False
        return _compiled(pattern, flags).search(data) is not None
    if isinstance(when, dict):
        if not isinstance(data, str):
            return False
        try:
            value = json.loads(data)
        except ValueError:
            return False
        return _subset(when, value)
    return False


def _subset(want: Any, have: Any) -> bool:
    if isinstance(want, dict):
        return isinstance(have, dict) and all(
            k in have and _subset(v, have[k]) for k, v in want.items()
        )
    return type(want) is type(have) and bool(want == have)


def take_rule(
    table: ResponseTable, route: int, data: str | bytes, use: bool = True
) -> tuple[dict[str, Any] | None, list[Any]]:
    """
    The first reply rule of ``route`` not used up that ``data`` meets, one
    use of it taken (a changed table, so the store keeps it), and the
    route's ``on_message`` callbacks. ``(None, [])`` once the route is gone
    (a reset).

    :param use: take the use; False only looks (in a read, which must not
        change the table).
    """
    state = table.route_state(route)
    current = None if state is None else state.slots[RESPONSE].get("websocket")
    if current is None:
        return None, []
    rules: list[dict[str, Any]] = current["rules"]
    for i, rule in enumerate(rules):
        if rule["count"] != 0 and matches(rule["when"], data):
            if use and rule["count"] > 0:
                used = dict(rule, count=rule["count"] - 1)
                changed = dict(current, rules=[*rules[:i], used, *rules[i + 1 :]])
                table.set(RESPONSE, "websocket", changed, route)
            return rule, list(current["callbacks"])
    return None, list(current["callbacks"])


def clip(data: str | bytes, limit: int | None) -> tuple[str | bytes, int, bool]:
    """
    A message's data as the journal keeps it: at most ``limit`` bytes (None:
    all; text is cut between characters), its size in bytes on the wire
    (UTF-8 for text), and whether it was cut.

    :param limit: what is left of the route's ``journal_limit``.
    """
    size = len(data.encode("utf-8", "surrogatepass")) if isinstance(data, str) else len(data)
    if limit is None or size <= limit:
        return data, size, False
    if isinstance(data, str):
        return data.encode("utf-8", "surrogatepass")[:limit].decode("utf-8", "ignore"), size, True
    return data[:limit], size, True


#: The directions and types of a message, each one str object.
_NAMES = {name: name for name in ("received", "sent", "text", "binary", "ping", "pong", "close")}


class SocketJournal:
    """
    The WebSocket journal of one generation, folded from its events: the
    connections (each a dict with its ``route``) and the messages (each a
    flat tuple, its route first, then :data:`MESSAGE_KEYS`).

    Only appended to, or a connection's end updated in place; the caller
    serialises the calls.
    """

    __slots__ = ("_by_id", "connections", "messages")

    def __init__(self) -> None:
        self.connections: list[dict[str, Any]] = []
        self.messages: list[tuple[Any, ...]] = []
        self._by_id: dict[int, dict[str, Any]] = {}

    def apply(self, event: Sequence[Any]) -> None:
        """One event (see the module's docstring); an end for an unknown connection is ignored."""
        kind = event[0]
        if kind == "m":
            # The direction and type as the one str each (read back from a
            # file they are new ones): 100 bytes less a message.
            route, connection, direction, type_, *rest = event[1:]
            self.messages.append((route, connection, _NAMES[direction], _NAMES[type_], *rest))
        elif kind == "o":
            _, route, id, subprotocol, opened = event
            entry = {
                "route": route,
                "id": id,
                "subprotocol": subprotocol,
                "opened": opened,
                "closed": None,
                "closed_by": None,
                "close_code": None,
                "close_reason": None,
            }
            self.connections.append(entry)
            self._by_id[id] = entry
        elif kind == "c":
            found = self._by_id.get(event[1])
            if found is not None:
                found.update(zip(CONNECTION_KEYS[3:], event[2:], strict=True))
        else:
            raise ValueError(f"unknown WebSocket journal event {event!r}")

    def snapshot(self) -> tuple[list[dict[str, Any]], list[tuple[Any, ...]]]:
        """Copies of the connections and of the list of messages (the tuples are shared)."""
        return [dict(c) for c in self.connections], list(self.messages)

    def events(self) -> Iterator[WebSocketEvent]:
        """Events that rebuild this journal (to move it into another store)."""
        for c in self.connections:
            yield ("o", c["route"], c["id"], c["subprotocol"], c["opened"])
            yield ("c", c["id"], *(c[k] for k in CONNECTION_KEYS[3:]))
        for m in self.messages:
            yield ("m", *m)
