"""
The ``txtestserver`` command (also ``python -m txtestserver``): a standalone
server for trying an HTTP client by hand.

It answers with the response given on the command line, or the routes of a
file (``--routes``), and prints each request when it arrives and again when
it is answered (``--format json``: one JSON object per line, for tools). It runs a
:class:`~txtestserver.DeferredTestServer` on the main thread's reactor
(``reactor.run()``, so Twisted's own SIGINT/SIGTERM handlers apply, and no
crochet is involved) and stops the server cleanly before the reactor stops.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import IO, Any

from ._deferred import DeferredTestServer
from ._errors import TestServerError
from ._model.keys import FAULTS
from ._model.record import RequestDict
from ._state.store import Ticket
from ._version import __version__

__all__ = ["FORMATS", "format_request", "main"]

#: How many bytes of a request body are shown.
PREVIEW_BYTES = 200


_EXAMPLES = """\
examples:
  txtestserver --port 8080 --json '{"ok": true}'
      answer every request with that JSON document
  txtestserver --routes conversation.json
      serve a whole conversation: routes, queues, faults (the file format is
      the one server.load_routes() reads; see the docs' conversations page)
  txtestserver --har recorded.har
      answer as a recorded conversation did (a HAR file: server.save_har()
      writes one, so does a browser's devtools)
  txtestserver --code 503 --header 'Retry-After: 1'
      an overloaded service, for trying a client's retries
  txtestserver --fault stall --tls
      an HTTPS server that sends headers and then nothing
  txtestserver --format json | jq .
      one JSON object per line: listening, request, answered, not_answered, stopped
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="txtestserver",
        description=(
            "Run a test HTTP server that answers with the response given here (or the\n"
            "routes of a file) and prints each request when it arrives and again when\n"
            "it is answered. Stop it with Ctrl-C."
        ),
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"txtestserver {__version__}")

    server = parser.add_argument_group("the server")
    server.add_argument(
        "--address", default="127.0.0.1", help="interface to listen on (default: %(default)s)"
    )
    server.add_argument(
        "--port",
        type=int,
        default=8080,
        help="port to listen on; 0 picks a free one (default: %(default)s)",
    )
    server.add_argument(
        "--engine",
        choices=("thread", "subprocess"),
        default="thread",
        help="serve from this process or from a child process (default: %(default)s)",
    )
    server.add_argument(
        "--keep-alive",
        action="store_true",
        help="keep connections open between requests (default: close after each)",
    )
    server.add_argument(
        "--tls",
        action="store_true",
        help=(
            "serve HTTPS with a certificate from a certificate authority made at start; "
            "the authority's certificate file is printed (curl --cacert FILE)"
        ),
    )
    server.add_argument("--http2", action="store_true", help="offer HTTP/2 too (implies --tls)")
    server.add_argument(
        "--client-cert",
        choices=("required", "optional"),
        help="ask clients for a certificate from that authority (implies --tls); "
        "a client certificate file is printed (curl --cert FILE)",
    )
    server.add_argument(
        "--proxy",
        action="store_true",
        help=(
            "be a proxy too, answering for any host (HTTPS through CONNECT, with a "
            "certificate per host from the authority, whose file is printed)"
        ),
    )
    server.add_argument(
        "--proxy-auth",
        metavar="USER:PASSWORD",
        help="the proxy requires these credentials (407 without them); implies --proxy",
    )

    answer = parser.add_argument_group("the answer to every request")
    answer.add_argument("--code", type=int, help="status code (default: 200)")
    answer.add_argument("--data", help="response body (encoded with --charset)")
    answer.add_argument(
        "--json",
        metavar="DOCUMENT",
        help="answer this JSON document (Content-Type: application/json); replaces --data",
    )
    answer.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="NAME:VALUE",
        help="a response header; repeat for more",
    )
    answer.add_argument(
        "--cookie",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a cookie to set (Set-Cookie); repeat for more",
    )
    answer.add_argument("--sleep", type=float, help="seconds to wait before each answer")
    answer.add_argument("--charset", help="charset of the body and Content-Type (default: utf-8)")

    streams = parser.add_argument_group("streams and faults")
    streams.add_argument(
        "--chunk",
        action="append",
        default=[],
        metavar="TEXT",
        help="stream the body in pieces: one piece (encoded with --charset); repeat for more. "
        "Replaces --data",
    )
    streams.add_argument(
        "--chunk-delay",
        type=float,
        metavar="SECONDS",
        help="seconds to wait before each --chunk after the first",
    )
    streams.add_argument(
        "--throttle",
        type=float,
        default=None,
        metavar="BYTES_PER_SECOND",
        help="send the body (--data or the --chunk pieces) at this rate",
    )
    streams.add_argument(
        "--fault",
        choices=FAULTS,
        default=None,
        help="misbehave instead of answering: reset the connection, close it empty, "
        "send garbage, a malformed chunk, half of the body (then close or reset), "
        "only the headers (stall), or nothing at all (no_answer)",
    )

    conversation = parser.add_argument_group("a whole conversation")
    conversation.add_argument(
        "--routes",
        metavar="FILE",
        help="serve the routes, queues and answers of this JSON or TOML file (the format "
        "server.load_routes() reads); the options above answer what no route does",
    )
    conversation.add_argument(
        "--har",
        metavar="FILE",
        help="replay the requests and answers of this HAR file (server.load_har(): each "
        "request answered as recorded, repeats in sequence; see the docs' recording page)",
    )
    conversation.add_argument(
        "--websocket-echo",
        metavar="PATH",
        action="append",
        default=[],
        help="serve a WebSocket route at PATH that sends every message back (repeatable)",
    )

    output = parser.add_argument_group("output")
    output.add_argument(
        "--format",
        choices=sorted(FORMATS),
        default="text",
        help="text for people, or json: one JSON object per line, for tools (default: %(default)s)",
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


#: The option that sets each response key: errors name the option, not the key.
OPTION_OF_KEY = {
    "code": "--code",
    "data": "--data",
    "json": "--json",
    "charset": "--charset",
    "sleep": "--sleep",
    "headers": "--header",
    "cookies": "--cookie",
    "chunks": "--chunk",
    "chunk_delay": "--chunk-delay",
    "throttle": "--throttle",
    "fault": "--fault",
}


def _configure(response: Any, args: argparse.Namespace) -> None:
    """
    Set the response keys of the options given; the views check every
    value, and a refusal names the option (``--code``), not the key.
    """
    given: dict[str, Any] = {
        "code": args.code,
        "data": args.data,
        "charset": args.charset,
        "sleep": args.sleep,
        "headers": _pairs(args.header, ":", "--header") or None,
        "cookies": _pairs(args.cookie, "=", "--cookie") or None,
        "chunks": args.chunk or None,
        "chunk_delay": args.chunk_delay,
        "throttle": args.throttle,
        "fault": args.fault,
    }
    # Only what was given: with --routes, a request no route matches is then
    # a 404 naming the closest route, unless an option says what to answer.
    values = {key: value for key, value in given.items() if value is not None}
    if args.json is not None:
        try:
            values["json"] = json.loads(args.json)
        except ValueError as e:
            raise TestServerError(f"--json {args.json!r} is not a JSON document: {e}") from None
    for key, value in values.items():
        try:
            response[key] = value
        except TestServerError as e:
            option = OPTION_OF_KEY[key]
            message = str(e).replace(f"response[{key!r}]", option)
            if option not in message:
                message = f"{option}: {message}"
            raise TestServerError(message) from None


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


def _json_request(index: int, request: dict[str, Any]) -> dict[str, Any]:
    """One request as a JSON object: what :func:`format_request` shows, as data."""
    body = request["data"] or b""
    return {
        "event": "request",
        "index": index,
        "time": request["time"],
        "method": request["method"],
        "path": request["path"],
        "http_version": request["http_version"],
        "client_ip": request["client_ip"],
        "args": {name: request["args"].getall(name) for name in request["args"]},
        "headers": [[name, value] for name, value in request["headers"].items()],
        "cookies": {name: cookie["value"] for name, cookie in request["cookies"].items()},
        "files": [
            {
                "field": field,
                "filename": upload["filename"],
                "content_type": upload["content_type"],
                "size": len(upload["content"]),
            }
            for field, uploads in request["files"].items()
            for upload in uploads
        ],
        "size": len(body),
        "data": body[:PREVIEW_BYTES].decode("utf-8", "replace"),
        "client_cert": request.get("client_cert"),
    }


def _outcome(request: dict[str, Any]) -> str:
    if request.get("fault"):
        return f"answered with the fault {request['fault']!r}"
    if request["response_code"] is None:
        return "the client left before the answer"
    route = f" by the route {request['route']!r}" if request.get("route") else ""
    return f"answered {request['response_code']}{route}"


def _credentials(text: str | None) -> tuple[str, str] | None:
    """``--proxy-auth USER:PASSWORD`` as ``proxy_auth``."""
    if text is None:
        return None
    user, colon, password = text.partition(":")
    if not colon:
        raise TestServerError(f"--proxy-auth is USER:PASSWORD, not {text!r}")
    return user, password


class TextFormat:
    """What people read: a block per request when it arrives, a line when answered."""

    def listening(self, server: DeferredTestServer) -> list[str]:
        lines = [f"txtestserver {__version__} listening on {server.get_url()}"]
        if server.config.proxy:
            lines.append(f"proxy: {server.proxy_url} (HTTPS_PROXY={server.proxy_url})")
        if server.config.tls or server.config.proxy:
            lines.append(f"CA certificate: {server.ca_path}")
        if server.config.client_cert:
            lines.append(f"client certificate and key: {server.client_cert_path}")
        lines.append("Press Ctrl-C to stop.")
        return lines

    def arrived(self, index: int, request: dict[str, Any]) -> list[str]:
        return [format_request(request)]

    def answered(self, index: int, request: dict[str, Any]) -> list[str]:
        when = time.strftime("%H:%M:%S")
        return [f"{when} {request['method']} {request['path']}: {_outcome(request)}"]

    def not_answered(self, index: int, request: dict[str, Any]) -> list[str]:
        return [f"{request['method']} {request['path']}: not answered when the server stopped"]

    def stopped(self) -> list[str]:
        return ["txtestserver stopped."]


class JSONFormat:
    """What tools read: one JSON object per line, named by its ``event``."""

    def listening(self, server: DeferredTestServer) -> list[str]:
        event: dict[str, Any] = {"event": "listening", "url": server.get_url()}
        if server.config.proxy:
            event["proxy_url"] = server.proxy_url
        if server.config.tls or server.config.proxy:
            event["ca_path"] = server.ca_path
        if server.config.client_cert:
            event["client_cert_path"] = server.client_cert_path
        return [json.dumps(event)]

    def arrived(self, index: int, request: dict[str, Any]) -> list[str]:
        return [json.dumps(_json_request(index, request))]

    def answered(self, index: int, request: dict[str, Any]) -> list[str]:
        event = {
            "event": "answered",
            "index": index,
            "response_code": request["response_code"],
            "route": request.get("route"),
            "fault": request.get("fault"),
        }
        return [json.dumps(event)]

    def not_answered(self, index: int, request: dict[str, Any]) -> list[str]:
        return [json.dumps({"event": "not_answered", "index": index})]

    def stopped(self) -> list[str]:
        return [json.dumps({"event": "stopped"})]


#: The output formats by ``--format`` name.
FORMATS: dict[str, type[TextFormat] | type[JSONFormat]] = {
    "text": TextFormat,
    "json": JSONFormat,
}


class _Printer:
    """
    Prints each request of ``server`` twice: when it arrives (the block of
    what the client sent) and when it is answered (how); at stop, the ones
    never answered (a ``stall``, say). It watches the server's arrived and
    answered events (a request answered at once has only the second: both
    are printed then).
    """

    def __init__(self, server: DeferredTestServer, out: IO[str], output: Any) -> None:
        self._server = server
        self._out = out
        self._format = output
        self._shown = 0  # requests shown as arrived
        self._answered: set[int] = set()

    def _print(self, lines: list[str]) -> None:
        for line in lines:
            print(line, file=self._out, flush=True)

    def listening(self) -> None:
        self._print(self._format.listening(self._server))

    def _show_arrivals(self) -> list[RequestDict]:
        requests = self._server.requests[:]
        for index in range(self._shown, len(requests)):
            self._print(self._format.arrived(index, requests[index]))
        self._shown = len(requests)
        return requests

    def arrived(self, ticket: Ticket) -> None:
        self._show_arrivals()

    def __call__(self, ticket: Ticket) -> None:
        requests = self._show_arrivals()
        index = ticket[1]
        if index < len(requests) and index not in self._answered:
            self._answered.add(index)
            self._print(self._format.answered(index, requests[index]))

    def stopping(self) -> None:
        """Before the server stops: the requests that were never answered."""
        requests = self._show_arrivals()
        for index, request in enumerate(requests):
            if index not in self._answered and not request.get("done"):
                self._print(self._format.not_answered(index, request))

    def stopped(self) -> None:
        self._print(self._format.stopped())


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


def _serve(reactor: Any, server: DeferredTestServer, printer: _Printer, keep_alive: bool) -> int:
    """Start ``server``, run ``reactor`` until a signal stops it, stop ``server``."""
    status = [0]

    def stop() -> Any:
        printer.stopping()
        return server.stop()

    def started(_: object) -> None:
        printer.listening()
        # The reactor waits for the Deferred of stop() before it shuts down.
        reactor.addSystemEventTrigger("before", "shutdown", stop)

    def failed(failure: Any) -> None:
        print(f"txtestserver: {failure.getErrorMessage()}", file=sys.stderr, flush=True)
        status[0] = 1
        reactor.stop()

    reactor.callWhenRunning(
        lambda: server.start(keep_alive=keep_alive).addCallbacks(started, failed)
    )
    reactor.run()
    if status[0] == 0:
        printer.stopped()
    return status[0]


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run the server until SIGINT (Ctrl-C) or SIGTERM.

    :param argv: the arguments (``sys.argv[1:]`` by default).
    :return: the exit status: 0 after a clean stop, 1 if the server could
        not start; bad options (a routes file that cannot serve included)
        exit with status 2 before anything starts.
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
            proxy=args.proxy or args.proxy_auth is not None,
            proxy_auth=_credentials(args.proxy_auth),
        )
        _configure(server.response, args)
        if args.routes is not None:
            server.load_routes(args.routes)
        if args.har is not None:
            server.load_har(args.har)
        for path in args.websocket_echo:
            server.websocket(path, name=f"websocket echo {path}").echo()
    except TestServerError as e:
        parser.error(str(e))
    printer = _Printer(server, sys.stdout, FORMATS[args.format]())
    server._watch_answered(printer)
    server._watch_arrived(printer.arrived)
    _log_warnings_to_stderr()
    return _serve(reactor, server, printer, args.keep_alive)
