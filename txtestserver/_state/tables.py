"""
The response table's files in a state directory: ``response.json``, the
log of its changes since, and the large-value files, with the parsed table
kept between updates.

``response.json`` holds the whole table, with a random token; the change
log ``response-changes.jsonl`` starts with the same token and then holds
one line per change of a route (:meth:`ResponseTable.changes`: the route's
whole state, or its removal), appended under the state lock. So a write
costs what changed, not the whole table (10,000 routes added one by one
used to rewrite the document 10,000 times), and a process that has the
table already reads only the lines it has not applied. When the log has
grown past a few times the document, or the table was cleared, the whole
table is written again with a new token and a log that holds just it:
``response.json`` first, so a reader between the two writes finds a log of
another token and ignores it (the new document has every change).

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
from .._model.table import ResponseTable, RouteState, route_values
from .codec import decode, encode
from .directory import CHANGES, RESPONSE, StateDirectory, encode_json

__all__ = ["LARGE_VALUE", "VALUE_PREFIX", "TableFiles"]

T = TypeVar("T")

#: The change log is compacted (the whole table written again) once it is
#: this many times as long as the document, and at least :data:`_LOG_FLOOR`.
_LOG_RATIO = 4
_LOG_FLOOR = 64 * 1024
#: Bytes read from the change log at a time.
_READ_SIZE = 1024 * 1024
#: Response values (bytes or str) of this many bytes or characters and more
#: are kept in a file of their own, not in ``response.json``.
LARGE_VALUE = 16 * 1024
#: The name of every file that holds one large value starts with this.
VALUE_PREFIX = "value-"


class TableFiles:
    """
    ``response.json``, its change log and its value files, as one process
    uses them.

    :param directory: where they are.
    :param read_lock: held by this process's readers while they read a
        table and its files; held here while the table kept is changed and
        while value files are removed.
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
        # The value files each route names (only routes that name some).
        self._named: dict[int | None, set[str]] = {}
        # The table as this process last read or wrote it, and where it
        # came from: response.json's identity and token, the change log's
        # identity and how far it was applied.
        self._table: ResponseTable | None = None
        self._document: tuple[int, int, int] | None = None
        self._token = ""
        self._log: tuple[int, int, int] | None = None
        self._applied = 0
        self._document_size = 0

    def read(self) -> ResponseTable:
        """
        The response table (see :meth:`parse`), brought up to date; the
        caller holds the read lock and must not change it.
        """
        return self._sync()

    def update(self, change: Callable[[ResponseTable], T]) -> T:
        """
        ``change(table)`` on the response table, its changes written if it
        changed; the caller holds the state lock.
        """
        with self._read_lock:
            table = self._sync()
            try:
                result = change(table)
            except BaseException:
                self._table = None  # a change that fails is read again
                raise
            if table.changed:
                self._save(table)
            return result

    def write(self, table: ResponseTable) -> None:
        """Write the whole ``table`` (a new token, an empty change log)."""
        with self._read_lock:
            self._write_whole(table)
            self._table = None  # the caller's object: read it back when needed

    def parse(self, document: bytes) -> ResponseTable:
        """
        The response table in ``document``, every value checked by the same
        rules as when a test sets it (its key's check, portable).
        """
        try:
            data = json.loads(document)
            table = ResponseTable.from_data(data, self._decode_value)
            for where, key, value in table.every_value():
                check_value(key, value, portable=True, where=where)
            token = data.get("log", "")
            if not isinstance(token, str):
                raise ValueError(f"log must be a str, not {token!r}")
            self._token = token
        except (TestServerError, OSError, KeyError, TypeError, AttributeError, ValueError) as e:
            self._directory.fail(ValueError(f"{RESPONSE}: {e}"))
        return table

    # -- reading ------------------------------------------------------------------------

    def _sync(self) -> ResponseTable:
        """The table kept, with what the other process wrote since applied."""
        document = self._identity(RESPONSE)
        table = self._table
        if table is None or document != self._document:
            table = self._load(document)
        log = self._identity(CHANGES, missing_ok=True)
        if log != self._log:
            self._log = log
            self._apply_log(table)
        return table

    def _identity(self, name: str, missing_ok: bool = False) -> Any:
        """A file's inode, size and modification time: what tells that it changed."""
        try:
            st = os.stat(self._directory.file(name))
        except OSError as e:
            if missing_ok and isinstance(e, FileNotFoundError):
                return None
            self._directory.fail(e)
        return st.st_ino, st.st_size, st.st_mtime_ns

    def _load(self, identity: Any) -> ResponseTable:
        """Read ``response.json`` whole; its change log is read from its start."""
        self._table = None
        raw = self._directory.read_bytes(RESPONSE)
        table = self.parse(raw)
        self._named = {}
        self._name_all(table)
        self._table = table
        self._document = identity
        self._document_size = len(raw)
        self._log = None
        self._applied = 0
        return table

    def _apply_log(self, table: ResponseTable) -> None:
        """Apply the complete lines of the change log not applied yet, if it is this table's."""
        try:
            fd = os.open(self._directory.file(CHANGES), os.O_RDONLY)
        except FileNotFoundError:
            return  # an older directory, or one being compacted
        except OSError as e:
            self._directory.fail(e)
        try:
            header = os.pread(fd, len(self._token) + 1, 0)
            if header != self._token.encode("ascii") + b"\n":
                return  # the log of another document (a compaction under way)
            start = max(self._applied, len(header))
            pieces = []
            offset = start
            while piece := os.pread(fd, _READ_SIZE, offset):
                pieces.append(piece)
                offset += len(piece)
        finally:
            os.close(fd)
        data = b"".join(pieces)
        end = data.rfind(b"\n") + 1  # a line being written is left for later
        if not end:
            self._applied = start
            return
        try:
            # Only the last state of each route counts (a value file that an
            # earlier one named may be gone).
            last: dict[Any, Any] = {}
            for line in data[:end].splitlines():
                change = json.loads(line)
                key = change["x"] if "x" in change else change["r"]["id"]
                last[key] = change
            for change in last.values():
                route = table.apply(change, self._decode_value)
                self._check(route)
                self._name(change, route)
        except (TestServerError, OSError, KeyError, TypeError, AttributeError, ValueError) as e:
            self._table = None
            self._directory.fail(ValueError(f"{CHANGES}: {e}"))
        table.saved()
        self._applied = start + end

    @staticmethod
    def _check(route: RouteState | None) -> None:
        if route is not None:
            for where, key, value in route_values(route):
                check_value(key, value, portable=True, where=where)

    # -- writing ------------------------------------------------------------------------

    def _save(self, table: ResponseTable) -> None:
        """Append the table's changes to the log, or write it whole (cleared, or a long log)."""
        if table.cleared or self._applied > max(_LOG_FLOOR, _LOG_RATIO * self._document_size):
            self._write_whole(table)
            self._table = table
            return
        lines = []
        for route_id, change in table.changes(self._encode_value):
            lines.append(encode_json(change).encode("ascii") + b"\n")
            self._name(change, table.route_state(route_id))
        table.saved()
        path = self._directory.file(CHANGES)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            try:
                data = b"".join(lines)
                written = os.write(fd, data)
                if written != len(data):
                    raise OSError(f"wrote {written} of {len(data)} bytes")
                st = os.fstat(fd)
            finally:
                os.close(fd)
        except OSError as e:
            self._table = None
            self._directory.fail(e)
        self._applied = st.st_size
        self._log = st.st_ino, st.st_size, st.st_mtime_ns
        self._forget_values()

    def _write_whole(self, table: ResponseTable) -> None:
        token = secrets.token_hex(8)
        data = table.to_data(self._encode_value)
        data["log"] = token
        document = encode_json(data).encode("ascii")
        self._directory.write(RESPONSE, document)
        self._directory.write(CHANGES, token.encode("ascii") + b"\n")
        table.saved()
        self._token = token
        self._document = self._identity(RESPONSE)
        self._document_size = len(document)
        self._log = self._identity(CHANGES)
        self._applied = len(token) + 1
        self._named = {}
        self._name_all(table)
        self._forget_values()

    # -- large values -------------------------------------------------------------------

    def _name_all(self, table: ResponseTable) -> None:
        for route in table.route_states():
            self._name({}, route)

    def _name(self, change: Any, route: RouteState | None) -> None:
        """Note which value files ``route`` names now (``change`` says which route, if removed)."""
        route_id = route.id if route is not None else change.get("x")
        names = set()
        if route is not None:
            for _, _, value in route_values(route):
                name = self._value_names.get(id(value))
                if name is not None and self._values.get(name) is value:
                    names.add(name)
        if names:
            self._named[route_id] = names
        else:
            self._named.pop(route_id, None)

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

    def _forget_values(self) -> None:
        """
        Forget the large values that no route names any more. The test
        process, which wrote every value file, also removes their files:
        the server process never reads the table outside the state lock
        (held here), and this process's readers hold the read lock while
        they read a table and its files.
        """
        named = set().union(*self._named.values())
        gone = [name for name in self._values if name not in named]
        for name in gone:
            self._value_names.pop(id(self._values.pop(name)), None)
            if self._owner:
                with contextlib.suppress(OSError):
                    os.unlink(self._directory.file(name))
