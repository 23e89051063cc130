"""
The proxy measurements (``--only proxy``): HTTPS requests on one kept-alive
connection, directly to a ``tls=True`` server and through a ``CONNECT``
tunnel: txtestserver's own (``proxy=True``, the tunnel's TLS ends in the
server), and mitmdump and pproxy in front of a ``tls=True`` server, the
tools users start for this today. mitmdump and pproxy are looked up on
``PATH`` (they may live in a virtual environment of their own: their pinned
dependencies need not match the project's); a missing one is skipped.
Also the first certificate for a new host, and start + stop with
``proxy=True``.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import tempfile
import time
from typing import Any

from .timing import timed_requests

API = "api.example.com"

#: The tools in front of a server: name -> the command, given the port to
#: listen on (a CONNECT proxy that passes TLS through, or intercepts it).
TOOLS = {
    "mitmdump": lambda port, confdir: [
        "mitmdump",
        "--listen-host",
        "127.0.0.1",
        "--listen-port",
        str(port),
        "--ssl-insecure",  # it trusts the upstream server's certificate blindly
        "--set",
        f"confdir={confdir}",
        "-q",
    ],
    "pproxy": lambda port, confdir: ["pproxy", "-l", f"http://127.0.0.1:{port}"],
}


def missing(via: str) -> str | None:
    """Why ``via`` cannot be measured here, or None."""
    if via in TOOLS and shutil.which(via) is None:
        return f"{via} is not on PATH (pip install {'mitmproxy' if via == 'mitmdump' else via})"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{process.args[0]} did not listen on {port} within {seconds} s")


def keepalive(p: dict[str, Any]) -> dict[str, Any]:
    """
    ``p["requests"]`` sequential HTTPS requests on one kept-alive
    http.client connection ``via`` ``'direct'``, ``'connect'``
    (txtestserver's own tunnel), ``'mitmdump'`` or ``'pproxy'``; req/s.
    """
    from txtestserver import TestServer

    via = p["via"]
    proxy = via == "connect"
    server = TestServer(tls=not proxy, proxy=proxy)
    server.start(keep_alive=True)
    server.response["data"] = b"ok"
    tool: subprocess.Popen[bytes] | None = None
    confdir = tempfile.mkdtemp(prefix="bench-proxy-")
    try:
        context = server.client_ssl_context()
        assert server.port is not None
        if via == "direct":
            conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=context)
        elif proxy:
            conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=context)
            conn.set_tunnel(API, 443)
        else:
            port = _free_port()
            tool = subprocess.Popen(
                TOOLS[via](port, confdir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            _wait_listening(port, tool)
            if via == "mitmdump":  # it intercepts: the client trusts its authority
                ca = os.path.join(confdir, "mitmproxy-ca-cert.pem")
                deadline = time.monotonic() + 30
                while not os.path.exists(ca) and time.monotonic() < deadline:
                    time.sleep(0.05)
                context = ssl.create_default_context(cafile=ca)
            conn = http.client.HTTPSConnection("127.0.0.1", port, context=context)
            conn.set_tunnel("127.0.0.1", server.port)

        n = p["requests"]
        elapsed = timed_requests(conn, "/path?x=1", n)
        conn.close()
    finally:
        if tool is not None:
            tool.terminate()
            tool.wait(30)
        server.stop()
        shutil.rmtree(confdir, ignore_errors=True)
    return {"value": n / elapsed}


def first_certificate(p: dict[str, Any]) -> dict[str, Any]:
    """
    A new host's first HTTPS request through the tunnel (its certificate
    issued then) and a known host's, each on a new connection; the
    difference, in ms, is what issuing costs.
    """
    from txtestserver import TestServer

    new: list[float] = []
    known: list[float] = []
    with TestServer(proxy=True) as server:
        context = server.client_ssl_context()
        assert server.port is not None

        def get(host: str) -> float:
            conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=context)
            conn.set_tunnel(host, 443)
            t = time.perf_counter()
            conn.request("GET", "/")
            conn.getresponse().read()
            elapsed = time.perf_counter() - t
            conn.close()
            return elapsed

        get("warm-up.example")
        for i in range(p["hosts"]):
            new.append(get(f"host{i}.example"))
            known.append(get(f"host{i}.example"))
    return {
        "value": (statistics.median(new) - statistics.median(known)) * 1000,
        "new_ms": statistics.median(new) * 1000,
        "known_ms": statistics.median(known) * 1000,
    }


def cycle(p: dict[str, Any]) -> dict[str, Any]:
    """Make + start + stop, repeated, with ``proxy`` or not; ms per cycle."""
    from txtestserver import TestServer

    times = []
    for i in range(p["cycles"] + 1):
        t = time.perf_counter()
        server = TestServer(proxy=p["proxy"])
        server.start()
        server.stop()
        if i:  # the first includes one-time set-up
            times.append(time.perf_counter() - t)
    return {"value": statistics.median(times) * 1000}


def proxy(name: str, p: dict[str, Any]) -> dict[str, Any]:
    """The worker: ``p["what"]`` is ``keepalive``, ``first_certificate`` or ``cycle``."""
    return {"keepalive": keepalive, "first_certificate": first_certificate, "cycle": cycle}[
        p["what"]
    ](p)
