"""``mcpServers`` configs: each entry checked and its command found before anything starts.

The JSON is the one other MCP clients read: ``{"mcpServers": {"name": {"command", "args", "env",
"cwd"} | {"url"}}}``, plus this project's ``"stateful"`` and ``"pool_size"``. A bare command name is
looked up on ``PATH``, then beside this interpreter, then in ``node_modules/.bin`` folders; ``"python"``
means the interpreter running the sandbox.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Mapping
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

    @property
    def transport(self) -> str:
        if self.server is not None:
            return "memory"
        return "http" if self.url else "stdio"


def load_config(source: str | Path | Mapping[str, Any]) -> dict[str, ServerConfig]:
    """Read an ``mcpServers`` config from a file or a mapping and check every entry.

    ``"python"`` as a command means the interpreter running the sandbox, so bundled servers work
    from a virtual environment without activating it. A command that cannot be found is an error
    here, before any episode starts. Besides the usual ``command``/``args``/``env``/``cwd`` or
    ``url``, an entry may say ``"stateful": true`` and give a ``"pool_size"``.
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
    return {name: _server_config(name, entry, where, base) for name, entry in servers.items()}


def _server_config(name: str, entry: Any, where: str, base: Path | None) -> ServerConfig:
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where}: server {name!r} must be an object")
    url = entry.get("url")
    command = entry.get("command")
    if bool(url) == bool(command):
        raise ConfigError(f'{where}: server {name!r} needs exactly one of "command" or "url"')
    stateful, pool_size = _state_options(name, entry, where)
    if url:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigError(
                f"{where}: server {name!r}: url must start with http:// or https://, got {url!r}"
            )
        return ServerConfig(name=name, url=url, stateful=stateful, pool_size=pool_size)
    args = entry.get("args", [])
    env = entry.get("env", {})
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise ConfigError(f'{where}: server {name!r}: "args" must be a list of strings')
    if not isinstance(env, Mapping) or not all(isinstance(v, str) for v in env.values()):
        raise ConfigError(f'{where}: server {name!r}: "env" must map names to strings')
    cwd = entry.get("cwd")
    if cwd is not None and base is not None and STATE_DIR not in cwd:
        cwd = str((base / cwd).resolve())
    return ServerConfig(
        name=name,
        command=_resolve_command(name, str(command), where, base),
        args=tuple(args),
        env=dict(env),
        cwd=cwd,
        stateful=stateful,
        pool_size=pool_size,
    )


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
