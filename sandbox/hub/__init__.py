"""The MCP client side: ``mcpServers`` configs, the :class:`ToolHub` that holds one connection per
server (stdio, streamable HTTP or in memory), per-episode views (:class:`EpisodeHub`) of stateful
servers, and the warm pool they come from."""

from sandbox.hub._config import DEFAULT_POOL_SIZE, STATE_DIR, ServerConfig, load_config
from sandbox.hub._hub import (
    DEFAULT_CALL_TIMEOUT,
    DEFAULT_START_TIMEOUT,
    MAX_RESOURCE_CHARS,
    MAX_RESULT_CHARS,
    EpisodeHub,
    ToolHub,
    list_all_tools,
    remove_leftovers,
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
    "ServerConfig",
    "ToolHub",
    "WarmPool",
    "list_all_tools",
    "load_config",
    "remove_leftovers",
]
