"""The MCP client side: ``mcpServers`` configs, the :class:`ToolHub` that holds one connection per
server (stdio, streamable HTTP or in memory), per-episode views (:class:`EpisodeHub`) of stateful
servers, and the warm pool they come from."""

from sandbox.hub._config import (
    DEFAULT_POOL_SIZE,
    STATE_DIR,
    ServerConfig,
    fixed_paths,
    load_config,
    outside_temp,
    shared_state_warning,
)
from sandbox.hub._hub import (
    DEFAULT_CALL_TIMEOUT,
    DEFAULT_START_TIMEOUT,
    MAX_RESOURCE_CHARS,
    MAX_RESULT_CHARS,
    STDERR_TAIL_LINES,
    EpisodeHub,
    ToolHub,
    list_all_tools,
    remove_leftovers,
    stderr_tail,
)
from sandbox.hub._pool import PoolClosedError, WarmPool

__all__ = [
    "DEFAULT_CALL_TIMEOUT",
    "DEFAULT_POOL_SIZE",
    "DEFAULT_START_TIMEOUT",
    "EpisodeHub",
    "MAX_RESOURCE_CHARS",
    "MAX_RESULT_CHARS",
    "PoolClosedError",
    "STATE_DIR",
    "STDERR_TAIL_LINES",
    "ServerConfig",
    "ToolHub",
    "WarmPool",
    "fixed_paths",
    "list_all_tools",
    "load_config",
    "outside_temp",
    "remove_leftovers",
    "shared_state_warning",
    "stderr_tail",
]
