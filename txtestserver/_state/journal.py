"""
The journal file (``requests.jsonl``) of a state directory: its lines, and
reading it back incrementally.

One JSON line per event, only ever appended (recording stays O(1) however
many requests came before): a request's entry (a list,
:func:`entry_line`), the completion of an earlier one (``{"c": [INDEX,
OUTCOME...]}``), a server-side error (``{"e": [INDEX, MESSAGE,
TRACEBACK]}``), "errors taken" (``{"x": 1}``), or an event of the
WebSocket journal (``{"w": EVENT}``, :mod:`txtestserver._model.websocket`,
its values through :mod:`.codec`). ``status.json`` says how
many requests there are, where the last complete line ends, and the
generation (one more at each reset).

Readers take no lock: they read up to the end ``status.json`` names, so a
line being written is never read, and they check the generation again
after reading, so a reset that replaced the journal meanwhile means "read
again", never a broken state (:meth:`JournalReader.sync`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Sequence
from typing import Any

from .._model.record import BYTES_FIELDS, RECORD_FIELDS, Entry
from .._model.websocket import SocketJournal, WebSocketEvent
from .codec import decode, encode
from .directory import REQUESTS, STATUS, StateDirectory, encode_json
from .store import ErrorRecord

__all__ = [
    "BYTES_FIELDS",
    "JournalReader",
    "entry_line",
    "event_line",
    "parse_entry",
    "websocket_line",
]


def entry_line(entry: Entry) -> bytes:
    """The journal line of a request's entry."""
    fields: list[Any] = list(entry)
    for i in BYTES_FIELDS:
        fields[i] = base64.b64encode(fields[i]).decode("ascii")
    return encode_json(fields).encode("ascii") + b"\n"


def parse_entry(fields: list[Any]) -> Entry:
    """The entry of a parsed journal line (the inverse of :func:`entry_line`)."""
    b64 = base64.b64decode
    for i in BYTES_FIELDS:
        fields[i] = b64(fields[i])
    entry: Entry = tuple(_tuples(fields))
    return entry


def _tuples(fields: list[Any]) -> Iterator[Any]:
    """The fields, each JSON array back as the tuple it was (``via``, ``sent``)."""
    return (tuple(field) if isinstance(field, list) else field for field in fields)


def event_line(kind: str, fields: Sequence[Any]) -> bytes:
    """The journal line of an event about earlier entries (``c``, ``e``, ``x``)."""
    return encode_json({kind: fields}).encode("ascii") + b"\n"


def websocket_line(event: WebSocketEvent) -> bytes:
    """The journal line of a WebSocket journal event (its bytes as :mod:`.codec` writes them)."""
    return encode_json({"w": encode(list(event))}).encode("ascii") + b"\n"


class JournalReader:
    """
    The journal of one directory as this process has read it: the entries
    and errors parsed so far, the byte offset of the next unread line, and
    the generation they belong to. The caller serialises its calls.

    :param directory: where the journal is.
    """

    def __init__(self, directory: StateDirectory) -> None:
        self._directory = directory
        self.records: list[Entry] = []
        self.errors: list[ErrorRecord] = []
        self.sockets = SocketJournal()
        self._offset = 0
        self._generation = 0

    def restart(
        self,
        generation: int,
        records: list[Entry] | None = None,
        errors: list[ErrorRecord] | None = None,
        offset: int = 0,
        sockets: SocketJournal | None = None,
    ) -> None:
        """Know the journal as given (written by this process: a start, a reset)."""
        self.records = records if records is not None else []
        self.errors = errors if errors is not None else []
        self.sockets = sockets if sockets is not None else SocketJournal()
        self._offset = offset
        self._generation = generation

    def sync(self) -> tuple[int, list[Entry]]:
        """
        Parse the journal lines written since the last call; return the
        generation and every entry.

        Reads take no lock, so a reset (which writes ``status.json`` of the
        new generation before it empties ``requests.jsonl``) may replace
        the journal between our reading of ``status.json`` and of the
        lines: we then hold lines of another generation, or too few. So the
        generation is read again after the lines, and a changed one means
        "read again", not a broken state.
        """
        directory = self._directory
        while True:
            status = directory.read_json(STATUS)
            end, generation = status["end"], status["generation"]
            if generation != self._generation or end < self._offset:  # reset elsewhere
                self.restart(generation)
            if end <= self._offset:
                return generation, self.records
            chunk: bytes | None = None
            problem: BaseException | None = None
            try:
                with open(directory.file(REQUESTS), "rb") as f:
                    f.seek(self._offset)
                    chunk = f.read(end - self._offset)
            except OSError as e:
                problem = e
            if directory.read_json(STATUS)["generation"] != generation:
                continue  # a reset came while we read: what we read is not this journal
            if chunk is None or len(chunk) != end - self._offset:
                directory.fail(problem or ValueError(f"{REQUESTS} is shorter than {STATUS} says"))
            try:
                for line in chunk.splitlines():
                    self._apply(json.loads(line))
            except (ValueError, TypeError, IndexError, KeyError) as e:
                directory.fail(e)
            self._offset = end
            return generation, self.records

    def _apply(self, fields: Any) -> None:
        """One journal line, parsed: an entry or an event."""
        records = self.records
        if isinstance(fields, list):
            records.append(parse_entry(fields))
        elif "c" in fields:
            index, *outcome = fields["c"]
            records[index] = records[index][:RECORD_FIELDS] + tuple(_tuples(outcome))
        elif "e" in fields:
            index, message, traceback = fields["e"]
            if index is not None and not 0 <= index < len(records):
                raise IndexError(f"an error names request {index} of {len(records)}")
            self.errors.append((index, str(message), traceback))
        elif "w" in fields:
            self.sockets.apply(decode(fields["w"]))
        elif "x" in fields:
            self.errors = []
        else:
            raise ValueError(f"unknown journal line {fields!r}")
