"""ToolHub: the MCP client side. One connection per configured server, over stdio, streamable HTTP
or in memory, configured by the ``{"mcpServers": {...}}`` JSON that other MCP clients read.

Each connection is owned by one background task that holds the ``mcp.Client`` open; calls from any
task go through it. When a server dies or stops answering, the failing call comes back as an
``is_error`` result that says so, the connection is restarted, and the episode goes on.

Episodes and state. A server whose config entry says ``"stateful": true`` keeps state that one
episode must not see from another (a play history, a folder). ``hub.episode(servers)`` gives an
episode its own view of the hub: stateless servers are shared, and each stateful server is a
connection of that episode alone, closed when the episode ends and never reused. Those connections
come from a warm pool per stateful server (``pool_size`` of them started ahead, refilled in the
background as episodes take them; filling begins at the first episode), so an episode does not
wait for a server process to start.

Per-connection isolation is per process for stdio servers, and per MCP session for HTTP servers
(isolated only if the server keeps its state per session). A stdio server whose state lives on disk
puts ``{state_dir}`` in its ``args``, ``env`` or ``cwd``: every connection gets a fresh empty
folder there, removed when the connection closes.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import secrets
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import anyio
from anyio.abc import TaskGroup

from sandbox.hub._config import DEFAULT_POOL_SIZE, STATE_DIR, ServerConfig, shared_state_warning
from sandbox.hub._pool import PoolClosedError, WarmPool
from sandbox.records import (
    ConfigError,
    ServerInfo,
    ServerStartError,
    ToolErrorKind,
    ToolResult,
    ToolSpec,
    loads_bounded,
    value_problem,
)

DEFAULT_CALL_TIMEOUT = 30.0
DEFAULT_START_TIMEOUT = 30.0
# Tool output beyond this is cut before the model sees it: one runaway tool must not fill the context.
MAX_RESULT_CHARS = 8000
_log = logging.getLogger("sandbox.hub")
# An embedded text resource in a result shows at most this much of its text.
MAX_RESOURCE_CHARS = 4000


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
        self.state_dir: str | None = None
        # The first line the server wrote on stdout that is not a JSON-RPC message, when it did: the
        # connection ends there (stdio MCP allows nothing else on stdout).
        self.bad_output: str | None = None
        self._log_offset = 0
        self._ready = anyio.Event()
        self._stop = anyio.Event()
        self._scope = anyio.CancelScope()
        self.done = anyio.Event()

    @property
    def alive(self) -> bool:
        return self.client is not None and not self.done.is_set()

    def _target(self) -> Any:
        from mcp import StdioServerParameters
        from mcp.client.stdio import stdio_client

        config = self.config
        if config.server is not None:
            return config.server() if callable(config.server) else config.server
        if config.url and config.sse:
            from mcp.client.sse import sse_client

            return sse_client(config.url)
        if config.url:
            return config.url
        args, env, cwd = list(config.args), dict(config.env), config.cwd
        if any(STATE_DIR in text for text in (*args, *env.values(), cwd or "")):
            # The owner's pid in the name: a later hub removes it if this process dies unclean.
            self.state_dir = tempfile.mkdtemp(prefix=f"sandbox-{config.name}-pid{os.getpid()}-")
            args = [arg.replace(STATE_DIR, self.state_dir) for arg in args]
            env = {key: value.replace(STATE_DIR, self.state_dir) for key, value in env.items()}
            cwd = cwd.replace(STATE_DIR, self.state_dir) if cwd else cwd
        params = StdioServerParameters(command=config.command or "", args=args, env=env or None, cwd=cwd)
        # Watched, so that a server that exits between calls (a pooled one, say) is noticed at once.
        return _watched(stdio_client(params, errlog=self.log or sys.stderr), self._stop, self._bad_output)

    def _bad_output(self, line: str) -> None:
        if self.bad_output is None:
            self.bad_output = line

    def bad_output_reason(self) -> str:
        return (
            f"it wrote a line on stdout that is not a JSON-RPC message: {self.bad_output} (an MCP server "
            "over stdio writes only JSON-RPC on stdout; logs belong on stderr)"
        )

    async def start(self, group: TaskGroup, timeout: float) -> None:
        if self.log is not None and hasattr(self.log, "fileno"):
            self.log.flush()
            self._log_offset = os.fstat(self.log.fileno()).st_size  # this server's stderr starts here
        group.start_soon(self._run)
        try:
            with anyio.move_on_after(timeout):
                await self._ready.wait()
        except BaseException:  # the caller was cancelled: nobody will hold this connection
            self.close()
            raise
        name = self.config.name
        if self.bad_output is not None:
            self.close()
            why = self.bad_output_reason()
            raise ServerStartError(f"server {name!r} failed to start: {why}{self._log_hint()}")
        if not self._ready.is_set():
            self.close()
            raise ServerStartError(f"server {name!r} did not answer within {timeout:.0f} s{self._log_hint()}")
        if self.error is not None:
            why = _describe(self.error)
            raise ServerStartError(f"server {name!r} failed to start: {why}{self._log_hint()}")
        if self.client is None:
            raise ServerStartError(f"server {name!r} was closed while it started")

    def _log_hint(self) -> str:
        """Where the server's stderr went, after its last lines (quoted, bounded) when it wrote any."""
        name = getattr(self.log, "name", None)
        if not isinstance(name, str):
            return ""
        tail = stderr_tail(name, self._log_offset)
        said = f"; its stderr ends: {tail}" if tail else "; it wrote nothing on stderr"
        return f"{said} (its stderr is in {name})"

    async def _run(self) -> None:
        from mcp import Client

        try:
            with self._scope:
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
            if self.state_dir is not None:
                shutil.rmtree(self.state_dir, ignore_errors=True)
            self._ready.set()
            self.done.set()

    def close(self) -> None:
        """Begin closing without waiting: a ready session ends cleanly, a start is cancelled."""
        self._stop.set()
        if not self._ready.is_set():
            self._scope.cancel()

    async def stop(self) -> None:
        self.close()
        with anyio.move_on_after(10):
            await self.done.wait()


# What a start failure quotes of the server's stderr: its last lines, each and all cut short.
STDERR_TAIL_LINES = 5
_STDERR_LINE_CHARS = 300
_STDERR_READ_BYTES = 64 * 1024


def stderr_tail(path: str | Path, offset: int = 0) -> str:
    """The last ``STDERR_TAIL_LINES`` non-blank lines written to ``path`` after byte ``offset``,
    each cut to 300 characters, joined by `` | `` into one quoted line; "" when there are none."""
    try:
        with open(path, "rb") as log:
            size = os.fstat(log.fileno()).st_size
            log.seek(max(offset, size - _STDERR_READ_BYTES))
            data = log.read(_STDERR_READ_BYTES)
    except OSError:
        return ""
    lines = [line.strip() for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
    cut = [line if len(line) <= _STDERR_LINE_CHARS else line[:_STDERR_LINE_CHARS] + "…" for line in lines]
    return repr(" | ".join(cut[-STDERR_TAIL_LINES:])) if cut else ""


@contextlib.asynccontextmanager
async def _watched(
    transport: Any, ended: anyio.Event, bad_output: Callable[[str], None]
) -> AsyncIterator[tuple[Any, Any]]:
    """``transport``'s streams, with ``ended`` set when the server's side of them ends.

    The messages from the server pass through a relay task, which sees the end of the stream (the
    server exited) even while no request is waiting for an answer. A line that is not a JSON-RPC
    message (the stdio client hands it on as an exception) goes to ``bad_output`` and ends the
    stream: a server that writes anything else on stdout has broken the protocol, and waiting for
    its answer would only end in a timeout.
    """
    async with transport as (read, write):
        relay_send, relay_receive = anyio.create_memory_object_stream[Any](0)

        async def relay() -> None:
            try:
                async with relay_send:
                    async for message in read:
                        if isinstance(message, Exception):
                            bad_output(_unreadable_line(message))
                            return
                        await relay_send.send(message)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass  # the session closed its end first: our own shutdown
            finally:
                ended.set()

        async with anyio.create_task_group() as group:
            group.start_soon(relay)
            try:
                yield relay_receive, write
            finally:
                group.cancel_scope.cancel()
                relay_receive.close()


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


# What a hub leaves in the temporary folder, with the pid of the process that made it.
_LEFTOVER_DIR = re.compile(r"sandbox-.+-pid(\d+)-[a-z0-9_]+")
_LEFTOVER_LOG = re.compile(r"sandbox-servers-(\d+)(?:-[0-9a-f]{8})?\.log")


def remove_leftovers(folder: str | Path | None = None) -> list[Path]:
    """Remove what hubs of processes that are gone (killed, say, with SIGKILL) left in ``folder``
    (the temporary folder by default): ``{state_dir}`` folders and server logs, found by the owner
    pid in their names. Only entries of this user whose owner pid no longer runs are removed; a
    hub calls this as it opens. Returns what it removed."""
    root = Path(folder) if folder is not None else Path(tempfile.gettempdir())
    removed: list[Path] = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith("sandbox-"):
            continue
        as_dir, as_log = _LEFTOVER_DIR.fullmatch(entry.name), _LEFTOVER_LOG.fullmatch(entry.name)
        match = as_log or as_dir
        try:
            if match is None or entry.is_symlink() or entry.stat().st_uid != os.getuid():
                continue
            if _running(int(match.group(1))):
                continue
            if as_log is not None and entry.is_file():
                os.unlink(entry.path)
            elif as_dir is not None and entry.is_dir():
                shutil.rmtree(entry.path)
            else:
                continue
        except OSError:
            continue  # another process got there first, or it is not ours to remove
        removed.append(Path(entry.path))
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # someone else's process (or a number no pid has): leave it
    return True


def _unreadable_line(exc: Exception) -> str:
    """The line a server wrote that the stdio client could not read, quoted and cut short."""
    from pydantic import ValidationError

    line: Any = str(exc)
    if isinstance(exc, ValidationError) and exc.errors():
        line = exc.errors(include_url=False)[0].get("input", line)
    text = line if isinstance(line, str) else json.dumps(line, default=str)
    return repr(text[:200] + ("…" if len(text) > 200 else ""))


class _QuietParseErrors(logging.Filter):
    """Drops the stdio client's traceback for each unreadable line: the hub reports the first one
    in its own error, and a server printing a log on stdout would print one per line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Failed to parse JSONRPC message")


logging.getLogger("mcp.client.stdio").addFilter(_QuietParseErrors())


def _needs_task(tool: Any) -> bool:
    """A tool that only runs as an MCP task (``execution.taskSupport: "required"``): a plain call
    fails with -32601, so such tools are not offered."""
    execution = getattr(tool, "execution", None)
    return getattr(execution, "task_support", None) == "required"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if str(exc) else text


class _Slot:
    """Where one server's calls go: a connection, and where its replacement comes from."""

    def __init__(
        self,
        config: ServerConfig,
        replace: Callable[[], Awaitable[_Connection]],
        connection: _Connection | None,
        *,
        lazy: bool = False,
        info: ServerInfo | None = None,
    ) -> None:
        self.config = config
        self.connection = connection
        self.restarts = 0
        self._replace = replace
        self._lock = anyio.Lock()
        # No connection on purpose: the first one, started at the first call, is not a restart.
        self._lazy = lazy
        self._info = connection.info if connection is not None else info

    @property
    def info(self) -> ServerInfo:
        if self.connection is not None:
            return self.connection.info
        return self._info or ServerInfo(name=self.config.name, transport=self.config.transport)

    async def call(self, tool: str, arguments: dict[str, Any], timeout: float) -> ToolResult:
        """Call a tool. Every failure comes back as an ``is_error`` result; nothing raises."""
        from mcp import MCPError

        server = self.config.name
        connection = self.connection
        if connection is None or connection.client is None:  # down since an earlier failure: try again
            try:
                await self._restart(connection)
            except ServerStartError as exc:
                return _unavailable(server, str(exc))
            connection = self.connection
            if connection is None or connection.client is None:
                return _unavailable(server, "it could not be restarted")
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
        if connection.bad_output is not None:  # whichever way the call ended, this is why
            why = connection.bad_output_reason()
            failure = ToolResult(
                text=f"server {server!r} broke the protocol during the call: {why}",
                is_error=True,
                error_kind="protocol_error",
            )
        if failure is not None:
            broken = connection.done.is_set() or connection.bad_output is not None
            if failure.error_kind in ("server_crashed", "timeout") or broken:
                failure = await self._after_failure(connection, failure)
            return failure
        return _tool_result(result)

    async def read_state(self, uri: str, timeout: float) -> Any:
        """The JSON document of resource ``uri`` on this server, or None when it cannot be read
        (no connection, no such resource, not JSON, no answer within ``timeout``). Never raises."""
        connection = self.connection
        if connection is None or connection.client is None:
            return None
        with anyio.move_on_after(timeout):
            try:
                result = await connection.client.read_resource(uri)
                text = next((getattr(part, "text", None) for part in result.contents), None)
                return loads_bounded(text, what=uri) if isinstance(text, str) else None
            except Exception:  # a state read must never end the episode: the check says "not read"
                return None
        return None

    async def _after_failure(self, failed: _Connection, failure: ToolResult) -> ToolResult:
        try:
            await self._restart(failed)
        except ServerStartError as exc:
            return failure.model_copy(update={"text": f"{failure.text}; restart failed: {exc}"})
        return failure.model_copy(update={"text": f"{failure.text}; the server was restarted"})

    async def _restart(self, failed: _Connection | None) -> None:
        """Replace ``failed`` with a new connection, unless a concurrent call already did."""
        async with self._lock:
            if self.connection is not failed:
                return
            if failed is not None:
                failed.close()  # a hung server is killed in the background; the call need not wait
            if self._lazy:
                self._lazy = False
            else:
                self.restarts += 1
            self.connection = None
            self.connection = await self._replace()
            self._info = self.connection.info


def _unavailable(server: str, why: str) -> ToolResult:
    text = f"server {server!r} is unavailable: {why}"
    return ToolResult(text=text, is_error=True, error_kind="server_crashed")


# --------------------------------------------------------------------------- the hub


class ToolHub:
    """MCP connections for a run: lists tools, calls them with a timeout, restarts dead servers.

    Use as ``async with ToolHub(load_config("mcp.json")) as hub:``, and give each episode its own
    view with ``async with hub.episode(task.servers) as tools:``. Calls made on the hub itself go
    to one shared connection per server, stateful ones included.
    """

    def __init__(
        self,
        servers: Mapping[str, ServerConfig],
        *,
        call_timeout: float = DEFAULT_CALL_TIMEOUT,
        start_timeout: float = DEFAULT_START_TIMEOUT,
        pool_size: int = DEFAULT_POOL_SIZE,
        log_path: str | Path | None = None,
    ) -> None:
        for config in servers.values():
            if config.stateful and config.server is not None and not callable(config.server):
                raise ConfigError(
                    f"in-memory server {config.name!r} is stateful: give a function that makes a fresh "
                    "server (such as make_server), not a server object"
                )
        if pool_size < 0:
            raise ConfigError(f"pool_size must be 0 or more, not {pool_size}")
        self._configs = dict(servers)
        self.call_timeout = call_timeout
        self.start_timeout = start_timeout
        self.pool_size = pool_size
        self._own_log = not log_path
        self.log_path = (
            Path(log_path)
            if log_path
            else Path(tempfile.gettempdir()) / f"sandbox-servers-{os.getpid()}-{secrets.token_hex(4)}.log"
        )
        self._log: TextIO | None = None
        self._keep_log = False  # a server failed: its stderr stays for the person to read
        self._made_log = False  # the log did not exist before this hub opened it
        self._slots: dict[str, _Slot] = {}
        self._pools: dict[str, WarmPool[_Connection]] = {}
        self._live: set[_Connection] = set()  # every connection not yet closed, for shutdown
        self._routes: dict[str, tuple[str, str]] = {}  # exposed tool name -> (server, tool name)
        self._specs: dict[str, list[ToolSpec]] = {}
        self._group: TaskGroup | None = None
        self._group_cm: Any = None
        self._closing = False
        # Tools each server lists that the model is not offered (they need MCP task augmentation).
        self.left_out: dict[str, list[str]] = {}
        # What start-up warned of (also logged), such as a stateful entry's fixed data path.
        self.warnings: list[str] = []
        # A stateful server's first connection (it listed the tools), until a pool or a call takes it.
        self._spare: dict[str, _Connection] = {}

    @classmethod
    def in_memory(
        cls,
        servers: Mapping[str, Any],
        *,
        call_timeout: float = DEFAULT_CALL_TIMEOUT,
        start_timeout: float = DEFAULT_START_TIMEOUT,
        pool_size: int = DEFAULT_POOL_SIZE,
    ) -> ToolHub:
        """A hub over servers in this process (tests, notebooks).

        Each value is a server object (shared by every episode) or a function that makes one: such
        a server is stateful, and every episode gets a fresh server from the function.
        """
        configs = {
            name: ServerConfig(name=name, server=obj, stateful=callable(obj)) for name, obj in servers.items()
        }
        return cls(configs, call_timeout=call_timeout, start_timeout=start_timeout, pool_size=pool_size)

    async def __aenter__(self) -> ToolHub:
        remove_leftovers()
        self._made_log = not self.log_path.exists()
        self._log = self.log_path.open("a", encoding="utf-8")
        self._group_cm = anyio.create_task_group()
        self._group = await self._group_cm.__aenter__()
        try:
            for name, config in self._configs.items():
                warning = shared_state_warning(config)
                if warning is not None:
                    self.warnings.append(warning)
                    _log.warning("%s", warning)
                connection = await self._open(config)
                offered = self._offered(config, connection.tools)
                self._specs[name] = [self._spec(name, tool) for tool in offered]
                if config.stateful:
                    # The connection that listed the tools is fresh: the first episode's pool takes
                    # it (or the first call made on the hub itself), so no process idles all run.
                    self._spare[name] = connection
                    replace = functools.partial(self._spare_or_open, config)
                    self._slots[name] = _Slot(config, replace, None, lazy=True, info=connection.info)
                else:
                    self._slots[name] = _Slot(config, functools.partial(self._open, config), connection)
            for name, config in self._configs.items():
                if config.stateful:
                    size = self.pool_size if config.pool_size is None else config.pool_size
                    # Filled from the first episode (or warm) on: a hub without episodes starts no more.
                    self._pools[name] = WarmPool(name, size, functools.partial(self._open, config))
        except BaseException as exc:
            self._keep_log = not isinstance(exc, ConfigError)  # a start failure's message names the log
            await self.__aexit__(None, None, None)
            raise
        return self

    def _offered(self, config: ServerConfig, tools: list[Any]) -> list[Any]:
        """The tools of ``config``'s server that the model is offered: those its ``"tools"`` and
        ``"exclude_tools"`` let through, less those that need MCP task augmentation (logged).
        A name in either list that the server does not list is a ConfigError."""
        name = config.name
        listed = [tool.name for tool in tools]
        for key, names in (("tools", config.tools or ()), ("exclude_tools", config.exclude_tools)):
            unknown = [tool for tool in dict.fromkeys(names) if tool not in listed]
            if unknown:
                raise ConfigError(
                    f'server {name!r}: "{key}" names {", ".join(map(repr, unknown))}, which it does not '
                    f"list (it lists: {', '.join(listed) or 'no tools'})"
                )
        allowed = [
            tool
            for tool in tools
            if (config.tools is None or tool.name in config.tools) and tool.name not in config.exclude_tools
        ]
        left_out = [tool.name for tool in allowed if _needs_task(tool)]
        if left_out:
            self.left_out[name] = left_out
            _log.warning(
                "server %r: tool(s) %s need MCP task augmentation, which this hub does not support; left out",
                name,
                ", ".join(left_out),
            )
        return [tool for tool in allowed if not _needs_task(tool)]

    async def _spare_or_open(self, config: ServerConfig) -> _Connection:
        """The stateful server's unused first connection when it is still there, else a new one."""
        spare = self._spare.pop(config.name, None)
        if spare is not None and spare.alive:
            return spare
        if spare is not None:
            spare.close()
        return await self._open(config)

    async def __aexit__(self, *exc_info: object) -> None:
        if exc_info and exc_info[0] is not None:
            self._keep_log = True
        try:
            await self._close()
        finally:
            self._drop_log()

    def _drop_log(self) -> None:
        """Remove a log this hub made, unless a server failed (an error message names the log) or
        the hub closes on an error; an empty log goes either way. A log at a path the hub was
        given stays, unless this hub made it and nothing was written to it."""
        if not self._own_log:
            with contextlib.suppress(OSError):
                if self._made_log and self.log_path.stat().st_size == 0:
                    self.log_path.unlink()
            return
        failed = self._keep_log or any(slot.restarts for slot in self._slots.values())
        with contextlib.suppress(OSError):
            if not failed or self.log_path.stat().st_size == 0:
                self.log_path.unlink()

    async def _close(self) -> None:
        self._closing = True
        for pool in self._pools.values():
            pool.close()
        for connection in list(self._live):
            connection.close()
        if self._group_cm is not None:
            group_cm, self._group_cm = self._group_cm, None
            await group_cm.__aexit__(None, None, None)
        self._group = None
        if self._log is not None:
            self._log.close()
            self._log = None

    async def _open(self, config: ServerConfig) -> _Connection:
        """A new connection to ``config``'s server, ready for calls."""
        if self._group is None or self._closing:
            raise ServerStartError(f"server {config.name!r} cannot start: the hub is not open")
        connection = _Connection(config, self._log if config.transport == "stdio" else None)
        self._live = {c for c in self._live if not c.done.is_set()}
        self._live.add(connection)
        try:
            await connection.start(self._group, self.start_timeout)
        except ServerStartError:
            self._keep_log = True
            raise
        return connection

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

    # -- episodes --------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def episode(self, servers: Sequence[str] | None = None) -> AsyncIterator[EpisodeHub]:
        """One episode's view of the hub, limited to ``servers`` (all when None).

        Each stateful server among them gets a connection of its own, taken from its warm pool (a
        new one is started when the pool is empty); it is closed when the block ends. A connection
        that cannot be had is retried at the episode's first call to that server, whose result
        says why if it fails again.
        """
        if self._group is None or self._closing:
            raise RuntimeError("enter the ToolHub with `async with` before opening an episode")
        names = self.server_names if servers is None else list(servers)
        self.tools(names)  # unknown names: a ConfigError, before anything starts
        slots = {name: self._slots[name] for name in names}
        own: dict[str, _Slot] = {}
        try:
            async with anyio.create_task_group() as group:
                for name in names:
                    if name in self._pools:
                        group.start_soon(self._episode_slot, name, own)
            slots.update(own)
            yield EpisodeHub(self, names, slots, own)
        finally:
            for slot in own.values():
                if slot.connection is not None:
                    slot.connection.close()

    async def _episode_slot(self, name: str, into: dict[str, _Slot]) -> None:
        take = functools.partial(self._take, name)
        slot = _Slot(self._configs[name], take, None)
        into[name] = slot
        with contextlib.suppress(ServerStartError):  # the slot retries at its first call
            slot.connection = await take()

    async def _take(self, name: str) -> _Connection:
        try:
            return await self._started_pool(name).take()
        except PoolClosedError as exc:
            raise ServerStartError(f"server {name!r} cannot start: the hub is closing") from exc

    async def warm(self) -> None:
        """Start filling the pool of every stateful server and wait until each is full.

        A run need not call it: pools start filling at the first episode that takes from them.
        """
        for name in self._pools:
            await self._started_pool(name).warm()

    def _started_pool(self, name: str) -> WarmPool[_Connection]:
        pool = self._pools[name]
        spare = self._spare.pop(name, None)
        if spare is not None:
            pool.give(spare)  # before it starts filling: the spare counts as one of its items
        if self._group is not None:
            pool.start(self._group)
        return pool

    def pooled(self) -> dict[str, int]:
        """Started connections waiting in the pool, per stateful server."""
        return {name: pool.ready for name, pool in self._pools.items()}

    # -- queries ---------------------------------------------------------------------------

    @property
    def server_names(self) -> list[str]:
        return list(self._configs)

    @property
    def restarts(self) -> dict[str, int]:
        """Restarts of the hub's shared connections, per server (episodes count their own)."""
        return {name: slot.restarts for name, slot in self._slots.items() if slot.restarts}

    def tools(self, servers: Sequence[str] | None = None) -> list[ToolSpec]:
        """The tools of the named servers (all servers when None), in config order."""
        names = self.server_names if servers is None else list(servers)
        unknown = [n for n in names if n not in self._specs]
        if unknown:
            raise ConfigError(f"unknown server(s) {unknown}; configured: {self.server_names}")
        return [spec for name in names for spec in self._specs[name]]

    def server_info(self, servers: Sequence[str] | None = None) -> list[ServerInfo]:
        names = self.server_names if servers is None else list(servers)
        return [self._slots[n].info for n in names if n in self._slots]

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
        allowed = self.server_names if servers is None else list(servers)
        return await self._dispatch(self._slots, name, arguments, allowed, timeout)

    async def _dispatch(
        self,
        slots: Mapping[str, _Slot],
        name: str,
        arguments: Mapping[str, Any],
        allowed: list[str],
        timeout: float | None,
    ) -> ToolResult:
        route = self._routes.get(name)
        if route is None or route[0] not in allowed:
            known = ", ".join(spec.name for spec in self.tools(allowed)) or "none"
            return ToolResult(
                text=f"Unknown tool: {name}. Available tools: {known}",
                is_error=True,
                error_kind="unknown_tool",
            )
        server, tool = route
        return await slots[server].call(tool, dict(arguments), timeout or self.call_timeout)


class EpisodeHub:
    """One episode's view of a ``ToolHub``, made by ``ToolHub.episode``; what ``run_episode`` takes.

    Stateless servers are the hub's shared connections; every stateful server is a connection of
    this episode alone, restarted (from the pool) on its own when it crashes or hangs.
    """

    def __init__(
        self, hub: ToolHub, servers: list[str], slots: Mapping[str, _Slot], own: Mapping[str, _Slot]
    ) -> None:
        self._hub = hub
        self._names = servers
        self._slots = dict(slots)
        self._own = dict(own)

    @property
    def server_names(self) -> list[str]:
        return list(self._names)

    @property
    def restarts(self) -> dict[str, int]:
        """Restarts of this episode's own connections, per stateful server."""
        return {name: slot.restarts for name, slot in self._own.items() if slot.restarts}

    def tools(self, servers: Sequence[str] | None = None) -> list[ToolSpec]:
        """The tools of the named servers (all of the episode's when None)."""
        return self._hub.tools(self._allowed(servers))

    def server_info(self, servers: Sequence[str] | None = None) -> list[ServerInfo]:
        return [self._slots[name].info for name in self._allowed(servers)]

    async def call(
        self,
        name: str,
        arguments: Mapping[str, Any],
        *,
        servers: Sequence[str] | None = None,
        timeout: float | None = None,
    ) -> ToolResult:
        """Call a tool. Every failure comes back as an ``is_error`` result; nothing raises."""
        return await self._hub._dispatch(self._slots, name, arguments, self._allowed(servers), timeout)

    async def read_state(self, server: str, uri: str, *, timeout: float | None = None) -> Any:
        """The JSON document of resource ``uri`` on ``server``, read through this episode's own
        connection (a stateful server's state is this episode's alone); None when it cannot be
        read. Resources are not tools: the model never sees this channel."""
        slot = self._slots.get(server)
        if slot is None:
            return None
        return await slot.read_state(uri, timeout or self._hub.call_timeout)

    def _allowed(self, servers: Sequence[str] | None) -> list[str]:
        if servers is None:
            return list(self._names)
        outside = [name for name in servers if name not in self._slots]
        if outside:
            raise ConfigError(f"server(s) {outside} are not part of this episode (it has {self._names})")
        return list(servers)


def _error_kind(code: int) -> ToolErrorKind:
    """What a JSON-RPC error from a call means: a timeout, a dead server, or a protocol fault."""
    from mcp.types import CONNECTION_CLOSED, REQUEST_TIMEOUT  # mcp is heavy: imported on use

    kinds: dict[int, ToolErrorKind] = {REQUEST_TIMEOUT: "timeout", CONNECTION_CLOSED: "server_crashed"}
    return kinds.get(code, "protocol_error")


def _block_text(block: Any) -> str:
    """What the model reads of one content block: text as it is; an embedded text resource as its
    URI and its text (at most ``MAX_RESOURCE_CHARS``); a resource link as its URI, name and
    description; binary data (images, audio, blobs) as its kind, MIME type and size."""
    kind = getattr(block, "type", "content")
    text = getattr(block, "text", None)
    if isinstance(text, str):
        return text
    if kind == "resource":
        resource = block.resource
        mime = f" ({resource.mime_type})" if resource.mime_type else ""
        body = getattr(resource, "text", None)
        if isinstance(body, str):
            if len(body) > MAX_RESOURCE_CHARS:
                cut = len(body) - MAX_RESOURCE_CHARS
                body = body[:MAX_RESOURCE_CHARS] + f"\n[... {cut} more characters of this resource cut]"
            return f"[resource {resource.uri}{mime}]\n{body}"
        return f"[resource {resource.uri}{mime}: {_size(getattr(resource, 'blob', ''))} of binary data]"
    if kind == "resource_link":
        parts = [f"[resource link {block.uri}", f" {block.name}" if block.name else ""]
        if block.description:
            parts.append(f": {block.description}")
        if block.mime_type:
            parts.append(f" ({block.mime_type})")
        return "".join(parts) + "]"
    data = getattr(block, "data", None)
    if isinstance(data, str):
        media = getattr(block, "mime_type", None)
        return f"[{kind}{f' {media}' if media else ''}: {_size(data)}, not shown]"
    return f"[{kind} content]"


def _size(base64_text: str) -> str:
    return f"{len(base64_text) * 3 // 4:,} bytes"


def _tool_result(result: Any) -> ToolResult:
    text = "\n".join(_block_text(block) for block in result.content or [])
    if not text and result.structured_content is not None:
        text = json.dumps(result.structured_content, ensure_ascii=False)
    if len(text) > MAX_RESULT_CHARS:
        text = text[:MAX_RESULT_CHARS] + f"\n[... {len(text) - MAX_RESULT_CHARS} more characters cut]"
    structured = result.structured_content if isinstance(result.structured_content, dict) else None
    if structured is not None and value_problem(structured) is not None:
        structured = None  # past a bound of what a trace holds: the text still carries the result
    return ToolResult(
        text=text,
        is_error=bool(result.is_error),
        error_kind="tool_error" if result.is_error else None,
        structured=structured,
    )
