"""
Malformed requests from a seeded random generator: valid templates, then
zero to three mutations, delivered whole, in random pieces or a byte at a
time. The same seed gives the same cases, so a failure can be replayed.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

TEMPLATES = [
    b"GET /path/x?a=1&b=two+words&c=%D0%B9 HTTP/1.1\r\nHost: h\r\nCookie: a=1; b=2\r\n"
    b"User-Agent: stress\r\n\r\n",
    b"POST /form HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    b"Content-Length: 17\r\n\r\nfield=v&other=%FF",
    b"POST /chunked HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
    b"POST /upload HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=BND\r\n"
    b"Content-Length: 141\r\n\r\n"
    b'--BND\r\nContent-Disposition: form-data; name="f"\r\n\r\nvalue\r\n'
    b'--BND\r\nContent-Disposition: form-data; name="up"; filename="a.bin"\r\n\r\n'
    b"\x00\xff\r\n--BND--\r\n",
    b"PUT /bin HTTP/1.1\r\nContent-Length: 8\r\n\r\n\x00\x01\xfe\xff\r\n\r\n",
    b"HEAD / HTTP/1.1\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\n\r\n",
    b"GET /old HTTP/1.0\r\n\r\n",
    b"DELETE /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nab",
]

PREFIXES = [
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",  # HTTP/2 preface on the plain port
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS ClientHello
    b"GET /\r\n",  # HTTP/0.9
    b"\r\n",
]
JUNK = b"\x00\xff\xfe\r\n: \t;=%?/\x7f\xc3\x28\"'"


@dataclass
class Case:
    """One generated input and how to deliver it."""

    data: bytes
    #: ``whole``, ``pieces`` or ``bytes`` (a byte per send).
    delivery: str
    #: Lengths of the pieces for ``pieces``.
    cuts: list[int]
    mutations: list[str]


def _flip(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    i = rng.randrange(len(data))
    return data[:i] + bytes([rng.randrange(256)]) + data[i + 1 :]


def _insert(rng: random.Random, data: bytes) -> bytes:
    i = rng.randrange(len(data) + 1)
    junk = bytes(rng.choice(JUNK) for _ in range(rng.randint(1, 8)))
    return data[:i] + junk + data[i:]


def _delete(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    i = rng.randrange(len(data))
    return data[:i] + data[i + rng.randint(1, 20) :]


def _truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data) + 1)]


def _lf_only(rng: random.Random, data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n")


def _head_insert(data: bytes, line: bytes) -> bytes:
    head, sep, rest = data.partition(b"\r\n")
    return head + b"\r\n" + line + (b"\r\n" + rest if sep else b"")


def _content_length(rng: random.Random, data: bytes) -> bytes:
    value = rng.choice([b"-1", b"+3", b"abc", b"99999999999999999999", b"3, 3", b"", b"0", b"1"])
    return _head_insert(data, b"Content-Length: " + value)


def _chunked(rng: random.Random, data: bytes) -> bytes:
    data = _head_insert(data, b"Transfer-Encoding: " + rng.choice([b"chunked", b"gzip", b"x"]))
    return data + rng.choice([b"zz\r\n", b"ffffffffffffffffff\r\n", b"3\r\nabcdef\r\n", b"-1\r\n"])


def _many_headers(rng: random.Random, data: bytes) -> bytes:
    lines = b"\r\n".join(b"X-%d: v" % i for i in range(rng.choice([100, 499, 500, 501, 800])))
    return _head_insert(data, lines)


def _huge_header(rng: random.Random, data: bytes) -> bytes:
    size = rng.choice([10_000, 65_000, 70_000, 200_000])
    return _head_insert(data, b"X-Huge: " + b"h" * size)


def _non_utf8(rng: random.Random, data: bytes) -> bytes:
    where = rng.choice([b"/", b"?", b"Cookie: ", b"Host: ", b"\r\n\r\n"])
    i = data.find(where)
    if i < 0:
        return data
    i += len(where)
    return data[:i] + rng.choice([b"\xff\xfe", b"%FF%FE", b"\xc3\x28", b"caf\xe9"]) + data[i:]


def _prefix(rng: random.Random, data: bytes) -> bytes:
    return rng.choice(PREFIXES) + data


def _garbage(rng: random.Random, data: bytes) -> bytes:
    return rng.randbytes(rng.randint(0, 400))


MUTATIONS: dict[str, Callable[[random.Random, bytes], bytes]] = {
    "flip": _flip,
    "insert": _insert,
    "delete": _delete,
    "truncate": _truncate,
    "lf-only": _lf_only,
    "content-length": _content_length,
    "chunked": _chunked,
    "many-headers": _many_headers,
    "huge-header": _huge_header,
    "non-utf8": _non_utf8,
    "prefix": _prefix,
    "garbage": _garbage,
}


def generate(seed: int, count: int) -> Iterator[Case]:
    """``count`` cases from ``seed``, made one at a time."""
    rng = random.Random(seed)
    names = list(MUTATIONS)
    for _ in range(count):
        data = rng.choice(TEMPLATES)
        applied = [rng.choice(names) for _ in range(rng.choice([0, 1, 1, 1, 2, 2, 3]))]
        for name in applied:
            data = MUTATIONS[name](rng, data)
        roll = rng.random()
        if roll < 0.02 and len(data) <= 2000:
            delivery, cuts = "bytes", []
        elif roll < 0.10:
            delivery = "pieces"
            cuts = sorted(rng.randrange(len(data) + 1) for _ in range(rng.randint(1, 5)))
        else:
            delivery, cuts = "whole", []
        yield Case(data, delivery, cuts, applied)


def pieces(case: Case) -> list[bytes]:
    """The sends that deliver ``case``."""
    if case.delivery == "bytes":
        return [case.data[i : i + 1] for i in range(len(case.data))]
    if case.delivery == "pieces":
        bounds = [0, *case.cuts, len(case.data)]
        return [case.data[a:b] for a, b in itertools.pairwise(bounds) if b > a]
    return [case.data]
