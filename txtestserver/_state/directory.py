"""
The state directory of a subprocess server: its file names, atomic writes,
appends to the journal, and the bounded ``flock`` that every
read-modify-write holds.

- Every write of a JSON file goes to a temporary file in the same directory,
  then ``os.replace``: a reader sees the old file or the new one, never half
  of one, and needs no lock.
- Every read-modify-write holds an exclusive ``flock`` on the separate
  ``lock`` file, so no update is lost. The lock is on a separate file
  because ``os.replace`` gives the data files a new inode, and a lock on the
  old inode would protect nothing.
- A broken or missing file is a :class:`~txtestserver.TestServerError`
  that names the directory (:meth:`StateDirectory.fail`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

from .._errors import TestServerError

__all__ = [
    "CHANGES",
    "LOCK",
    "LOG",
    "REQUESTS",
    "RESPONSE",
    "STATUS",
    "BoundedLock",
    "StateDirectory",
    "encode_json",
    "state_parent",
]

RESPONSE = "response.json"
#: The changes of the response table since ``response.json`` was written.
CHANGES = "response-changes.jsonl"
REQUESTS = "requests.jsonl"
STATUS = "status.json"
LOCK = "lock"
LOG = "server.log"

_FILE_MODE = 0o600
#: Seconds between tries for a taken state lock: the first, and the longest.
_FIRST_POLL = 0.0001
_LAST_POLL = 0.01
_READ_SIZE = 64 * 1024
#: Compact JSON (ASCII); one encoder made once, not one per call.
encode_json = json.JSONEncoder(separators=(",", ":")).encode
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


class StateDirectory:
    """
    One state directory, as one process uses it.

    :param path: the directory.
    :param lock_timeout: seconds :meth:`locked` may wait for the state lock;
        None waits as long as it takes.
    :param fatal: called with the error before :meth:`fail` raises it (the
        server process ends when its state is unusable).
    """

    def __init__(
        self,
        path: str,
        lock_timeout: float | None = None,
        fatal: Callable[[TestServerError], None] | None = None,
    ) -> None:
        self.path = path
        self.lock_timeout = lock_timeout
        self._fatal = fatal
        self._lock_fd: int | None = None

    @classmethod
    def make(cls, lock_timeout: float | None = None) -> StateDirectory:
        """A new private directory (mode 0700), in memory when there is room."""
        return cls(tempfile.mkdtemp(prefix="txtestserver-", dir=state_parent()), lock_timeout)

    def remove(self) -> None:
        """Let go of the lock file and remove the directory with everything in it."""
        self.release()
        shutil.rmtree(self.path, ignore_errors=True)

    def file(self, name: str) -> str:
        """The path of the file ``name`` in the directory."""
        return f"{self.path}/{name}"  # os.path.join costs more, per request

    def fail(self, error: BaseException) -> NoReturn:
        """Turn a broken or missing state file into a clear error."""
        failure = TestServerError(
            f"the server state in {self.path} cannot be used ({error}): "
            "was the directory removed or changed by something else?"
        )
        if self._fatal is not None:
            self._fatal(failure)
        raise failure from error

    def read_bytes(self, name: str) -> bytes:
        """A file's bytes."""
        # os-level calls: the server process reads a file or two per request,
        # and open()'s buffered file objects cost more than the reading.
        try:
            fd = os.open(self.file(name), os.O_RDONLY)
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
            self.fail(e)
        return data

    def read_json(self, name: str) -> Any:
        """A JSON file, parsed."""
        try:
            return json.loads(self.read_bytes(name))
        except ValueError as e:
            self.fail(e)

    def write_json(self, name: str, data: Any) -> None:
        """Replace a JSON file atomically."""
        self.write(name, encode_json(data).encode("ascii"))

    def write(self, name: str, data: bytes) -> None:
        """Replace a file atomically: temporary file in the same directory, then rename."""
        path = self.file(name)
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
            self.fail(e)

    def append(self, line: bytes, status: Any = None) -> Any:
        """
        Append one line to the journal (holding the lock); return the status
        (read now unless given) with its new ``end``, to be written.
        """
        if status is None:
            status = self.read_json(STATUS)
        try:
            fd = os.open(self.file(REQUESTS), os.O_WRONLY | os.O_APPEND)
        except OSError as e:
            self.fail(e)
        try:
            os.write(fd, line)
            status["end"] = os.lseek(fd, 0, os.SEEK_END)
        finally:
            os.close(fd)
        return status

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the exclusive lock that every read-modify-write takes."""
        if self._lock_fd is None:
            try:
                self._lock_fd = os.open(self.file(LOCK), os.O_RDWR)
            except OSError as e:
                self.fail(e)
        self._flock(self._lock_fd)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _flock(self, fd: int) -> None:
        """Take the exclusive flock on ``fd``, waiting at most the lock timeout."""
        if self.lock_timeout is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
            return
        deadline = time.monotonic() + self.lock_timeout
        delay = _FIRST_POLL
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self.not_responding()
            # flock has no timeout: poll, quickly at first (the server holds
            # the lock for tens of microseconds per request).
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, _LAST_POLL)

    def not_responding(self) -> TestServerError:
        """The error of a wait for the state lock that ran out."""
        return TestServerError(
            f"the server process is not responding: it has held the state lock in {self.path} "
            f"for {self.lock_timeout} s (is it stopped, by SIGSTOP or a debugger?). "
            "Let it continue, or stop() the server; call_timeout sets how long to wait"
        )

    def release(self) -> None:
        """Close the lock file (the directory is about to go)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


class BoundedLock:
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
