"""
What the server answers, as plain data: the :class:`ResponseTable`.

The table has slots (:data:`SLOTS`): ``response`` (permanent) and ``once``
(taken by the next request it applies to). Each slot maps response keys,
plain (``"data"``) or method-specific (``"post.data"``), to checked values.
:meth:`ResponseTable.take` is the one place that decides which values answer
a request, and uses up what it takes; the stores run it atomically
(:meth:`~txtestserver._state.store.StateStore.update`), the memory store
under a lock, the file store under a file lock, so two requests never take
the same ``once`` value.

The views (``server.response``, ``server.response_once``) are windows on one
slot each. The table is plain data: the file store writes it as one JSON
document (:meth:`ResponseTable.to_data`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .keys import defaults
from .record import Record

__all__ = ["ONCE", "RESPONSE", "SLOTS", "ResponseTable"]

#: The permanent answer (``server.response``).
RESPONSE = "response"
#: The answer for the next request it applies to (``server.response_once``).
ONCE = "once"
#: The slots of a table, in precedence order: a ``once`` value beats the
#: permanent one.
SLOTS = (ONCE, RESPONSE)


class ResponseTable:
    """
    The answers a test set, by slot and key.

    :ivar changed: a method changed the table since it was made or loaded
        (the file store then writes it back).
    """

    def __init__(self, slots: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self._slots: dict[str, dict[str, Any]] = {
            slot: dict((slots or {}).get(slot, {})) for slot in SLOTS
        }
        self.changed = False

    # -- what the views do ----------------------------------------------------------

    def slot(self, slot: str) -> dict[str, Any]:
        """A copy of one slot: key -> value."""
        return dict(self._slots[slot])

    def set(self, slot: str, key: str, value: Any) -> None:
        """Set one (checked, canonical) key of a slot."""
        self._slots[slot][key] = value
        self.changed = True

    def delete(self, slot: str, key: str) -> None:
        """Remove one key of a slot; ``KeyError`` if it is not set."""
        del self._slots[slot][key]
        self.changed = True

    def clear(self) -> None:
        """Every slot empty: the defaults answer."""
        for values in self._slots.values():
            values.clear()
        self.changed = True

    # -- what the server does ---------------------------------------------------------

    def take(self, record: Record) -> dict[str, Any]:
        """
        The value of every response key for one request, using up the
        ``once`` values it takes.

        Precedence, highest first: ``once['<method>.key']``, ``once['key']``,
        ``response['<method>.key']``, ``response['key']``, the default. A
        method-specific ``once`` value uses up the plain one too (both
        applied to this request).

        :param record: the request, as recorded.
        """
        prefix = record[0].decode("latin-1").lower() + "."
        chosen = defaults()
        once = self._slots[ONCE]
        permanent = self._slots[RESPONSE]
        for name in chosen:
            specific = prefix + name
            if specific in once:
                chosen[name] = once.pop(specific)
                once.pop(name, None)
                self.changed = True
            elif name in once:
                chosen[name] = once.pop(name)
                self.changed = True
            elif specific in permanent:
                chosen[name] = permanent[specific]
            elif name in permanent:
                chosen[name] = permanent[name]
        return chosen

    # -- as data ------------------------------------------------------------------------

    def to_data(self, encode: Callable[[Any], Any]) -> dict[str, Any]:
        """
        The table as JSON-ready data.

        :param encode: turns one value into JSON data.
        """
        return {
            slot: {key: encode(value) for key, value in values.items()}
            for slot, values in self._slots.items()
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any], decode: Callable[[Any], Any]) -> ResponseTable:
        """The inverse of :meth:`to_data`."""
        return cls(
            {
                slot: {key: decode(value) for key, value in data.get(slot, {}).items()}
                for slot in SLOTS
            }
        )
