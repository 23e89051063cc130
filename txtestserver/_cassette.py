"""
vcrpy and pytest-recording cassettes served through a real socket:
``server.load_cassette(path)`` reads a cassette (YAML, or JSON by its
suffix, as vcrpy writes them: ``interactions``, each a ``request`` and a
``response``) and replays it the way :func:`~txtestserver._replay.load_har`
replays a HAR file, by turning each interaction into a HAR entry first. So
an existing suite's cassettes serve any client, in any language, that a
test points at the server.

vcrpy keeps what the client library handed it: a body may be decoded
already (requests) or still compressed (httpx) while the headers say
``Content-Encoding: gzip``; the body is decompressed here when it is, and
sent as it is (without ``Content-Encoding``) either way.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ._errors import TestServerError
from ._replay import Format

__all__ = ["CASSETTE", "cassette_entries", "read_cassette", "write_cassette"]


def read_cassette(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """
    The interactions of a cassette as HAR entries.

    :raise TestServerError: the file cannot be read or parsed, or is not a
        cassette (the message names it and says what is wrong).
    """
    where = f"the cassette {os.fspath(path)!r}"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise TestServerError(f"cannot read {where}: {e}") from None
    if Path(path).suffix.lower() == ".json":
        try:
            document: Any = json.loads(text)
        except ValueError as e:
            raise TestServerError(f"{where} is not valid JSON: {e}") from None
    else:
        try:
            import yaml
        except ImportError:  # pragma: no cover - the test extra installs it
            raise TestServerError(
                f"reading {where} needs PyYAML: pip install pyyaml (or txtestserver[cassettes])"
            ) from None
        try:
            # vcrpy writes bytes as !!binary, which the safe loader reads.
            document = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise TestServerError(f"{where} is not valid YAML: {e}") from None
    interactions = document.get("interactions") if isinstance(document, dict) else None
    if not isinstance(interactions, list):
        raise TestServerError(f"{where} holds no 'interactions' list: is it a vcrpy cassette?")
    return cassette_entries(interactions, where)


def cassette_entries(interactions: list[Any], where: str) -> list[dict[str, Any]]:
    """Each interaction of a cassette as the HAR entry that replays it."""
    entries = []
    for number, interaction in enumerate(interactions):
        try:
            entries.append(_entry(interaction["request"], interaction["response"]))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise TestServerError(
                f"{where}: interaction {number} is not a request and response: {e!r}"
            ) from None
    return entries


def _pairs(headers: Mapping[str, Any] | None) -> list[dict[str, str]]:
    pairs = []
    for name, values in (headers or {}).items():
        for value in values if isinstance(values, list) else [values]:
            pairs.append({"name": str(name), "value": str(value)})
    return pairs


def _bytes(body: Any) -> bytes:
    """A cassette body: None, str, bytes, or vcrpy's ``{'string': ...}``."""
    if isinstance(body, Mapping):
        body = body.get("string")
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    raise ValueError(f"a body is str or bytes, not {type(body).__name__}")


def _decoded(body: bytes, headers: list[dict[str, str]]) -> bytes:
    """The body decompressed when the headers say it is and it is."""
    codings = [
        h["value"].strip().lower() for h in headers if h["name"].lower() == "content-encoding"
    ]
    for coding in reversed(codings):
        wbits = {
            "gzip": 16 + zlib.MAX_WBITS,
            "x-gzip": 16 + zlib.MAX_WBITS,
            "deflate": zlib.MAX_WBITS,
        }
        if coding not in wbits:
            break
        try:
            body = zlib.decompress(body, wbits[coding])
        except zlib.error:
            break  # decoded already (vcrpy kept what the client library decoded)
    return body


def _text(body: bytes) -> dict[str, str]:
    import base64

    try:
        return {"text": body.decode("utf-8")}
    except UnicodeDecodeError:
        return {"text": base64.b64encode(body).decode("ascii"), "encoding": "base64"}


def _entry(request: Mapping[str, Any], response: Mapping[str, Any]) -> dict[str, Any]:
    uri = str(request["uri"])
    request_headers = _pairs(request.get("headers"))
    body = _bytes(request.get("body"))
    post = _text(body)
    if "encoding" in post:
        post = {"text": post["text"], "comment": "base64"}
    response_headers = _pairs(response.get("headers"))
    content = _text(_decoded(_bytes(response.get("body")), response_headers))
    status = response.get("status", {})
    return {
        "request": {
            "method": str(request["method"]).upper(),
            "url": uri,
            "headers": request_headers,
            "queryString": [
                {"name": name, "value": value}
                for name, value in parse_qsl(urlsplit(uri).query, keep_blank_values=True)
            ],
            "postData": {"mimeType": "", **post} if body else None,
        },
        "response": {
            "status": int(status.get("code", 200) if isinstance(status, Mapping) else status),
            "headers": response_headers,
            "content": {"mimeType": "", **content},
        },
    }


def write_cassette(document: dict[str, Any], path: Path) -> Path:
    """
    A HAR document written as a vcrpy cassette (YAML, or JSON by the
    suffix): one interaction per entry, bodies as text, or bytes where they
    are not UTF-8 (YAML's ``!!binary``, which vcrpy reads).
    """
    import base64

    interactions = []
    for entry in document["log"]["entries"]:
        request, response = entry["request"], entry["response"]
        post = request.get("postData") or {}
        body: Any = post.get("text") or None
        if body is not None and post.get("comment") == "base64":
            body = base64.b64decode(body)
        content = response.get("content", {})
        text: Any = content.get("text", "")
        if content.get("encoding") == "base64":
            text = base64.b64decode(text)
        interactions.append(
            {
                "request": {
                    "body": body,
                    "headers": _grouped(request.get("headers", [])),
                    "method": request["method"],
                    "uri": request["url"],
                },
                "response": {
                    "body": {"string": text},
                    "headers": _grouped(
                        h
                        for h in response.get("headers", [])
                        if h["name"].lower() not in ("content-encoding", "transfer-encoding")
                    ),
                    "status": {
                        "code": response["status"],
                        "message": response.get("statusText", ""),
                    },
                },
            }
        )
    cassette = {"interactions": interactions, "version": 1}
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if path.suffix.lower() == ".json":
        temporary.write_text(json.dumps(cassette, indent=1, default=_json_bytes), encoding="utf-8")
    else:
        import yaml

        temporary.write_text(yaml.safe_dump(cassette, allow_unicode=True), encoding="utf-8")
    os.replace(temporary, path)
    return path


def _grouped(pairs: Any) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for pair in pairs:
        grouped.setdefault(pair["name"], []).append(pair["value"])
    return grouped


def _json_bytes(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    raise TypeError(f"{type(value).__name__} is not JSON")


#: vcrpy cassettes (``load_cassette``).
CASSETTE = Format("cassette", read_cassette, write_cassette)
