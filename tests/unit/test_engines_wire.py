"""The line protocol between the test process and the server process."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.logger import LogLevel, globalLogPublisher

from txtestserver._config import ServerConfig
from txtestserver._engines.wire import (
    LineReader,
    ServerEvents,
    child_argv,
    event_line,
    parse_argv,
)


class Handler:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def listening(self, port: int) -> None:
        self.calls.append(("listening", (port,)))

    def answered(self) -> None:
        self.calls.append(("answered", ()))

    def log(self, text: str) -> None:
        self.calls.append(("log", (text,)))


def test_event_lines_are_read_back_whatever_the_pieces() -> None:
    handler = Handler()
    reader = LineReader(handler, ServerEvents)
    stream = (
        event_line("listening", 8080)
        + event_line("answered")
        + event_line("log", "line one\nline two \u00e9")
    )
    for i in range(len(stream)):  # one byte at a time
        reader.dataReceived(stream[i : i + 1])
    assert handler.calls == [
        ("listening", (8080,)),
        ("answered", ()),
        ("log", ("line one\nline two \u00e9",)),
    ]


@pytest.mark.parametrize("line", [b"nonsense\n", b"listening {not json\n", b"__init__\n"])
def test_a_stray_line_is_logged_and_skipped(line: bytes) -> None:
    handler = Handler()
    reader = LineReader(handler, ServerEvents)
    warnings: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(warnings.append)
    try:
        reader.dataReceived(line + event_line("answered"))
    finally:
        globalLogPublisher.removeObserver(warnings.append)
    assert handler.calls == [("answered", ())]
    assert [e for e in warnings if e.get("log_level") == LogLevel.warn]


def test_the_config_crosses_as_one_document() -> None:
    config = ServerConfig(address="::1", keep_alive=True, header_size_limit=99)
    argv = child_argv("/some/dir", config)
    assert parse_argv(argv[3:]) == ("/some/dir", config)
