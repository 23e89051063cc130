"""
The response table's files in a state directory: ``response.json`` and the
large-value files, with the parsed table kept between updates.

``value-<id>`` holds one large response value (bytes or str of
:data:`LARGE_VALUE` and more, as raw bytes, UTF-8 for str), written once
when the test process sets it; ``response.json`` names the file (``{"f":
NAME}``, ``{"fs": NAME}`` for str) instead of holding the value, so that
setting another key, or taking a ``response_once`` value for a request,
reads and writes a small document however large the permanent body is.
Each process keeps the large values it has read or written, and reads a
file only once; the test process removes a file once no key names it.

What is read is checked by the same rules as what a test sets (each key's
check in :mod:`txtestserver._model.keys`): a broken value in
``response.json`` is an error that names it, not an answer without a
status line.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Callable
from typing import Any, TypeVar

from .._errors import TestServerError
from .._model.keys import check_value
from .._model.table import ResponseTable
from .codec import decode, encode
from .directory import RESPONSE, StateDirectory, encode_json

__all__ = ["LARGE_VALUE", "VALUE_PREFIX", "TableFiles"]

T = TypeVar("T")

#: The largest response document update() keeps parsed between calls (a
#: larger one would stay in memory twice, as bytes and parsed).
_TABLE_CACHE_LIMIT = 16 * 1024 * 1024
#: Response values (bytes or str) of this many bytes or characters and more
#: are kept in a file of their own, not in ``response.json``.
LARGE_VALUE = 16 * 1024
#: The name of every file that holds one large value starts with this.
VALUE_PREFIX = "value-"


class TableFiles:
    """
    ``response.json`` and its value files, as one process uses them.

    :param directory: where they are.
    :param read_lock: held by this process's readers while they read a
        table and its files; held here while value files are removed.
    :param owner: this process made the directory (the test process): it
        writes the value files, and removes them.
    """

    def __init__(self, directory: StateDirectory, read_lock: Any, owner: bool) -> None:
        self._directory = directory
        self._read_lock = read_lock
        self._owner = owner
        # The large values this process has read or written: file name ->
        # value, and id(value) -> file name (the value is kept alive in the
        # first, so its id is not reused meanwhile).
        self._values: dict[str, Any] = {}
        self._value_names: dict[int, str] = {}
        # The value files named by the table being written (write).
        self._named: set[str] = set()
        # The last response.json whose values passed their checks.
        self._checked: bytes | None = None
        # The table as update() last read or wrote it, with the bytes of its
        # document: while response.json holds the same bytes, the next
        # update() uses it as it is instead of parsing the document again
        # (with routes, parsing is most of the cost of a request).
        self._cache: tuple[bytes, ResponseTable] | None = None

    def read(self) -> ResponseTable:
        """The response table in ``response.json`` (see :meth:`parse`)."""
        return self.parse(self._directory.read_bytes(RESPONSE))

    def update(self, change: Callable[[ResponseTable], T]) -> T:
        """
        ``change(table)`` on the table in ``response.json``, written back if
        it changed; the caller holds the state lock.
        """
        document = self._directory.read_bytes(RESPONSE)
        cached, self._cache = self._cache, None  # a change that fails drops it
        if cached is not None and cached[0] == document:
            table = cached[1]
        else:
            table = self.parse(document)
        result = change(table)
        if table.changed:
            document = self.write(table)
            table.changed = False
        if len(document) <= _TABLE_CACHE_LIMIT:
            self._cache = (document, table)
        return result

    def write(self, table: ResponseTable) -> bytes:
        """
        Write ``table`` to ``response.json``; forget the large values it no
        longer names. Returns the document written.
        """
        self._named = set()
        document = encode_json(table.to_data(self._encode_value)).encode("ascii")
        self._directory.write(RESPONSE, document)
        # Its values were checked when set, or when read from a checked table.
        self._checked = document
        self._forget_values(self._named)
        return document

    def parse(self, document: bytes) -> ResponseTable:
        """
        The response table in ``document``, every value checked by the same
        rules as when a test sets it (its key's check, portable).
        """
        try:
            table = ResponseTable.from_data(json.loads(document), self._decode_value)
            if document != self._checked:  # the server reads one document per request
                for where, key, value in table.every_value():
                    check_value(key, value, portable=True, where=where)
                self._checked = document
        except (TestServerError, OSError, KeyError, TypeError, AttributeError, ValueError) as e:
            self._directory.fail(ValueError(f"{RESPONSE}: {e}"))
        return table

    def _encode_value(self, value: Any) -> Any:
        """
        :func:`~txtestserver._state.codec.encode`, except that a large bytes
        or str value goes to a file of its own (once: a value this process
        read or wrote is named again, not written again).
        """
        if not isinstance(value, (bytes, str)) or len(value) < LARGE_VALUE:
            return encode(value)
        kind = "f" if isinstance(value, bytes) else "fs"
        name = self._value_names.get(id(value))
        if name is None or self._values.get(name) is not value:
            name = f"{VALUE_PREFIX}{secrets.token_hex(8)}"
            self._directory.write(
                name, value if isinstance(value, bytes) else value.encode("utf-8")
            )
            self._keep_value(name, value)
        self._named.add(name)
        return {kind: name}

    def _decode_value(self, data: Any) -> Any:
        """:func:`~txtestserver._state.codec.decode`, reading a large value's file once."""
        if isinstance(data, dict) and ("f" in data or "fs" in data):
            name = data.get("f") or data["fs"]
            if not isinstance(name, str) or not name.startswith(VALUE_PREFIX) or "/" in name:
                raise ValueError(f"{name!r} names no value file")
            value = self._values.get(name)
            if value is None:
                with open(self._directory.file(name), "rb") as f:
                    raw = f.read()
                value = raw if "f" in data else raw.decode("utf-8")
                self._keep_value(name, value)
            return value
        return decode(data)

    def _keep_value(self, name: str, value: Any) -> None:
        self._values[name] = value
        self._value_names[id(value)] = name

    def _forget_values(self, named: set[str]) -> None:
        """
        Forget the large values that the table just written no longer names
        (``named``). The test process, which wrote every value file, also
        removes their files: the server process never reads a table outside
        the state lock (held here), and this process's readers hold the read
        lock while they read a table and its files.
        """
        gone = [name for name in self._values if name not in named]
        if not gone:
            return
        with self._read_lock:
            for name in gone:
                self._value_names.pop(id(self._values.pop(name)), None)
                if self._owner:
                    with contextlib.suppress(OSError):
                        os.unlink(self._directory.file(name))
