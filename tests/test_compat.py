"""
What users of test_server keep when they change the import: the 2017
callback methods and generator callbacks, and test_server 0.1's
``Response``/``add_response``/``get_request`` and attribute access. Every
test runs against every engine (callbacks as import strings, so they cross
to the server process).
"""

from __future__ import annotations

import threading
import urllib.error
from typing import Any
from urllib.request import urlopen

import pytest
import requests

from txtestserver import Response, TestServer, TestServerError


def get(server: TestServer, path: str = "/", **kwargs: Any) -> requests.Response:
    return requests.get(server.get_url(path), timeout=10, **kwargs)


# -- test_server 2017: what a callback receives -------------------------------------------


def test_handler_methods(server: TestServer) -> None:
    server.response["headers"] = {"X-Replaced": "by the test"}
    server.response["callback"] = "tests.callbacks:handler_methods"
    answer = get(server)
    assert answer.status_code == 201
    assert answer.reason == "Made"
    assert answer.headers["Content-Type"] == "text/plain"  # replaces the default
    assert answer.headers["X-Replaced"] == "by the handler"
    assert answer.raw.headers.getlist("X-Step") == ["one", "two"]
    assert answer.content == "written, ещё, and finished".encode()


def test_handler_write_dict_is_json(server: TestServer) -> None:
    server.response["callback"] = "tests.callbacks:writes_a_dict"
    answer = get(server)
    assert answer.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert answer.json() == {"written": "as json"}


def test_twisted_request_methods_still_work(server: TestServer) -> None:
    server.response["callback"] = "tests.callbacks:writes_itself"
    answer = get(server)
    assert (answer.status_code, answer.content) == (201, b"written by the callback")


def test_generator_callback_sleeps_without_blocking_the_server(server: TestServer) -> None:
    slow = server.route("/slow")
    slow.response["callback"] = "tests.callbacks:sleeps_in_steps"
    server.response["data"] = b"fast"
    results: list[requests.Response] = []
    thread = threading.Thread(target=lambda: results.append(get(server, "/slow")))
    thread.start()
    try:
        # The slow request is recorded once its callback runs; while its
        # generator sleeps, another request is answered.
        for _ in range(500):
            if len(slow.requests) == 1:
                break
            threading.Event().wait(0.01)
        assert len(slow.requests) == 1
        assert get(server, "/fast").content == b"fast"
        assert thread.is_alive()  # still sleeping
    finally:
        thread.join(10)
    assert results[0].content == b"before the pause, after the pause"
    assert results[0].status_code == 202


def test_generator_callback_return_value_is_the_body(server: TestServer) -> None:
    server.response["callback"] = "tests.callbacks:sleeps_then_returns"
    server.response["code"] = 203
    answer = get(server)
    assert (answer.status_code, answer.content) == (203, b"returned after a pause")
    assert answer.headers["Content-Length"] == str(len(b"returned after a pause"))


def test_generator_callback_that_yields_something_else_is_a_500(server: TestServer) -> None:
    server.response["callback"] = "tests.callbacks:yields_nonsense"
    answer = get(server)
    assert answer.status_code == 500
    assert b"yield {'type': 'sleep', 'time': seconds}" in answer.content
    assert get(server).status_code == 500  # and the server keeps serving


def test_generator_callback_that_raises_is_a_500(server: TestServer) -> None:
    server.response["callback"] = "tests.callbacks:raises_after_a_pause"
    answer = get(server)
    assert answer.status_code == 500
    assert b"RuntimeError: after the pause" in answer.content


def test_exhausted_data_iterator_answers_405() -> None:
    # Thread engine only: an iterator cannot cross to a server process.
    with TestServer() as server:
        server.response["headers"] = {"X-Kept": "1"}
        server.response["data"] = (item for item in [b"only"])
        assert urlopen(server.get_url()).read() == b"only"
        with pytest.raises(urllib.error.HTTPError) as error:
            urlopen(server.get_url())
        assert error.value.code == 405
        assert error.value.read() == b"data generator has no more data"
        assert error.value.headers["X-Kept"] == "1"


def test_generator_callback_function_object() -> None:
    def callback(handler: Any) -> Any:
        handler.set_status(299)
        yield {"type": "sleep", "time": 0.01}
        handler.finish("done")

    with TestServer() as server:
        server.response["callback"] = callback
        answer = get(server)
        assert (answer.status_code, answer.content) == (299, b"done")


# -- test_server 0.1: Response, add_response, get_request ---------------------------------


def test_add_response_queue_in_order_each_count_times(server: TestServer) -> None:
    server.response["data"] = b"after the queue"
    server.add_response(Response(data=b"one", status=201, headers={"X-A": "1"}))
    server.add_response(Response(data="two"), count=2)
    answers = [get(server) for _ in range(4)]
    assert [(a.status_code, a.content) for a in answers] == [
        (201, b"one"),
        (200, b"two"),
        (200, b"two"),
        (200, b"after the queue"),
    ]
    assert answers[0].headers["X-A"] == "1"


def test_add_response_method_comes_first_and_forever_stays(server: TestServer) -> None:
    server.add_response(Response(data=b"any"), count=-1)
    server.add_response(Response(data=b"post"), method="post")
    assert requests.post(server.get_url(), timeout=10).content == b"post"
    assert [get(server).content for _ in range(3)] == [b"any"] * 3
    assert requests.post(server.get_url(), timeout=10).content == b"any"


def test_add_response_comes_before_once_and_is_whole(server: TestServer) -> None:
    server.response["headers"] = {"X-Response": "1"}
    server.response_once["data"] = b"once"
    server.add_response(code=503)
    queued = get(server)
    assert (queued.status_code, queued.content) == (503, b"")
    assert "X-Response" not in queued.headers
    assert get(server).content == b"once"


def test_add_response_keywords_take_every_key(server: TestServer) -> None:
    server.add_response(
        code=202, json={"queued": True}, cookies={"c": "1"}, sleep=0.01, charset="latin-1"
    )
    answer = get(server)
    assert answer.status_code == 202
    assert answer.json() == {"queued": True}
    assert answer.headers["Set-Cookie"] == "c=1"
    assert answer.headers["Content-Type"] == "application/json; charset=latin-1"


def test_add_response_sleep_and_callback(server: TestServer) -> None:
    server.add_response(Response(callback="tests.callbacks:returns_bytes", sleep=0.01))
    assert get(server, "/x").content == b"callback:/x"


def test_response_callback_of_no_argument_returns_the_dict(server: TestServer) -> None:
    server.add_response(Response(callback="tests.callbacks:dict_answer"))
    answer = get(server)
    assert answer.status_code == 418
    assert answer.raw.headers.getlist("X-Tea") == ["earl grey", "green"]
    assert answer.content == b"tea"


def test_callback_dict_that_is_wrong_is_a_500(server: TestServer) -> None:
    server.response["callback"] = "tests.callbacks:bad_dict_answer"
    answer = get(server)
    assert answer.status_code == 500
    assert b"'type': 'response'" in answer.content


def test_response_callback_function_object_of_no_argument() -> None:
    with TestServer() as server:
        server.add_response(Response(callback=lambda: {"type": "response", "data": b"x"}))
        assert get(server).content == b"x"


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((), {"count": 0}, "count is how many requests"),
        ((), {"count": -2}, "count is how many requests"),
        ((), {"count": "1"}, "count is how many requests"),
        ((), {"method": "GET /"}, "method is a name"),
        ((Response(),), {"code": 200}, "a Response or keywords"),
        (("data",), {}, "the first argument is a txtestserver.Response"),
        ((), {"code": 99}, r"server.add_response\(\)\['code'\] must be an int"),
        ((), {"nope": 1}, "unknown response key"),
    ],
)
def test_add_response_mistakes_are_clear_errors(
    server: TestServer, args: tuple, kwargs: dict, message: str
) -> None:
    with pytest.raises(TestServerError, match=message):
        server.add_response(*args, **kwargs)
    assert get(server).status_code == 200  # nothing was queued


def test_response_raw_callback_is_refused() -> None:
    with pytest.raises(TestServerError, match="raw_callback"):
        Response(raw_callback=lambda: b"HTTP/1.1 200 OK\r\n\r\n")


def test_get_request_and_attribute_access(server: TestServer) -> None:
    with pytest.raises(TestServerError, match="no request has arrived yet"):
        server.get_request()
    requests.post(server.get_url("/path?a=1"), data=b"body", timeout=10)
    request = server.get_request()
    assert (request.path, request.method, request.data) == ("/path", "POST", b"body")
    assert request.args["a"] == "1" and request.done is True
    assert server.request.path == "/path"
    assert server.request.client_ip == "127.0.0.1"
    assert server.requests[0].method == "POST"
    with pytest.raises(AttributeError, match="its keys are"):
        server.request.nope  # noqa: B018
    server.reset()
    with pytest.raises(TestServerError, match="no request has arrived yet"):
        server.get_request()
