"""
A private reactor run by crochet in a background thread, and the one way to
hand it work: :meth:`ReactorThread.submit`.

Why a reactor of its own, and not the global ``twisted.internet.reactor``:
the global reactor belongs to whoever runs it (trial, pytest-twisted, a
Twisted program). A private instance can run in its thread beside it, so one
process can mix blocking tests, asyncio tests and trial TestCases in any
order. What that takes:

- every reactor registers the thread that runs it as *the* IO thread of the
  process (``threadable.registerAsIOThread``); ours must not, or trial would
  believe it runs in the wrong thread. So ``_registerAsIOThread = False``, and
  :meth:`ReactorThread.in_thread` checks the thread itself;
- crochet's :class:`~crochet.EventLoop` polls a reaper every 0.1 s; it is
  given one (``reap``) that reaps our own children only
  (:func:`txtestserver._engines.reaping.reap_children_of`, passed by the
  faces);
- crochet stops its reactor from an exit hook. ``atexit`` hooks run only
  after the interpreter has joined every non-daemon thread, the reactor
  thread included, so exit would hang: the hook goes to
  ``threading._register_atexit``, which runs before that join.

As crochet's ``EventLoop`` does, :class:`ReactorThread` takes every side
effect (the reactor's making, the exit hook, the reaper) as a parameter and
imports nothing of txtestserver above :mod:`txtestserver._errors`: the
faces (:mod:`txtestserver._private`) make the process's one instance.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

__all__ = ["ReactorThread", "Submission", "new_reactor", "register_at_exit"]


def new_reactor() -> Any:
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


def register_at_exit(function: Callable[..., Any], *args: Any) -> None:
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


class Submission:
    """
    One call handed to the reactor thread by :meth:`ReactorThread.submit`.

    ``deliver(result)`` is called in the reactor thread with the call's
    result, or its :class:`~twisted.python.failure.Failure`, once it has
    settled (a Deferred's is waited for). :meth:`cancel`, from any thread,
    gives up: a call that has not begun never begins, a running one's
    Deferred is cancelled, and ``undo`` (if given) runs after it.
    """

    def __init__(
        self,
        reactor: Any,
        function: Callable[..., Any],
        args: tuple[Any, ...],
        deliver: Callable[[Any], None],
        undo: Callable[[], Any] | None,
    ) -> None:
        self._reactor = reactor
        self._function = function
        self._args = args
        self._deliver = deliver
        self._undo = undo
        # Set by cancel() in the caller's thread, read in the reactor thread:
        # a call given up before it began must not begin (a start that timed
        # out while another server's callback held the reactor).
        self._cancelled = False
        self._running: Deferred[Any] | None = None

    def run(self) -> None:
        """In the reactor thread: begin the call, unless it was given up."""
        if self._cancelled:
            return
        from twisted.internet.defer import maybeDeferred

        d = maybeDeferred(self._function, *self._args)
        self._running = d
        d.addBoth(self._deliver)

    def cancel(self) -> None:
        """Give up (from any thread); nothing of the call is left behind."""
        self._cancelled = True
        self._reactor.callFromThread(self._give_up)

    def _give_up(self) -> None:
        if self._running is None:
            return  # it never began
        self._running.cancel()
        if self._undo is not None:
            from twisted.internet.defer import maybeDeferred
            from twisted.logger import Logger

            undone = maybeDeferred(self._undo)
            undone.addErrback(
                lambda failure: Logger().failure("txtestserver could not undo a call", failure)
            )


class ReactorThread:
    """
    One private reactor, started in a background thread on first use.

    :param make_reactor: makes the reactor (at construction, so servers can
        be built before it runs).
    :param at_exit: registers the function that stops it when the process
        ends.
    :param reap: called with the reactor every 0.1 s to reap its exited
        children (crochet's ``reapAllProcesses``).
    :ivar reactor: the reactor.
    """

    def __init__(
        self,
        make_reactor: Callable[[], Any] = new_reactor,
        at_exit: Callable[..., None] = register_at_exit,
        reap: Callable[[Any], None] = lambda reactor: None,
    ) -> None:
        self.reactor: Any = make_reactor()
        self._at_exit = at_exit
        self._reap = reap
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
                lambda: self.reactor,
                self._at_exit,
                reapAllProcesses=lambda: self._reap(self.reactor),
            )
            loop.setup()
            self._started = True

    def _note_thread(self) -> None:
        self._thread_id = threading.get_ident()

    def in_thread(self) -> bool:
        """Whether the caller runs in this reactor's thread."""
        return self._thread_id == threading.get_ident()

    def submit(
        self,
        deliver: Callable[[Any], None],
        function: Callable[..., Any],
        *args: Any,
        undo: Callable[[], Any] | None = None,
    ) -> Submission:
        """
        Run ``function(*args)`` in the reactor thread (started if need be);
        call ``deliver`` there with its result or Failure. The one hand-over
        from a face to the reactor: the blocking face waits for ``deliver``
        on a :class:`threading.Event`, the asyncio face on a future.

        :param undo: run in the reactor thread if the call is cancelled after
            it began (``stop`` for a ``start`` given up).
        :return: the :class:`Submission`, to cancel it.
        """
        self.start()
        submission = Submission(self.reactor, function, args, deliver, undo)
        self.reactor.callFromThread(submission.run)
        return submission
