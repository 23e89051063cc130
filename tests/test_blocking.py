"""
The blocking API (``TestServer``) end to end, with urllib and requests as
clients over real sockets. Every test runs against every engine.
"""

from __future__ import annotations

import hashlib
import http.client
import socket
import threading
import time
import tracemalloc
import urllib.error
from typing import Any
from urllib.request import Request, urlopen

import pytest
import requests
from twisted.logger import formatEvent

from txtestserver import ServerSideError, TestServer, TestServerError, WaitTimeoutError


def fetch(url: str, data: bytes | None = None, method: str | None = None, **headers: str):
    """urlopen that returns (status, headers, body) for error statuses too."""
    try:
        response = urlopen(Request(url, data=data, method=method, headers=headers), timeout=10)
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()
    with response:
        return response.status, response.headers, response.read()


# -- the example of the issue ------------------------------------------------------


def test_readme_example(engine: str) -> None:
    server = TestServer(engine=engine)
    server.start()
    try:
        server.response["data"] = b"response-data"
        req = urlopen(server.get_url(), b"request-data")
        assert req.read() == b"response-data"
        assert server.request["data"] == b"request-data"
    finally:
        server.stop()


def test_context_manager(engine: str) -> None:
    with TestServer(engine=engine) as server:
        assert fetch(server.get_url())[0] == 200
        url = server.get_url()
    with pytest.raises(urllib.error.URLError):
        urlopen(url, timeout=5)


# -- server.request ------------------------------------------------------------------


def test_request_before_any_request(server: TestServer) -> None:
    assert server.request["done"] is False
    assert server.request["path"] is None
    assert server.request["method"] is None
    assert server.request["data"] is None
    assert dict(server.request["args"]) == {}
    assert dict(server.request["headers"]) == {}
    assert server.request["cookies"] == {}
    assert server.request["files"] == {}
    assert server.request["client_ip"] is None
    assert server.request["charset"] == "utf-8"


def test_request_path_and_args(server: TestServer) -> None:
    fetch(server.get_url("/some/path?a=1&b=two+words&c=%D0%B9&a=2"))
    assert server.request["path"] == "/some/path"
    args = server.request["args"]
    assert args["b"] == "two words"
    assert args["c"] == "й"
    assert args["a"] == "1"
    assert args.getall("a") == ["1", "2"]


def test_request_path_is_percent_decoded(server: TestServer) -> None:
    fetch(server.get_url("/caf%C3%A9/x%20y"))
    assert server.request["path"] == "/café/x y"


def test_request_form_fields_join_args(server: TestServer) -> None:
    requests.post(server.get_url("/?q=1"), data={"field": "value", "name": "Имя"}, timeout=10)
    args = server.request["args"]
    assert args["q"] == "1"
    assert args["field"] == "value"
    assert args["name"] == "Имя"


def test_request_headers_case_insensitive_and_repeated(server: TestServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.putrequest("GET", "/")
    conn.putheader("X-Foo", "bar")
    conn.putheader("X-Multi", "one")
    conn.putheader("X-Multi", "two")
    conn.endheaders()
    conn.getresponse().read()
    conn.close()
    headers = server.request["headers"]
    assert headers["x-foo"] == "bar"
    assert headers["X-FOO"] == "bar"
    assert headers.getall("x-multi") == ["one", "two"]


def test_request_cookies(server: TestServer) -> None:
    requests.get(server.get_url(), cookies={"session": "abc", "lang": "en"}, timeout=10)
    cookies = server.request["cookies"]
    assert cookies["session"]["value"] == "abc"
    assert cookies["session"]["name"] == "session"
    assert cookies["lang"]["value"] == "en"


@pytest.mark.parametrize(
    "method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "BREW"]
)
def test_request_method(server: TestServer, method: str) -> None:
    server.response["data"] = b"body"
    response = requests.request(method, server.get_url(), timeout=10)
    assert response.status_code == 200
    assert server.request["method"] == method
    assert response.content == (b"" if method == "HEAD" else b"body")


def test_request_method_is_upper_case(server: TestServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"get / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 200")
    assert server.request["method"] == "GET"


def test_request_data_is_raw_bytes(server: TestServer) -> None:
    body = bytes(range(256)) * 10
    fetch(server.get_url(), data=body, method="PUT", **{"Content-Type": "application/octet-stream"})
    assert server.request["data"] == body


def test_request_large_body(server: TestServer) -> None:
    body = b"x" * (3 * 1024 * 1024)
    assert requests.post(server.get_url(), data=body, timeout=30).status_code == 200
    assert server.request["data"] == body


@pytest.mark.parametrize("size", [10, 3 * 1024 * 1024])
def test_callback_reads_the_whole_body_from_request_content(server: TestServer, size: int) -> None:
    body = bytes(range(256)) * (size // 256) + b"end"
    server.response["callback"] = "tests.callbacks:body_digest"
    answer = requests.post(server.get_url(), data=body, timeout=30)
    assert answer.content == hashlib.sha256(body).hexdigest().encode()
    assert server.request["data"] == body


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
def test_request_files(server: TestServer, method: str) -> None:
    requests.request(
        method,
        server.get_url(),
        files={
            "upload": ("report.csv", b"a,b\n1,2\n", "text/csv"),
            "blob": ("data.bin", bytes(range(256)), "application/octet-stream"),
        },
        data={"title": "Report"},
        timeout=10,
    )
    files = server.request["files"]
    assert files["upload"] == [
        {
            "name": "upload",
            "filename": "report.csv",
            "content_type": "text/csv",
            "content": b"a,b\n1,2\n",
        }
    ]
    assert files["blob"][0]["content"] == bytes(range(256))
    assert server.request["args"]["title"] == "Report"


def test_request_repeated_file_field(server: TestServer) -> None:
    requests.post(
        server.get_url(),
        files=[("f", ("one.txt", b"1")), ("f", ("two.txt", b"2"))],
        timeout=10,
    )
    assert [f["filename"] for f in server.request["files"]["f"]] == ["one.txt", "two.txt"]


def test_request_client_ip(server: TestServer) -> None:
    fetch(server.get_url())
    assert server.request["client_ip"] == "127.0.0.1"


def test_request_done(server: TestServer) -> None:
    assert server.request["done"] is False
    fetch(server.get_url())
    assert server.request["done"] is True


def test_request_charset_decodes_path_and_args(server: TestServer) -> None:
    server.request["charset"] = "cp1251"
    fetch(server.get_url("/%EF%F3%F2%FC?q=%E9"))
    assert server.request["path"] == "/путь"
    assert server.request["args"]["q"] == "й"


def test_request_charset_validation(server: TestServer) -> None:
    with pytest.raises(TestServerError, match="unknown charset"):
        server.request["charset"] = "no-such-charset"
    with pytest.raises(TestServerError, match="only request\\['charset'\\]"):
        server.request["path"] = "/x"


def test_requests_history(server: TestServer) -> None:
    for i in range(5):
        fetch(server.get_url(f"/{i}"))
    assert len(server.requests) == 5
    assert [r["path"] for r in server.requests] == ["/0", "/1", "/2", "/3", "/4"]
    server.reset()
    assert len(server.requests) == 0


def test_requests_iteration_is_one_snapshot(server: TestServer) -> None:
    for i in range(5):
        fetch(server.get_url(f"/{i}"))
    iterator = iter(server.requests)
    assert next(iterator)["path"] == "/0"
    fetch(server.get_url("/later"))  # recorded after the iteration began
    assert [r["path"] for r in iterator] == ["/1", "/2", "/3", "/4"]
    assert [r["path"] for r in reversed(server.requests)][:2] == ["/later", "/4"]
    assert server.requests[-1]["path"] == "/later"
    assert [r["path"] for r in server.requests[-2:]] == ["/4", "/later"]
    with pytest.raises(IndexError):
        server.requests[6]


def test_requests_are_read_without_copying_the_history(
    server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    ``len``, ``[-1]`` and iteration cost the same however many requests
    are recorded: they neither copy the history (measured by what they
    allocate) nor read it again per item (each copy made iterating 100,000
    requests take 18 s).
    """
    store = server._engine.store
    count = 20_000
    fetch(server.get_url("/0"))
    entry = store.history()[0]
    for i in range(1, count):  # copies of a real entry: 20,000 requests would take long
        store.record((entry[0], b"/%d" % i, *entry[2:]))
    assert len(server.requests) == count  # the test process has read them all once

    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        assert len(server.requests) == count
        assert server.requests[-1]["path"] == f"/{count - 1}"
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < count * 8 // 2, f"{peak} bytes: the history was copied"

    reads = []
    history = type(store).history
    monkeypatch.setattr(type(store), "history", lambda self: reads.append(1) or history(self))
    assert sum(1 for _ in server.requests) == count
    assert len(reads) == 1


# -- server.response -----------------------------------------------------------------


def test_response_defaults(server: TestServer) -> None:
    status, headers, body = fetch(server.get_url())
    assert status == 200
    assert body == b""
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Server"].startswith("txtestserver/")
    assert server.response["code"] == 200
    assert server.response["sleep"] == 0


def test_response_code(server: TestServer) -> None:
    server.response["code"] = 404
    server.response["data"] = b"missing"
    assert fetch(server.get_url())[::2] == (404, b"missing")


@pytest.mark.parametrize("code", [200.0, "200", 99, 600, True, None])
def test_response_code_validation(server: TestServer, code: object) -> None:
    with pytest.raises(TestServerError, match="int from 100 to 599"):
        server.response["code"] = code


def test_response_data_str_uses_charset(server: TestServer) -> None:
    server.response["data"] = "привет"
    server.response["charset"] = "cp1251"
    _, headers, body = fetch(server.get_url())
    assert body == "привет".encode("cp1251")
    assert headers["Content-Type"] == "text/html; charset=cp1251"


def test_response_data_validation(server: TestServer) -> None:
    with pytest.raises(TestServerError, match="must be bytes, str or an iterator"):
        server.response["data"] = 123


def test_response_headers_list_with_repeats(server: TestServer) -> None:
    server.response["headers"] = [("X-One", "1"), ("X-Rep", "a"), ("X-Rep", "b")]
    _, headers, _ = fetch(server.get_url())
    assert headers["X-One"] == "1"
    assert headers.get_all("X-Rep") == ["a", "b"]


def test_response_headers_dict_overrides_defaults(server: TestServer) -> None:
    server.response["headers"] = {"Content-Type": "application/json", "Server": "nginx"}
    _, headers, _ = fetch(server.get_url())
    assert headers.get_all("Content-Type") == ["application/json"]
    assert headers["Server"] == "nginx"


def test_response_headers_validation(server: TestServer) -> None:
    with pytest.raises(TestServerError, match="line break"):
        server.response["headers"] = [("X-Bad", "a\r\nInjected: yes")]
    with pytest.raises(TestServerError, match="list of \\(name, value\\) pairs"):
        server.response["headers"] = 5


BAD_NAMES = ["X-\u00dc", "X-\u20ac", "X-(a)", "X\x00", "X\x7f", "X\x0b", "X Y", "X:Y", "X;", ""]


def test_header_and_cookie_names_must_be_http_tokens(server: TestServer) -> None:
    """
    Refused when set, naming the character (Twisted refused them only when
    writing the answer: a generic 500, the request neither recorded nor
    done, the connection left open).
    """
    for key in ["headers", "cookies", "post.headers"]:
        for name in BAD_NAMES:
            for response in (server.response, server.response_once):
                with pytest.raises(TestServerError, match=r"HTTP tokens|cannot be empty") as e:
                    response[key] = [(name, "v")]
                if name:
                    bad = next(c for c in name if not (c.isascii() and (c.isalnum() or c == "-")))
                    assert repr(bad) in str(e.value), (name, str(e.value))
    assert fetch(server.get_url("/after"))[0] == 200
    assert server.request["done"] is True


def test_header_names_take_every_token_character(server: TestServer) -> None:
    name = "X-Az09!#$%&'*+-.^_`|~"
    server.response["headers"] = {name: "v"}
    assert fetch(server.get_url())[1][name] == "v"


def test_response_cookies(server: TestServer) -> None:
    server.response["cookies"] = [("session", "xyz"), ("lang", "ru")]
    response = requests.get(server.get_url(), timeout=10)
    assert response.cookies["session"] == "xyz"
    assert response.cookies["lang"] == "ru"
    assert response.raw.headers.getlist("Set-Cookie") == ["session=xyz", "lang=ru"]


@pytest.mark.parametrize(
    ("callback", "status", "body"),
    [
        ("tests.callbacks:returns_bytes", 200, b"callback:/cb?x=1"),
        ("tests.callbacks:writes_itself", 201, b"written by the callback"),
        ("tests.callbacks:returns_deferred", 200, b"later:GET"),
    ],
)
def test_response_callback_import_string(
    server: TestServer, callback: str, status: int, body: bytes
) -> None:
    server.response["callback"] = callback
    assert fetch(server.get_url("/cb?x=1"))[::2] == (status, body)
    assert server.request["done"] is True


def test_response_callback_that_raises_gives_500_and_keeps_serving(server: TestServer) -> None:
    server.response["callback"] = "tests.callbacks:raises"
    status, _, body = fetch(server.get_url())
    assert status == 500
    assert b"ValueError" in body and b"callback exploded" in body
    server.response["callback"] = None
    server.response["data"] = b"fine"
    assert fetch(server.get_url())[::2] == (200, b"fine")


@pytest.mark.parametrize(
    "callback, named",
    [
        ("raises_keyboard_interrupt", b"KeyboardInterrupt: pressed in a callback"),
        ("raises_system_exit", b"SystemExit: 3"),
        ("fails_later_with_keyboard_interrupt", b"KeyboardInterrupt: pressed later"),
    ],
)
def test_response_callback_raising_base_exception_is_answered_500_and_done(
    server: TestServer, callback: str, named: bytes
) -> None:
    """KeyboardInterrupt and SystemExit in a callback are failures like any other."""
    server.response["callback"] = f"tests.callbacks:{callback}"
    status, _, body = fetch(server.get_url("/interrupted"))
    assert status == 500
    assert named in body
    server.wait_request(10)
    assert server.request["path"] == "/interrupted"
    assert server.request["done"] is True
    assert len(server.errors) == 1
    with pytest.raises(ServerSideError, match=named.decode()):
        server.check()
    server.response["callback"] = None
    server.response["data"] = b"fine"
    assert fetch(server.get_url())[::2] == (200, b"fine")


def test_response_callback_error_is_logged_in_the_test_process(
    engine: str, logged_errors: list[dict[str, Any]]
) -> None:
    server = TestServer(engine=engine)
    server.start()
    server.response["callback"] = "tests.callbacks:raises"
    assert fetch(server.get_url())[0] == 500
    server.stop()  # the server process's output has all arrived once it is stopped
    texts = [
        formatEvent(e) + (e["log_failure"].getTraceback() if e.get("log_failure") else "")
        for e in logged_errors
    ]
    assert any("callback exploded" in text for text in texts), texts
    logged_errors.clear()


def test_response_callback_bad_return_value(server: TestServer) -> None:
    server.response["callback"] = "tests.callbacks:returns_number"
    status, _, body = fetch(server.get_url())
    assert status == 500
    assert b"returned int" in body


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no-colon", "must have the form"),
        ("tests.no_such_module:f", "cannot import callback"),
        ("tests.callbacks:missing", "cannot import callback"),
        ("tests.callbacks:not_callable", "is not callable"),
        (42, "must be a callable"),
    ],
)
def test_response_callback_validation(server: TestServer, spec: object, message: str) -> None:
    with pytest.raises(TestServerError, match=message):
        server.response["callback"] = spec


def test_response_sleep_delays_and_others_are_served_meanwhile(server: TestServer) -> None:
    server.response["get.sleep"] = 0.5
    slow_result: list[bytes] = []
    slow = threading.Thread(target=lambda: slow_result.append(fetch(server.get_url("/slow"))[2]))
    started = time.monotonic()
    slow.start()
    # The slow request is recorded as soon as it arrives, before its answer.
    deadline = time.monotonic() + 5
    while server.request["path"] != "/slow" and time.monotonic() < deadline:
        time.sleep(0.005)
    assert server.request["path"] == "/slow"
    assert server.request["done"] is False
    # A POST is not delayed, even while the GET sleeps.
    assert fetch(server.get_url("/fast"), data=b"x")[0] == 200
    assert time.monotonic() - started < 0.5
    slow.join(10)
    assert slow_result == [b""]
    assert time.monotonic() - started >= 0.5


def test_response_sleep_overlaps(server: TestServer) -> None:
    server.response["sleep"] = 0.3
    threads = [threading.Thread(target=fetch, args=(server.get_url(),)) for _ in range(8)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    # Eight sleeping answers in parallel take about one sleep, not eight.
    assert time.monotonic() - started < 0.3 * 8
    assert len(server.requests) == 8


@pytest.mark.parametrize("value", [-1, "1", None, True])
def test_response_sleep_validation(server: TestServer, value: object) -> None:
    with pytest.raises(TestServerError, match="seconds >= 0"):
        server.response["sleep"] = value


def test_response_charset_validation(server: TestServer) -> None:
    with pytest.raises(TestServerError, match="unknown charset"):
        server.response["charset"] = "klingon"


def test_response_unknown_key(server: TestServer) -> None:
    with pytest.raises(TestServerError, match="unknown response key 'dat'"):
        server.response["dat"] = b"x"
    with pytest.raises(TestServerError, match="must be an HTTP method"):
        server.response["p-st.data"] = b"x"


def test_response_method_specific_keys(server: TestServer) -> None:
    server.response["data"] = b"plain"
    server.response["post.data"] = b"for POST"
    server.response["GET.code"] = 202
    assert fetch(server.get_url())[::2] == (202, b"plain")
    assert fetch(server.get_url(), data=b"x")[::2] == (200, b"for POST")
    assert fetch(server.get_url(), method="PUT", data=b"x")[::2] == (200, b"plain")


def test_response_once(server: TestServer) -> None:
    server.response["data"] = b"always"
    server.response_once["data"] = b"once"
    server.response_once["code"] = 201
    assert fetch(server.get_url())[::2] == (201, b"once")
    assert fetch(server.get_url())[::2] == (200, b"always")
    assert dict(server.response_once) == {}


def test_response_once_method_specific(server: TestServer) -> None:
    server.response["data"] = b"always"
    server.response_once["post.data"] = b"first POST"
    assert fetch(server.get_url())[2] == b"always"  # a GET does not use it up
    assert fetch(server.get_url(), data=b"x")[2] == b"first POST"
    assert fetch(server.get_url(), data=b"x")[2] == b"always"


def test_response_once_is_not_inherited_by_reads(server: TestServer) -> None:
    with pytest.raises(KeyError):
        server.response_once["data"]
    server.response_once["data"] = b"x"
    assert server.response_once["data"] == b"x"
    del server.response_once["data"]
    assert "data" not in server.response_once


def test_reset(server: TestServer) -> None:
    server.response["data"] = b"x"
    server.response["code"] = 500
    server.response_once["data"] = b"y"
    server.request["charset"] = "cp1251"
    fetch(server.get_url())
    server.reset()
    assert server.request["done"] is False
    assert server.request["path"] is None
    assert server.request["charset"] == "utf-8"
    assert dict(server.response) == {}
    assert dict(server.response_once) == {}
    assert fetch(server.get_url())[::2] == (200, b"")


# -- wait_request, get_url, keep-alive -------------------------------------------------


def test_wait_request_returns_when_answered(server: TestServer) -> None:
    server.response["sleep"] = 0.2
    thread = threading.Thread(target=fetch, args=(server.get_url(),))
    thread.start()
    server.wait_request(10)
    assert server.request["done"] is True
    thread.join(10)


def wait_for_path(server: TestServer, path: str) -> None:
    deadline = time.monotonic() + 10
    while server.request["path"] != path:
        assert time.monotonic() < deadline, f"no request for {path} arrived"
        time.sleep(0.005)


def test_done_and_wait_request_follow_the_latest_request(server: TestServer) -> None:
    fetch(server.get_url("/first"))
    assert server.request["done"] is True
    server.response_once["sleep"] = 0.1  # /old
    server.response["sleep"] = 0.5  # /new
    threads = []
    for path in ("/old", "/new"):
        threads.append(threading.Thread(target=fetch, args=(server.get_url(path),)))
        threads[-1].start()
        wait_for_path(server, path)
        assert server.request["done"] is False  # not the flag of the previous request
    # /old is answered first: it must not end the wait for /new.
    server.wait_request(10)
    assert server.request["path"] == "/new"
    assert server.request["done"] is True
    for thread in threads:
        thread.join(10)


def test_wait_request_returns_at_once_when_done(server: TestServer) -> None:
    fetch(server.get_url())
    server.wait_request(0.01)


def test_wait_request_timeout(server: TestServer) -> None:
    with pytest.raises(WaitTimeoutError, match=r"no request was answered within 0\.1 s"):
        server.wait_request(0.1)


BAD_TIMEOUTS = [float("inf"), float("nan"), -1, -0.5, "1", None, True]


@pytest.mark.parametrize("timeout", BAD_TIMEOUTS, ids=repr)
def test_wait_request_timeout_is_checked(server: TestServer, timeout: object) -> None:
    with pytest.raises(TestServerError, match=r"wait_request\(timeout\) must be a finite number"):
        server.wait_request(timeout)  # type: ignore[arg-type]
    fetch(server.get_url())  # the server is unharmed
    server.wait_request(1)


@pytest.mark.parametrize("timeout", BAD_TIMEOUTS, ids=repr)
def test_call_timeout_is_checked(timeout: object) -> None:
    with pytest.raises(TestServerError, match="call_timeout must be a finite number"):
        TestServer(call_timeout=timeout)  # type: ignore[arg-type]


def test_get_url(server: TestServer) -> None:
    assert server.get_url() == f"http://127.0.0.1:{server.port}/"
    assert server.get_url("/a?b=1") == f"http://127.0.0.1:{server.port}/a?b=1"
    assert server.get_url("a") == f"http://127.0.0.1:{server.port}/a"
    assert server.get_url(port=1234) == "http://127.0.0.1:1234/"


def test_ipv6(engine: str) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    with TestServer(address="::1", engine=engine) as server:
        assert server.get_url() == f"http://[::1]:{server.port}/"
        server.response["data"] = b"six"
        assert fetch(server.get_url())[2] == b"six"
        assert server.request["client_ip"] == "::1"


def test_connections_close_by_default(server: TestServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/")
    response = conn.getresponse()
    assert response.getheader("Connection") == "close"
    response.read()
    assert response.will_close
    conn.close()


def test_keep_alive(engine: str) -> None:
    server = TestServer(engine=engine)
    server.start(keep_alive=True)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        sockets = set()
        for i in range(5):
            conn.request("GET", f"/{i}")
            response = conn.getresponse()
            response.read()
            assert not response.will_close
            sockets.add(id(conn.sock))
        assert len(sockets) == 1
        assert len(server.requests) == 5
        conn.close()
    finally:
        server.stop()


# -- lifecycle ----------------------------------------------------------------------


def test_start_twice_is_an_error(server: TestServer) -> None:
    with pytest.raises(TestServerError, match="already running"):
        server.start()


def test_stop_twice_is_harmless(engine: str) -> None:
    server = TestServer(engine=engine)
    server.start()
    server.stop()
    server.stop()


def test_use_after_stop(engine: str) -> None:
    server = TestServer(engine=engine)
    server.start()
    server.stop()
    with pytest.raises(TestServerError, match="call start\\(\\) first"):
        server.get_url()
    with pytest.raises(TestServerError, match="call start\\(\\) first"):
        server.wait_request(0.1)


def test_port_in_use(engine: str) -> None:
    with TestServer(engine=engine) as first:
        second = TestServer(port=first.port, engine=engine)
        with pytest.raises(TestServerError, match=f"port {first.port}"):
            second.start()
        second.stop()


def test_stop_drops_open_connections_and_frees_the_port(engine: str) -> None:
    server = TestServer(engine=engine)
    server.start(keep_alive=True)
    port = server.port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as idle:
        idle.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while not answer.endswith(b"\r\n\r\n"):  # the empty body ends with the headers
            answer += idle.recv(1000)
        assert answer.startswith(b"HTTP/1.1 200")
        server.stop()
        try:  # the server dropped the kept-alive connection (a reset or an EOF)
            assert idle.recv(100) == b""
        except ConnectionResetError:
            pass
    # The port is free again at once.
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))


def test_stop_during_sleep(engine: str) -> None:
    server = TestServer(engine=engine)
    server.start()
    server.response["sleep"] = 30
    errors: list[BaseException] = []

    def client() -> None:
        try:
            urlopen(server.get_url(), timeout=20).read()
        except Exception as e:
            errors.append(e)

    thread = threading.Thread(target=client)
    thread.start()
    deadline = time.monotonic() + 5
    while server.request["path"] is None and time.monotonic() < deadline:
        time.sleep(0.005)
    server.stop()
    thread.join(10)
    assert not thread.is_alive()
    assert errors  # the client saw its connection dropped, not a 30 s wait


def test_many_servers_at_once(engine: str) -> None:
    servers = [TestServer(engine=engine) for _ in range(5)]
    for s in servers:
        s.start()
    try:
        for i, s in enumerate(servers):
            s.response["data"] = str(i)
        for i, s in enumerate(servers):
            assert fetch(s.get_url())[2] == str(i).encode()
    finally:
        for s in servers:
            s.stop()


def test_start_stop_cycles() -> None:
    for _ in range(200):
        server = TestServer()
        server.start()
        server.stop()


@pytest.mark.parametrize("call", ["stop", "start", "wait_request"])
def test_blocking_call_from_the_serving_thread_is_a_clear_error(call: str) -> None:
    """A callback runs in the thread that serves: blocking there would deadlock."""
    errors: list[BaseException] = []

    def callback(request: object) -> bytes:
        try:
            getattr(server, call)()
        except TestServerError as e:
            errors.append(e)
        return b"answered"

    with TestServer() as server:
        server.response["callback"] = callback
        assert fetch(server.get_url())[::2] == (200, b"answered")
        assert fetch(server.get_url())[::2] == (200, b"answered")  # still serving
    assert len(errors) == 2
    assert f"TestServer.{call}() blocks" in str(errors[0])
    assert "thread of the reactor that serves" in str(errors[0])


def test_unknown_engine() -> None:
    with pytest.raises(TestServerError, match="unknown engine"):
        TestServer(engine="fork")


def test_blocking_api_works_with_warnings_as_errors() -> None:
    """No warnings filter needed: the blocking hop avoids crochet's isSet() warning."""
    import subprocess
    import sys

    script = (
        "from urllib.request import urlopen\n"
        "from txtestserver import TestServer\n"
        "with TestServer() as s:\n"
        "    s.response['data'] = b'ok'\n"
        "    assert urlopen(s.get_url()).read() == b'ok'\n"
        "    s.wait_request(5)\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


# -- thread engine only: values that cannot cross a process ------------------------------


def test_response_data_iterator() -> None:
    with TestServer() as server:
        server.response["data"] = iter([b"first", "second"])
        assert fetch(server.get_url())[::2] == (200, b"first")
        assert fetch(server.get_url())[::2] == (200, b"second")
        # Exhausted: 405 with test_server's body (issue 12; it was a 500 before).
        status, _, body = fetch(server.get_url())
        assert status == 405
        assert body == b"data generator has no more data"
        # The server keeps serving once the test gives it something else.
        server.response["data"] = b"plain"
        assert fetch(server.get_url())[::2] == (200, b"plain")


def test_answer_errors_are_logged_readably(logged_errors: list[dict[str, Any]]) -> None:
    """The log line names the error, also through the stdlib logging bridge (crochet's)."""
    import logging

    from twisted.python import log as legacy_log

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("txtestserver-test-bridge")
    logger.addHandler(handler)
    logger.propagate = False
    observer = legacy_log.PythonLoggingObserver("txtestserver-test-bridge")
    legacy_log.addObserver(observer.emit)
    try:
        with TestServer() as server:
            server.response["data"] = iter([42])  # an exhausted one is a 405 now, not an error
            assert fetch(server.get_url())[0] == 500
    finally:
        legacy_log.removeObserver(observer.emit)
        logger.removeHandler(handler)
    texts = [record.getMessage() for record in records]
    assert any("iterator gave int" in text for text in texts), texts
    logged_errors.clear()


def test_response_callback_function() -> None:
    seen: list[str] = []

    def callback(request: object) -> bytes:
        seen.append(threading.current_thread().name)
        return b"from a function"

    with TestServer() as server:
        server.response["post.callback"] = callback
        assert fetch(server.get_url(), data=b"x")[::2] == (200, b"from a function")
        assert fetch(server.get_url())[::2] == (200, b"")
        assert len(seen) == 1


def test_no_access_log() -> None:
    """Serving writes no access-log line (it would cost throughput and flood test logs)."""
    from twisted.logger import globalLogPublisher

    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    try:
        with TestServer() as server:
            assert fetch(server.get_url("/access-log-probe"))[0] == 200
            server.wait_request(5)
    finally:
        globalLogPublisher.removeObserver(events.append)
    texts = [formatEvent(event) or "" for event in events]
    assert not [text for text in texts if "access-log-probe" in text], texts
