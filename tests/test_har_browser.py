"""
A HAR that ``server.save_har()`` writes loads in a real HAR viewer:
Chromium's devtools, whose own HAR importer (the code behind the Network
panel's "Import HAR file") turns it into network requests, in headless
Chromium driven by selenium (skipped where Chromium and chromedriver are
missing; .ci/run installs Debian's ``chromium`` and ``chromium-driver``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests._browser import NEEDS_CHROMIUM, chromium
from txtestserver import TestServer

pytestmark = NEEDS_CHROMIUM

#: Chromium's devtools front end, and its HAR importer run over a document:
#: each request it makes of an entry as [url, method, status, size].
DEVTOOLS = "devtools://devtools/bundled/devtools_app.html"
IMPORT = """
const [text, done] = arguments;
import('./models/har/har.js').then(har => {
  const log = new har.HARFormat.HARLog(JSON.parse(text).log);
  const made = har.Importer.Importer.requestsFromHARLog(log);
  done(made.map(r => [r.url(), r.requestMethod, r.statusCode, r.resourceSize]));
}).catch(e => done('failed: ' + e + '\\n' + e.stack));
"""


@pytest.fixture(scope="module")
def devtools() -> Iterator[Any]:
    with chromium() as driver:
        driver.get(DEVTOOLS)
        yield driver


def test_a_saved_har_loads_in_chromium_devtools(
    server: TestServer, devtools: Any, tmp_path: Path
) -> None:
    server.route("/items", method="POST").response["json"] = {"id": 1}
    server.route("/bin").response["data"] = bytes(range(256))
    server.route("/gone").response["code"] = 410
    requests.post(server.get_url("/items?q=1"), json={"a": 1}, cookies={"c": "1"}, timeout=5)
    requests.put(server.get_url("/bin"), data=b"\xff\x00", timeout=5)
    requests.get(server.get_url("/gone"), timeout=5)
    text = server.save_har(tmp_path / "out.har").read_text(encoding="utf-8")
    loaded = devtools.execute_async_script(IMPORT, text)
    assert loaded == [
        [server.get_url("/items?q=1"), "POST", 200, len(b'{"id": 1}')],
        [server.get_url("/bin"), "PUT", 200, 256],
        [server.get_url("/gone"), "GET", 410, 0],
    ], loaded


def test_a_recorded_har_loads_in_chromium_devtools(
    server: TestServer, devtools: Any, tmp_path: Path
) -> None:
    """A HAR of forwarded exchanges (``_forwarded``, ``_chunks``, redacted) loads too."""
    with TestServer() as service:
        service.response.update({"chunks": ["a", "b"], "cookies": {"s": "1"}})
        server.forward(service.get_url(""))
        requests.get(server.get_url("/stream"), headers={"Authorization": "x"}, timeout=5)
        text = server.save_har(tmp_path / "recorded.har").read_text(encoding="utf-8")
    assert "_chunks" in text and "REDACTED" in text
    loaded = devtools.execute_async_script(IMPORT, text)
    assert loaded == [[server.get_url("/stream"), "GET", 200, 2]], loaded
