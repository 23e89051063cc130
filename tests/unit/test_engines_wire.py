"""The line protocol between the test process and the server process."""

from __future__ import annotations

import os
from typing import Any

import pytest
from twisted.logger import LogLevel, globalLogPublisher

from txtestserver._config import ServerConfig
from txtestserver._engines.wire import (
    LineReader,
    ServerEvents,
    child_argv,
    event_line,
    read_serve_line,
    serve_line,
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


def pipe_holding(data: bytes) -> int:
    """The reading end of a pipe that holds ``data``, then ends."""
    read, write = os.pipe()
    os.write(write, data)
    os.close(write)
    return read


def test_the_config_crosses_as_one_document_in_the_serve_line() -> None:
    config = ServerConfig(address="::1", keep_alive=True, header_size_limit=99)
    fd = pipe_holding(serve_line("/some/dir", config) + event_line("stop"))
    try:
        assert read_serve_line(fd) == ("/some/dir", config)
        # What follows the serve line is left for the next reader.
        assert os.read(fd, 100) == b"stop\n"
    finally:
        os.close(fd)


def test_no_serve_line_before_the_end_of_stdin_is_none() -> None:
    fd = pipe_holding(b"")
    try:
        assert read_serve_line(fd) is None
    finally:
        os.close(fd)


def test_another_first_line_is_an_error() -> None:
    fd = pipe_holding(event_line("stop"))
    try:
        with pytest.raises(ValueError, match="expected a serve line"):
            read_serve_line(fd)
    finally:
        os.close(fd)


def test_the_command_line_names_no_settings() -> None:
    assert child_argv()[1] == "-c"
    assert len(child_argv()) == 3
