"""
The conversation of a failing test, for its pytest report
(:mod:`txtestserver.pytest_plugin`): the journal as a short table (method,
URL, status, route, time) and the server-side errors; and the HAR file
``--txtestserver-har-dir`` keeps, named after the test.

Imported when a test that used a server fails, never when the plugin loads.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._core import ServerCore

__all__ = ["har_paths", "journal_table", "save_hars"]

#: The rows shown at most: the latest, with a line saying how many came before.
SHOWN = 50


def journal_table(server: ServerCore, errors: list[dict[str, Any]] | None = None) -> str:
    """
    The server's journal as a table, one request a line (the latest
    :data:`SHOWN`), then its server-side errors.

    :param server: a server of any face or engine, running or stopped.
    :param errors: its errors as found before ``server.check()`` forgot
        them; None: ``server.errors`` now.
    """
    entries: list[dict[str, Any]] = server.requests.to_har()["log"]["entries"]
    lines = []
    if len(entries) > SHOWN:
        lines.append(f"... {len(entries) - SHOWN} earlier request(s) not shown")
    rows = [("time", "method", "URL", "status", "route", "ms")]
    for entry in entries[-SHOWN:]:
        response = entry["response"]
        status = str(response["status"] or "-")
        if entry.get("_fault"):
            status += f" fault={entry['_fault']}"
        if entry.get("_aborted"):
            status += " aborted"
        rows.append(
            (
                entry["startedDateTime"][11:23],
                entry["request"]["method"],
                entry["request"]["url"],
                status,
                entry["_route"] or "(server)",
                f"{entry['time']:.1f}",
            )
        )
    if entries:
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
        for row in rows:
            cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
            lines.append("  ".join([*cells, row[-1]]).rstrip())
    else:
        lines.append("no request reached the server")
    if errors is None:
        errors = list(server.errors)
    if errors:
        lines.append("")
        lines.append(f"server-side errors ({len(errors)}):")
        for error in errors:
            request = error["request"]
            where = f" ({request['method']} {request['path']})" if request else ""
            lines.append(f"- {error['message']}{where}")
    return "\n".join(lines) + "\n"


def har_paths(directory: Path, nodeid: str, count: int) -> list[Path]:
    """
    Where the HARs of a test's ``count`` servers go: one file named after
    the test (its node id made a file name), numbered from the second.
    """
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.replace("::", "__")).strip("_")
    return [directory / (f"{name}.har" if i == 0 else f"{name}.{i + 1}.har") for i in range(count)]


def save_hars(servers: Sequence[ServerCore], directory: Path, nodeid: str) -> list[Path]:
    """
    Write each server's journal as a HAR file in ``directory``, named after
    the test (:func:`har_paths`).

    :return: the paths written.
    """
    paths = har_paths(directory, nodeid, len(servers))
    for server, path in zip(servers, paths, strict=True):
        server.save_har(path)
    return paths
