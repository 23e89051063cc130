"""
The private reactor that serves :class:`~txtestserver.TestServer` and
:class:`~txtestserver.AsyncTestServer`, run by crochet in a background thread.

Why a reactor of its own, and not the global ``twisted.internet.reactor``:
the global reactor belongs to whoever runs it (trial, pytest-twisted, a
Twisted program). A private instance can run in its thread beside it, so one
process can mix blocking tests, asyncio tests and trial TestCases in any
order. What that takes, each handled here or named where it is handled:

- every reactor registers the thread that runs it as *the* IO thread of the
  process (``threadable.registerAsIOThread``); ours must not, or trial would
  believe it runs in the wrong thread. So ``_registerAsIOThread = False``, and
  :meth:`ReactorThread.in_thread` checks the thread itself;
- crochet's :class:`~crochet.EventLoop` polls ``reapAllProcesses`` (every
  child of the process) every 0.1 s when asked; we pass a reaper of our own
  children only (:meth:`ReactorThread._reap_own`);
- a reactor that runs with signal handlers (trial's) reaps *every* registered
  child on SIGCHLD, in its own thread; :func:`confine_reaping` makes a child
  of ours reaped in our thread only;
- crochet stops its reactor from an exit hook. ``atexit`` hooks run only
  after the interpreter has joined every non-daemon thread, the reactor
  thread included, so exit would hang: the hook goes to
  ``threading._register_atexit``, which runs before that join.

Everything that takes a reactor (the Site, ``listenTCP``, ``deferLater``,
``spawnProcess``, the exit watcher, the ``wait_request`` timer) is given
:attr:`ReactorThread.reactor` by the faces; callbacks find it as
``request.reactor``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.python.failure import Failure

from ._core import ServerCore
from ._errors import TestServerError
from ._types import ProcessReactor

__all__ = ["PrivateReactorCore", "ReactorThread", "confine_reaping", "reactor_thread"]

T = TypeVar("T")


def _new_reactor() -> Any:
    """
    A reactor instance of the platform's usual kind, not installed as the
    global reactor: epoll on Linux, select elsewhere (Twisted's defaults).
    """
    try:
        from twisted.internet.epollreactor import EPollReactor as reactor_class
    except ImportError:  # not Linux
        from twisted.internet.selectreactor import SelectReactor as reactor_class
    reactor = reactor_class()
    # Not the process's IO thread: that is the global reactor's (trial's).
    reactor._registerAsIOThread = False
    return reactor


def _register_at_exit(function: Callable[..., Any], *args: Any) -> None:
    """
    Call ``function(*args)`` when the main thread ends, before the interpreter
    joins the reactor thread (a plain ``atexit`` hook would run after that
    join, which would wait forever for the reactor to stop).
    """
    register: Any = getattr(threading, "_register_atexit", None)
    if register is None:  # pragma: no cover - every CPython from 3.9 has it
        import atexit

        register = atexit.register
    register(function, *args)


class ReactorThread:
    """
    One private reactor, started in a background thread on first use.

    :ivar reactor: the reactor; it exists from construction, so servers can
        be built before it runs.
    """

    def __init__(self) -> None:
        self.reactor: Any = _new_reactor()
        self._lock = threading.Lock()
        self._started = False
        self._thread_id: int | None = None

    def start(self) -> None:
        """Start the reactor thread unless it runs already (thread-safe)."""
        if self._started:
            return
        with self._lock:
            if self._started:
                return
            import crochet

            self.reactor.callWhenRunning(self._note_thread)
            loop = crochet.EventLoop(  # type: ignore[attr-defined]
                lambda: self.reactor, _register_at_exit, reapAllProcesses=self._reap_own
            )
            loop.setup()
            self._started = True

    def _note_thread(self) -> None:
        self._thread_id = threading.get_ident()

    def in_thread(self) -> bool:
        """Whether the caller runs in this reactor's thread."""
        return self._thread_id == threading.get_ident()

    def _reap_own(self) -> None:
        """
        Reap the exited children spawned on this reactor, and no others
        (crochet calls this every 0.1 s; on Linux the subprocess engine's
        pidfd watcher reaps sooner).
        """
        from twisted.internet.process import reapProcessHandlers

        for process in list(reapProcessHandlers.values()):
            if getattr(process, "_reactor", None) is self.reactor:
                process.reapProcess()

    def call(self, what: str, timeout: float, function: Callable[..., Any], *args: Any) -> Any:
        """
        Run ``function(*args)`` in the reactor thread and block until its
        result (a Deferred's is waited for): the blocking API's one hop.

        We wait on a :class:`threading.Event`, not on crochet's
        ``EventualResult.wait``, which breaks under warnings filters that
        pytest resets between tests (docs/troubleshooting.rst).

        :param what: names the call in error messages (``'TestServer.stop()'``).
        :param timeout: seconds before giving up: the Deferred is cancelled
            and :class:`~txtestserver.TestServerError` raised.
        :raise TestServerError: called from the reactor thread itself, where
            waiting would deadlock.
        """
        if self.in_thread():
            raise TestServerError(
                f"{what} blocks, and was called in the thread of the reactor that serves "
                "the server (from a response callback, say), where it would wait forever: "
                "call it from the test instead"
            )
        self.start()
        finished = threading.Event()
        outcome: list[Any] = []
        running: list[Deferred[Any]] = []

        def run() -> None:
            d = maybeDeferred(function, *args)
            running.append(d)

            def keep(result: Any) -> None:
                outcome.append(result)
                finished.set()

            d.addBoth(keep)

        def cancel() -> None:
            for d in running:
                d.cancel()

        self.reactor.callFromThread(run)
        try:
            over = finished.wait(timeout)
        except BaseException:
            # Interrupted (Ctrl-C, a signal handler that raised): the call in the
            # reactor thread is cancelled too, leaving no waiter or timer there.
            self.reactor.callFromThread(cancel)
            raise
        if not over:
            self.reactor.callFromThread(cancel)
            raise TestServerError(f"{what} did not finish within {timeout:g} s")
        result = outcome[0]
        if isinstance(result, Failure):
            result.raiseException()
        return result


def confine_reaping(process: Any, reactor: Any) -> None:
    """
    Make ``process`` (a Twisted process transport spawned on ``reactor``) be
    reaped only in ``reactor``'s thread.

    Twisted keeps the children of every reactor in one table
    (``twisted.internet.process.reapProcessHandlers``), and a reactor that
    handles SIGCHLD (trial's) reaps all of them in its own thread; for a child
    of another reactor, ``processEnded`` would then run in the wrong thread.
    Called from the protocol's ``connectionMade``, in ``reactor``'s thread,
    which Twisted runs before it puts the process in that table.
    """
    owner = threading.get_ident()
    reap = process.reapProcess

    def reap_in_owner_thread() -> None:
        if threading.get_ident() == owner:
            reap()
        else:
            reactor.callFromThread(reap)

    process.reapProcess = reap_in_owner_thread


_shared: ReactorThread | None = None
_shared_lock = threading.Lock()


def reactor_thread() -> ReactorThread:
    """The process's one private reactor thread (made, not started, on first call)."""
    global _shared
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                _shared = ReactorThread()
    return _shared


class PrivateReactorCore(ServerCore):
    """
    The base of the faces that serve from the private reactor thread
    (:class:`~txtestserver.TestServer`, :class:`~txtestserver.AsyncTestServer`):
    the constructor is :class:`ServerCore`'s, the reactor is always
    :func:`reactor_thread`'s.
    """

    _owns_reactor = True

    @classmethod
    def _reactor_for(cls, reactor: ProcessReactor | None) -> ProcessReactor:
        own: ProcessReactor = reactor_thread().reactor
        if reactor is not None and reactor is not own:
            raise TestServerError(
                f"{cls.__name__} serves from a reactor of its own, in a background thread: "
                "drop reactor= (DeferredTestServer takes a reactor)"
            )
        return own

    def _block_on(
        self, what: str, function: Callable[..., Any], *args: Any, extra_time: float = 0.0
    ) -> Any:
        """
        Run ``function(*args)`` in the reactor thread; block for its result
        at most ``call_timeout + extra_time`` seconds.
        """
        return reactor_thread().call(
            f"{type(self).__name__}.{what}", self._call_timeout + extra_time, function, *args
        )
