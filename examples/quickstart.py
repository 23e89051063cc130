"""
Start a server, send it a real request with urllib, and print what it captured.

Run it with ``python examples/quickstart.py``.
"""

from urllib.request import Request, urlopen

from txtestserver import TestServer

with TestServer() as server:
    server.response["data"] = b"Hello from txtestserver"
    server.response["headers"] = [("X-Demo", "yes")]

    request = Request(
        server.get_url("/greet?name=Ada"),
        data=b"some request body",
        headers={"X-Client": "quickstart"},
    )
    with urlopen(request) as response:
        print("client got:", response.status, response.read())

    print("server captured:")
    for key in ("method", "path", "args", "headers", "data", "client_ip", "done"):
        print(f"  request[{key!r}] = {server.request[key]!r}")
