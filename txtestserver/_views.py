"""
The dict-like ``server.request``, ``server.response``, ``server.response_once``
and ``server.requests``: thin views over a store.

Every read goes to the store, so a view always shows the current state, in
either engine. ``response`` values are checked when they are set, so a value
that can never work fails in the test's own line, not later in the server.
"""

from __future__ import annotations

import os
from collections.abc import Callable, ItemsView, Iterator, MutableMapping, Sequence, ValuesView
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from ._errors import TestServerError
from ._model.keys import KEYS, canonical_key, check_charset, check_value, split_key
from ._model.record import ANSWERED, CONNECTION, ROUTE_ID, Entry, RequestDict, empty, parse
from ._model.table import ONCE
from ._server_errors import error_dicts
from ._state.store import StateStore

if TYPE_CHECKING:
    from ._har import Origin

__all__ = ["ErrorsView", "HarContext", "RequestView", "RequestsView", "ResponseView"]

#: What a HAR export needs from its server, read when it exports: the
#: server's origin, the WebSocket messages of its routes, and the names
#: whose values it redacts.
HarContext = Callable[[], "tuple[Origin, Sequence[dict[str, Any]], Sequence[str]]"]


def _no_server() -> tuple[Origin, Sequence[dict[str, Any]], Sequence[str]]:
    return ("http", "127.0.0.1", "127.0.0.1"), (), ()


class ResponseView(MutableMapping[str, Any]):
    """
    ``server.response`` or ``server.response_once`` (or a route's): a window
    on one slot of the store's :class:`~txtestserver._model.table.ResponseTable`.

    Reading a key that was not set gives its default (``response['code']`` is
    200) in the permanent slot, ``KeyError`` in ``once``; iteration and
    ``len`` cover only the keys that were set. A value is checked when it is
    set (:func:`~txtestserver._model.keys.check_value`).

    :param store: the state.
    :param slot: :data:`~txtestserver._model.table.RESPONSE` or
        :data:`~txtestserver._model.table.ONCE`.
    :param portable: values must cross to a server process as data.
    :param route: the id of the route whose slot this is; None: the
        server's own.
    """

    def __init__(
        self, store: StateStore, *, slot: str, portable: bool, route: int | None = None
    ) -> None:
        self._store = store
        self._slot = slot
        self._portable = portable
        self._route = route
        name = "response_once" if slot == ONCE else "response"
        self._name = name if route is None else f"route.{name}"

    def _values(self) -> dict[str, Any]:
        slot, route = self._slot, self._route
        return self._store.read(lambda table: table.slot(slot, route))

    def __getitem__(self, key: str) -> Any:
        key = canonical_key(key)
        values = self._values()
        if key in values:
            return values[key]
        if self._slot == ONCE:
            raise KeyError(key)
        return KEYS[split_key(key)[1]].default

    def __setitem__(self, key: str, value: Any) -> None:
        value = check_value(key, value, portable=self._portable, where=self._name)
        key, slot, route = canonical_key(key), self._slot, self._route
        self._store.update(lambda table: table.set(slot, key, value, route))

    def __delitem__(self, key: str) -> None:
        key, slot, route = canonical_key(key), self._slot, self._route
        self._store.update(lambda table: table.delete(slot, key, route))

    def __iter__(self) -> Iterator[str]:
        return iter(self._values())

    def __len__(self) -> int:
        return len(self._values())

    def __repr__(self) -> str:
        return f"<{self._name} {self._values()!r}>"


class RequestView(MutableMapping[str, Any]):
    """
    ``server.request``: what the latest client sent.

    Keys: ``args``, ``headers``, ``cookies``, ``path``, ``method``, ``data``,
    ``files``, ``client_ip``, ``json``, the journal's ``http_version``,
    ``time``, ``connection``, ``response_code``, ``route`` and ``fault``,
    ``done`` and ``charset``, also readable as attributes
    (``server.request.path``). Only ``charset`` can be set: it decodes the
    path, args and form fields.
    """

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._charset = "utf-8"
        self._cache: tuple[Entry, str, RequestDict] | None = None

    def _current(self) -> RequestDict:
        entry = self._store.last_request()
        if entry is None:
            return empty(self._charset)
        cached = self._cache
        if cached is None or cached[0] is not entry or cached[1] != self._charset:
            cached = self._cache = (entry, self._charset, parse(entry, self._charset))
        result = RequestDict(cached[2])
        result["done"] = entry[ANSWERED]
        return result

    def __getitem__(self, key: str) -> Any:
        return self._current()[key]

    def __getattr__(self, name: str) -> Any:
        # Only called for names that are not attributes: the request's keys.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._current(), name)

    def __setitem__(self, key: str, value: Any) -> None:
        if key != "charset":
            raise TestServerError(
                f"request[{key!r}] is recorded from the client; only request['charset'] can be set"
            )
        self._charset = check_charset("request['charset']", value)

    def __delitem__(self, key: str) -> None:
        raise TestServerError("keys of server.request cannot be deleted; use server.reset()")

    def __iter__(self) -> Iterator[str]:
        return iter(self._current())

    def __len__(self) -> int:
        return len(self._current())

    def __repr__(self) -> str:
        return f"<request {self._current()!r}>"

    def copy(self) -> RequestDict:
        """
        The whole request as a plain dict, read in one step.

        Each ``server.request[key]`` reads the latest request anew, so while
        clients keep sending, reading key by key (``dict(server.request)``
        too) can mix two requests; ``copy()``, ``items()`` and ``values()``
        never do.
        """
        return self._current()

    def items(self) -> ItemsView[str, Any]:
        return self._current().items()

    def values(self) -> ValuesView[Any]:
        return self._current().values()

    @property
    def charset(self) -> str:
        """The charset that decodes requests (``request['charset']``)."""
        return self._charset

    def reset(self) -> None:
        """Back to the default charset (``server.reset()`` calls this)."""
        self._charset = "utf-8"
        self._cache = None


class RequestsView(Sequence[RequestDict]):
    """
    ``server.requests`` (or ``route.requests``): every request recorded since
    start or reset (or that the route answered), oldest first, each as a
    dict like ``server.request`` (without ``done``).

    :param route: only the requests this route answered; None: all.
    :param har: the server's origin and WebSocket messages, for
        :meth:`to_har`.

    ``len``, ``[i]`` and iteration read the store's history once each,
    without copying it; an iteration shows the requests recorded when it
    began.
    """

    def __init__(
        self,
        store: StateStore,
        request: RequestView,
        route: int | None = None,
        *,
        har: HarContext = _no_server,
    ) -> None:
        self._store = store
        self._request = request
        self._route = route
        self._har = har

    def to_har(self) -> dict[str, Any]:
        """
        These requests as a HAR 1.2 document (a dict, ready for
        ``json.dump``): for each, what the client sent and what the server
        sent back (status, headers, the body's first 64 KiB and its size),
        when, on which connection, and what a fault did (``_fault``,
        ``_aborted``); a WebSocket handshake carries its messages in
        ``_webSocketMessages``; the values ``server.forward(redact=...)``
        names are redacted (:doc:`recording`).
        """
        from ._har import har_document

        origin, messages, redacted = self._har()
        history = self._history()
        if self._route is not None:
            connections = {entry[CONNECTION] for entry in history}
            messages = [m for m in messages if m["connection"] in connections]
        return har_document(history, origin, messages, redacted)

    def save_har(self, path: str | os.PathLike[str]) -> Path:
        """
        Write :meth:`to_har` to ``path`` (UTF-8 JSON; its directory is made
        if needed).

        :return: the path written.
        """
        from ._har import write_har

        return write_har(self.to_har(), path)

    def _history(self) -> Sequence[Entry]:
        history = self._store.history()
        if self._route is None:
            return history
        route = self._route
        return [entry for entry in history if entry[ROUTE_ID] == route]

    @overload
    def __getitem__(self, index: int) -> RequestDict: ...

    @overload
    def __getitem__(self, index: slice) -> list[RequestDict]: ...

    def __getitem__(self, index: int | slice) -> RequestDict | list[RequestDict]:
        charset = self._request.charset
        history = self._history()
        if isinstance(index, slice):
            return [parse(entry, charset) for entry in history[index]]
        return parse(history[index], charset)

    def __len__(self) -> int:
        return len(self._history())

    def __iter__(self) -> Iterator[RequestDict]:
        # One snapshot for the whole iteration: the requests recorded when it
        # began (Sequence's own __iter__ would index, and so read, per item).
        charset = self._request.charset
        for record in self._history():
            yield parse(record, charset)

    def __reversed__(self) -> Iterator[RequestDict]:
        charset = self._request.charset
        history = self._history()
        for index in range(len(history) - 1, -1, -1):
            yield parse(history[index], charset)

    def __repr__(self) -> str:
        return f"<requests: {len(self)} recorded>"


class ErrorsView(Sequence[dict[str, Any]]):
    """
    ``server.errors``: what went wrong while answering since start or reset,
    oldest first, each a dict: ``message`` (str), ``traceback`` (str or
    None) and ``request`` (the request dict that caused it, or None).
    ``server.errors.clear()`` forgets them (as ``server.check()`` does after
    raising).
    """

    def __init__(self, store: StateStore, request: RequestView) -> None:
        self._store = store
        self._request = request

    def _all(self) -> list[dict[str, Any]]:
        return error_dicts(self._store.errors(), self._request.charset)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        return self._all()[index]

    def __len__(self) -> int:
        return len(self._store.errors())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, (str, bytes)):
            return self._all() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def clear(self) -> None:
        """Forget every error."""
        self._store.take_errors()

    def __repr__(self) -> str:
        return f"<errors {[e['message'] for e in self._all()]!r}>"
