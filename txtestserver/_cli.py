"""
The ``txtestserver`` command (also ``python -m txtestserver``): a standalone
server for trying an HTTP client by hand.

It answers every request with the response given on the command line and
prints each request it receives. It runs a
:class:`~txtestserver.DeferredTestServer` on the main thread's reactor
(``reactor.run()``, so Twisted's own SIGINT/SIGTERM handlers apply, and no
crochet is involved) and stops the server cleanly before the reactor stops.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import IO, Any

from ._deferred import DeferredTestServer
from ._errors import TestServerError
from ._model.keys import FAULTS
from ._state.store import Ticket
from ._version import __version__

__all__ = ["format_request", "main"]

#: How many bytes of a request body are shown.
PREVIEW_BYTES = 200


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="txtestserver",
        description=(
            "Run a test HTTP server that answers every request with the response given "
            "here and prints each request it receives. Stop it with Ctrl-C."
        ),
    )
    parser.add_argument("--version", action="version", version=f"txtestserver {__version__}")
    parser.add_argument(
        "--address", default="127.0.0.1", help="interface to listen on (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=8080,
        help="port to listen on; 0 picks a free one (default: %(default)s)",
    )
    parser.add_argument("--code", type=int, default=200, help="status code (default: 200)")
    parser.add_argument("--data", default="", help="response body (encoded with --charset)")
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="NAME:VALUE",
        help="a response header; repeat for more",
    )
    parser.add_argument(
        "--cookie",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a cookie to set (Set-Cookie); repeat for more",
    )
    parser.add_argument(
        "--sleep", type=float, default=0.0, help="seconds to wait before each answer"
    )
    parser.add_argument("--charset", default="utf-8", help="charset of the body and Content-Type")
    parser.add_argument(
        "--chunk",
        action="append",
        default=[],
        metavar="TEXT",
        help="stream the body in pieces: one piece (encoded with --charset); repeat for more. "
        "Replaces --data",
    )
    parser.add_argument(
        "--chunk-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="seconds to wait before each --chunk after the first",
    )
    parser.add_argument(
        "--throttle",
        type=float,
        default=None,
        metavar="BYTES_PER_SECOND",
        help="send the body (--data or the --chunk pieces) at this rate",
    )
    parser.add_argument(
        "--fault",
        choices=FAULTS,
        default=None,
        help="misbehave instead of answering: reset the connection, close it empty, "
        "send garbage, a malformed chunk, half of the body (then close or reset), "
        "only the headers (stall), or nothing at all (no_answer)",
    )
    parser.add_argument(
        "--keep-alive",
        action="store_true",
        help="keep connections open between requests (default: close after each)",
    )
    parser.add_argument(
        "--engine",
        choices=("thread", "subprocess"),
        default="thread",
        help="serve from this process or from a child process (default: %(default)s)",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help=(
            "serve HTTPS with a certificate from a certificate authority made at start; "
            "the authority's certificate file is printed (curl --cacert FILE)"
        ),
    )
    parser.add_argument("--http2", action="store_true", help="offer HTTP/2 too (implies --tls)")
    parser.add_argument(
        "--client-cert",
        choices=("required", "optional"),
        help="ask clients for a certificate from that authority (implies --tls); "
        "a client certificate file is printed (curl --cert FILE)",
    )
    return parser


def _pairs(items: list[str], separator: str, what: str) -> list[tuple[str, str]]:
    pairs = []
    for item in items:
        name, found, value = item.partition(separator)
        if not found or not name.strip():
            raise TestServerError(f"{what} {item!r} must look like NAME{separator}VALUE")
        pairs.append((name.strip(), value.strip()))
    return pairs


def _configure(response: Any, args: argparse.Namespace) -> None:
    """Set the response keys from the options; the views check every value."""
    response["code"] = args.code
    response["data"] = args.data
    response["charset"] = args.charset
    response["sleep"] = args.sleep
    response["headers"] = _pairs(args.header, ":", "--header")
    response["cookies"] = _pairs(args.cookie, "=", "--cookie")
    response["chunks"] = args.chunk or None
    response["chunk_delay"] = args.chunk_delay
    response["throttle"] = args.throttle
    response["fault"] = args.fault


def _preview(body: bytes) -> str:
    shown = body[:PREVIEW_BYTES]
    more = f" ... ({len(body) - PREVIEW_BYTES} more bytes)" if len(body) > PREVIEW_BYTES else ""
    return f"{shown!r}{more}"


def format_request(request: dict[str, Any]) -> str:
    """
    One received request as readable text: method, path, args, headers,
    cookies, files and a preview of the body.

    :param request: an item of ``server.requests``.
    """
    lines = [
        f"{time.strftime('%H:%M:%S')} {request['method']} {request['path']} "
        f"from {request['client_ip']}"
    ]
    if request.get("http_version") == "HTTP/2":
        lines[0] += " over HTTP/2"
    if request.get("client_cert"):
        subject = ", ".join(f"{name}={value}" for name, value in request["client_cert"].items())
        lines.append(f"  client certificate: {subject}")
    if request["args"]:
        lines.append("  args:")
        lines.extend(f"    {name} = {value!r}" for name, value in request["args"].items())
    if request["headers"]:
        lines.append("  headers:")
        lines.extend(f"    {name}: {value}" for name, value in request["headers"].items())
    if request["files"]:
        lines.append("  files:")
        for name, uploads in request["files"].items():
            for upload in uploads:
                lines.append(
                    f"    {name}: {upload['filename']!r} ({upload['content_type']}, "
                    f"{len(upload['content'])} bytes)"
                )
    body = request["data"] or b""
    lines.append(f"  body: {len(body)} bytes" + (f": {_preview(body)}" if body else ""))
    if request.get("fault"):
        lines.append(f"  answered with the fault {request['fault']!r}")
    return "\n".join(lines)


class _Printer:
    """
    Prints each request of ``server`` once it is answered (a watcher of its
    answered events): every request recorded since the last call, so one
    whose client gave up is shown with the next.
    """

    def __init__(self, server: DeferredTestServer, out: IO[str]) -> None:
        self._server = server
        self._out = out
        self._printed = 0

    def __call__(self, ticket: Ticket) -> None:
        new = self._server.requests[self._printed :]
        self._printed += len(new)
        for request in new:
            print(format_request(request), file=self._out, flush=True)


def _log_warnings_to_stderr() -> None:
    """Send Twisted's warnings and errors (a failing response, say) to
    stderr, so that stdout shows only the requests."""
    from twisted.logger import (
        FilteringLogObserver,
        LogLevel,
        LogLevelFilterPredicate,
        globalLogBeginner,
        textFileLogObserver,
    )

    observer: Any = FilteringLogObserver(
        textFileLogObserver(sys.stderr),  # type: ignore[arg-type]
        [LogLevelFilterPredicate(defaultLogLevel=LogLevel.warn)],  # type: ignore[list-item]
    )
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)


def _serve(reactor: Any, server: DeferredTestServer, keep_alive: bool) -> int:
    """Start ``server``, run ``reactor`` until a signal stops it, stop ``server``."""
    status = [0]

    def started(_: object) -> None:
        print(f"txtestserver {__version__} listening on {server.get_url()}", flush=True)
        if server.config.tls:
            print(f"CA certificate: {server.ca_path}", flush=True)
        if server.config.client_cert:
            print(f"client certificate and key: {server.client_cert_path}", flush=True)
        print("Press Ctrl-C to stop.", flush=True)
        # The reactor waits for the Deferred of stop() before it shuts down.
        reactor.addSystemEventTrigger("before", "shutdown", server.stop)

    def failed(failure: Any) -> None:
        print(f"txtestserver: {failure.getErrorMessage()}", file=sys.stderr, flush=True)
        status[0] = 1
        reactor.stop()

    reactor.callWhenRunning(
        lambda: server.start(keep_alive=keep_alive).addCallbacks(started, failed)
    )
    reactor.run()
    if status[0] == 0:
        print("txtestserver stopped.", flush=True)
    return status[0]


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run the server until SIGINT (Ctrl-C) or SIGTERM.

    :param argv: the arguments (``sys.argv[1:]`` by default).
    :return: the exit status: 0 after a clean stop, 1 if the server could
        not start; bad options exit with status 2 before anything starts.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    from twisted.internet import reactor

    try:
        server = DeferredTestServer(
            args.address,
            args.port,
            args.engine,
            reactor=reactor,
            tls=args.tls or args.http2 or args.client_cert is not None,
            http2=args.http2,
            client_cert=args.client_cert,
        )
        _configure(server.response, args)
        server._watch_answered(_Printer(server, sys.stdout))
    except TestServerError as e:
        parser.error(str(e))
    _log_warnings_to_stderr()
    return _serve(reactor, server, args.keep_alive)
