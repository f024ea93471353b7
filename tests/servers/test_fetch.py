"""The fetch server against a real HTTP server on loopback: the allow-list, redirects, and the caps."""

from __future__ import annotations

import contextlib
import gzip
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import anyio
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent

from sandbox.hub import ToolHub, load_config
from servers.fetch import AllowList, FetchLimits, _parse_url, main, make_server

BIG = 300_000
_release = threading.Event()  # set at teardown: slow handlers stop waiting


class _Handler(BaseHTTPRequestHandler):
    """The test site. ``hits`` records every path requested, so a test can tell what was never asked."""

    hits: ClassVar[list[str]] = []
    port: ClassVar[int] = 0

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(
        self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8", **extra: str
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str, **extra: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        for name, value in extra.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()

    def do_GET(self) -> None:
        self.hits.append(self.path)
        port = self.port
        routes = {
            "/hello": lambda: self._send(200, b"hello from loopback"),
            "/missing": lambda: self._send(404, b"no such page"),
            "/latin1": lambda: self._send(200, "café".encode("latin-1"), "text/plain; charset=iso-8859-1"),
            "/binary": lambda: self._send(200, bytes(range(256)), "application/octet-stream"),
            "/big": lambda: self._send(200, b"y" * BIG),
            "/gzip": lambda: self._send(200, gzip.compress(b"zipped text"), Content_Encoding="gzip"),
            "/bomb": lambda: self._send(200, gzip.compress(bytes(50_000_000)), Content_Encoding="gzip"),
            "/brotli": lambda: self._send(200, b"\x0b\x02\x80", Content_Encoding="br"),
            "/to-hello": lambda: self._redirect("/hello"),
            "/to-to-hello": lambda: self._redirect(f"http://127.0.0.1:{port}/to-hello"),
            "/to-elsewhere": lambda: self._redirect("http://elsewhere.invalid/steal"),
            "/to-localhost": lambda: self._redirect(f"http://localhost:{port}/hello"),
            "/to-other-port": lambda: self._redirect(f"http://127.0.0.1:{port + 1}/hello"),
            "/to-file": lambda: self._redirect("file:///etc/passwd"),
            "/loop": lambda: self._redirect("/loop"),
            "/to-bad-port": lambda: self._redirect("http://127.0.0.1:abc/hello"),
            "/to-bad-name": lambda: self._redirect("http://xn--/hello"),
            "/cookie-then-echo": lambda: self._redirect(
                "/echo-cookie", Set_Cookie="session=set-by-302; Path=/"
            ),
            "/set-cookie": lambda: self._send(200, b"set", Set_Cookie="session=set-by-200; Path=/"),
            "/echo-cookie": lambda: self._send(200, f"cookie: {self.headers.get('Cookie')}".encode()),
            "/charset-idna": lambda: self._send(200, "café".encode(), "text/plain; charset=idna"),
            "/charset-undefined": lambda: self._send(200, "café".encode(), "text/plain; charset=undefined"),
            "/charset-base64": lambda: self._send(200, "café".encode(), "text/plain; charset=base64"),
            "/endless": self._endless,
            "/slow": self._slow,
            "/dribble": self._dribble,
        }
        routes.get(self.path, lambda: self._send(404, b"unknown"))()

    def _endless(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()  # no length: the body goes on until the client hangs up
        try:
            while not _release.is_set():
                self.wfile.write(b"z" * 65_536)
        except OSError:
            pass

    def _slow(self) -> None:
        _release.wait(10)
        with contextlib.suppress(OSError):  # the client gave up long ago
            self._send(200, b"too late")

    def _dribble(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        try:
            while not _release.wait(0.1):  # a byte at a time, never idle long enough for a read timeout
                self.wfile.write(b".")
                self.wfile.flush()
        except OSError:
            pass


@pytest.fixture
def site() -> Iterator[int]:
    """A threaded HTTP server on 127.0.0.1; yields its port."""
    _release.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    _Handler.port = server.server_address[1]
    _Handler.hits = []
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield _Handler.port
    _release.set()
    server.shutdown()
    server.server_close()
    thread.join(10)


def _text(result: CallToolResult) -> str:
    return " ".join(part.text for part in result.content if isinstance(part, TextContent))


async def _get(client: Client, url: str) -> dict[str, Any]:
    with anyio.fail_after(30):
        result = await client.call_tool("fetch", {"url": url})
    assert result.is_error is False, _text(result)
    assert result.structured_content is not None
    return result.structured_content


async def _refused(client: Client, url: str, *words: str) -> str:
    with anyio.fail_after(30):
        result = await client.call_tool("fetch", {"url": url})
    text = _text(result)
    assert result.is_error is True, text
    for word in words:
        assert word in text, text
    return text


def _server(port: int, **limits: Any) -> Any:
    return make_server([f"127.0.0.1:{port}"], FetchLimits(**limits))


# --------------------------------------------------------------------------- allowed


@pytest.mark.anyio
async def test_allowed_host_is_fetched(site: int) -> None:
    async with Client(_server(site)) as client:
        page = await _get(client, f"http://127.0.0.1:{site}/hello")
        missing = await _get(client, f"http://127.0.0.1:{site}/missing")
        latin = await _get(client, f"http://127.0.0.1:{site}/latin1")
        binary = await _get(client, f"http://127.0.0.1:{site}/binary")
        zipped = await _get(client, f"http://127.0.0.1:{site}/gzip")
    assert page == {
        "url": f"http://127.0.0.1:{site}/hello",
        "status": 200,
        "content_type": "text/plain; charset=utf-8",
        "text": "hello from loopback",
        "truncated": False,
        "bytes_read": 19,
        "redirects": [],
    }
    assert (missing["status"], missing["text"]) == (404, "no such page")
    assert latin["text"] == "café"
    assert binary["text"].startswith("[binary content (application/octet-stream), 256 bytes")
    assert zipped["text"] == "zipped text"


@pytest.mark.anyio
async def test_the_tool_description_names_the_allowed_hosts(site: int) -> None:
    async with Client(_server(site)) as client:
        (tool,) = (await client.list_tools()).tools
    assert f"127.0.0.1:{site}" in (tool.description or "")


# --------------------------------------------------------------------------- refused


@pytest.mark.anyio
async def test_hosts_off_the_list_are_refused(site: int) -> None:
    async with Client(_server(site)) as client:
        await _refused(client, f"http://localhost:{site}/hello", "'localhost:", "not on the allow-list")
        await _refused(client, f"http://127.0.0.1:{site + 1}/hello", "not on the allow-list")
        await _refused(client, "http://127.0.0.1/hello", "not on the allow-list")
        await _refused(client, f"http://2130706433:{site}/hello", "not on the allow-list")
        await _refused(client, f"http://127.0.0.1:{site}@elsewhere.invalid/", "'elsewhere.invalid'")
        await _refused(client, "https://example.com/", "not on the allow-list")
        await _get(client, f"http://127.0.0.1:{site}/hello")  # still answering
    assert _Handler.hits == ["/hello"]


@pytest.mark.anyio
async def test_localhost_and_its_address_are_different_hosts(site: int) -> None:
    async with Client(make_server([f"localhost:{site}"])) as client:
        page = await _get(client, f"http://localhost:{site}/hello")
        await _refused(client, f"http://127.0.0.1:{site}/hello", "not on the allow-list")
    assert page["text"] == "hello from loopback"


@pytest.mark.anyio
async def test_entry_without_port_allows_only_default_ports(site: int) -> None:
    async with Client(make_server(["127.0.0.1"])) as client:
        await _refused(client, f"http://127.0.0.1:{site}/hello", "not on the allow-list")
    assert _Handler.hits == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "scheme 'file'"),
        ("ftp://127.0.0.1/x", "scheme 'ftp'"),
        ("javascript:alert(1)", "scheme 'javascript'"),
        ("gopher://127.0.0.1:70/", "scheme 'gopher'"),
        ("/relative/path", "not an absolute URL"),
        ("http://", "no host"),
    ],
)
async def test_other_schemes_and_non_urls_are_refused(site: int, url: str, reason: str) -> None:
    async with Client(_server(site)) as client:
        await _refused(client, url, reason)


# --------------------------------------------------------------------------- redirects


@pytest.mark.anyio
async def test_redirects_within_the_list_are_followed(site: int) -> None:
    async with Client(_server(site)) as client:
        page = await _get(client, f"http://127.0.0.1:{site}/to-to-hello")
    assert page["text"] == "hello from loopback"
    assert page["url"] == f"http://127.0.0.1:{site}/hello"
    assert page["redirects"] == [f"http://127.0.0.1:{site}/to-to-hello", f"http://127.0.0.1:{site}/to-hello"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/to-elsewhere", "'elsewhere.invalid'"),
        ("/to-localhost", "'localhost:"),
        ("/to-other-port", "not on the allow-list"),
        ("/to-file", "scheme 'file'"),
    ],
)
async def test_redirects_off_the_list_are_refused(site: int, path: str, reason: str) -> None:
    async with Client(_server(site)) as client:
        text = await _refused(client, f"http://127.0.0.1:{site}{path}", "redirect", reason)
    assert "hello from loopback" not in text
    assert _Handler.hits == [path]  # the refused hop was never requested


@pytest.mark.anyio
async def test_redirect_loops_stop(site: int) -> None:
    async with Client(_server(site, max_redirects=3)) as client:
        await _refused(client, f"http://127.0.0.1:{site}/loop", "More than 3 redirects")
    assert _Handler.hits == ["/loop"] * 4


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "reason"),
    [("/to-bad-port", "Invalid port: 'abc'"), ("/to-bad-name", "Malformed A-label")],
)
async def test_redirects_to_broken_urls_are_refused_with_the_reason(
    site: int, path: str, reason: str
) -> None:
    async with Client(_server(site)) as client:
        await _refused(client, f"http://127.0.0.1:{site}{path}", "redirect", "not a valid URL", reason)
    assert _Handler.hits == [path]


@pytest.mark.anyio
async def test_no_cookie_travels_between_hops_or_calls(site: int) -> None:
    async with Client(_server(site)) as client:
        hopped = await _get(client, f"http://127.0.0.1:{site}/cookie-then-echo")
        await _get(client, f"http://127.0.0.1:{site}/set-cookie")
        later = await _get(client, f"http://127.0.0.1:{site}/echo-cookie")
    assert hopped["redirects"] == [f"http://127.0.0.1:{site}/cookie-then-echo"]
    assert hopped["text"] == "cookie: None"  # the 302 set one; the next hop did not send it
    assert later["text"] == "cookie: None"


# --------------------------------------------------------------------------- caps


@pytest.mark.anyio
async def test_large_bodies_are_cut(site: int) -> None:
    async with Client(_server(site, max_bytes=10_000)) as client:
        big = await _get(client, f"http://127.0.0.1:{site}/big")
        endless = await _get(client, f"http://127.0.0.1:{site}/endless")
        bomb = await _get(client, f"http://127.0.0.1:{site}/bomb")
    for page in (big, endless, bomb):
        assert page["truncated"] is True
        assert page["bytes_read"] == 10_000
        assert page["text"].endswith("[... truncated: the body is longer than 10000 bytes]")
    assert big["text"].startswith("y" * 10_000)
    assert bomb["text"].startswith("[binary content")  # 50 MB of zeros, inflated only up to the cap


@pytest.mark.anyio
async def test_unknown_content_encoding_is_refused(site: int) -> None:
    async with Client(_server(site)) as client:
        await _refused(client, f"http://127.0.0.1:{site}/brotli", "'br'")


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/slow", "/dribble"])
async def test_slow_servers_time_out(site: int, path: str) -> None:
    async with Client(_server(site, timeout_s=1.0)) as client:
        await _refused(client, f"http://127.0.0.1:{site}{path}", "within 1 s")
        _release.set()  # let the handler go, then show the server still answers
        await _get(client, f"http://127.0.0.1:{site}/hello")


@pytest.mark.anyio
@pytest.mark.parametrize("charset", ["idna", "undefined", "base64"])
async def test_a_charset_python_cannot_decode_with_is_read_as_utf8(site: int, charset: str) -> None:
    async with Client(_server(site)) as client:
        page = await _get(client, f"http://127.0.0.1:{site}/charset-{charset}")
    assert page["text"] == "café"
    assert page["content_type"] == f"text/plain; charset={charset}"


@pytest.mark.anyio
async def test_urls_that_break_the_url_parser_are_refused_with_the_reason(site: int) -> None:
    async with Client(_server(site)) as client:
        await _refused(client, "http://xn--/", "not a valid URL", "Malformed A-label")
        await _refused(client, f"http://127.0.0.1:{site}:1/", "not a valid URL")
        await _refused(client, "http://[::1/", "not a valid URL")
        await _get(client, f"http://127.0.0.1:{site}/hello")  # still answering
    assert _Handler.hits == ["/hello"]


_URLISH = st.lists(
    st.sampled_from([*"hp:/[]@%.?#\\ -_09aA", "http", "xn--", "%00", "%ff", "é", "\u3002", "::", "ß"]),
    max_size=24,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=_URLISH | st.text(max_size=40), prefix=st.sampled_from(["", "http://", "http://127.0.0.1:8000/"]))
def test_any_text_is_a_url_or_a_refusal_with_its_reason(text: str, prefix: str) -> None:
    allow = AllowList(["127.0.0.1:8000"])
    for parse in (
        lambda: _parse_url(prefix + text),
        lambda: _parse_url(text, base=httpx.URL(f"{prefix or 'http://a/'}x")),
    ):
        try:
            allow.check(parse())
        except ToolError as exc:
            assert str(exc).strip() and "\n" not in str(exc)


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize("entry", ["", "http://example.com", "example.com/path", "*.example.com", "a@b.com"])
def test_bad_allow_entries_are_refused(entry: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="HOST or HOST:PORT"):
        AllowList([entry])
    with pytest.raises(SystemExit) as stopped:
        main(["--allow", entry])
    assert stopped.value.code == 2
    assert "allow-list entry" in capsys.readouterr().err


def test_allow_entries_are_case_insensitive_and_take_ipv6() -> None:
    allow = AllowList(["Example.COM", "[::1]:8080"])
    assert str(allow) == "example.com, [::1]:8080"


# --------------------------------------------------------------------------- over stdio


@pytest.mark.anyio
async def test_fetch_over_stdio_through_the_hub(site: int) -> None:
    config = {
        "mcpServers": {
            "fetch": {"command": "python", "args": ["-m", "servers.fetch", "--allow", f"127.0.0.1:{site}"]}
        }
    }
    with anyio.fail_after(60):
        async with ToolHub(load_config(config), call_timeout=20) as hub:
            page = await hub.call("fetch", {"url": f"http://127.0.0.1:{site}/to-hello"})
            refused = await hub.call("fetch", {"url": f"http://127.0.0.1:{site}/to-elsewhere"})
    assert page.structured is not None and page.structured["text"] == "hello from loopback"
    assert refused.is_error and "not on the allow-list" in refused.text
