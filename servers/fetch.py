"""Fetch: HTTP GET of pages on an allow-list of hosts, with size and time caps.

The allow-list is fixed when the server starts (``--allow HOST`` or ``--allow HOST:PORT``, repeatable).
A URL is fetched only when:

- its scheme is ``http`` or ``https``;
- its host equals an entry exactly (case-insensitive; no wildcards, no subdomains). ``localhost`` and
  ``127.0.0.1`` are different hosts, and so are other spellings of an address (``2130706433``);
- its port is the entry's port, or the scheme's default port (80, 443) when the entry has none.

Redirects are followed by hand, at most ``max_redirects`` hops, and each hop is checked against the
allow-list before it is requested. The body is streamed and reading stops at ``max_bytes`` (the text then
ends with a marker); gzip and deflate bodies are inflated in bounded steps, so a compression bomb stops
at the same cap. The whole fetch, redirects included, must finish within ``timeout_s``. No cookies (not
even between the hops of one fetch: requests go through an HTTP transport, which has no cookie jar), no
proxies, nothing kept between calls. A charset Python cannot decode a body with is read as UTF-8.

Not covered: DNS rebinding. The allow-list names hosts, and a name is trusted to resolve where its owner
points it; an allowed name that resolves to a private or loopback address is fetched.

Run it over stdio with ``python -m servers.fetch --allow example.com [--allow HOST:PORT ...]``.
"""

from __future__ import annotations

import argparse
import zlib
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Annotated

import anyio
import httpx
from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

MAX_URL_CHARS = 2048
USER_AGENT = "agent-sandbox-fetch/1.0"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_REDIRECTS = {301, 302, 303, 307, 308}
_HEADERS = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}


@dataclass(frozen=True)
class FetchLimits:
    """Caps of one fetch server."""

    max_bytes: int = 1_000_000  # of body, after decompression
    timeout_s: float = 10.0  # for the whole fetch, redirects included
    max_redirects: int = 5


class Page(BaseModel):
    """What a GET returned. Any HTTP status is a result; only refusals and failures are errors."""

    url: str = Field(description="The URL finally fetched (after redirects).")
    status: int = Field(description="HTTP status code, e.g. 200 or 404.")
    content_type: str = Field(description="The Content-Type header, or '' when there is none.")
    text: str = Field(description="The body as text; ends with a marker when it was cut.")
    truncated: bool = Field(description="True when the body was longer than the size cap.")
    bytes_read: int = Field(description="Body bytes read (after decompression).")
    redirects: list[str] = Field(description="URLs that redirected here, in order; empty when none.")


# --------------------------------------------------------------------------- the allow-list


@dataclass(frozen=True)
class AllowedHost:
    """One allow-list entry: a host, and a port or None for the scheme's default port."""

    host: str
    port: int | None

    @classmethod
    def parse(cls, entry: str) -> AllowedHost:
        """``example.com``, ``example.com:8080``, ``127.0.0.1:8000`` or ``[::1]:8000``."""
        text = entry.strip()
        if not text or any(mark in text for mark in ("/", "@", "?", "#", "*")):
            raise ValueError(f"allow-list entry {entry!r} must be HOST or HOST:PORT, e.g. 'example.com:8080'")
        try:
            url = httpx.URL(f"http://{text}")
            host = url.host  # decoded on access, where a bad international name raises IDNAError
        except (httpx.InvalidURL, UnicodeError) as exc:
            raise ValueError(f"allow-list entry {entry!r} is not a host: {exc}") from exc
        return cls(host=host, port=url.port)

    def admits(self, url: httpx.URL) -> bool:
        if url.host != self.host:
            return False
        if self.port is None:
            return url.port is None  # the scheme's default port
        return (url.port or _DEFAULT_PORTS[url.scheme]) == self.port

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"


class AllowList:
    """The hosts a fetch server may contact."""

    def __init__(self, entries: Sequence[str]) -> None:
        self.hosts = tuple(AllowedHost.parse(entry) for entry in entries)

    def __str__(self) -> str:
        return ", ".join(str(host) for host in self.hosts) or "none"

    def check(self, url: httpx.URL, what: str = "URL") -> None:
        """A ToolError unless ``url`` is http(s) to an allowed host and port."""
        if url.scheme not in _DEFAULT_PORTS:
            raise ToolError(f"Only http and https URLs can be fetched; the {what} has scheme {url.scheme!r}.")
        if not url.host:
            raise ToolError(f"The {what} {str(url)!r} has no host.")
        if not any(host.admits(url) for host in self.hosts):
            where = url.netloc.decode("ascii", errors="replace")
            raise ToolError(
                f"The {what} goes to {where!r}, which is not on the allow-list ({self}); refused."
            )


def _parse_url(text: str, base: httpx.URL | None = None) -> httpx.URL:
    """``text`` as a URL, or as a redirect's Location joined to ``base``; a ToolError says what is wrong.

    httpx reports most bad URLs as InvalidURL, but a bad international name (``http://xn--/``) as an
    IDNAError (a UnicodeError), and only when the host is read; both are refusals with their reason.
    """
    try:
        url = httpx.URL(text.strip()) if base is None else base.join(text)
        _ = url.host  # decoded on access, where a bad name raises
    except (httpx.InvalidURL, UnicodeError, ValueError) as exc:
        if base is not None:
            raise ToolError(
                f"The redirect from {str(base)!r} to {text!r} is not a valid URL: {exc}."
            ) from exc
        raise ToolError(f"{text!r} is not a valid URL: {exc}.") from exc
    if not url.scheme:
        raise ToolError(f"{text!r} is not an absolute URL; give one such as 'https://example.com/page'.")
    return url


# --------------------------------------------------------------------------- fetching


class _Body:
    """Collects a body up to a cap, inflating gzip/deflate in bounded steps."""

    def __init__(self, encoding: str, cap: int) -> None:
        if encoding in ("", "identity"):
            self._inflate = None
        elif encoding in ("gzip", "x-gzip", "deflate"):
            self._inflate = zlib.decompressobj(zlib.MAX_WBITS | 32)  # zlib or gzip header, detected
        else:
            raise ToolError(
                f"The server sent the body encoded as {encoding!r}, which this server cannot read."
            )
        self.cap = cap
        self.data = bytearray()
        self.truncated = False

    def add(self, chunk: bytes) -> bool:
        """Take a chunk; False once the cap is passed (stop reading)."""
        room = self.cap + 1 - len(self.data)
        if self._inflate is not None:
            try:
                chunk = self._inflate.decompress(chunk, room)
            except zlib.error as exc:
                raise ToolError(f"The server sent a corrupt compressed body: {exc}.") from exc
        self.data += chunk[:room]
        if len(self.data) > self.cap:
            del self.data[self.cap :]
            self.truncated = True
        return not self.truncated


def _decode(data: bytes, charset: str | None) -> str:
    """``data`` in its declared charset, or as UTF-8 when Python has no such text codec.

    Unknown names raise LookupError, and so do codecs that are not text encodings (``base64``); some
    text codecs cannot decode a body at all (``idna`` refuses ``errors="replace"``, ``undefined``
    refuses everything) and raise UnicodeError. Either way the body is still shown, as UTF-8.
    """
    if charset:
        with suppress(LookupError, UnicodeError):
            return data.decode(charset, errors="replace")
    return data.decode("utf-8", errors="replace")


def _text(body: _Body, response: httpx.Response) -> str:
    data = bytes(body.data)
    if b"\x00" in data:
        kind = response.headers.get("content-type") or "unknown type"
        text = f"[binary content ({kind}), {len(data)} bytes, not shown]"
    else:
        text = _decode(data, response.charset_encoding)
    if body.truncated:
        text += f"\n[... truncated: the body is longer than {body.cap} bytes]"
    return text


class Fetcher:
    """GETs allowed URLs through an HTTP transport alone, with no client around it.

    httpx's client keeps a cookie jar, even across the hops of one fetch; the transport has none, and
    no proxies, no authentication and no default headers either. One transport per call, so nothing
    (connections included) carries over between calls.
    """

    def __init__(self, allow: AllowList, limits: FetchLimits) -> None:
        self.allow = allow
        self.limits = limits

    async def fetch(self, text: str) -> Page:
        url = _parse_url(text)
        self.allow.check(url)
        try:
            with anyio.fail_after(self.limits.timeout_s):
                return await self._fetch(url)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise ToolError(
                f"No complete answer from {url.host} within {self.limits.timeout_s:g} s."
            ) from exc
        except httpx.ConnectError as exc:
            raise ToolError(f"Could not connect to {url.host}: {exc}.") from exc
        except httpx.HTTPError as exc:
            raise ToolError(f"The request to {url.host} failed: {type(exc).__name__}: {exc}.") from exc

    async def _fetch(self, url: httpx.URL) -> Page:
        redirects: list[str] = []
        timeout = httpx.Timeout(self.limits.timeout_s).as_dict()
        async with httpx.AsyncHTTPTransport(trust_env=False, retries=0) as transport:
            while True:
                request = httpx.Request("GET", url, headers=_HEADERS, extensions={"timeout": timeout})
                response = await transport.handle_async_request(request)
                try:
                    location = response.headers.get("location")
                    if response.status_code not in _REDIRECTS or not location:
                        return await self._page(url, response, redirects)
                finally:
                    await response.aclose()
                if len(redirects) == self.limits.max_redirects:
                    raise ToolError(
                        f"More than {self.limits.max_redirects} redirects; stopped at {str(url)!r}."
                    )
                target = _parse_url(location, base=url)
                self.allow.check(target, what=f"redirect from {str(url)!r} to {str(target)!r}")
                redirects.append(str(url))
                url = target

    async def _page(self, url: httpx.URL, response: httpx.Response, redirects: list[str]) -> Page:
        body = _Body(response.headers.get("content-encoding", "").strip().lower(), self.limits.max_bytes)
        async for chunk in response.aiter_raw():
            if not body.add(chunk):
                break
        return Page(
            url=str(url),
            status=response.status_code,
            content_type=response.headers.get("content-type", ""),
            text=_text(body, response),
            truncated=body.truncated,
            bytes_read=len(body.data),
            redirects=redirects,
        )


# --------------------------------------------------------------------------- the server

Url = Annotated[
    str,
    Field(
        description="The http(s) URL to GET, e.g. 'https://example.com/page'.",
        min_length=1,
        max_length=MAX_URL_CHARS,
    ),
]


def make_server(allow: Sequence[str], limits: FetchLimits | None = None) -> MCPServer:
    """A fetch server for the hosts in ``allow`` (``HOST`` or ``HOST:PORT``); ValueError on a bad entry."""
    limits = limits or FetchLimits()
    fetcher = Fetcher(AllowList(allow), limits)
    server = MCPServer(
        "fetch", version="1.0.0", instructions=f"Fetches web pages from these hosts only: {fetcher.allow}."
    )

    @server.tool(
        description=(
            f"GET a web page and return its status, content type and text. Allowed hosts: {fetcher.allow}. "
            f"Bodies over {limits.max_bytes} bytes are cut; the fetch must finish within "
            f"{limits.timeout_s:g} s; redirects are followed only to allowed hosts."
        ),
        annotations=ToolAnnotations(read_only_hint=True, open_world_hint=True),
    )
    async def fetch(url: Url) -> Page:
        return await fetcher.fetch(url)

    return server


def main(argv: list[str] | None = None) -> None:
    """``python -m servers.fetch --allow HOST[:PORT] ...``: serve over stdio."""
    defaults = FetchLimits()
    parser = argparse.ArgumentParser(prog="python -m servers.fetch", description=main.__doc__)
    parser.add_argument(
        "--allow", action="append", default=[], metavar="HOST[:PORT]", help="a host that may be fetched"
    )
    parser.add_argument("--max-bytes", type=int, default=defaults.max_bytes)
    parser.add_argument("--timeout", type=float, default=defaults.timeout_s, metavar="SECONDS")
    parser.add_argument("--max-redirects", type=int, default=defaults.max_redirects)
    args = parser.parse_args(argv)
    try:
        server = make_server(args.allow, FetchLimits(args.max_bytes, args.timeout, args.max_redirects))
    except ValueError as exc:
        parser.exit(2, f"fetch server: {exc}\n")
    server.run()  # stdio; MCPServer sends its logs to stderr, stdout is the wire


if __name__ == "__main__":
    main()
