"""
The stress run: ``python -m stress`` from the repository root (``--quick``
for a short smoke run, ``--help`` for the sizes).

For each engine it runs, against servers on 127.0.0.1 only:

1. **fuzz**: seeded random malformed requests (:mod:`stress.fuzz`) from
   several threads; after each batch the server must have recorded exactly
   the requests it answered 200, and must answer and record a normal request.
2. **faults**: clients that leave mid-body (FIN and RST) or mid-sleep,
   half-close, never read an 8 MiB answer, or send a few bytes and stall,
   while normal clients are served.
3. **streams and answer faults**: many clients at once get streamed answers
   (``chunks`` with ``chunk_delay``, ``throttle``), then each
   ``response['fault']`` in turn, then streams cut by ``stop()``; every
   request must end as asked and be recorded once (with its fault), and
   afterwards the server must hold no connection and no pending call.
4. **load**: 50 clients x 2,000 requests each on kept-alive connections
   while a watcher reads ``server.request`` (it must always be one whole
   request), then 50 x 200 on new connections; every request must be
   answered and recorded exactly once.

It prints, per engine and phase: cases tried, requests sent and answered,
errors, lost requests, errors the server logged, and the server's resident
memory at start and end. The exit code is 1 if any error, lost request or
logged error was seen. Sizes and the time limit are bounded by options.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import queue
import socket
import statistics
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests._h2 import closed, rapid_reset
from tests._leaks import held
from tests._load import LoadResult, Watcher, lost_requests, run_load
from tests._raw import (
    body,
    check_serving,
    closed_unanswered,
    connect,
    exchange,
    is_wrong_protocol_error,
    read_all,
    server_log_errors,
    status,
    statuses,
)
from txtestserver import TestServer
from txtestserver._http.h2 import RAPID_RESET, RESET_BY_CLIENT
from txtestserver._model.keys import FAULTS

from . import fuzz

ADDRESS = "127.0.0.1"
ENGINES = ["thread", "subprocess"]


# -- figures ----------------------------------------------------------------------------------


@dataclass
class Figures:
    """What one phase did against one engine."""

    engine: str
    phase: str
    cases: int = 0
    sent: int = 0
    answered: int = 0
    rejected: int = 0
    closed: int = 0
    errors: int = 0
    lost: int = 0
    logged: int = 0
    seconds: float = 0.0
    rss_start: int | None = None
    rss_end: int | None = None
    extra: dict[str, str] = field(default_factory=dict)
    details: list[str] = field(default_factory=list)

    def error(self, text: str) -> None:
        self.errors += 1
        if len(self.details) < 10:
            self.details.append(text)


class LogCounter:
    """
    Counts errors logged through twisted.logger in this process (thread
    engine), except those the server logs on purpose for a client that opens
    with a TLS ClientHello or the HTTP/2 preface (the fuzz cases with such a
    prefix), which are answered by closing the connection.
    """

    def __init__(self) -> None:
        from twisted.logger import LogLevel, formatEvent, globalLogPublisher

        self.count = 0
        self.texts: list[str] = []

        def observe(event: dict[str, Any]) -> None:
            level = event.get("log_level")
            if (
                event.get("log_failure") is not None
                or (level is not None and level >= LogLevel.error)
            ) and not is_wrong_protocol_error(formatEvent(event)):
                self.count += 1
                if len(self.texts) < 5:
                    self.texts.append(formatEvent(event))

        globalLogPublisher.addObserver(observe)


LOG = LogCounter()


def logged_errors(server: TestServer) -> int:
    """Errors the server logged so far (its own log file for a server process)."""
    if server.engine == "thread":
        return LOG.count
    return len(server_log_errors(server))


def server_pid(server: TestServer) -> int | None:
    """The pid of the process that serves (the engine's record of its server process)."""
    if server.engine == "thread":
        return os.getpid()
    running = getattr(server._engine, "_server", None)
    pid = getattr(getattr(running, "_process", None), "pid", None)
    return pid if isinstance(pid, int) else None


def rss_kib(server: TestServer) -> int | None:
    """Resident memory of the serving process in KiB (None where unknown)."""
    pid = server_pid(server)
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


@contextmanager
def measured(figures: Figures, server: TestServer) -> Iterator[None]:
    """Time a phase; take its memory and logged-error figures."""
    logged = logged_errors(server)
    if figures.rss_start is None:
        figures.rss_start = rss_kib(server)
    began = time.monotonic()
    try:
        yield
    except Exception as e:  # a phase that breaks is an error, not a crash of the run
        figures.error(f"phase aborted: {e!r}")
    finally:
        figures.seconds += time.monotonic() - began
        figures.rss_end = rss_kib(server)
        figures.logged += logged_errors(server) - logged


def serving(figures: Figures, server: TestServer) -> None:
    """The server answers and records a normal request."""
    figures.sent += 1
    try:
        check_serving(server)
    except (AssertionError, OSError) as e:
        figures.error(f"normal request failed: {e!r}")
    else:
        figures.answered += 1


def start(engine: str, keep_alive: bool = False) -> TestServer:
    server = TestServer(address=ADDRESS, engine=engine, call_timeout=30)
    server.start(keep_alive=keep_alive)
    assert server.address == ADDRESS
    server.response["data"] = b"ok"
    return server


def parallel(threads: int, work: Callable[[int], None]) -> None:
    """Run ``work(i)`` in ``threads`` threads; wait for all."""
    pool = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()


# -- phase 1: fuzz ------------------------------------------------------------------------------


def phase_fuzz(
    server: TestServer, figures: Figures, count: int, seed: int, deadline: float
) -> None:
    cases = fuzz.generate(seed, count)  # made as they are sent: memory stays flat
    batch_size, threads = 400, 8
    lock = threading.Lock()
    for first in range(0, count, batch_size):
        if time.monotonic() > deadline:
            figures.error(f"time limit: stopped after {first} of {count} cases")
            return
        batch: queue.SimpleQueue[fuzz.Case] = queue.SimpleQueue()
        for case in itertools.islice(cases, batch_size):
            batch.put(case)
        before = len(server.requests)
        answered_200 = 0

        def worker(_: int, batch: queue.SimpleQueue[fuzz.Case] = batch) -> None:
            nonlocal answered_200
            while True:
                try:
                    case = batch.get_nowait()
                except queue.Empty:
                    return
                try:
                    answer = exchange(server.port or 0, pieces=fuzz.pieces(case), timeout=15)
                except OSError as e:
                    with lock:
                        figures.cases += 1
                        figures.error(f"{e!r} for {case.mutations} {case.data[:80]!r}")
                    continue
                code = status(answer)
                # A kept-alive connection answers what follows a request too.
                codes = [c for c in statuses(answer) if c != 100]
                with lock:
                    figures.cases += 1
                    answered_200 += codes.count(200)
                    if not all(c == 200 or 400 <= c < 500 for c in codes):
                        figures.error(f"answers {codes} to {case.mutations} {case.data[:80]!r}")
                    elif code == 200 and body(answer)[:7] in (b"", b"ok", b"okHTTP/", b"HTTP/1."):
                        figures.answered += 1
                    elif code is not None and 400 <= code < 500:
                        figures.rejected += 1
                    elif code is None and closed_unanswered(answer):
                        figures.closed += 1
                    else:
                        figures.error(
                            f"answer {answer[:60]!r} to {case.mutations} {case.data[:80]!r}"
                        )

        parallel(threads, worker)
        recorded = len(server.requests) - before
        if recorded < answered_200:
            figures.lost += answered_200 - recorded
        elif recorded > answered_200:
            figures.error(f"{recorded - answered_200} requests recorded but not answered 200")
        serving(figures, server)
    figures.sent += figures.cases


# -- phase 2: client faults -------------------------------------------------------------------

SLEEP = 30.0


def abort(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def pending_sleeps(server: Any) -> int:
    """
    The thread engine's pending sleep and stream timers (deferLater calls
    and stream steps due within SLEEP).
    """
    from twisted.internet.defer import Deferred
    from twisted.internet.threads import blockingCallFromThread

    from txtestserver._http.answers.streams import _Pacer

    def count() -> int:
        now = reactor.seconds()
        return sum(
            1
            for call in reactor.getDelayedCalls()
            if isinstance(getattr(call.func, "__self__", None), (Deferred, _Pacer))
            and call.getTime() <= now + SLEEP + 1
        )

    reactor = server._reactor  # the private reactor that serves the server
    found: int = blockingCallFromThread(reactor, count)
    return found


def wait_until(condition: Callable[[], bool], seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def phase_faults(server: TestServer, figures: Figures, scale: int) -> None:
    port = server.port or 0
    lock = threading.Lock()

    # Clients that leave mid-body, by FIN and by RST.
    leavers = 100 * scale

    def leave_mid_body(i: int) -> None:
        for n in range(leavers // 10):
            sock = connect(port)
            sock.sendall(b"POST /mid-body HTTP/1.1\r\nContent-Length: 100000\r\n\r\n" + b"x" * 999)
            if n % 2:
                abort(sock)
            else:
                sock.close()

    before = len(server.requests)
    parallel(10, leave_mid_body)
    figures.cases += leavers
    figures.sent += leavers
    figures.closed += leavers
    serving(figures, server)
    if len(server.requests) != before + 1:
        figures.error(f"mid-body leavers recorded: {len(server.requests) - before - 1}")

    # Clients that leave during a sleep.
    sleepers = 20 * scale
    server.response["delete.sleep"] = SLEEP
    socks = []
    before = len(server.requests)
    for i in range(sleepers):
        sock = connect(port)
        sock.sendall(b"DELETE /sleepy/%d HTTP/1.1\r\n\r\n" % i)
        socks.append(sock)
    if not wait_until(lambda: len(server.requests) == before + sleepers):
        figures.error("the sleeping requests were not all recorded")
    if server.engine == "thread" and pending_sleeps(server) != sleepers:
        figures.error(f"{pending_sleeps(server)} sleep timers for {sleepers} sleepers")
    for i, sock in enumerate(socks):
        abort(sock) if i % 2 else sock.close()
    if server.engine == "thread" and not wait_until(lambda: pending_sleeps(server) == 0):
        figures.error(f"{pending_sleeps(server)} sleep timers left after the clients left")
    del server.response["delete.sleep"]
    figures.cases += sleepers
    figures.sent += sleepers
    figures.closed += sleepers
    serving(figures, server)

    # Clients that half-close after their request: all answered in full.
    half_closers = 100 * scale
    before = len(server.requests)

    def half_close(i: int) -> None:
        for _ in range(half_closers // 10):
            with connect(port) as sock:
                sock.sendall(b"GET /half HTTP/1.1\r\n\r\n")
                sock.shutdown(socket.SHUT_WR)
                answer = read_all(sock)
            with lock:
                if status(answer) == 200 and body(answer) == b"ok":
                    figures.answered += 1
                else:
                    figures.error(f"half-closed client got {answer[:60]!r}")

    parallel(10, half_close)
    figures.cases += half_closers
    figures.sent += half_closers
    if len(server.requests) - before != half_closers:
        figures.lost += half_closers - (len(server.requests) - before)

    # Clients that never read an 8 MiB answer, and clients that stall
    # mid-request, while normal clients are served.
    server.response["put.data"] = b"x" * (8 * 1024 * 1024)
    stalled = []
    for _ in range(2 * scale):
        sock = connect(port)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"PUT /never-read HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
        stalled.append(sock)
    for _ in range(5 * scale):
        sock = connect(port)
        sock.sendall(b"GET /stall")
        stalled.append(sock)
    result = run_load(server, 5, 10 * scale, expected=b"ok", method="GET")
    figures.cases += len(stalled) + result.sent
    figures.sent += len(stalled) + result.sent
    figures.answered += result.answered
    for text in result.errors:
        figures.error(f"served during stalls: {text}")
    for sock in stalled:
        sock.close()
    del server.response["put.data"]
    serving(figures, server)


# -- phase 3: streams and answer faults --------------------------------------------------

#: Faults that leave the request unanswered until the client gives up.
HANGING = ("stall", "no_answer")


def nothing_held(figures: Figures, server: TestServer, after: str) -> None:
    """The server holds no connection and no pending call (10 s to settle)."""
    deadline = time.monotonic() + 10
    while True:
        found = held(server)
        if found == {"connections": 0, "pending": []}:
            return
        if time.monotonic() > deadline:
            figures.error(f"after {after} the server still holds {found}")
            return
        time.sleep(0.01)


def count_load(
    figures: Figures, server: TestServer, result: LoadResult, clients: int, per_client: int
) -> None:
    figures.cases += result.sent
    figures.sent += result.sent
    figures.answered += result.answered
    for text in result.errors:
        figures.error(text)
    wrong = lost_requests(server, clients, per_client)
    figures.lost += len(wrong)
    if wrong:
        figures.details.append(f"not recorded exactly once: {wrong[:10]}")


def phase_answers(server: TestServer, figures: Figures, clients: int, scale: int) -> None:
    """Streams, every fault, and streams cut by stop(), under concurrent clients."""
    per_client = 20 * scale
    for name, keys in (
        ("chunks", {"chunks": [b"o", b"k"], "chunk_delay": 0.001}),
        ("throttle", {"data": b"ok", "throttle": 400.0}),
    ):
        server.reset()
        for key, value in keys.items():
            server.response[key] = value
        result = run_load(server, clients, per_client, expected=b"ok")
        count_load(figures, server, result, clients, per_client)
        nothing_held(figures, server, f"{clients} x {per_client} {name} streams")
    faulted = 0
    for fault in FAULTS:
        server.reset()
        server.response["data"] = b"ok"
        server.response["fault"] = fault
        hanging = fault in HANGING
        each = 2 * scale if hanging else 5 * scale
        timeout = 0.3 if hanging else 60.0
        result = run_load(server, clients, each, expected=None, timeout=timeout)
        count_load(figures, server, result, clients, each)
        faulted += result.answered
        if ("TimeoutError" in result.raised) is not hanging:
            figures.error(f"{fault}: clients raised {result.raised}")
        wrong = {r["fault"] for r in server.requests[:]} - {fault}
        if wrong:
            figures.error(f"{fault}: requests recorded with the fault {wrong}")
        del server.response["fault"]
        nothing_held(figures, server, f"{clients} x {each} {fault}")
    figures.extra["faults met"] = str(faulted)
    server.reset()
    server.response["data"] = b"ok"
    serving(figures, server)


def phase_stop_mid_stream(engine: str, figures: Figures, streams: int) -> None:
    """``streams`` clients mid-stream when stop() comes: all closed, nothing pending."""
    server = start(engine, keep_alive=True)
    server.response["chunks"] = [b"first", b"never"]
    server.response["chunk_delay"] = SLEEP
    figures.rss_start = rss_kib(server)
    logged = logged_errors(server)
    began = time.monotonic()
    socks = []
    try:
        for i in range(streams):
            sock = connect(server.port or 0)
            sock.sendall(b"GET /stream/%d HTTP/1.1\r\n\r\n" % i)
            socks.append(sock)
        for sock in socks:
            received = b""
            while b"5\r\nfirst\r\n" not in received:
                piece = sock.recv(4096)
                if not piece:
                    figures.error(f"a stream closed early: {received[:60]!r}")
                    break
                received += piece
        if server.engine == "thread" and pending_sleeps(server) != streams:
            figures.error(f"{pending_sleeps(server)} stream timers for {streams} streams")
        figures.rss_end = rss_kib(server)
        figures.logged += logged_errors(server) - logged  # (a server process's log goes with it)
        stopping = time.monotonic()
        server.stop()
        figures.extra["stop ms"] = f"{(time.monotonic() - stopping) * 1000:.0f}"
        if server.engine == "thread" and pending_sleeps(server):
            figures.error(f"{pending_sleeps(server)} stream timers left after stop()")
        for sock in socks:
            sock.settimeout(30)
            if b"never" in read_all(sock):
                figures.error("a stream went on after stop()")
        figures.cases += streams
        figures.sent += streams
        figures.closed += streams
        if len(server.requests) != streams:
            figures.lost += abs(streams - len(server.requests))
    except Exception as e:
        figures.error(f"phase aborted: {e!r}")
    finally:
        for sock in socks:
            sock.close()
        server.stop()
        figures.seconds += time.monotonic() - began


# -- phase 3b: the HTTP/2 rapid reset ---------------------------------------------------------


def phase_rapid_reset(engine: str, figures: Figures, floods: int, streams: int) -> None:
    """
    ``floods`` connections of the rapid-reset pattern (CVE-2023-44487),
    ``streams`` each: every request the server recorded is marked reset by
    the client, each flood is one server-side error, a normal HTTP/2
    request is still answered, and ``stop()`` is prompt.
    """
    server = TestServer(address=ADDRESS, engine=engine, tls=True, http2=True, call_timeout=30)
    server.start()
    server.response["data"] = b"ok"
    figures.rss_start = rss_kib(server)
    logged = logged_errors(server)
    began = time.monotonic()
    try:
        for _ in range(floods):
            figures.cases += 1
            figures.sent += streams
            if closed(rapid_reset(server, streams)):
                figures.closed += 1
        recorded = list(server.requests)
        figures.answered += len(recorded)
        wrong = [r["path"] for r in recorded if r["aborted"] != RESET_BY_CLIENT]
        if wrong:
            figures.error(f"requests not recorded as reset by the client: {wrong[:5]}")
        messages = [error["message"] for error in server.errors]
        if messages != [RAPID_RESET] * figures.closed:
            figures.error(f"server-side errors: {messages[:3]} for {figures.closed} floods")
        server.errors.clear()
        with httpx.Client(http2=True, verify=server.client_ssl_context(), timeout=10) as client:
            answer = client.get(server.get_url("/after"))
        if (answer.http_version, answer.content) != ("HTTP/2", b"ok"):
            figures.error(f"a normal request after the floods: {answer!r}")
        figures.rss_end = rss_kib(server)
        figures.logged += logged_errors(server) - logged
        stopping = time.monotonic()
        server.stop()
        stopped = time.monotonic() - stopping
        figures.extra["stop ms"] = f"{stopped * 1000:.0f}"
        if stopped > 1:
            figures.error(f"stop() took {stopped:.1f} s")
    except Exception as e:
        figures.error(f"phase aborted: {e!r}")
    finally:
        server.stop()
        figures.seconds += time.monotonic() - began


# -- phase 4: load -----------------------------------------------------------------------------


def phase_load(
    server: TestServer, figures: Figures, clients: int, per_client: int, watch: bool
) -> None:
    server.reset()
    server.response["data"] = b"ok"
    watcher = Watcher(server) if watch else None
    if watcher:
        watcher.start()
    try:
        result = run_load(server, clients, per_client, expected=b"ok")
    finally:
        if watcher:
            watcher.stop()
    figures.cases += result.sent
    figures.sent += result.sent
    figures.answered += result.answered
    for text in result.errors:
        figures.error(text)
    wrong = lost_requests(server, clients, per_client)
    figures.lost += len(wrong)
    if wrong:
        figures.details.append(f"not recorded exactly once: {wrong[:10]}")
    if watcher:
        figures.extra["watcher reads"] = str(watcher.reads)
        for text in watcher.failures[:10]:
            figures.error(f"watcher saw a mixed request: {text}")
        figures.errors += max(0, len(watcher.failures) - 10)
    latencies = sorted(result.latencies)
    figures.extra["req/s"] = f"{result.answered / result.seconds:.0f}"
    figures.extra["p50 ms"] = f"{statistics.median(latencies) * 1000:.2f}"
    figures.extra["p99 ms"] = f"{latencies[int(len(latencies) * 0.99)] * 1000:.2f}"


# -- the run ----------------------------------------------------------------------------------


def run_engine(engine: str, args: argparse.Namespace, deadline: float) -> list[Figures]:
    scale = 1 if args.quick else 10
    rows = []

    fuzzing = Figures(engine, "fuzz keep-alive")
    server = start(engine, keep_alive=True)
    with measured(fuzzing, server):
        phase_fuzz(server, fuzzing, args.fuzz_cases // 2, args.seed + 1, deadline)
    server.stop()
    rows.append(fuzzing)

    fuzzing = Figures(engine, "fuzz")
    faults = Figures(engine, "faults")
    server = start(engine)
    with measured(fuzzing, server):
        phase_fuzz(server, fuzzing, args.fuzz_cases, args.seed, deadline)
    faults.rss_start = fuzzing.rss_end
    with measured(faults, server):
        phase_faults(server, faults, scale)
    began = time.monotonic()
    server.stop()
    faults.extra["stop ms"] = f"{(time.monotonic() - began) * 1000:.0f}"
    rows += [fuzzing, faults]

    answers = Figures(engine, "streams and answer faults")
    server = start(engine, keep_alive=True)
    with measured(answers, server):
        phase_answers(server, answers, args.clients, scale)
    server.stop()
    rows.append(answers)

    cut = Figures(engine, "streams cut by stop()")
    phase_stop_mid_stream(engine, cut, 20 * scale)
    rows.append(cut)

    flood = Figures(engine, "HTTP/2 rapid reset")
    phase_rapid_reset(engine, flood, 2 * scale, 2000 * scale)
    rows.append(flood)

    kept = Figures(engine, f"load {args.clients}x{args.requests} keep-alive")
    server = start(engine, keep_alive=True)
    with measured(kept, server):
        phase_load(server, kept, args.clients, args.requests, watch=True)
    began = time.monotonic()
    server.stop()
    kept.extra["stop ms"] = f"{(time.monotonic() - began) * 1000:.0f}"
    rows.append(kept)

    per_client = max(1, args.requests // 10)
    fresh = Figures(engine, f"load {args.clients}x{per_client} new connections")
    server = start(engine)
    with measured(fresh, server):
        phase_load(server, fresh, args.clients, per_client, watch=False)
    server.stop()
    rows.append(fresh)
    return rows


def kib(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 1024:.0f} MiB"


def report(rows: list[Figures], args: argparse.Namespace, seconds: float) -> None:
    print(
        f"txtestserver stress run: python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"seed {args.seed}, {seconds:.0f} s"
    )
    header = (
        f"{'engine':<11}{'phase':<34}{'cases':>8}{'sent':>8}{'answered':>9}{'4xx':>7}"
        f"{'closed':>7}{'errors':>7}{'lost':>5}{'logged':>7}{'RSS start':>10}{'RSS end':>9}"
        f"{'secs':>6}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.engine:<11}{r.phase:<34}{r.cases:>8}{r.sent:>8}{r.answered:>9}{r.rejected:>7}"
            f"{r.closed:>7}{r.errors:>7}{r.lost:>5}{r.logged:>7}{kib(r.rss_start):>10}"
            f"{kib(r.rss_end):>9}{r.seconds:>6.0f}"
        )
    for r in rows:
        if r.extra:
            extras = ", ".join(f"{k} {v}" for k, v in r.extra.items())
            print(f"  {r.engine} {r.phase}: {extras}")
    for r in rows:
        for text in r.details:
            print(f"  ! {r.engine} {r.phase}: {text}")
    for text in LOG.texts:
        print(f"  ! logged: {text}")
    totals = [sum(getattr(r, k) for r in rows) for k in ("errors", "lost", "logged")]
    print(f"total: {totals[0]} errors, {totals[1]} lost requests, {totals[2]} logged errors")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stress", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--engine", choices=ENGINES, action="append", help="default: both")
    parser.add_argument("--fuzz-cases", type=int, help="malformed inputs per engine (20000)")
    parser.add_argument("--clients", type=int, help="concurrent load clients (50)")
    parser.add_argument("--requests", type=int, help="requests per load client (2000)")
    parser.add_argument("--seed", type=int, default=20261124, help="fuzz seed")
    parser.add_argument("--max-seconds", type=float, default=1800, help="time limit (1800)")
    args = parser.parse_args(argv)
    defaults = (500, 10, 100) if args.quick else (20000, 50, 2000)
    args.fuzz_cases = args.fuzz_cases or defaults[0]
    args.clients = args.clients or defaults[1]
    args.requests = args.requests or defaults[2]
    began = time.monotonic()
    deadline = began + args.max_seconds
    rows: list[Figures] = []
    for engine in args.engine or ENGINES:
        rows += run_engine(engine, args, deadline)
    report(rows, args, time.monotonic() - began)
    bad = any(r.errors or r.lost or r.logged for r in rows)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
