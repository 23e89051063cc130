"""
Proxy mode from the outside: ``client_env()`` and ``patch_env()``, the
pytest fixtures and factory, the command line's ``--proxy``, and clients that
find the proxy through the environment alone (requests, httpx, aiohttp,
urllib, curl as a child process).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import ssl
import subprocess
import urllib.request
from collections.abc import Callable

import aiohttp
import httpx
import pytest
import requests

from tests.test_cli import Command, command  # noqa: F401  (the fixture)
from tests.test_plugin import project, run  # noqa: F401  (the fixture)
from txtestserver import TestServer, TestServerError

API = "api.example.com"

pytest_plugins = ["pytester"]


def _requests(url: str) -> bytes:
    return requests.get(url, timeout=10).content


def _httpx(url: str) -> bytes:
    with httpx.Client(timeout=10) as client:  # trust_env: the default
        return client.get(url).content


def _aiohttp(url: str) -> bytes:
    # aiohttp reads the proxy from the environment (trust_env=True), but makes
    # its default SSL context once, at import: the authority is an argument.
    context = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])

    async def get() -> bytes:
        async with aiohttp.ClientSession(trust_env=True) as session:
            async with session.get(url, ssl=context) as response:
                return await response.read()

    return asyncio.run(get())


def _urllib(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:  # the default opener
        return bytes(response.read())


def _curl(url: str) -> bytes:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed (.ci/run installs it)")
    done = subprocess.run(["curl", "-sS", "--fail", url], capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


#: Clients that find the proxy and the authority in the environment alone.
FROM_ENV: dict[str, Callable[[str], bytes]] = {
    "requests": _requests,
    "httpx": _httpx,
    "aiohttp": _aiohttp,
    "urllib": _urllib,
    "curl": _curl,
}


@pytest.mark.parametrize("client", list(FROM_ENV))
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_client_reads_the_proxy_from_the_environment(
    engine: str, client: str, scheme: str
) -> None:
    with TestServer(engine=engine, proxy=True) as server:
        server.route("/env", host=API).response["data"] = b"from env"
        with server.patch_env():
            urllib.request.install_opener(urllib.request.build_opener())
            try:
                assert FROM_ENV[client](f"{scheme}://{API}/env") == b"from env"
            finally:
                urllib.request.install_opener(None)  # type: ignore[arg-type]
        request = server.request
        assert request["url"] == f"{scheme}://{API}/env"
        assert request["proxy"]["kind"] == ("connect" if scheme == "https" else "absolute")


def test_client_env_and_patch_env_restore_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://corporate:3128")
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    with TestServer(proxy=True) as server:
        env = server.client_env()
        url = server.proxy_url
        assert url == f"http://127.0.0.1:{server.port}"
        assert env == {
            "HTTP_PROXY": url,
            "HTTPS_PROXY": url,
            "ALL_PROXY": url,
            "NO_PROXY": "",
            "http_proxy": url,
            "https_proxy": url,
            "all_proxy": url,
            "no_proxy": "",
            "SSL_CERT_FILE": server.ca_path,
            "REQUESTS_CA_BUNDLE": server.ca_path,
            "CURL_CA_BUNDLE": server.ca_path,
        }
        with server.patch_env() as patched:
            assert patched == env
            assert os.environ["HTTPS_PROXY"] == url and os.environ["HTTP_PROXY"] == url
        assert os.environ["HTTPS_PROXY"] == "http://corporate:3128"
        assert "HTTP_PROXY" not in os.environ
    with pytest.raises(TestServerError, match="proxy=True"):
        TestServer().client_env()


def test_the_test_proxy_fixture_sets_the_environment_for_one_test(
    project: pytest.Pytester,  # noqa: F811
    engine: str,
) -> None:
    project.makepyfile(
        """
        import os
        import requests

        def test_through_the_proxy(test_proxy):
            test_proxy.route("/fx", host="api.example.com").response["data"] = b"fixture"
            assert requests.get("https://api.example.com/fx", timeout=10).content == b"fixture"
            assert test_proxy.request["proxy"]["kind"] == "connect"

        def test_the_environment_is_restored_after_it():
            assert os.environ.get("HTTPS_PROXY") != "set by the fixture"
            assert "txtestserver" not in os.environ.get("SSL_CERT_FILE", "")

        def test_the_factory_makes_a_proxy(test_server_factory):
            server = test_server_factory(proxy=True)
            proxies = {"http": server.proxy_url}
            assert requests.get("http://x.example/", proxies=proxies).status_code == 200
            assert server.request["host"] == "x.example"
        """
    )
    result = run(project, f"--txtestserver-engine={engine}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_the_command_line_is_a_proxy(command: type[Command]) -> None:  # noqa: F811
    cli = command("--port=0", "--proxy-auth=user:secret", "--data=proxied")
    proxy = cli.read_until(r"proxy: (http://127\.0\.0\.1:\d+) ").group(1)
    ca = cli.read_until(r"CA certificate: (.+)$").group(1)
    auth = proxy.replace("http://", "http://user:secret@")
    response = requests.get(f"https://{API}/cli", proxies={"https": auth}, verify=ca, timeout=10)
    assert response.content == b"proxied"
    cli.read_until(r"GET /cli from 127\.0\.0\.1$")
    assert cli.stop(signal.SIGINT) == 0


def test_websockets_reads_the_proxy_from_the_environment(engine: str) -> None:
    """The proxy from the environment; the authority is an argument."""
    from websockets.sync.client import connect

    with TestServer(engine=engine, proxy=True) as server:
        server.websocket("/ws", host=API).echo()
        with server.patch_env():
            with connect(f"wss://{API}/ws", ssl=server.client_ssl_context()) as ws:
                ws.send("env")
                assert ws.recv(timeout=10) == "env"
        assert server.requests[-1]["proxy"]["kind"] == "connect"
