"""ToolHub: the MCP client side. One connection per configured server, over stdio, streamable HTTP
or in memory, configured by the ``{"mcpServers": {...}}`` JSON that other MCP clients read.

Each connection is owned by one background task that holds the ``mcp.Client`` open; calls from any
task go through it. When a server dies or stops answering, the failing call comes back as an
``is_error`` result that says so, the connection is restarted, and the episode goes on.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import anyio
from anyio.abc import TaskGroup

from sandbox._errors import ConfigError, ServerStartError
from sandbox._records import ServerInfo, ToolErrorKind, ToolResult, ToolSpec

DEFAULT_CALL_TIMEOUT = 30.0
DEFAULT_START_TIMEOUT = 30.0
# Tool output beyond this is cut before the model sees it: one runaway tool must not fill the context.
MAX_RESULT_CHARS = 8000
_PYTHON_NAMES = {"python", "python3", "python3.11"}


@dataclass(frozen=True)
class ServerConfig:
    """One entry of ``mcpServers``: a command to run over stdio, a URL, or an in-memory server."""

    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    server: Any = None  # an MCPServer object, connected in memory (tests)

    @property
    def transport(self) -> str:
        if self.server is not None:
            return "memory"
        return "http" if self.url else "stdio"


def load_config(source: str | Path | Mapping[str, Any]) -> dict[str, ServerConfig]:
    """Read an ``mcpServers`` config from a file or a mapping and check every entry.

    ``"python"`` as a command means the interpreter running the sandbox, so bundled servers work
    from a virtual environment without activating it. A command that cannot be found is an error
    here, before any episode starts.
    """
    base: Path | None = None
    if isinstance(source, str | Path):
        path = Path(source)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read server config {path}: {exc.strerror or exc}") from exc
        except json.JSONDecodeError as exc:
            raise ConfigError(f"server config {path} is not JSON: {exc.msg} (line {exc.lineno})") from exc
        base = path.parent
        where = str(path)
    else:
        raw, where = source, "server config"
    servers = raw.get("mcpServers") if isinstance(raw, Mapping) else None
    if not isinstance(servers, Mapping):
        raise ConfigError(f'{where}: expected an object with "mcpServers": {{"name": {{...}}}}')
    return {name: _server_config(name, entry, where, base) for name, entry in servers.items()}


def _server_config(name: str, entry: Any, where: str, base: Path | None) -> ServerConfig:
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where}: server {name!r} must be an object")
    url = entry.get("url")
    command = entry.get("command")
    if bool(url) == bool(command):
        raise ConfigError(f'{where}: server {name!r} needs exactly one of "command" or "url"')
    if url:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigError(
                f"{where}: server {name!r}: url must start with http:// or https://, got {url!r}"
            )
        return ServerConfig(name=name, url=url)
    args = entry.get("args", [])
    env = entry.get("env", {})
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise ConfigError(f'{where}: server {name!r}: "args" must be a list of strings')
    if not isinstance(env, Mapping) or not all(isinstance(v, str) for v in env.values()):
        raise ConfigError(f'{where}: server {name!r}: "env" must map names to strings')
    cwd = entry.get("cwd")
    if cwd is not None and base is not None:
        cwd = str((base / cwd).resolve())
    return ServerConfig(
        name=name,
        command=_resolve_command(name, str(command), where),
        args=tuple(args),
        env=dict(env),
        cwd=cwd,
    )


def _resolve_command(name: str, command: str, where: str) -> str:
    if command in _PYTHON_NAMES:
        return sys.executable
    # PATH first, then the scripts folder of this interpreter (servers installed beside the sandbox
    # in the same virtual environment, which need not be activated).
    found = shutil.which(command) or shutil.which(command, path=str(Path(sys.executable).parent))
    if found is None:
        raise ConfigError(
            f"{where}: server {name!r}: command {command!r} not found "
            '(install it, or give its full path in "command")'
        )
    return found


# --------------------------------------------------------------------------- connections


class _Connection:
    """One live MCP session, held open by a task of the hub's task group."""

    def __init__(self, config: ServerConfig, log: TextIO | None) -> None:
        self.config = config
        self.log = log
        self.client: Any = None
        self.tools: list[Any] = []
        self.info = ServerInfo(name=config.name, transport=config.transport)
        self.error: BaseException | None = None
        self.starts = 0
        self._ready = anyio.Event()
        self._stop = anyio.Event()
        self.done = anyio.Event()

    def _target(self) -> Any:
        from mcp import StdioServerParameters
        from mcp.client.stdio import stdio_client

        config = self.config
        if config.server is not None:
            return config.server
        if config.url:
            return config.url
        params = StdioServerParameters(
            command=config.command or "", args=list(config.args), env=dict(config.env) or None, cwd=config.cwd
        )
        return stdio_client(params, errlog=self.log) if self.log is not None else params

    async def start(self, group: TaskGroup, timeout: float) -> None:
        self.starts += 1
        group.start_soon(self._run)
        with anyio.move_on_after(timeout):
            await self._ready.wait()
        if not self._ready.is_set():
            self._stop.set()
            raise ServerStartError(
                f"server {self.config.name!r} did not answer within {timeout:.0f} s{self._log_hint()}"
            )
        if self.error is not None:
            raise ServerStartError(
                f"server {self.config.name!r} failed to start: {_describe(self.error)}{self._log_hint()}"
            )

    def _log_hint(self) -> str:
        name = getattr(self.log, "name", None)
        return f" (its stderr is in {name})" if isinstance(name, str) else ""

    async def _run(self) -> None:
        from mcp import Client

        try:
            async with Client(self._target()) as client:
                self.client = client
                self.tools = await list_all_tools(client)
                info = client.server_info
                self.info = ServerInfo(
                    name=self.config.name,
                    version=(info.version or "") if info is not None else "",
                    transport=self.config.transport,
                )
                self._ready.set()
                await self._stop.wait()
        except Exception as exc:  # the server's failure belongs to this connection, not the hub
            self.error = exc
        finally:
            self.client = None
            self._ready.set()
            self.done.set()

    async def stop(self) -> None:
        self._stop.set()
        with anyio.move_on_after(10):
            await self.done.wait()


async def list_all_tools(client: Any) -> list[Any]:
    """Every tool a connected client's server lists, following pagination."""
    tools: list[Any] = []
    cursor = None
    while True:
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            return tools


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if str(exc) else text


# --------------------------------------------------------------------------- the hub


class ToolHub:
    """MCP connections for a run: lists tools, calls them with a timeout, restarts dead servers.

    Use as ``async with ToolHub(load_config("mcp.json")) as hub:``.
    """

    def __init__(
        self,
        servers: Mapping[str, ServerConfig],
        *,
        call_timeout: float = DEFAULT_CALL_TIMEOUT,
        start_timeout: float = DEFAULT_START_TIMEOUT,
        log_path: str | Path | None = None,
    ) -> None:
        self._configs = dict(servers)
        self.call_timeout = call_timeout
        self.start_timeout = start_timeout
        self.log_path = (
            Path(log_path) if log_path else Path(tempfile.gettempdir()) / f"sandbox-servers-{os.getpid()}.log"
        )
        self._log: TextIO | None = None
        self._connections: dict[str, _Connection] = {}
        self._routes: dict[str, tuple[str, str]] = {}  # exposed tool name -> (server, tool name)
        self._specs: dict[str, list[ToolSpec]] = {}
        self._group: TaskGroup | None = None
        self._group_cm: Any = None
        self.restarts: dict[str, int] = {}
        self._restart_locks: dict[str, anyio.Lock] = {}

    @classmethod
    def in_memory(cls, servers: Mapping[str, Any], **options: float) -> ToolHub:
        """A hub over server objects in this process (tests, notebooks)."""
        return cls({name: ServerConfig(name=name, server=obj) for name, obj in servers.items()}, **options)

    async def __aenter__(self) -> ToolHub:
        self._log = self.log_path.open("a", encoding="utf-8")
        self._group_cm = anyio.create_task_group()
        self._group = await self._group_cm.__aenter__()
        try:
            for name, config in self._configs.items():
                await self._connect(name, config)
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for connection in self._connections.values():
            connection._stop.set()
        if self._group_cm is not None:
            group_cm, self._group_cm = self._group_cm, None
            await group_cm.__aexit__(None, None, None)
        if self._log is not None:
            self._log.close()
            self._log = None

    async def _connect(self, name: str, config: ServerConfig) -> None:
        assert self._group is not None, "ToolHub must be entered with `async with`"
        connection = _Connection(config, self._log if config.transport == "stdio" else None)
        self._connections[name] = connection
        await connection.start(self._group, self.start_timeout)
        self._specs[name] = [self._spec(name, tool) for tool in connection.tools]

    def _spec(self, server: str, tool: Any) -> ToolSpec:
        exposed = tool.name
        owner = self._routes.get(exposed)
        if owner is not None and owner[0] != server:
            exposed = f"{server}__{tool.name}"  # two servers with one tool name: qualify the later one
        self._routes[exposed] = (server, tool.name)
        return ToolSpec(
            name=exposed,
            description=tool.description or "",
            input_schema=dict(tool.input_schema or {"type": "object", "properties": {}}),
            output_schema=dict(tool.output_schema) if tool.output_schema else None,
            server=server,
        )

    # -- queries ---------------------------------------------------------------------------

    @property
    def server_names(self) -> list[str]:
        return list(self._configs)

    def tools(self, servers: Sequence[str] | None = None) -> list[ToolSpec]:
        """The tools of the named servers (all servers when None), in config order."""
        names = self.server_names if servers is None else list(servers)
        unknown = [n for n in names if n not in self._specs]
        if unknown:
            raise ConfigError(f"unknown server(s) {unknown}; configured: {self.server_names}")
        return [spec for name in names for spec in self._specs[name]]

    def server_info(self, servers: Sequence[str] | None = None) -> list[ServerInfo]:
        names = self.server_names if servers is None else list(servers)
        return [self._connections[n].info for n in names if n in self._connections]

    # -- calls -----------------------------------------------------------------------------

    async def call(
        self,
        name: str,
        arguments: Mapping[str, Any],
        *,
        servers: Sequence[str] | None = None,
        timeout: float | None = None,
    ) -> ToolResult:
        """Call a tool. Every failure comes back as an ``is_error`` result; nothing raises."""
        route = self._routes.get(name)
        allowed = self.server_names if servers is None else servers
        if route is None or route[0] not in allowed:
            known = ", ".join(spec.name for spec in self.tools(allowed)) or "none"
            return ToolResult(
                text=f"Unknown tool: {name}. Available tools: {known}",
                is_error=True,
                error_kind="unknown_tool",
            )
        server, tool = route
        return await self._call(server, tool, dict(arguments), timeout or self.call_timeout)

    async def _call(self, server: str, tool: str, arguments: dict[str, Any], timeout: float) -> ToolResult:
        from mcp import MCPError

        connection = self._connections[server]
        if connection.client is None:  # down since an earlier failure: one more try to bring it back
            try:
                await self._restart(server, connection)
            except ServerStartError as exc:
                return ToolResult(
                    text=f"server {server!r} is unavailable: {exc}",
                    is_error=True,
                    error_kind="server_crashed",
                )
            connection = self._connections[server]
        result: Any = None
        failure: ToolResult | None = None
        with anyio.move_on_after(timeout + 1.0) as deadline:
            async with anyio.create_task_group() as race:

                async def do_call() -> None:
                    nonlocal result, failure
                    try:
                        result = await connection.client.call_tool(
                            tool, arguments, read_timeout_seconds=timeout
                        )
                    except MCPError as exc:
                        kind = _error_kind(exc.code)
                        text = (
                            f"server {server!r} exited during the call ({exc})"
                            if kind == "server_crashed"
                            else f"{server}.{tool}: {exc}"
                        )
                        failure = ToolResult(text=text, is_error=True, error_kind=kind)
                    except Exception as exc:  # a broken stream or a malformed reply: the server is gone
                        failure = ToolResult(
                            text=f"server {server!r} failed during the call: {_describe(exc)}",
                            is_error=True,
                            error_kind="server_crashed",
                        )
                    race.cancel_scope.cancel()

                async def watch() -> None:
                    nonlocal failure
                    await connection.done.wait()
                    failure = ToolResult(
                        text=f"server {server!r} exited during the call",
                        is_error=True,
                        error_kind="server_crashed",
                    )
                    race.cancel_scope.cancel()

                race.start_soon(do_call)
                race.start_soon(watch)
        if deadline.cancelled_caught and failure is None and result is None:
            failure = ToolResult(
                text=f"{server}.{tool}: no answer within {timeout:.1f} s", is_error=True, error_kind="timeout"
            )
        if failure is not None:
            if failure.error_kind in ("server_crashed", "timeout") or connection.done.is_set():
                failure = await self._after_failure(server, connection, failure)
            return failure
        return _tool_result(result)

    async def _after_failure(self, server: str, failed: _Connection, failure: ToolResult) -> ToolResult:
        try:
            await self._restart(server, failed)
        except ServerStartError as exc:
            return failure.model_copy(update={"text": f"{failure.text}; restart failed: {exc}"})
        return failure.model_copy(update={"text": f"{failure.text}; the server was restarted"})

    async def _restart(self, server: str, failed: _Connection) -> None:
        """Replace ``failed`` with a new connection, unless a concurrent call already did."""
        async with self._restart_locks.setdefault(server, anyio.Lock()):
            if self._connections[server] is not failed:
                return
            await failed.stop()
            self.restarts[server] = self.restarts.get(server, 0) + 1
            await self._connect(server, self._configs[server])


def _error_kind(code: int) -> ToolErrorKind:
    """What a JSON-RPC error from a call means: a timeout, a dead server, or a protocol fault."""
    from mcp.types import CONNECTION_CLOSED, REQUEST_TIMEOUT  # mcp is heavy: imported on use

    kinds: dict[int, ToolErrorKind] = {REQUEST_TIMEOUT: "timeout", CONNECTION_CLOSED: "server_crashed"}
    return kinds.get(code, "protocol_error")


def _tool_result(result: Any) -> ToolResult:
    texts = []
    for block in result.content or []:
        text = getattr(block, "text", None)
        texts.append(text if isinstance(text, str) else f"[{getattr(block, 'type', 'content')} content]")
    text = "\n".join(texts)
    if not text and result.structured_content is not None:
        text = json.dumps(result.structured_content, ensure_ascii=False)
    if len(text) > MAX_RESULT_CHARS:
        text = text[:MAX_RESULT_CHARS] + f"\n[... {len(text) - MAX_RESULT_CHARS} more characters cut]"
    return ToolResult(
        text=text,
        is_error=bool(result.is_error),
        error_kind="tool_error" if result.is_error else None,
        structured=result.structured_content if isinstance(result.structured_content, dict) else None,
    )
