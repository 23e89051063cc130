"""
Routes (``server.route(...)``): per-path answers, their conditions, slots,
queues and requests, end to end with real clients, in every engine.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter

import pytest
import requests

from txtestserver import Route, ServerSideError, TestServer, TestServerError


def get(server: TestServer, path: str, **kwargs: object) -> requests.Response:
    return requests.get(server.get_url(path), timeout=10, **kwargs)  # type: ignore[arg-type]


def post(server: TestServer, path: str, **kwargs: object) -> requests.Response:
    return requests.post(server.get_url(path), timeout=10, **kwargs)  # type: ignore[arg-type]


# -- matching -----------------------------------------------------------------------------


def test_exact_path_and_method(server: TestServer) -> None:
    server.response["data"] = b"server"
    token = server.route("/api/token", method="post")
    token.response["data"] = b"token"
    assert post(server, "/api/token").content == b"token"
    assert post(server, "/api/token?x=1").content == b"token"  # the query is not the path
    assert get(server, "/api/token").content == b"server"  # another method
    assert post(server, "/api/token/").content == b"server"  # another path
    assert post(server, "/api/tok%65n").content == b"token"  # the decoded path


def test_method_none_is_any_method(server: TestServer) -> None:
    route = server.route("/any")
    route.response["data"] = b"any"
    for method in ["GET", "POST", "PUT", "DELETE", "BREW"]:
        assert requests.request(method, server.get_url("/any"), timeout=10).content == b"any"
    assert len(route.requests) == 5


def test_path_none_is_any_path(server: TestServer) -> None:
    server.response["data"] = b""  # unrouted requests: the server's own answer, not 404
    route = server.route(None, method="DELETE")
    route.response["code"] = 204
    assert requests.delete(server.get_url("/a/b"), timeout=10).status_code == 204
    assert get(server, "/a/b").status_code == 200


def test_pattern_must_match_the_whole_path(server: TestServer) -> None:
    server.response["data"] = b""  # unrouted requests: the server's own answer, not 404
    items = server.route(re.compile(r"/items/\d+"))
    items.response["data"] = b"item"
    assert get(server, "/items/42").content == b"item"
    assert get(server, "/items/42/x").content == b""
    assert get(server, "/x/items/42").content == b""
    ignore = server.route(re.compile(r"/CASE", re.IGNORECASE))  # flags cross too
    ignore.response["data"] = b"case"
    assert get(server, "/case").content == b"case"


def test_query_is_a_subset(server: TestServer) -> None:
    server.response["data"] = b""  # unrouted requests: the server's own answer, not 404
    search = server.route("/search", query={"q": "x"})
    search.response["data"] = b"found"
    assert get(server, "/search?q=x").content == b"found"
    assert get(server, "/search?page=2&q=x").content == b"found"  # other keys are fine
    assert get(server, "/search?q=y").content == b""
    assert get(server, "/search").content == b""
    assert get(server, "/search?q=y&q=x").content == b"found"  # one of the values


def test_query_list_is_every_value_in_order(server: TestServer) -> None:
    server.response["data"] = b""  # unrouted requests: the server's own answer, not 404
    route = server.route("/tags", query={"t": ["a", "b"]})
    route.response["data"] = b"both"
    assert get(server, "/tags?t=a&t=b").content == b"both"
    assert get(server, "/tags?t=b&t=a").content == b""
    assert get(server, "/tags?t=a").content == b""
    assert get(server, "/tags?t=a&t=b&t=c").content == b""


def test_headers_are_a_subset_with_any_case_names(server: TestServer) -> None:
    server.response["data"] = b""  # unrouted requests: the server's own answer, not 404
    route = server.route("/h", headers={"Accept": "application/json", "x-multi": ["1", "2"]})
    route.response["data"] = b"json please"
    headers = [("accept", "application/json"), ("X-Multi", "1"), ("X-MULTI", "2")]
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.putrequest("GET", "/h")
    for name, value in headers:
        conn.putheader(name, value)
    conn.endheaders()
    assert conn.getresponse().read() == b"json please"
    conn.close()
    assert get(server, "/h", headers={"Accept": "application/json"}).content == b""


def test_json_body(server: TestServer) -> None:
    server.response["data"] = b""  # unrouted requests: the server's own answer, not 404
    login = server.route("/login", method="POST", json={"user": "ada", "roles": ["a", "b"]})
    login.response["data"] = b"welcome"
    body = {"roles": ["a", "b"], "user": "ada"}
    assert post(server, "/login", json=body).content == b"welcome"
    assert post(server, "/login", json={"user": "bob", "roles": ["a", "b"]}).content == b""
    assert post(server, "/login", data=b"not json").content == b""
    assert post(server, "/login").content == b""


def test_json_compares_by_type_as_well(server: TestServer) -> None:
    """Defect 16: JSON true is not 1, false is not 0, nested too; 1 is 1.0."""
    server.response["data"] = b"server"
    flags = server.route("/flags", method="POST", json={"on": True, "off": False, "n": [1]})
    flags.response["data"] = b"typed"
    assert post(server, "/flags", json={"on": True, "off": False, "n": [1]}).content == b"typed"
    assert post(server, "/flags", json={"on": 1, "off": False, "n": [1]}).content == b"server"
    assert post(server, "/flags", json={"on": True, "off": 0, "n": [1]}).content == b"server"
    assert post(server, "/flags", json={"on": True, "off": False, "n": [True]}).content == (
        b"server"
    )
    assert post(server, "/flags", json={"on": True, "off": False, "n": [1.0]}).content == b"typed"
    one = server.route("/one", method="POST", json=1)
    one.response["data"] = b"one"
    assert post(server, "/one", json=True).content == b"server"
    assert post(server, "/one", json=1).content == b"one"


def test_form_fields_urlencoded_and_multipart(server: TestServer) -> None:
    server.response["data"] = b""  # unrouted requests: the server's own answer, not 404
    form = server.route("/form", form={"name": "ada"})
    form.response["data"] = b"form"
    assert post(server, "/form", data={"name": "ada", "age": "36"}).content == b"form"
    assert post(server, "/form", files={"f": ("a.txt", b"x")}, data={"name": "ada"}).content == (
        b"form"
    )
    assert post(server, "/form", data={"name": "bob"}).content == b""
    assert post(server, "/form?name=ada").content == b""  # the query is not the form


def test_exact_body(server: TestServer) -> None:
    server.response["data"] = b""  # unrouted requests: the server's own answer, not 404
    raw = server.route("/raw", data=b"exact body")
    raw.response["data"] = b"raw"
    assert post(server, "/raw", data=b"exact body").content == b"raw"
    assert post(server, "/raw", data=b"exact body!").content == b""
    text = server.route("/text", data="тело")
    text.response["data"] = b"text"
    assert post(server, "/text", data="тело".encode()).content == b"text"


def test_every_condition_must_hold(server: TestServer) -> None:
    server.response["data"] = b""  # unrouted requests: the server's own answer, not 404
    route = server.route("/all", method="PUT", query={"a": "1"}, headers={"X-K": "v"}, data=b"d")
    route.response["data"] = b"all"
    url = server.get_url("/all?a=1")
    ok = requests.put(url, data=b"d", headers={"X-K": "v"}, timeout=10)
    assert ok.content == b"all"
    assert requests.put(url, data=b"e", headers={"X-K": "v"}, timeout=10).content == b""
    assert requests.put(url, data=b"d", timeout=10).content == b""
    assert requests.post(url, data=b"d", headers={"X-K": "v"}, timeout=10).content == b""


def test_the_route_registered_last_wins(server: TestServer) -> None:
    fixture_made = server.route(re.compile(r"/api/.*"))
    fixture_made.response["data"] = b"general"
    override = server.route("/api/special")
    override.response["data"] = b"special"
    assert get(server, "/api/special").content == b"special"
    assert get(server, "/api/other").content == b"general"
    override.remove()
    assert get(server, "/api/special").content == b"general"
    assert [r.path for r in fixture_made.requests] == ["/api/other", "/api/special"]
    assert [r.path for r in override.requests] == ["/api/special"]  # still what it answered


def test_a_route_that_can_never_answer_is_reported(engine: str) -> None:
    """
    Defect 8: a page-1 route registered after the page-2 one answers page 2
    too (the most recent match wins); check() names both routes, in strict
    mode too. An int query value is matched as its digits.
    """
    for strict in (False, True):
        server = TestServer(engine=engine, strict=strict)
        server.start()
        try:
            page_2 = server.route("/items", query={"page": 2}, name="page 2")
            page_2.response["json"] = {"page": 2}
            assert get(server, "/items?page=2").json() == {"page": 2}
            server.check()  # nothing wrong yet
            page_1 = server.route("/items", name="page 1")
            page_1.response["json"] = {"page": 1}
            assert get(server, "/items?page=2").json() == {"page": 1}  # the shadowing
            with pytest.raises(ServerSideError) as raised:
                server.check()
            message = str(raised.value)
            assert "route 'page 2' can never answer: route 'page 1', registered after it" in message
            assert "register the more specific route last" in message
            page_1.remove()
            server.check()
            page_2.remove()
            server.route("/items", name="page 1 again")
            server.route("/items", name="page 1 again")  # the same conditions: an override
            server.route("/items", query={"page": "2"}, name="page 2 again")  # the rule
            assert get(server, "/items?page=2").status_code == 200
            server.check()
        finally:
            server.stop()


def test_int_field_values_match_as_their_digits(server: TestServer) -> None:
    page = server.route("/items", query={"page": 2, "tag": [1, "x"]})
    page.response["data"] = b"two"
    server.response["data"] = b"server"
    assert page.conditions == {"path": "/items", "query": {"page": "2", "tag": ["1", "x"]}}
    assert get(server, "/items?page=2&tag=1&tag=x").content == b"two"
    assert get(server, "/items?page=02&tag=1&tag=x").content == b"server"
    header = server.route("/h", headers={"X-Count": 3})
    header.response["data"] = b"three"
    assert get(server, "/h", headers={"X-Count": "3"}).content == b"three"


def test_an_unrouted_request_is_a_404_naming_the_closest_route(server: TestServer) -> None:
    """
    Defect 12: once a server has a route, a request no route matches and no
    server-level answer covers gets a 404 naming the closest route, and is a
    server-side error; without routes every path is answered, as ever.
    """
    assert get(server, "/anything").status_code == 200  # no route: the seed's behaviour
    server.route("/api/items", method="GET", name="items")
    answer = get(server, "/api/itme")  # a typo in the client
    assert answer.status_code == 404
    assert answer.text == (
        "txtestserver: unexpected request: no server.response, response_once or queued "
        "answer of the server covers it (once a server has routes, a request no route "
        "matches is answered 404); no route matches it; the closest is route 'items' "
        "(GET /api/items): path '/api/itme' (the route wants '/api/items')\n"
    )
    [error] = server.errors
    assert error["request"]["path"] == "/api/itme"
    assert error["request"]["response_code"] == 404
    assert "the closest is route 'items'" in error["message"]
    with pytest.raises(ServerSideError, match=r"GET /api/itme HTTP/1\.1: unexpected request"):
        server.check()
    server.response["post.data"] = b"posted"  # covers POST only
    assert post(server, "/elsewhere").content == b"posted"
    assert get(server, "/elsewhere").status_code == 404
    server.add_response(code=202, method="GET")
    server.response_once["code"] = 203
    assert get(server, "/elsewhere").status_code == 202  # the queue comes first
    assert get(server, "/elsewhere").status_code == 203
    assert get(server, "/elsewhere").status_code == 404
    server.response["code"] = 200  # a plain key covers every method
    assert get(server, "/elsewhere").status_code == 200
    assert [e["request"]["path"] for e in server.errors] == ["/elsewhere"] * 2
    server.errors.clear()


def test_thousands_of_routes_answer_as_the_most_recent_match(engine: str) -> None:
    """
    Defect 14: many regex and literal routes (2,000 in the thread engine; the
    subprocess engine rewrites its state file per route, so 200 there): each
    request gets the most recent route it matches, as one by one.
    """
    count = 2000 if engine == "thread" else 200
    with TestServer(engine=engine) as server:
        for number in range(count):
            server.route(re.compile(rf"/r{number}/\d+"), name=f"r{number}")
        server.route(re.compile(r"/r7/\d"), name="newer r7")
        server.route("/r8/1", method="GET", name="literal r8")
        server.route(re.compile(r"/R9/.*", re.IGNORECASE), name="any case r9")
        session = requests.Session()
        for path, route in [
            ("/r5/123", "r5"),
            (f"/r{count - 1}/0", f"r{count - 1}"),
            ("/r7/1", "newer r7"),
            ("/r7/12", "r7"),
            ("/r8/1", "literal r8"),
            ("/r9/x", "any case r9"),
        ]:
            assert session.get(server.get_url(path), timeout=10).status_code == 200, path
            assert server.request["route"] == route
        assert session.post(server.get_url("/r8/1"), timeout=10).status_code == 200
        assert server.request["route"] == "r8"
        unrouted = session.get(server.get_url("/nothing/1"), timeout=10)
        assert unrouted.status_code == 404
        assert "no route matches it; the closest is route" in unrouted.text
        server.errors.clear()


# -- what a route answers -------------------------------------------------------------------


def test_route_answers_over_the_defaults_not_over_server_response(server: TestServer) -> None:
    server.response["code"] = 404
    server.response["headers"] = {"X-Server": "1"}
    route = server.route("/r")
    route.response["data"] = b"route"
    answer = get(server, "/r")
    assert (answer.status_code, answer.content) == (200, b"route")
    assert "X-Server" not in answer.headers
    assert get(server, "/other").status_code == 404


def test_route_response_defaults_and_every_key(server: TestServer) -> None:
    route = server.route("/keys")
    assert route.response["code"] == 200
    assert route.response["data"] == b""
    route.response["code"] = 201
    route.response["headers"] = [("X-A", "1"), ("X-A", "2")]
    route.response["cookies"] = {"c": "v"}
    route.response["charset"] = "cp1251"
    route.response["data"] = "й"
    answer = get(server, "/keys")
    assert answer.status_code == 201
    assert answer.raw.headers.getlist("X-A") == ["1", "2"]
    assert answer.headers["Set-Cookie"] == "c=v"
    assert answer.headers["Content-Type"] == "text/html; charset=cp1251"
    assert answer.content == "й".encode("cp1251")
    assert dict(route.response) == {
        "code": 201,
        "headers": [("X-A", "1"), ("X-A", "2")],
        "cookies": [("c", "v")],
        "charset": "cp1251",
        "data": "й",
    }
    del route.response["code"]
    assert get(server, "/keys").status_code == 200


def test_route_method_specific_keys(server: TestServer) -> None:
    route = server.route("/m")
    route.response["data"] = b"any"
    route.response["post.data"] = b"post"
    assert get(server, "/m").content == b"any"
    assert post(server, "/m").content == b"post"


def test_route_response_once(server: TestServer) -> None:
    route = server.route("/once")
    route.response["data"] = b"always"
    route.response_once["code"] = 500
    server.response_once["code"] = 418  # the server's own once is not the route's
    assert get(server, "/once").status_code == 500
    assert get(server, "/once").status_code == 200
    assert dict(route.response_once) == {}
    assert get(server, "/elsewhere").status_code == 418


def test_route_sleep_and_callback(server: TestServer) -> None:
    route = server.route("/cb")
    route.response["callback"] = "tests.callbacks:returns_bytes"
    route.response["sleep"] = 0.05
    assert get(server, "/cb?x").content == b"callback:/cb?x"


def test_route_values_are_checked(server: TestServer) -> None:
    route = server.route("/checked")
    with pytest.raises(TestServerError, match=r"route\.response\['code'\] must be an int"):
        route.response["code"] = "200"
    with pytest.raises(TestServerError, match="unknown response key"):
        route.response_once["nope"] = 1


def test_route_queue(server: TestServer) -> None:
    """A retry that gets 503, 503, then 200."""
    route = server.route("/flaky")
    route.response["json"] = {"ok": True}
    route.add_response(code=503, data=b"busy", count=2)
    answers = [get(server, "/flaky") for _ in range(3)]
    assert [(a.status_code, a.content) for a in answers[:2]] == [(503, b"busy")] * 2
    assert answers[2].json() == {"ok": True}


def test_route_queue_comes_before_once_and_forever_stays(server: TestServer) -> None:
    route = server.route("/q")
    route.response_once["data"] = b"once"
    route.add_response(data=b"first")
    route.add_response(data=b"forever", count=-1)
    route.add_response(data=b"never")
    bodies = [get(server, "/q").content for _ in range(4)]
    assert bodies == [b"first", b"forever", b"forever", b"forever"]
    assert route.response_once["data"] == b"once"


def test_a_queued_answer_is_whole_over_the_defaults(server: TestServer) -> None:
    route = server.route("/whole")
    route.response["headers"] = {"X-Route": "1"}
    route.response["code"] = 201
    route.add_response(data=b"queued")
    queued = get(server, "/whole")
    assert (queued.status_code, queued.content) == (200, b"queued")
    assert "X-Route" not in queued.headers
    assert get(server, "/whole").status_code == 201


# -- bookkeeping ----------------------------------------------------------------------------


def test_route_requests_are_those_it_answered(server: TestServer) -> None:
    a = server.route("/a")
    b = server.route("/b")
    get(server, "/a?n=1")
    get(server, "/b")
    post(server, "/a", data=b"two")
    get(server, "/none")
    assert [(r["method"], r["args"].get("n")) for r in a.requests] == [("GET", "1"), ("POST", None)]
    assert a.requests[1].data == b"two"  # attribute access, as on server.requests
    assert len(b.requests) == 1
    assert len(server.requests) == 4
    assert a.requests[-1] == server.requests[2]


def test_route_name_is_in_the_journal(server: TestServer) -> None:
    token = server.route("/api/token", method="post", query={"v": "2"})
    assert token.name == "POST /api/token query={'v': '2'}"
    named = server.route(re.compile(r"/items/\d+"), name="items")
    assert named.name == "items"
    requests.post(server.get_url("/api/token?v=2"), timeout=10)
    assert server.request["route"] == token.name
    get(server, "/items/1")
    assert server.request.route == "items"
    get(server, "/none")
    assert server.request["route"] is None
    assert [r["route"] for r in server.requests] == [token.name, "items", None]
    with pytest.raises(TestServerError, match="a route name is a non-empty str"):
        server.route("/x", name="")


def test_routes_in_registration_order_and_reset(server: TestServer) -> None:
    first = server.route("/1")
    second = server.route(re.compile("/2"), method="GET")
    assert server.routes == [first, second]
    assert all(isinstance(route, Route) for route in server.routes)
    assert "GET" in repr(second)
    first.remove()
    assert server.routes == [second]
    server.reset()
    assert server.routes == []
    with pytest.raises(TestServerError, match="route was removed"):
        second.response["data"] = b"x"
    with pytest.raises(TestServerError, match="route was removed"):
        second.remove()
    again = server.route("/2")  # ids are never reused: the old view stays dead
    assert again != second
    with pytest.raises(TestServerError, match="route was removed"):
        dict(second.response)


def test_routes_set_before_start_cross_to_the_server(engine: str) -> None:
    server = TestServer(engine=engine)
    route = server.route("/early")
    route.response["data"] = b"early"
    route.add_response(code=202)
    server.start()
    try:
        assert (get(server, "/early").status_code, get(server, "/early").content) == (
            202,
            b"early",
        )
    finally:
        server.stop()
    assert len(route.requests) == 2  # kept after stop, as server.requests are


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("api",), {}, "starts with '/'"),
        (("/a?b=1",), {}, "match the query with query="),
        ((b"/a",), {}, "a route path is a str"),
        ((re.compile(rb"/a"),), {}, "compile a str pattern"),
        (("/a",), {"method": "GET /"}, "a route method is a name"),
        (("/a",), {"query": {"q": 1.5}}, r"route query\['q'\] is a str"),
        (("/a",), {"headers": ["X"]}, "route headers is a dict"),
        (("/a",), {"form": {"": "x"}}, "names are non-empty str"),
        (("/a",), {"json": {1, 2}}, "route json must be JSON data"),
        (("/a",), {"data": 42}, "route data is the exact body"),
    ],
)
def test_bad_conditions_are_clear_errors(
    server: TestServer, args: tuple, kwargs: dict, message: str
) -> None:
    with pytest.raises(TestServerError, match=message):
        server.route(*args, **kwargs)
    assert server.routes == []


@pytest.mark.parametrize("face", ["TestServer", "DeferredTestServer", "AsyncTestServer"])
def test_a_misspelt_name_suggests_the_closest_and_names_the_face(engine: str, face: str) -> None:
    """Defect 11: a wrong route() keyword names the public method; a wrong key suggests one."""
    import txtestserver

    server = getattr(txtestserver, face)(engine=engine)
    with pytest.raises(TestServerError) as raised:
        server.route("/a", jsno={"a": 1})
    assert str(raised.value).startswith(
        f"{face}.route() got an unexpected keyword argument 'jsno' (did you mean 'json'?): "
        "its conditions are path, method, host, scheme, port, query, headers, data, form, json, "
        "and name= names the route"
    )
    with pytest.raises(TestServerError, match=r"route\(\) .*'nmae' \(did you mean 'name'\?\)"):
        server.route("/a", nmae="x")
    assert server.routes == []
    route = server.route("/a")
    for view, key, suggested in [
        (server.response, "jsn", "json"),
        (server.response_once, "post.cod", "post.code"),
        (route.response, "hedaers", "headers"),
    ]:
        with pytest.raises(TestServerError) as raised:
            view[key] = 1
        assert str(raised.value).startswith(
            f"unknown response key {key!r} (did you mean {suggested!r}?): use one of code, "
        )
    with pytest.raises(TestServerError, match=r"'colde' \(did you mean 'code'\?\)"):
        server.add_response(colde=503)
    with pytest.raises(TestServerError, match=r"unknown response key 'zzz': use one of"):
        server.response["zzz"] = 1  # nothing close: no suggestion


def test_two_requests_never_take_the_same_queued_answer(server: TestServer) -> None:
    route = server.route("/race")
    for n in range(30):
        route.add_response(data=b"%d" % n)
    route.response["data"] = b"done"
    bodies: list[bytes] = []

    def client() -> None:
        session = requests.Session()
        for _ in range(10):
            bodies.append(session.get(server.get_url("/race"), timeout=10).content)

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    counts = Counter(bodies)
    assert counts[b"done"] == 10
    assert sorted(counts.items()) == sorted([(b"%d" % n, 1) for n in range(30)] + [(b"done", 10)])


def test_many_routes_are_registered_in_linear_time(server: TestServer) -> None:
    """
    Registering a route writes what changed, not the whole table (the
    subprocess engine rewrote its state document at each one: 10,000 routes
    took minutes, 3,000 about 20 s); the newest and the oldest still answer.
    """
    started = time.monotonic()
    for n in range(3000):
        server.route(f"/many/{n}").response["data"] = str(n)
    elapsed = time.monotonic() - started
    assert elapsed < 10, f"3,000 routes took {elapsed:.1f} s"
    assert get(server, "/many/0").text == "0"
    assert get(server, "/many/2999").text == "2999"
    assert get(server, "/many/none").status_code == 404
