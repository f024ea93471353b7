"""``mcpServers`` configs: each entry checked and its command found before anything starts.

The JSON is the one other MCP clients read: ``{"mcpServers": {"name": {"command", "args", "env",
"cwd"} | {"url"}}}``, plus this project's ``"stateful"``, ``"pool_size"``, ``"tools"`` (an
allow-list of the server's tool names: only those are offered and callable) and ``"exclude_tools"``
(names left out). A bare command name is
looked up on ``PATH``, then beside this interpreter, then in ``node_modules/.bin`` folders; ``"python"``
means the interpreter running the sandbox.

Keys that other clients' configs carry are honoured as those clients do, or refused in one line:

- ``"disabled": true`` (Cline, Roo, Windsurf): the server is left out, and a log line says so once;
  a run whose tasks use it is refused.
- ``"type"`` (VS Code, Claude Code): ``"stdio"``; ``"http"`` / ``"streamable-http"`` /
  ``"streamableHttp"`` (streamable HTTP); ``"sse"``, the legacy HTTP+SSE transport, through the mcp
  SDK's SSE client. Any other type is refused.
- ``${VAR}`` and ``${VAR:-default}`` (Claude Code's syntax) and ``${env:VAR}`` (VS Code's) in
  ``command``, ``args``, ``env``, ``cwd`` and ``url`` are replaced by the sandbox's environment. An
  unset variable without a default is refused, naming it; so is VS Code's ``${input:...}``, which
  prompts a person.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.records import ConfigError, read_text

# Started connections kept ready per stateful server. Two covers one episode after another (the
# next one takes the second while the first's replacement starts); runs with K episodes at once
# want about K.
DEFAULT_POOL_SIZE = 2
# In a stdio server's args, env or cwd: a fresh empty folder for each connection.
STATE_DIR = "{state_dir}"
_PYTHON_NAMES = {"python", "python3", "python3.11"}
# "type" as other clients write it -> the transport this hub uses.
_TRANSPORTS = {
    "stdio": "stdio",
    "http": "http",
    "streamable-http": "http",
    "streamableHttp": "http",
    "sse": "sse",
}
_VARIABLE_RE = re.compile(r"\$\{([^}]*)\}")
_NAME_RE = re.compile(r"(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.S)
_log = logging.getLogger("sandbox.hub")


@dataclass(frozen=True)
class ServerConfig:
    """One entry of ``mcpServers``: a command to run over stdio, a URL, or an in-memory server.

    ``stateful``: every episode gets its own connection (see ``ToolHub.episode``). ``pool_size``:
    how many of those the hub keeps started ahead; None takes the hub's ``pool_size``.
    """

    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    # In memory (tests): an MCPServer object, or a function that makes one (each connection calls
    # it, so a stateful server starts fresh for every episode).
    server: Any = None
    stateful: bool = False
    pool_size: int | None = None
    # ``url`` speaks the legacy HTTP+SSE transport (``"type": "sse"``) instead of streamable HTTP.
    sse: bool = False
    # ``"tools"``: only these of the server's tools are offered and callable (None: all of them).
    tools: tuple[str, ...] | None = None
    # ``"exclude_tools"``: these are not offered, and a call to one is an unknown-tool error.
    exclude_tools: tuple[str, ...] = ()

    @property
    def transport(self) -> str:
        if self.server is not None:
            return "memory"
        if self.url:
            return "sse" if self.sse else "http"
        return "stdio"


def load_config(
    source: str | Path | Mapping[str, Any], only: Collection[str] | None = None
) -> dict[str, ServerConfig]:
    """Read an ``mcpServers`` config from a file or a mapping and check every entry.

    ``"python"`` as a command means the interpreter running the sandbox, so bundled servers work
    from a virtual environment without activating it. A command that cannot be found is an error
    here, before any episode starts, naming the server. With ``only``, just those servers' commands
    are looked up (a run checks the servers its tasks use: one server not installed does not block
    a run of the others); every entry's shape is still checked, and the others keep their command as
    written, so only the named ones should go to a hub. Besides the usual
    ``command``/``args``/``env``/``cwd`` or ``url``, an entry may say ``"stateful": true`` and give a
    ``"pool_size"``.
    """
    base: Path | None = None
    if isinstance(source, str | Path):
        path = Path(source)
        try:
            raw = json.loads(read_text(path, "server config", ConfigError))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"server config {path} is not JSON: {exc.msg} (line {exc.lineno})") from exc
        base = path.parent
        where = str(path)
    else:
        raw, where = source, "server config"
    servers = raw.get("mcpServers") if isinstance(raw, Mapping) else None
    if not isinstance(servers, Mapping):
        raise ConfigError(f'{where}: expected an object with "mcpServers": {{"name": {{...}}}}')
    wanted = None if only is None else set(only)
    configs = {}
    for name, entry in servers.items():
        if isinstance(entry, Mapping) and _disabled(name, entry, where):
            if wanted is not None and name in wanted:
                raise ConfigError(f'{where}: server {name!r} is "disabled": true, but the tasks use it')
            _log.warning("%s: server %r is disabled; left out", where, name)
            continue
        configs[name] = _server_config(name, entry, where, base, wanted is None or name in wanted)
    return configs


def _disabled(name: str, entry: Mapping[str, Any], where: str) -> bool:
    disabled = entry.get("disabled", False)
    if not isinstance(disabled, bool):
        raise ConfigError(f'{where}: server {name!r}: "disabled" must be true or false, not {disabled!r}')
    return disabled


def _expand(text: str, name: str, where: str) -> str:
    """``text`` with ``${VAR}``, ``${VAR:-default}`` and ``${env:VAR}`` replaced from the environment."""

    def value(match: re.Match[str]) -> str:
        inner = _NAME_RE.fullmatch(match.group(1))
        if inner is None:
            raise ConfigError(
                f"{where}: server {name!r}: {match.group(0)} is not an environment variable "
                "(only ${VAR}, ${VAR:-default} and ${env:VAR} are expanded)"
            )
        variable, default = inner.group(1), inner.group(2)
        found = os.environ.get(variable)
        if found is None:
            if default is None:
                raise ConfigError(
                    f"{where}: server {name!r}: environment variable {variable} is not set "
                    f"(used as {match.group(0)}; set it, or write ${{{variable}:-default}})"
                )
            return default
        return found

    return _VARIABLE_RE.sub(value, text)


def _transport_type(name: str, entry: Mapping[str, Any], where: str) -> str | None:
    kind = entry.get("type")
    if kind is None:
        return None
    if kind not in _TRANSPORTS:
        raise ConfigError(
            f'{where}: server {name!r}: "type" {kind!r} is not one this hub speaks '
            f"({', '.join(map(repr, _TRANSPORTS))})"
        )
    return _TRANSPORTS[kind]


def _server_config(
    name: str, entry: Any, where: str, base: Path | None, resolve: bool = True
) -> ServerConfig:
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where}: server {name!r} must be an object")
    url = entry.get("url")
    command = entry.get("command")
    if bool(url) == bool(command):
        raise ConfigError(f'{where}: server {name!r} needs exactly one of "command" or "url"')
    kind = _transport_type(name, entry, where)
    if kind is not None and (kind == "stdio") != bool(command):
        needs = '"command"' if kind == "stdio" else '"url"'
        raise ConfigError(f'{where}: server {name!r}: "type" {entry["type"]!r} needs {needs}')
    stateful, pool_size = _state_options(name, entry, where)
    tools, exclude_tools = _tool_filter(name, entry, where)
    expand = (lambda text: _expand(text, name, where)) if resolve else (lambda text: text)
    if url:
        if not isinstance(url, str):
            raise ConfigError(f"{where}: server {name!r}: url must be a string, got {url!r}")
        url = expand(url)
        if not url.startswith(("http://", "https://")):
            raise ConfigError(
                f"{where}: server {name!r}: url must start with http:// or https://, got {url!r}"
            )
        return ServerConfig(
            name=name,
            url=url,
            stateful=stateful,
            pool_size=pool_size,
            sse=kind == "sse",
            tools=tools,
            exclude_tools=exclude_tools,
        )
    args = entry.get("args", [])
    env = entry.get("env", {})
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise ConfigError(f'{where}: server {name!r}: "args" must be a list of strings')
    if not isinstance(env, Mapping) or not all(isinstance(v, str) for v in env.values()):
        raise ConfigError(f'{where}: server {name!r}: "env" must map names to strings')
    cwd = entry.get("cwd")
    if cwd is not None:
        cwd = expand(str(cwd))
    if cwd is not None and base is not None and STATE_DIR not in cwd:
        cwd = str((base / cwd).resolve())
    command = expand(str(command))
    return ServerConfig(
        name=name,
        command=_resolve_command(name, command, where, base) if resolve else command,
        args=tuple(expand(arg) for arg in args),
        env={key: expand(value) for key, value in env.items()},
        cwd=cwd,
        stateful=stateful,
        pool_size=pool_size,
        tools=tools,
        exclude_tools=exclude_tools,
    )


def _tool_filter(
    name: str, entry: Mapping[str, Any], where: str
) -> tuple[tuple[str, ...] | None, tuple[str, ...]]:
    """The entry's ``"tools"`` allow-list (None when absent) and ``"exclude_tools"``, type-checked."""
    found: list[tuple[str, ...] | None] = []
    for key in ("tools", "exclude_tools"):
        value = entry.get(key)
        if value is None:
            found.append(None)
            continue
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            raise ConfigError(
                f'{where}: server {name!r}: "{key}" must be a list of tool names (strings), not {value!r}'
            )
        found.append(tuple(value))
    return found[0], found[1] or ()


def _state_options(name: str, entry: Mapping[str, Any], where: str) -> tuple[bool, int | None]:
    stateful = entry.get("stateful", False)
    if not isinstance(stateful, bool):
        raise ConfigError(f'{where}: server {name!r}: "stateful" must be true or false, not {stateful!r}')
    pool_size = entry.get("pool_size")
    if pool_size is None:
        return stateful, None
    if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 0:
        raise ConfigError(f'{where}: server {name!r}: "pool_size" must be a whole number, 0 or more')
    if not stateful:
        raise ConfigError(
            f'{where}: server {name!r}: "pool_size" applies to stateful servers only (add "stateful": true)'
        )
    return stateful, pool_size


def _resolve_command(name: str, command: str, where: str, base: Path | None = None) -> str:
    if command in _PYTHON_NAMES:
        return sys.executable
    if "/" in command:  # a path (another interpreter, say): from the config's folder, else from here
        path = Path(command).expanduser()
        tries = [base / path, path] if base is not None and not path.is_absolute() else [path]
        found = next((hit for hit in map(shutil.which, tries) if hit), None)
    else:
        found = shutil.which(command) or next(
            (hit for folder in _command_folders(base) if (hit := shutil.which(command, path=str(folder)))),
            None,
        )
    if found is None:
        raise ConfigError(
            f"{where}: server {name!r}: command {command!r} not found on PATH, beside {sys.executable}, "
            'or in a node_modules/.bin (install it, or give its full path in "command")'
        )
    return os.path.abspath(found)  # a relative path must not change meaning with the server's cwd


def _command_folders(base: Path | None) -> list[Path]:
    """Where a command not on PATH is looked for: the scripts folder of this interpreter (servers
    installed beside the sandbox, in a virtual environment that need not be activated), then where
    npm puts a Node server's command: ``node_modules/.bin`` beside the config, and the environment's
    ``node/node_modules/.bin`` (``make install-test`` installs Node servers there)."""
    folders = [Path(sys.executable).parent]
    if base is not None:
        folders.append(base / "node_modules" / ".bin")
    folders.append(Path(sys.prefix) / "node" / "node_modules" / ".bin")
    return folders


# Environment variables that hold where programs are looked up, not where a server keeps data.
_SEARCH_PATH_VARIABLES = {
    "PATH",
    "PYTHONPATH",
    "PYTHONHOME",
    "NODE_PATH",
    "LD_LIBRARY_PATH",
    "VIRTUAL_ENV",
}
# An existing file with one of these endings is a program the server runs, not its data.
_CODE_SUFFIXES = {".py", ".pyc", ".js", ".cjs", ".mjs", ".ts", ".jar", ".sh"}


def fixed_paths(config: ServerConfig) -> list[tuple[str, str]]:
    """Fixed places a stdio entry's ``args`` and ``env`` name, where its server may keep data:
    ``(where, path)`` pairs such as ``("env MEMORY_FILE_PATH", "/home/me/memory.json")``.

    A path counts when it is absolute (``~`` included), alone or after ``=`` (``--db=/x``), does not
    use ``{state_dir}``, and is not a program: existing files ending in ``.py``, ``.js`` and the like or
    marked executable, anything inside this interpreter's environment, and the search-path
    variables (``PATH``, ``PYTHONPATH``, ...) are left out. Every process of the entry sees the same
    path, so a ``"stateful": true`` entry that names one shares it between episodes (the hub warns);
    ``sandbox check-tool`` refuses a config naming one outside the temporary folder. A heuristic: a
    server that picks a fixed place itself (a default under ``~``) is not seen.
    """
    if config.transport != "stdio":
        return []
    named = [("args", arg) for arg in config.args]
    named += [(f"env {key}", value) for key, value in config.env.items() if key not in _SEARCH_PATH_VARIABLES]
    found = []
    for where, text in named:
        if STATE_DIR in text:
            continue  # a path through the connection's own folder
        candidates = [text, text.split("=", 1)[1]] if "=" in text else [text]
        for candidate in candidates:
            if _data_path(candidate):
                found.append((where, candidate))
                break
    return found


def _data_path(text: str) -> bool:
    if not text.startswith(("/", "~")) or os.pathsep in text.strip(os.pathsep):
        return False
    path = Path(text).expanduser()
    if not path.is_absolute():
        return False
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix}:
        if path.is_relative_to(prefix):
            return False
    program = path.is_file() and (path.suffix in _CODE_SUFFIXES or os.access(path, os.X_OK))
    return not program


def outside_temp(config: ServerConfig) -> list[tuple[str, str]]:
    """The :func:`fixed_paths` of ``config`` that lie outside the system's temporary folder."""
    temp = Path(tempfile.gettempdir()).resolve()
    return [
        (where, path)
        for where, path in fixed_paths(config)
        if not Path(os.path.realpath(Path(path).expanduser())).is_relative_to(temp)
    ]


def shared_state_warning(config: ServerConfig) -> str | None:
    """One line saying that a stateful entry's episodes share a fixed path, or None."""
    if not config.stateful:
        return None
    found = fixed_paths(config)
    if not found:
        return None
    named = ", ".join(f"{where} {path}" for where, path in found)
    return (
        f"server {config.name!r} is stateful, but its {named} is one fixed path that every episode's "
        f"process uses: episodes can see each other's data there (write {STATE_DIR} into the path to "
        "give each connection a fresh folder of its own)"
    )
