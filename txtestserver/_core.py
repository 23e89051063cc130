"""
The server itself, shared by every face: lifecycle, waiting, URLs, routes and
the dict-like views.

:class:`ServerCore` does everything in terms of Deferreds and must be driven
from the reactor thread. :class:`~txtestserver.DeferredTestServer` hands those
Deferreds to its caller; :class:`~txtestserver.TestServer` and
:class:`~txtestserver.AsyncTestServer` submit the same calls to the private
reactor's thread and block on them or await them.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ._config import (
    DEFAULT_BODY_LIMIT,
    DEFAULT_HEADER_COUNT_LIMIT,
    DEFAULT_HEADER_SIZE_LIMIT,
    ServerConfig,
)
from ._engines import make_engine
from ._errors import ServerSideError, TestServerError, WaitTimeoutError
from ._har import DEFAULT_REDACTED
from ._model.record import ROUTE_ID, Entry, RequestDict, parse
from ._model.routes import conditions, describe
from ._model.table import ONCE, RESPONSE
from ._model.websocket import DEFAULT_JOURNAL_LIMIT, MESSAGE_KEYS
from ._proxy import ProxyMethods
from ._response import Response, queued_answer
from ._route import Route
from ._server_errors import describe_errors, error_dicts
from ._state.store import Ticket
from ._twisted_imports import import_plain_twisted
from ._types import ProcessReactor
from ._views import ErrorsView, RequestsView, RequestView, ResponseView
from ._waits import CountWait, LatestWait, NextAnswerWait, PredicateScan, Waits, describe_arrivals

if TYPE_CHECKING:
    import ssl

    from twisted.internet.defer import Deferred

    from ._certificates import Authority
    from ._replay import Format, Recording
    from ._websocket import WebSocketRoute

__all__ = [
    "LONGEST_WAIT",
    "SHUTDOWN_BOUND",
    "ServerCore",
    "Step",
    "Steps",
    "check_count",
    "check_seconds",
]

T = TypeVar("T")

#: One step of a wait run by a face's ``_run``: ``(timeout, function,
#: args)``, ``function(*args)`` to run in the reactor thread.
Step = tuple[float, Callable[..., Any], tuple[Any, ...]]


class Steps(Generic[T]):
    """
    A face's method as its :data:`Step` s, one at a time, each advanced with
    the outcome of the one before: what the faces' ``_run`` share. A face
    runs each step its own way (blocks, awaits, yields a Deferred), then
    sets :attr:`sent` to its value or :attr:`error` to what it raised::

        for step in (steps := Steps(method_steps)):
            try:
                steps.sent = run(step)
            except Exception as e:
                steps.error = e
        return steps.result

    :param steps: the method's generator of steps; what it returns is
        :attr:`result`, what it raises goes to the face's caller.
    """

    def __init__(self, steps: Generator[Step, Any, T]) -> None:
        self._steps = steps
        #: The value of the step just run, sent into the method.
        self.sent: Any = None
        #: What the step just run raised, thrown into the method.
        self.error: Exception | None = None
        #: What the method returned, once the iteration has ended.
        self.result: T

    def __iter__(self) -> Iterator[Step]:
        while True:
            sent, error = self.sent, self.error
            self.sent = self.error = None
            try:
                step = self._steps.send(sent) if error is None else self._steps.throw(error)
            except StopIteration as stop:
                self.result = stop.value
                return
            yield step


#: The longest timeout a test may give, in seconds (a week): longer ones
#: overflow the clocks they are handed to.
LONGEST_WAIT = 7 * 24 * 3600.0

#: Seconds a server left running may take to stop when its reactor shuts
#: down (the subprocess engine's grace period plus reading the final state).
SHUTDOWN_BOUND = 5.0


def check_seconds(what: str, value: object) -> float:
    """
    Check a timeout a test gives (``wait_request(timeout)``, ``call_timeout``).

    :param what: names the argument in the error message.
    :return: the timeout, as given.
    :raise TestServerError: not a finite number of seconds from 0 to
        :data:`LONGEST_WAIT` (``inf``, ``nan``, ``1e10``, a negative number, a
        bool, a str).
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
        or value > LONGEST_WAIT
    ):
        raise TestServerError(
            f"{what} must be a finite number of seconds from 0 to {LONGEST_WAIT:g} (a "
            f"week), not {value!r}: a test should not wait for ever"
        )
    return value


def check_count(what: str, value: object) -> int:
    """
    Check a number of requests a test waits for.

    :raise TestServerError: not an int of at least 1.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TestServerError(f"{what} must be an int of at least 1, not {value!r}")
    return value


class ServerCore(ProxyMethods):
    """
    One test server: an engine plus the views over its store.

    Its constructor is the one every face has (written and documented here
    once). The faces add public ``start``, ``stop`` and ``wait_request`` on
    top of the Deferred-returning ``_start``, ``_stop`` and
    ``_wait_request``, which must run in the reactor thread.

    :param address: the interface to bind (default ``127.0.0.1``, private to
        this machine; an IPv6 address such as ``::1`` works too).
    :param port: the port to bind; 0 (the default) picks a free one.
    :param engine: ``'thread'`` (the default) serves from a reactor in this
        process; ``'subprocess'`` serves from a child process.
    :param reactor: the reactor that runs the server
        (:class:`~txtestserver.DeferredTestServer` only; the global one by
        default). The blocking face runs its own.
    :param body_limit: keep at most this many bytes of each request body in
        ``request['data']`` (default 64 MiB; 0 keeps none).
    :param header_count_limit: header lines one request may have (default
        500); a request with more gets ``400 Bad Request``.
    :param header_size_limit: bytes the request line and header lines of one
        request may hold (default 64 KiB); a request with more gets ``400 Bad
        Request``, or its connection closed if one line alone is longer.
    :param strict: answer ``404`` to a request that nothing the test set
        expects (no route matches it, no queued or ``response_once`` answer
        takes it, no ``response`` key applies to it), with a body naming the
        closest route and how the request differs from it, and record it as
        a server-side error (``server.errors``, ``server.check()``, which then
        also reports queued and ``response_once`` answers never used).
    :param call_timeout: seconds ``start()`` and ``stop()`` of the blocking
        and asyncio faces may take before they raise
        :class:`~txtestserver.TestServerError` (a start that times out is
        undone: nothing is left listening); also the longest that setting
        ``response`` waits for a subprocess server that holds its state lock
        (stopped by SIGSTOP or a debugger) before it raises.
    :param tls: serve HTTPS (``get_url()`` gives ``https://`` URLs) with a
        certificate for 127.0.0.1, ::1 and localhost, issued at each start
        by a certificate authority made once per test process; clients
        trust it through :attr:`~txtestserver.TestServer.ca_path`,
        :meth:`~txtestserver.TestServer.client_ssl_context` or
        :meth:`~txtestserver.TestServer.tls_client_policy`. Needs
        ``txtestserver[tls]``.
    :param client_cert: mutual TLS: ``'required'`` (a client without a
        certificate from that authority fails the handshake) or
        ``'optional'``; :attr:`~txtestserver.TestServer.client_cert_path` is
        such a certificate, and
        ``request['client_cert']`` is what the client presented.
    :param http2: offer HTTP/2 as well as HTTP/1.1 (ALPN); needs ``tls``
        (or ``proxy``: HTTP/2 inside its TLS tunnels) and
        ``txtestserver[http2]``.
    :param proxy: be a proxy as well, on the same port
        (:attr:`~txtestserver.TestServer.proxy_url`): absolute-form requests
        (``GET http://api.example.com/x``) and ``CONNECT`` tunnels, whose TLS
        is served with a certificate issued for the host asked (by the same
        authority as ``tls``: trust :attr:`~txtestserver.TestServer.ca_path`),
        are answered by the routes as if the server were that host (a route
        with ``host=`` answers for that host only). Needs ``txtestserver[tls]``.
    :param proxy_auth: ``(user, password)``: the proxy answers ``407`` with
        ``Proxy-Authenticate`` to a request or ``CONNECT`` without them
        (recorded, not an error); None: no proxy authentication.
    :raise TestServerError: a parameter can never work (the message says
        which and why).
    """

    def __init__(
        self,
        address: str = "127.0.0.1",
        port: int = 0,
        engine: str = "thread",
        *,
        reactor: ProcessReactor | None = None,
        body_limit: int = DEFAULT_BODY_LIMIT,
        header_count_limit: int = DEFAULT_HEADER_COUNT_LIMIT,
        header_size_limit: int = DEFAULT_HEADER_SIZE_LIMIT,
        strict: bool = False,
        call_timeout: float = 10.0,
        tls: bool = False,
        client_cert: str | None = None,
        http2: bool = False,
        proxy: bool = False,
        proxy_auth: tuple[str, str] | None = None,
    ) -> None:
        #: The settings of the next run; ``start(keep_alive=...)`` sets that one.
        self.config = ServerConfig(
            address=address,
            port=port,
            body_limit=body_limit,
            header_count_limit=header_count_limit,
            header_size_limit=header_size_limit,
            strict=strict,
            tls=tls,
            client_cert=client_cert,
            http2=http2,
            proxy=proxy,
            proxy_auth=proxy_auth,
        )
        self._authority: Authority | None = None
        if tls or proxy:
            from ._certificates import authority

            self._authority = authority()
        self._call_timeout = check_seconds("call_timeout", call_timeout)
        import_plain_twisted()
        self._reactor = self._reactor_for(reactor)
        self._engine = make_engine(engine, self._reactor, call_timeout=self._call_timeout)
        #: The engine's name.
        self.engine = engine
        store = self._engine.store
        #: What the latest client sent.
        self.request = RequestView(store)
        #: Every request since start or reset.
        self.requests = RequestsView(store, self.request, har=self._har_context)
        #: What the server answers to every request.
        self.response = ResponseView(store, slot=RESPONSE, portable=self._engine.portable)
        #: What the server answers to the next matching request only.
        self.response_once = ResponseView(store, slot=ONCE, portable=self._engine.portable)
        #: The real port once started, else None.
        self.port: int | None = None
        self._running = False
        # While a start is under way: who waits for it to settle (see _stop).
        self._starting: list[Deferred[None]] | None = None
        self._lost: TestServerError | None = None
        self._waits = Waits(store, self._reactor, self._url_or_none)
        #: What went wrong while answering, oldest first (:meth:`check`).
        self.errors = ErrorsView(store, self.request)
        # While running: our "before shutdown" trigger on the reactor.
        self._shutdown_trigger: Any = None
        self._watchers: list[Callable[[Ticket], None]] = []
        self._arrival_watchers: list[Callable[[Ticket], None]] = []
        # Answered events since the server object was made (wait_for).
        self._answers = 0
        # The ids of the WebSocket routes made here (server.websocket()).
        self._websockets: set[int] = set()
        # Events of the WebSocket journal so far, and the waits for the next
        # one: (deferred, timer).
        self._websocket_events = 0
        self._websocket_waiting: list[tuple[Deferred[None], Any]] = []

    @classmethod
    def _reactor_for(cls, reactor: ProcessReactor | None) -> ProcessReactor:
        """The reactor this face serves from: the given one, else the global one."""
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            return global_reactor
        return reactor

    @property
    def pid(self) -> int | None:
        """
        The id of the process that serves: the server process of the
        subprocess engine while it runs; None in the thread engine (this
        process serves) and while stopped.
        """
        return self._engine.pid

    @property
    def address(self) -> str:
        """The interface the server binds."""
        return self.config.address

    # -- in any thread ------------------------------------------------------

    def get_url(self, path: str = "", port: int | None = None, scheme: str | None = None) -> str:
        """
        The URL of ``path`` on this server.

        :param path: appended as given (``'/foo?x=1'``); a missing leading
            slash is added.
        :param port: use this port instead of the server's own.
        :param scheme: ``'ws'`` for a WebSocket URL (``wss`` with TLS);
            None or ``'http'``: ``http`` (``https`` with TLS).
        :raise TestServerError: the server is not running (no port yet).
        """
        if scheme not in (None, "http", "ws"):
            raise TestServerError(f"get_url(scheme) is 'http' or 'ws', not {scheme!r}")
        if port is None:
            if self.port is None:
                raise TestServerError("get_url() needs a started server: call start() first")
            port = self.port
        address = self.config.address
        host = f"[{address}]" if ":" in address else address
        if path and not path.startswith("/"):
            path = "/" + path
        scheme = (scheme or "http") + ("s" if self.config.tls else "")
        return f"{scheme}://{host}:{port}{path or '/'}"

    # -- TLS, in any thread -------------------------------------------------

    def _tls(self, what: str) -> Authority:
        if self._authority is None:
            raise TestServerError(
                f"{what} is for a TLS server: make it with tls=True (or proxy=True: a proxy's "
                "tunnels serve TLS too)"
            )
        return self._authority

    @property
    def ca_path(self) -> str:
        """
        A PEM file holding the certificate of the authority that issues the
        server's certificate: ``requests.get(url, verify=server.ca_path)``.

        :raise TestServerError: the server was made without ``tls=True``.
        """
        return self._tls("ca_path").ca_path

    @property
    def client_cert_path(self) -> str:
        """
        A PEM file holding a client certificate issued by the same authority,
        then its key: ``requests.get(url, cert=server.client_cert_path)``.

        :raise TestServerError: the server was made without ``tls=True``.
        """
        return self._tls("client_cert_path").client_cert_path

    def client_ssl_context(self) -> ssl.SSLContext:
        """
        A new ``ssl.SSLContext`` for clients (urllib, httpx, aiohttp) that
        trusts the server's certificate authority and checks the host name;
        it presents :attr:`client_cert_path` when the server asks for one
        (``client_cert`` given).

        :raise TestServerError: the server was made without ``tls=True``.
        """
        return self._tls("client_ssl_context()").ssl_context(self.config.client_cert is not None)

    def tls_client_policy(self) -> Any:
        """
        A Twisted ``IPolicyForHTTPS`` for ``Agent`` and treq
        (``treq.client.HTTPClient(Agent(reactor, contextFactory=...))``)
        that trusts the server's certificate authority and checks the host
        name; it presents :attr:`client_cert_path` when the server asks for
        one (``client_cert`` given).

        :raise TestServerError: the server was made without ``tls=True``.
        """
        return self._tls("tls_client_policy()").policy(self.config.client_cert is not None)

    def reset(self) -> None:
        """
        Response back to defaults, requests and server-side errors
        forgotten, response_once and the queue emptied, every route removed.
        What :meth:`load_har` was recording is written to its file first,
        and the recording and ``forward()`` end.
        """
        recording, self._recording = self._recording, None
        if recording is not None:
            recording.save(self.requests.to_har())
        self._redacted = ()
        self._engine.store.reset()
        self.request.reset()
        self._websockets.clear()

    def check(self) -> None:
        """
        Fail if anything went wrong while answering: raise
        :class:`~txtestserver.ServerSideError` describing every error of
        :attr:`errors` (with the request that caused it and its traceback),
        then forget them. Does nothing when there is none. It also reports
        each route that can never answer (a route registered after it
        matches every request it matches: the most recent match wins), and,
        in strict mode, the queued answers and ``response_once`` values (of
        the server and of each route) that no request used.

        The pytest fixtures call it after each test, so a server-side error
        fails the test that caused it. pytest shows the error's message, not
        this method's source (``__tracebackhide__``).

        :raise ServerSideError: the server had errors while answering, or (with
            ``strict``) answers were set up and never used, or a route can never
            answer; the message lists them, oldest first.
        """
        __tracebackhide__ = True
        store = self._engine.store
        taken = store.take_errors()
        strict = self.config.strict
        found = store.read(lambda t: t.shadowed() + (t.unused() if strict else []))
        taken += [(None, message, None) for message in found]
        if taken:
            raise ServerSideError(describe_errors(taken), error_dicts(taken, self.request.charset))

    def _url_or_none(self) -> str | None:
        return self.get_url() if self.port is not None else None

    def _decode(self, entry: Entry) -> dict[str, Any]:
        return parse(entry, self.request.charset)

    def route(
        self,
        path: str | re.Pattern[str] | None,
        method: str | None = None,
        *,
        query: Mapping[str, Any] | None = None,
        headers: Mapping[str, Any] | None = None,
        json: Any = None,
        form: Mapping[str, Any] | None = None,
        data: bytes | str | None = None,
        host: str | re.Pattern[str] | None = None,
        scheme: str | None = None,
        port: int | None = None,
        name: str | None = None,
        **more: Any,
    ) -> Route:
        """
        A new route: the answer to the requests that meet all its conditions.

        When several routes match a request, the one registered last answers
        (so a test can override a route a fixture made; ``check()`` reports
        a route that a newer one makes unreachable). A route answers from
        its own queue, ``response_once`` and ``response``, over the
        defaults. A request that matches no route gets the server's own
        answer if the test set one for its method (queued,
        ``response_once`` or ``response``), else ``404`` naming the closest
        route, recorded as a server-side error.

        :param path: the exact path (decoded, without the query), a compiled
            pattern that must match the whole path, or None: any path.
        :param method: any case; None: any method.
        :param query: names and values the query string must include (a list
            for all the values of a repeated name, in order; an int value is
            matched as its digits: ``{"page": 2}`` is ``{"page": "2"}``).
        :param headers: the same for headers; names are case-insensitive.
        :param json: the body parsed as JSON must equal this, by type as
            well as value (``true`` is not ``1``).
        :param form: the same as ``query`` for the fields of an urlencoded or
            multipart body.
        :param data: the body must be exactly this (str: encoded as UTF-8).
        :param host: the host the client meant (its ``Host`` header, or the
            host of an absolute-form target or a proxy tunnel), without the
            port, any case; or a compiled pattern that must match all of it.
            None: any host (the route answers for every host).
        :param scheme: ``'http'`` or ``'https'``: how the client meant to
            reach it (TLS to this server, or inside a proxy tunnel).
        :param port: the port the client meant (the scheme's default when it
            named none).
        :param name: names the route in the journal (``request['route']`` of
            the requests it answers); by default its conditions in a line,
            such as ``'POST /api/token'``.
        :param more: any other registered condition, by its name
            (``CONDITIONS`` in ``_model/routes.py``); an unknown name is an
            error that suggests the closest one.
        :raise TestServerError: a condition can never hold, or has no such
            name (the message says which).
        """
        when = conditions(
            path,
            face=f"{type(self).__name__}.route()",
            method=method,
            query=query,
            headers=headers,
            json=json,
            form=form,
            data=data,
            host=host,
            scheme=scheme,
            port=port,
            **more,
        )
        if name is None:
            name = describe(when)
        elif not isinstance(name, str) or not name:
            raise TestServerError(f"a route name is a non-empty str, not {name!r}")
        route = self._engine.store.update(lambda table: table.add_route(name, when))
        return self._route_view(route, name, when)

    @property
    def routes(self) -> list[Route]:
        """The routes, in registration order."""
        routes = self._engine.store.read(lambda table: table.routes())
        return [self._route_view(*route) for route in routes]

    def load_routes(self, source: str | os.PathLike[str] | Mapping[str, Any]) -> list[Route]:
        """
        Add the routes and answers of a routes document: the whole
        conversation in a file (JSON, or TOML by its suffix), the same one
        ``txtestserver --routes FILE`` serves (:doc:`conversations`).

        :param source: the file's path, or the document as a dict.
        :return: the routes added, in the document's order.
        :raise TestServerError: the document is malformed or a value can
            never work; the message names the entry and the name, and no
            route of the document is left on the server.
        """
        from ._routes_file import load_routes

        return load_routes(self, source if isinstance(source, Mapping) else os.fspath(source))

    # -- record and replay ----------------------------------------------------

    #: The port of the latest run (the HAR export's origin after stop()).
    _last_port: int | None = None
    #: The names forward() redacts in what is written (none before forward()).
    _redacted: tuple[str, ...] = ()
    #: The HAR file being recorded (load_har in a recording mode), or None.
    _recording: Recording | None = None

    def _har_context(self) -> tuple[tuple[str, str, str], list[dict[str, Any]], tuple[str, ...]]:
        """The server's origin, its WebSocket messages and the redacted names, for a HAR."""
        address = self.config.address
        host = f"[{address}]" if ":" in address else address
        port = self.port or self._last_port
        origin = ("https" if self.config.tls else "http", f"{host}:{port}", address)
        messages: list[dict[str, Any]] = []
        if self._websockets:
            journal = self._engine.store.websocket_journal()[1]
            messages = [dict(zip(MESSAGE_KEYS, m[1:], strict=True)) for m in journal]
            messages.sort(key=lambda m: m["time"])
        return origin, messages, self._redacted

    def forward(
        self,
        upstream: str | None = None,
        redact: Sequence[str] = DEFAULT_REDACTED,
        verify: bool | str | os.PathLike[str] = True,
    ) -> None:
        """
        Answer what no route answers from ``upstream`` (:doc:`recording`):
        the request goes there, and its answer comes back to the client as
        it arrives, piece by piece; the journal keeps the exchange whole, so
        ``save_har()`` (or :meth:`load_har` in a recording mode) keeps it.
        It sets ``server.response['forward']`` (and
        ``response['forward_verify']``); ``reset()`` ends it.

        :param upstream: ``'http://host:port'`` (or ``https://``, with a
            path put before the request's). None, in proxy mode
            (``proxy=True``): each request goes to the host the client meant
            (its absolute-form URL, its ``CONNECT`` tunnel's host, over a new
            TLS connection when it meant ``https``, or its SOCKS5 target):
            ``response['forward'] = True``.
        :param redact: the names of headers, query fields and JSON body
            fields whose values a HAR written of this server holds as
            ``REDACTED`` (any case); the default names ``Authorization``,
            ``Cookie``, ``Set-Cookie`` and ``Proxy-Authorization``: to add
            one, ``redact=(*DEFAULT_REDACTED, 'X-Api-Key')``.
        :param verify: how an ``https`` upstream's certificate is checked:
            True, against the system's trust store; the path of a PEM file
            of CA certificates to trust instead (another txtestserver's
            ``ca_path``); False, not at all.
        :raise TestServerError: ``upstream`` is not an http(s) URL, or None
            on a server that is not a proxy; ``redact`` is not a list of
            names; ``verify`` is no bool and no existing file.
        """
        if isinstance(redact, str) or not all(isinstance(name, str) and name for name in redact):
            raise TestServerError(
                f"forward(redact) is a list of header, query or JSON field names, not {redact!r}"
            )
        if upstream is None and not self.config.proxy:
            raise TestServerError(
                "forward() with no upstream sends each request to the host the client meant, "
                "which only a proxy knows: start the server with proxy=True, or give "
                "forward() an upstream URL such as 'http://127.0.0.1:8080'"
            )
        self.response.update(
            {"forward": True if upstream is None else upstream, "forward_verify": verify}
        )
        self._redacted = tuple(redact)

    def save_har(self, path: str | os.PathLike[str] | None = None) -> Path:
        """
        Write the journal (``server.requests.to_har()``) to ``path`` as a
        HAR 1.2 file, for a HAR viewer or :meth:`load_har` (:doc:`recording`).
        With no path, write what :meth:`load_har` is recording to its file
        now (``stop()`` writes it too).

        :param path: the file; its directory is made if needed.
        :return: the path written.
        :raise TestServerError: no path, and nothing is being recorded.
        """
        if path is not None:
            return self.requests.save_har(path)
        if self._recording is None:
            raise TestServerError(
                "save_har() without a path writes what load_har() records, and nothing is "
                "being recorded: give a path, or call load_har(path, mode='once') first"
            )
        return self._recording.save(self.requests.to_har())

    def _save_recording(self, _: object, recording: Recording) -> None:
        """At stop(): what load_har() recorded, into its file."""
        recording.save(self.requests.to_har())

    def load_har(
        self,
        path: str | os.PathLike[str],
        mode: str = "none",
        match_on: Sequence[str] = ("method", "url"),
    ) -> list[Route]:
        """
        Replay a HAR file, or record one (:doc:`recording`): each distinct
        request of the file becomes a route that answers what was recorded
        for it, repeated requests taking the recorded answers in sequence
        (the last one answers every request after it).

        :param path: the HAR file (``save_har()`` writes one; a browser's
            devtools too).
        :param mode: as pytest-recording's record modes. ``'none'``: replay
            only; a request no entry matches is answered ``404`` and
            recorded as a server-side error, which ``check()`` (and the
            pytest fixtures) raise. The others record with
            :meth:`forward` (call it first): ``'once'``, replay the file if
            it exists, else forward every request and record the file;
            ``'new_episodes'``, replay what the file has and forward and
            add the rest; ``'all'``, forward every request and record the
            file anew. What is recorded is written to ``path`` at
            ``stop()``, or earlier with ``save_har()``. A mode that only
            replays stops the forwarding.
        :param match_on: what must be the same for a request to get a
            recorded answer: ``'method'``, ``'url'`` (path and query),
            ``'path'``, ``'query'`` (the recorded fields), ``'body'`` (exact)
            and ``'headers'`` (the recorded ones, less ``Host``,
            ``Content-Length`` and the connection's own).
        :return: the routes added.
        :raise TestServerError: the file cannot be read or is no HAR, an
            unknown mode or matcher, or a recording mode without
            ``forward()``; no route of the file is left behind.
        """
        from ._replay import HAR

        return self._load_recorded(path, mode, match_on, HAR)

    def load_cassette(
        self,
        path: str | os.PathLike[str],
        mode: str = "none",
        match_on: Sequence[str] = ("method", "url"),
    ) -> list[Route]:
        """
        Replay a vcrpy or pytest-recording cassette (YAML, or JSON by its
        suffix), or record one, as :meth:`load_har` does a HAR file, so an
        existing suite's cassettes serve any client through a real socket
        (:doc:`recording`).

        :param path: the cassette.
        :param mode: as :meth:`load_har`'s; a recording mode writes the
            cassette in vcrpy's format.
        :param match_on: as :meth:`load_har`'s.
        :return: the routes added.
        :raise TestServerError: as :meth:`load_har`.
        """
        from ._cassette import CASSETTE

        return self._load_recorded(path, mode, match_on, CASSETTE)

    def _load_recorded(
        self, path: str | os.PathLike[str], mode: str, match_on: Sequence[str], kind: Format
    ) -> list[Route]:
        """:meth:`load_har` and :meth:`load_cassette`, for a ``kind`` of file."""
        from ._replay import Recording, check_replay, load_entries

        match_on = check_replay(mode, match_on)
        forwarding = self.response["forward"] is not None
        name = "load_har" if kind.name == "HAR file" else "load_cassette"
        if mode != "none" and not forwarding:
            raise TestServerError(
                f"{name}(mode={mode!r}) records what the {kind.name} does not have from an "
                "upstream: call server.forward(upstream) first (server.forward() in proxy mode), "
                "or use mode='none'"
            )
        exists = os.path.exists(path)
        if mode == "none" or (mode == "once" and exists):
            routes = load_entries(self, kind.read(path), match_on)
            if forwarding:
                del self.response["forward"]
                if "forward_verify" in self.response:
                    del self.response["forward_verify"]
            self._recording = None
            return routes
        kept = kind.read(path) if mode == "new_episodes" and exists else []
        routes = load_entries(self, kept, match_on) if kept else []
        self._recording = Recording(Path(path), kept, kind)
        return routes

    def _route_view(self, route: int, name: str, when: dict[str, Any]) -> Route:
        view: dict[str, Any] = dict(
            store=self._engine.store,
            route=route,
            name=name,
            when=when,
            portable=self._engine.portable,
            request=self.request,
            waiter=self._route_wait,
            har=self._har_context,
        )
        if route in self._websockets:
            from ._websocket import WebSocketRoute

            path = when.get("path")
            return WebSocketRoute(self, path if isinstance(path, str) else None, **view)
        return Route(**view)

    def websocket(
        self,
        path: str | re.Pattern[str] | None,
        *,
        subprotocols: Sequence[str] = (),
        name: str | None = None,
        query: Mapping[str, Any] | None = None,
        headers: Mapping[str, Any] | None = None,
        auto_pong: bool = True,
        max_message_size: int | None = None,
        fragment: int | None = None,
        compression: bool = False,
        journal_limit: int | None = DEFAULT_JOURNAL_LIMIT,
        **more: Any,
    ) -> WebSocketRoute:
        """
        A new WebSocket route (:doc:`websocket`): a route (with the
        conditions of :meth:`route`, in ``server.routes``, covered by strict
        mode) that accepts the WebSocket handshake and holds a scripted
        conversation, in either engine (its script is plain data in the
        route's ``response['websocket']``).

        :param path: as for :meth:`route`.
        :param subprotocols: the server's subprotocols: the handshake
            chooses the first of them that the client offers (none: no
            subprotocol).
        :param name: as for :meth:`route`.
        :param query: as for :meth:`route`.
        :param headers: as for :meth:`route`.
        :param auto_pong: answer the client's pings (off: leave them unanswered).
        :param max_message_size: a larger received message closes the
            connection with 1009; None: no limit.
        :param fragment: send messages longer than this many bytes in
            fragments of that size; None: whole.
        :param compression: negotiate permessage-deflate (RFC 7692) when
            the client offers it; off by default.
        :param journal_limit: bytes of message data the route's journal
            (``ws.messages``) keeps in all, since the route was made or the
            server started (64 MiB; None: no limit); once they are spent, a
            message keeps what was left (often nothing), with its ``size``
            and ``truncated`` true.
        :param more: any other condition of :meth:`route`.
        :raise TestServerError: a value can never work.
        """
        from ._model.websocket import script
        from ._websocket import WebSocketRoute

        if isinstance(subprotocols, str) or not all(isinstance(p, str) for p in subprotocols):
            raise TestServerError(f"subprotocols is a list of str, not {subprotocols!r}")
        for what, value, least in (
            ("max_message_size", max_message_size, 1),
            ("fragment", fragment, 1),
            ("journal_limit", journal_limit, 0),
        ):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < least
            ):
                raise TestServerError(
                    f"websocket({what}) is an int >= {least} or None, not {value!r}"
                )
        route = self.route(path, "GET", query=query, headers=headers, name=name, **more)
        route.response["websocket"] = script(
            subprotocols,
            bool(auto_pong),
            max_message_size,
            fragment,
            bool(compression),
            journal_limit,
        )
        self._websockets.add(route.id)
        view = self._route_view(route.id, route.name, route.conditions)
        assert isinstance(view, WebSocketRoute)
        return view

    def add_response(
        self,
        response: Response | None = None,
        count: int = 1,
        method: str | None = None,
        **values: Any,
    ) -> None:
        """
        Queue an answer (test_server 0.1's ``add_response``): the next
        ``count`` requests of ``method`` that match no route get it, before
        ``response_once`` and ``response``. Queued answers are served in
        order; one queued for the request's method comes before one for any
        method. A queued answer is whole: a key it does not give has its
        default (not the value in ``response``).

        :param response: a :class:`~txtestserver.Response`; or give the
            response keys as keywords (``code=503, data=b"busy"``).
        :param count: how many requests get it; -1: every one from now on.
        :param method: only requests of this method (any case); None: any.
        :raise TestServerError: a value can never work (the message says why).
        """
        answer = queued_answer(
            response,
            count,
            method,
            values,
            portable=self._engine.portable,
            where="server.add_response()",
        )
        self._engine.store.update(lambda table: table.enqueue(answer))

    def get_request(self) -> RequestDict:
        """
        The latest request, read in one step (test_server 0.1's
        ``get_request()``): a dict whose keys are also attributes
        (``server.get_request().path``).

        :raise TestServerError: no request has arrived since start or reset.
        """
        if self._engine.store.last_request() is None:
            raise TestServerError(
                "get_request(): no request has arrived yet; send one first "
                "(wait_request() waits for it)"
            )
        return self.request.copy()

    # -- in the reactor thread ----------------------------------------------

    def _start(self, keep_alive: bool = False) -> Deferred[None]:
        """Listen; fire once the server accepts connections."""
        if self._running or self._starting:
            raise TestServerError(
                f"the server is already running on port {self.port}: call stop() before start()"
            )
        self._lost = None
        self.config = dataclasses.replace(self.config, keep_alive=keep_alive)
        credentials = None
        if self._authority is not None and self.config.tls:
            credentials = self._authority.issue(self.config.address, self.config.proxy)
        elif self._authority is not None:  # a proxy: its tunnels' certificates only
            credentials = self._authority.proxy_credentials()
        started = self._engine.start(
            self.config,
            self._answered,
            self._engine_lost,
            credentials,
            on_arrived=self._arrived if self._arrival_watchers else None,
            on_websocket=self._websocket_changed,
        )

        def listening(port: int) -> None:
            self._running = True
            self.port = self._last_port = port
            self._shutdown_trigger = self._reactor.addSystemEventTrigger(
                "before", "shutdown", self._stop_at_shutdown
            )

        def settled(result: Any) -> Any:
            waiting, self._starting = self._starting or [], None
            for d in waiting:
                d.callback(None)
            return result

        self._starting = []
        return started.addCallback(listening).addBoth(settled)

    def _stop(self) -> Deferred[None]:
        """
        Stop listening, drop open connections, cancel sleeping answers and
        fail pending ``wait_request`` calls. Stopping a stopped server does
        nothing. If the server died on its own (a subprocess server process),
        stop() releases what is left, then fails with the reason, once.
        """
        from twisted.internet.defer import Deferred, succeed
        from twisted.python.failure import Failure

        if self._starting is not None:
            # stop() during start(): stop once the start has settled.
            settled: Deferred[None] = Deferred()
            self._starting.append(settled)
            return settled.addCallback(lambda _: self._stop())
        lost, self._lost = self._lost, None
        trigger, self._shutdown_trigger = self._shutdown_trigger, None
        if trigger is not None:
            self._reactor.removeSystemEventTrigger(trigger)
        if not self._running and not lost:
            return succeed(None)
        self._running = False
        self.port = None
        self._waits.fail_all(TestServerError("the server was stopped while waiting for a request"))
        stopped = self._engine.stop()
        if self._recording is not None:
            stopped.addCallback(self._save_recording, self._recording)
        if lost is not None:
            stopped.addCallback(lambda _: Failure(TestServerError(*lost.args)))
        return stopped

    def _wait_request(self, timeout: float) -> Deferred[None]:
        """
        Fire as soon as ``request['done']`` is true.

        :param timeout: seconds; then fail with :class:`WaitTimeoutError`.
        :raise TestServerError: ``timeout`` is not a finite number >= 0.
        """
        timeout = check_seconds("wait_request(timeout)", timeout)
        self._check_running("wait_request()")
        return self._waits.start(LatestWait(), timeout)

    def _wait_requests(self, count: int, timeout: float) -> Deferred[list[dict[str, Any]]]:
        """
        Fire with the first ``count`` answered requests (oldest first) once
        there are that many since start or reset.
        """
        count = check_count("wait_requests(count)", count)
        timeout = check_seconds("wait_requests(timeout)", timeout)
        self._check_running("wait_requests()")
        wait = CountWait(f"wait_requests({count})", count, None, self._decode)
        return self._waits.start(wait, timeout)

    def _wait_for(
        self, predicate: Callable[[dict[str, Any]], object], timeout: float
    ) -> Generator[Step, Any, dict[str, Any]]:
        """
        The steps of ``wait_for``, run by the face's :meth:`_run`: the first
        answered request (oldest first, those answered already included) for
        which ``predicate(request)`` is true.

        The predicate runs here, in the caller's thread or task, over the
        journal read there; only the wait for the next answer runs in the
        reactor thread. So a slow predicate delays its own wait only (not
        every server of the process), and the timeout holds: time running
        out while the predicate runs ends in
        :class:`~txtestserver.WaitTimeoutError` too.
        """
        if not callable(predicate):
            raise TestServerError(
                f"wait_for() takes a function of the request dict, not {predicate!r}"
            )
        timeout = check_seconds("wait_for(timeout)", timeout)
        self._check_running("wait_for()")
        name = getattr(predicate, "__name__", None) or repr(predicate)
        scan = PredicateScan(predicate, self._decode)
        store = self._engine.store
        deadline = time.monotonic() + timeout
        while True:
            # Counted before the journal is read: an answer the reading
            # misses is counted after this, and wakes the wait below.
            seen = self._answers
            generation, history = store.journal()
            found = scan.look(generation, history)
            if found is not None:
                return found
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeoutError(
                    f"wait_for({name}): no answered request matched within {timeout} s; "
                    + describe_arrivals(store.history(), self._url_or_none())
                )
            yield remaining, self._next_answer, (seen, remaining)

    def _next_answer(self, seen: int, timeout: float) -> Deferred[None]:
        """
        Fire once more than ``seen`` requests were answered in all, or
        after ``timeout`` seconds (with None either way); fail if the server
        stops or dies meanwhile.
        """
        self._check_running("wait_for()")
        return self._waits.start(NextAnswerWait(seen, lambda: self._answers), timeout)

    def _run(self, what: str, steps: Generator[Step, Any, T]) -> Any:
        """
        Run a wait made of steps (:meth:`_wait_for`): the generator runs in
        the caller's thread or task, and each step it yields, ``(timeout,
        function, args)``, is one :meth:`_call`, whose result (or error) is
        sent back into it. Returns as :meth:`_call` does: the value, a
        Deferred or a coroutine.
        """
        raise NotImplementedError

    def _call(
        self,
        what: str,
        timeout: float,
        function: Callable[..., Any],
        *args: Any,
        undo: Callable[[], Any] | None = None,
    ) -> Any:
        """
        The one hand-over of this face: run ``function(*args)`` in the
        reactor thread and give its result (a Deferred's, waited for) to the
        caller as this face does: block for it, return a Deferred, or return
        a coroutine. Every public method that needs the reactor thread is one
        call of it.

        :param what: names the call in messages (``'start()'``).
        :param timeout: the call's own timeout (a wait's), 0 for none; a face
            that waits adds its ``call_timeout`` on top.
        :param undo: what undoes the call if the caller gives up on it after
            it began (``_stop`` for ``_start``).
        """
        raise NotImplementedError

    def _route_wait(self, route_id: int, name: str, count: int, timeout: float) -> Any:
        """``route.wait(count, timeout)`` in this face."""
        return self._call("route.wait()", timeout, self._wait_route, route_id, name, count, timeout)

    def _wait_route(
        self, route_id: int, name: str, count: int, timeout: float
    ) -> Deferred[list[dict[str, Any]]]:
        """
        Fire with the first ``count`` requests (oldest first) that the route
        ``route_id`` answered, once it has answered that many since start or
        reset.

        :param name: names the route in messages.
        """
        count = check_count("route.wait(count)", count)
        timeout = check_seconds("route.wait(timeout)", timeout)
        self._check_running("route.wait()")
        self._engine.store.read(lambda table: table.queue(route_id))  # removed: raises now

        def want(entry: Entry) -> bool:
            return entry[ROUTE_ID] == route_id

        wait = CountWait(f"route {name!r}: wait(count={count})", count, want, self._decode)
        return self._waits.start(wait, timeout)

    def _stop_at_shutdown(self) -> Deferred[None]:
        """
        The reactor shuts down with this server still running: stop it, so
        that no server outlives the test process and a subprocess server's
        state directory is removed. The blocking face's reactor shuts down
        when the main thread ends (crochet), before ``atexit`` functions
        run; a Twisted program's when it calls ``reactor.stop()``.

        Bounded by :data:`SHUTDOWN_BOUND` and silent: a failure to stop
        cannot be reported to anyone at exit.
        """
        self._shutdown_trigger = None  # fired: removing it now would warn
        stopped = self._stop()
        stopped.addTimeout(SHUTDOWN_BOUND, self._reactor)  # type: ignore[arg-type]
        return stopped.addErrback(lambda _: None)

    # -- engine events --------------------------------------------------------

    def _check_running(self, what: str) -> None:
        if self._lost is not None:
            raise self._lost
        if not self._running:
            raise TestServerError(f"{what} needs a running server: call start() first")

    def _answered(self, ticket: Ticket) -> None:
        """The engine's "answered" event: wake the waits, tell the watchers."""
        self._answers += 1
        if len(self._waits):
            self._waits.answered(ticket)
        for watcher in self._watchers:
            watcher(ticket)

    def _websocket_changed(self) -> None:
        """The engine's "websocket" event: the WebSocket journal grew; wake its waits."""
        self._websocket_events += 1
        waiting, self._websocket_waiting = self._websocket_waiting, []
        for d, timer in waiting:
            if timer.active():
                timer.cancel()
            d.callback(None)

    def _next_websocket_event(self, seen: int, timeout: float) -> Deferred[None]:
        """
        Fire once more than ``seen`` WebSocket journal events happened, or
        after ``timeout`` seconds (the caller looks again either way).
        """
        from twisted.internet.defer import Deferred

        def forget(d: Deferred[None]) -> None:
            for item in self._websocket_waiting:
                if item[0] is d:
                    self._websocket_waiting.remove(item)
                    if item[1].active():
                        item[1].cancel()
                    return

        d: Deferred[None] = Deferred(forget)
        if self._websocket_events > seen:
            d.callback(None)
            return d

        def expired() -> None:
            forget(d)
            d.callback(None)

        self._websocket_waiting.append((d, self._reactor.callLater(timeout, expired)))
        return d

    def _arrived(self, ticket: Ticket) -> None:
        """The engine's "arrived" event: tell the watchers of arrivals."""
        for watcher in self._arrival_watchers:
            watcher(ticket)

    def _watch_arrived(self, watcher: Callable[[Ticket], None]) -> None:
        """
        Call ``watcher(ticket)`` in the reactor thread when a request is
        recorded before its answer is complete (a sleep, a stream, a stall;
        one answered at once is told by ``_watch_answered`` alone). Watch
        before ``start()``: only then does the engine report arrivals.
        """
        self._arrival_watchers.append(watcher)

    def _watch_answered(self, watcher: Callable[[Ticket], None]) -> None:
        """
        Call ``watcher(ticket)`` in the reactor thread after each answered
        request, once the waits are woken: the hook of a face that reacts to
        every answer (the command line prints each request).
        """
        self._watchers.append(watcher)

    def _engine_lost(self, reason: TestServerError) -> None:
        self._lost = reason
        self._running = False
        self._waits.fail_all(reason)
