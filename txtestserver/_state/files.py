"""
The subprocess engine's store: the state shared by the test process and the
server process, kept as files in a private directory.

Files in the directory (mode 0700; every file 0600):

``response.json``
    The :class:`~txtestserver._model.table.ResponseTable`, one document
    (:meth:`~txtestserver._model.table.ResponseTable.to_data`).
``requests.jsonl``
    The journal, one JSON line per event, only ever appended (recording
    stays O(1) however many requests came before): a request's entry (a
    list, :func:`_entry_line`), the completion of an earlier one (``{"c":
    [INDEX, OUTCOME...]}``), a server-side error (``{"e": [INDEX, MESSAGE,
    TRACEBACK]}``), or "errors taken" (``{"x": 1}``).
``status.json``
    ``{"count": N, "end": BYTES, "generation": G}``: how many requests, where
    the last complete line of ``requests.jsonl`` ends, and the generation
    (one more at each reset; a ticket of another generation names nothing).
``value-<id>``
    One large response value (bytes or str of :data:`LARGE_VALUE` and more,
    as raw bytes, UTF-8 for str), written once when the test process sets
    it; ``response.json`` names the file (``{"f": NAME}``, ``{"fs": NAME}``
    for str) instead of holding the value, so that setting another key, or
    taking a ``response_once`` value for a request, reads and writes a small
    document however large the permanent body is. Each process keeps the
    large values it has read or written, and reads a file only once; the
    test process removes a file once no key names it.
``lock``
    Empty; every read-modify-write holds ``fcntl.flock`` on it.
``server.log``
    The server process's log.

Why this is safe:

- Every write of a JSON file goes to a temporary file in the same directory,
  then ``os.replace``: a reader sees the old file or the new one, never half
  of one, and needs no lock.
- Every read-modify-write (the server taking a ``response_once`` value while
  the test sets another; a request recorded while the test resets) holds an
  exclusive ``flock`` on the separate ``lock`` file, so no update is lost. The
  lock is on a separate file because ``os.replace`` gives the data files a
  new inode, and a lock on the old inode would protect nothing.
- The request log is only appended to, and readers read up to the ``end``
  that ``status.json`` names: a line being written is never read.
- The format is data only: JSON where bytes are ``{"b": BASE64}`` and tuples
  ``{"t": [...]}``, so every byte value, header order and repeats survive, and
  nothing read from a file is ever executed (no pickle).
- What is read is checked by the same rules as what a test sets (each key's
  check in :mod:`txtestserver._model.keys`): a broken value in
  ``response.json`` is an error that names it, not an answer without a
  status line.

Only the test process calls :meth:`FileStore.reset`, :meth:`FileStore.create`
and :meth:`FileStore.close`, so its cache of parsed requests (read
incrementally) is never invalidated behind its back.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn, TypeVar

from .._errors import TestServerError
from .._model.keys import check_value
from .._model.record import BYTES_FIELDS, RECORD_FIELDS, Entry, Outcome
from .._model.table import ResponseTable
from .memory import MemoryStore
from .store import ErrorRecord, History, Ticket

__all__ = ["FileStore"]

T = TypeVar("T")

RESPONSE = "response.json"
REQUESTS = "requests.jsonl"
STATUS = "status.json"
LOCK = "lock"
LOG = "server.log"

_FILE_MODE = 0o600
#: Seconds between tries for a taken state lock: the first, and the longest.
_FIRST_POLL = 0.0001
_LAST_POLL = 0.01
_READ_SIZE = 64 * 1024
#: The largest response document update() keeps parsed between calls (a
#: larger one would stay in memory twice, as bytes and parsed).
_TABLE_CACHE_LIMIT = 16 * 1024 * 1024
#: Response values (bytes or str) of this many bytes or characters and more
#: are kept in a file of their own, not in ``response.json``.
LARGE_VALUE = 16 * 1024
#: The name of every file that holds one large value starts with this.
VALUE_PREFIX = "value-"
#: Compact JSON (ASCII); one encoder made once, not one per call.
_encode_json = json.JSONEncoder(separators=(",", ":")).encode
#: A memory-backed directory for the state, used when it has this much room:
#: an atomic replace there costs ~10 us instead of ~200 us on a disk.
_MEMORY_DIR = "/dev/shm"
_MEMORY_DIR_ROOM = 1 << 30


def state_parent() -> str | None:
    """
    Where to make state directories: a memory-backed directory when there is
    one with room and ``TMPDIR`` does not say otherwise; else None (the
    system's temporary directory).
    """
    if "TMPDIR" in os.environ or not os.path.isdir(_MEMORY_DIR):
        return None
    try:
        room = os.statvfs(_MEMORY_DIR)
    except OSError:
        return None
    if room.f_bavail * room.f_frsize < _MEMORY_DIR_ROOM or not os.access(_MEMORY_DIR, os.W_OK):
        return None
    return _MEMORY_DIR


def encode(value: Any) -> Any:
    """
    A response value as JSON data: bytes become ``{"b": BASE64}``, tuples
    ``{"t": [...]}``, dicts with str keys ``{"d": {...}}``; str, numbers,
    bools, None and lists stay as they are.

    :raise TestServerError: the value is not plain data.
    """
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, bytes):
        return {"b": base64.b64encode(value).decode("ascii")}
    if isinstance(value, tuple):
        return {"t": [encode(item) for item in value]}
    if isinstance(value, list):
        return [encode(item) for item in value]
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {"d": {key: encode(item) for key, item in value.items()}}
    raise TestServerError(
        f"{type(value).__name__} cannot be stored for the server process: only bytes, "
        "str, numbers, bools, None, lists, tuples and dicts with str keys cross the "
        "process boundary"
    )


def decode(data: Any) -> Any:
    """The inverse of :func:`encode`."""
    if isinstance(data, list):
        return [decode(item) for item in data]
    if isinstance(data, dict):
        if "b" in data:
            return base64.b64decode(data["b"])
        if "d" in data:
            return {key: decode(item) for key, item in data["d"].items()}
        return tuple(decode(item) for item in data["t"])
    return data


def _entry_line(entry: Entry) -> bytes:
    fields: list[Any] = list(entry)
    for i in BYTES_FIELDS:
        fields[i] = base64.b64encode(fields[i]).decode("ascii")
    return _encode_json(fields).encode("ascii") + b"\n"


def _parse_entry(fields: list[Any]) -> Entry:
    b64 = base64.b64decode
    for i in BYTES_FIELDS:
        fields[i] = b64(fields[i])
    entry: Entry = tuple(fields)
    return entry


def _event_line(kind: str, fields: Sequence[Any]) -> bytes:
    return _encode_json({kind: fields}).encode("ascii") + b"\n"


class FileStore:
    """
    A :class:`~txtestserver._store.StateStore` over files, shared by the test
    process and the server process.

    The test process makes one store for the life of the server object. While
    no server runs, the store keeps its state in memory (so ``response`` can be
    set before ``start()`` and everything stays readable after ``stop()``);
    :meth:`create` moves that state into a new directory for a server process,
    and :meth:`close` moves the final state back into memory and removes the
    directory. The server process attaches to the directory by path.

    Every wait for the state lock is bounded by ``lock_timeout``: a server
    process stopped while it holds the lock (SIGSTOP, a debugger) makes
    writes fail with a :class:`TestServerError` instead of hanging, and reads
    (the journal, the response) never wait for the lock at all.

    :param directory: attach to this existing state directory (the server
        process); None keeps the state in memory until :meth:`create`.
    :param lock_timeout: seconds a write may wait for the state lock (the
        test process passes its call timeout); None waits as long as it takes
        (the server process: the test process holds the lock for microseconds
        per call, and while it is stopped nobody waits for an answer).
    """

    def __init__(self, directory: str | None = None, lock_timeout: float | None = None) -> None:
        self._lock_timeout = lock_timeout
        # Serialises this process's writers; flock serialises the processes
        # (flock on one open file does not exclude threads of one process).
        self._thread_lock = _BoundedLock(threading.RLock(), lock_timeout, self._not_responding)
        # Guards the directory and the parsed journal (every _sync holds it);
        # never held while waiting for the flock, so reads go on while a
        # write waits.
        self._read_lock = threading.RLock()
        self._dir = directory
        # The large values this process has read or written: file name ->
        # value, and id(value) -> file name (the value is kept alive in the
        # first, so its id is not reused meanwhile).
        self._values: dict[str, Any] = {}
        self._value_names: dict[int, str] = {}
        # This store made the directory (the test process): it writes the
        # value files, and removes them.
        self._owner = False
        # The value files named by the table being written (_write_table).
        self._named: set[str] = set()
        # The last response.json whose values passed their checks.
        self._checked: bytes | None = None
        # The table as update() last read or wrote it, with the bytes of its
        # document: while response.json holds the same bytes, the next
        # update() uses it as it is instead of parsing the document again
        # (with routes, parsing is most of the cost of a request). Only
        # update() uses it, under the thread lock and the flock.
        self._table_cache: tuple[bytes, ResponseTable] | None = None
        self._memory = MemoryStore()
        self._broken: TestServerError | None = None
        # Entries and errors parsed so far, the byte offset of the next
        # unread line, and the generation they belong to.
        self._records: list[Entry] = []
        self._errors: list[ErrorRecord] = []
        self._offset = 0
        self._generation = 0
        self._lock_fd: int | None = None

    @property
    def directory(self) -> str | None:
        """The state directory, or None while the state is in memory."""
        return self._dir

    # -- lifecycle (test process) ----------------------------------------------------

    def create(self) -> str:
        """
        Make a private state directory holding the current state; return its
        path. Operations use the files from now on.
        """
        with self._thread_lock, self._read_lock:
            if self._dir is not None:
                raise TestServerError(f"the state directory {self._dir} is already in use")
            directory = tempfile.mkdtemp(prefix="txtestserver-", dir=state_parent())  # mode 0700
            try:
                memory = self._memory
                self._dir = directory
                self._write_table(memory.read(lambda t: t))
                generation, history = memory.journal()
                records = list(history)
                errors = memory.raw_errors()
                lines = b"".join(
                    [_entry_line(r) for r in records] + [_event_line("e", e) for e in errors]
                )
                self._write(REQUESTS, lines)
                self._write(LOCK, b"")
                self._write_json(
                    STATUS, {"count": len(records), "end": len(lines), "generation": generation}
                )
            except BaseException:
                self._dir = None
                shutil.rmtree(directory, ignore_errors=True)
                raise
            self._records, self._errors, self._offset = records, errors, len(lines)
            self._generation = generation
            self._owner = True
            self._broken = None
            return directory

    def close(self, broken: TestServerError | None = None) -> None:
        """
        Load the final state into memory and remove the directory; the store
        then works from memory. Call it once the server process has exited.

        :param broken: every operation raises this error until the next
            :meth:`create` or :meth:`close` (the server process died; stop()
            closes again to clear it).
        """
        with self._thread_lock, self._read_lock:
            directory, self._broken = self._dir, broken
            if directory is None:
                return
            try:
                self._memory, error = self._load()
            finally:
                self._dir = None
                self._records, self._errors, self._offset = [], [], 0
                self._values, self._value_names, self._owner = {}, {}, False
                self._release_lock_file()
                shutil.rmtree(directory, ignore_errors=True)
            if error is not None:
                raise error

    def _load(self) -> tuple[MemoryStore, TestServerError | None]:
        """
        The final state, in memory. A broken response table does not lose
        the journal: the response is then the one from before the start,
        and the error is returned to be raised.
        """
        generation, records = self._sync()
        error = None
        try:
            table = self._read_table()
        except TestServerError as e:
            error = e
            table = self._memory.read(lambda t: t)
        memory = MemoryStore(table, generation)
        for record in records:
            memory.record(record)
        memory.add_errors(self._errors)
        return memory, error

    # -- StateStore ------------------------------------------------------------------

    def read(self, look: Callable[[ResponseTable], T]) -> T:
        with self._read_lock:
            if self._dir is None:
                return self._check_memory().read(look)
            table = self._read_table()
        return look(table)

    def update(self, change: Callable[[ResponseTable], T]) -> T:
        with self._thread_lock:
            if self._dir is None:
                return self._check_memory().update(change)
            with self._locked():
                document = self._read_bytes(RESPONSE)
                cached, self._table_cache = self._table_cache, None  # a change that fails drops it
                if cached is not None and cached[0] == document:
                    table = cached[1]
                else:
                    table = self._parse_table(document)
                result = change(table)
                if table.changed:
                    document = self._write_table(table)
                    table.changed = False
                if len(document) <= _TABLE_CACHE_LIMIT:
                    self._table_cache = (document, table)
        return result

    def record(self, entry: Entry) -> Ticket:
        line = _entry_line(entry)
        with self._thread_lock:
            if self._dir is None:
                return self._check_memory().record(entry)
            with self._locked():
                status = self._append(line)
                count = status["count"] = status["count"] + 1
                self._write_json(STATUS, status)
                return status["generation"], count - 1

    def complete(self, ticket: Ticket, outcome: Outcome) -> None:
        with self._thread_lock:
            if self._dir is None:
                self._check_memory().complete(ticket, outcome)
            else:
                self._add_event(ticket, _event_line("c", [ticket[1], *outcome]))

    def add_error(self, ticket: Ticket | None, message: str, traceback: str | None) -> None:
        with self._thread_lock:
            if self._dir is None:
                self._check_memory().add_error(ticket, message, traceback)
            else:
                index = None if ticket is None else ticket[1]
                self._add_event(ticket, _event_line("e", [index, message, traceback]))

    def _add_event(self, ticket: Ticket | None, line: bytes) -> None:
        """Append an event line about the request of ``ticket``, unless a reset came since."""
        with self._locked():
            status = self._read_json(STATUS)
            if ticket is None or ticket[0] == status["generation"]:
                self._write_json(STATUS, self._append(line, status))

    def entry(self, ticket: Ticket) -> Entry | None:
        generation, index = ticket
        with self._read_lock:
            if self._dir is None:
                return self._check_memory().entry(ticket)
            current, records = self._sync()
            if generation != current or index >= len(records):
                return None
            return records[index]

    def last_request(self) -> Entry | None:
        with self._read_lock:
            if self._dir is None:
                return self._check_memory().last_request()
            records = self._sync()[1]
            return records[-1] if records else None

    def history(self) -> History:
        with self._read_lock:
            if self._dir is None:
                return self._check_memory().history()
            return History(self._sync()[1])

    def journal(self) -> tuple[int, History]:
        with self._read_lock:
            if self._dir is None:
                return self._check_memory().journal()
            generation, records = self._sync()
            return generation, History(records)

    def errors(self) -> list[tuple[Entry | None, str, str | None]]:
        with self._read_lock:
            if self._dir is None:
                return self._check_memory().errors()
            records = self._sync()[1]
            return self._resolve(records, self._errors)

    def take_errors(self) -> list[tuple[Entry | None, str, str | None]]:
        with self._thread_lock:
            if self._dir is None:
                return self._check_memory().take_errors()
            with self._locked(), self._read_lock:
                records = self._sync()[1]
                errors = self._resolve(records, self._errors)
                if errors:
                    status = self._read_json(STATUS)
                    self._write_json(STATUS, self._append(_event_line("x", [1]), status))
                    self._sync()
                return errors

    @staticmethod
    def _resolve(
        records: list[Entry], errors: list[ErrorRecord]
    ) -> list[tuple[Entry | None, str, str | None]]:
        return [
            (None if index is None else records[index], message, traceback)
            for index, message, traceback in errors
        ]

    def reset(self) -> None:
        with self._thread_lock:
            if self._dir is None:
                self._check_memory().reset()
                return
            with self._locked():
                generation = self._read_json(STATUS)["generation"] + 1
                self._write_table(ResponseTable())
                self._write(REQUESTS, b"")
                self._write_json(STATUS, {"count": 0, "end": 0, "generation": generation})
                with self._read_lock:
                    self._records, self._errors, self._offset = [], [], 0
                    self._generation = generation

    # -- files -------------------------------------------------------------------------

    def _check_memory(self) -> MemoryStore:
        if self._broken is not None:
            raise TestServerError(*self._broken.args)
        return self._memory

    def _sync(self) -> tuple[int, list[Entry]]:
        """
        Parse the journal lines written since the last call; return the
        generation and every entry.
        """
        status = self._read_json(STATUS)
        end, generation = status["end"], status["generation"]
        if generation != self._generation or end < self._offset:  # reset elsewhere
            self._records, self._errors, self._offset = [], [], 0
            self._generation = generation
        if end > self._offset:
            try:
                with open(self._path(REQUESTS), "rb") as f:
                    f.seek(self._offset)
                    chunk = f.read(end - self._offset)
            except OSError as e:
                self._fail(e)
            if len(chunk) != end - self._offset:
                self._fail(ValueError(f"{REQUESTS} is shorter than {STATUS} says"))
            try:
                for line in chunk.splitlines():
                    self._apply(json.loads(line))
            except (ValueError, TypeError, IndexError, KeyError) as e:
                self._fail(e)
            self._offset = end
        return generation, self._records

    def _apply(self, fields: Any) -> None:
        """One journal line, parsed: an entry or an event."""
        records = self._records
        if isinstance(fields, list):
            records.append(_parse_entry(fields))
        elif "c" in fields:
            index, *outcome = fields["c"]
            records[index] = records[index][:RECORD_FIELDS] + tuple(outcome)
        elif "e" in fields:
            index, message, traceback = fields["e"]
            if index is not None and not 0 <= index < len(records):
                raise IndexError(f"an error names request {index} of {len(records)}")
            self._errors.append((index, str(message), traceback))
        elif "x" in fields:
            self._errors = []
        else:
            raise ValueError(f"unknown journal line {fields!r}")

    def _append(self, line: bytes, status: Any = None) -> Any:
        """
        Append one line to the journal (holding the lock); return the status
        (read now unless given) with its new ``end``, to be written.
        """
        if status is None:
            status = self._read_json(STATUS)
        try:
            fd = os.open(self._path(REQUESTS), os.O_WRONLY | os.O_APPEND)
        except OSError as e:
            self._fail(e)
        try:
            os.write(fd, line)
            status["end"] = os.lseek(fd, 0, os.SEEK_END)
        finally:
            os.close(fd)
        return status

    def _path(self, name: str) -> str:
        assert self._dir is not None
        return f"{self._dir}/{name}"  # os.path.join costs more, per request

    def _fail(self, error: BaseException) -> NoReturn:
        """Turn a broken or missing state file into a clear error."""
        raise TestServerError(
            f"the server state in {self._dir} cannot be used ({error}): "
            "was the directory removed or changed by something else?"
        ) from error

    # -- large values ---------------------------------------------------------------

    def _write_table(self, table: ResponseTable) -> bytes:
        """
        Write ``table`` to ``response.json``; forget the large values it no
        longer names. Returns the document written.
        """
        self._named = set()
        document = _encode_json(table.to_data(self._encode_value)).encode("ascii")
        self._write(RESPONSE, document)
        # Its values were checked when set, or when read from a checked table.
        self._checked = document
        self._forget_values(self._named)
        return document

    def _encode_value(self, value: Any) -> Any:
        """
        :func:`encode`, except that a large bytes or str value goes to a file
        of its own (once: a value this process read or wrote is named again,
        not written again).
        """
        if not isinstance(value, (bytes, str)) or len(value) < LARGE_VALUE:
            return encode(value)
        kind = "f" if isinstance(value, bytes) else "fs"
        name = self._value_names.get(id(value))
        if name is None or self._values.get(name) is not value:
            name = f"{VALUE_PREFIX}{secrets.token_hex(8)}"
            self._write(name, value if isinstance(value, bytes) else value.encode("utf-8"))
            self._keep_value(name, value)
        self._named.add(name)
        return {kind: name}

    def _decode_value(self, data: Any) -> Any:
        """:func:`decode`, reading a large value's file unless it is known here."""
        if isinstance(data, dict) and ("f" in data or "fs" in data):
            name = data.get("f") or data["fs"]
            if not isinstance(name, str) or not name.startswith(VALUE_PREFIX) or "/" in name:
                raise ValueError(f"{name!r} names no value file")
            value = self._values.get(name)
            if value is None:
                raw = self._read_file(name)
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
                        os.unlink(self._path(name))

    def _read_file(self, name: str) -> bytes:
        """A value file's bytes (OSError: see :meth:`_read_table`)."""
        with open(self._path(name), "rb") as f:
            return f.read()

    def _read_table(self) -> ResponseTable:
        """The response table in ``response.json`` (see :meth:`_parse_table`)."""
        return self._parse_table(self._read_bytes(RESPONSE))

    def _parse_table(self, document: bytes) -> ResponseTable:
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
            self._fail(ValueError(f"{RESPONSE}: {e}"))
        return table

    def _read_json(self, name: str) -> Any:
        try:
            return json.loads(self._read_bytes(name))
        except ValueError as e:
            self._fail(e)

    def _read_bytes(self, name: str) -> bytes:
        # os-level calls: the server process reads a file or two per request,
        # and open()'s buffered file objects cost more than the reading.
        try:
            fd = os.open(self._path(name), os.O_RDONLY)
            try:
                data = os.read(fd, _READ_SIZE)
                if len(data) == _READ_SIZE:  # a short read of a file is its end
                    pieces = [data]
                    while piece := os.read(fd, _READ_SIZE):
                        pieces.append(piece)
                    data = b"".join(pieces)
            finally:
                os.close(fd)
        except OSError as e:
            self._fail(e)
        return data

    def _write_json(self, name: str, data: Any) -> None:
        self._write(name, _encode_json(data).encode("ascii"))

    def _write(self, name: str, data: bytes) -> None:
        """Replace a file atomically: temporary file in the same directory, then rename."""
        path = self._path(name)
        temporary = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _FILE_MODE)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            os.replace(temporary, path)
        except OSError as e:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            self._fail(e)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the exclusive lock that every read-modify-write takes."""
        if self._lock_fd is None:
            try:
                self._lock_fd = os.open(self._path(LOCK), os.O_RDWR)
            except OSError as e:
                self._fail(e)
        self._flock(self._lock_fd)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _flock(self, fd: int) -> None:
        """Take the exclusive flock on ``fd``, waiting at most the lock timeout."""
        if self._lock_timeout is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
            return
        deadline = time.monotonic() + self._lock_timeout
        delay = _FIRST_POLL
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._not_responding()
            # flock has no timeout: poll, quickly at first (the server holds
            # the lock for tens of microseconds per request).
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, _LAST_POLL)

    def _not_responding(self) -> TestServerError:
        return TestServerError(
            f"the server process is not responding: it has held the state lock in {self._dir} "
            f"for {self._lock_timeout} s (is it stopped, by SIGSTOP or a debugger?). "
            "Let it continue, or stop() the server; call_timeout sets how long to wait"
        )

    def _release_lock_file(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


class _BoundedLock:
    """
    A lock whose ``with`` waits at most ``timeout`` seconds, then raises.

    :param lock: the lock to take.
    :param timeout: seconds; None waits as long as it takes.
    :param error: makes the error to raise.
    """

    def __init__(
        self, lock: Any, timeout: float | None, error: Callable[[], TestServerError]
    ) -> None:
        self._lock = lock
        self._timeout = -1 if timeout is None else timeout
        self._error = error

    def __enter__(self) -> None:
        if not self._lock.acquire(timeout=self._timeout):
            raise self._error()

    def __exit__(self, *_: object) -> None:
        self._lock.release()
