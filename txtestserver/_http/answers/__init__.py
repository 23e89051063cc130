"""
The answer kinds, and which one a request gets: :data:`KINDS` and
:func:`choose`.

Each kind is a class in a module of its own (:mod:`.static`,
:mod:`.callback`, :mod:`.error`, :mod:`.streams`, :mod:`.faults`,
:mod:`.forward`) that
makes itself from the response values a request takes (``from_values``)
and writes itself onto the request of an exchange (``render(exchange)``);
the kinds that write the test's status and headers share a
:class:`~.base.Head`. A new kind of answer is one class and one entry in
:data:`KINDS`; the resource does not change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .base import Answer, Head
from .callback import CallbackAnswer
from .error import ErrorAnswer
from .faults import FaultAnswer, RawAnswer
from .forward import ForwardAnswer
from .static import StaticAnswer, json_answer
from .streams import StreamAnswer
from .websocket import WebSocketAnswer

__all__ = [
    "KINDS",
    "Answer",
    "CallbackAnswer",
    "ErrorAnswer",
    "FaultAnswer",
    "ForwardAnswer",
    "Head",
    "RawAnswer",
    "StaticAnswer",
    "StreamAnswer",
    "WebSocketAnswer",
    "choose",
]

#: ``(key, make)``, highest precedence first: the first key whose value is
#: not None makes the answer (``make(values)``); else :class:`StaticAnswer`.
#: A WebSocket route's endpoint beats everything (it is the route); raw
#: bytes beat a fault, a fault beats a callback, a callback beats
#: ``forward`` (an upstream's answer), which beats ``json`` (sent whole),
#: ``json`` beats a stream; ``throttle`` alone streams the plain body.
#: ``sleep`` applies to every kind (the exchange waits it before rendering).
KINDS: list[tuple[str, Callable[[Mapping[str, Any]], Answer]]] = [
    ("websocket", WebSocketAnswer.from_values),
    ("raw", RawAnswer.from_values),
    ("fault", FaultAnswer.from_values),
    ("callback", CallbackAnswer.from_values),
    ("forward", ForwardAnswer.from_values),
    ("json", json_answer),
    ("chunks", StreamAnswer.from_chunks),
    ("throttle", StreamAnswer.from_data),
]


def choose(values: Mapping[str, Any]) -> Answer:
    """
    The answer to one request, from the response values it took.

    :param values: every response key's value (defaults included).
    """
    for key, make in KINDS:
        if values[key] is not None:
            return make(values)
    return StaticAnswer.from_values(values)
