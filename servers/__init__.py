"""MCP servers bundled with the sandbox, one module each.

- ``servers.weather`` — daily and hourly forecasts from a fixed table (no clock, no network).
- ``servers.music`` — the user's library, play history and a catalog; search and play.
- ``servers.calculator`` — exact arithmetic on an expression, parsed without ``eval``.
- ``servers.files`` — read, write, list and search inside one root folder, and nowhere else.
- ``servers.python`` — runs Python code in a bubblewrap sandbox with resource limits.
- ``servers.fetch`` — HTTP GET of pages on an allow-list of hosts, with size and time caps.

Each module has a ``make_server(...)``; the first three also define a module-level ``server`` (an
``MCPServer``), the last three need their configuration (a root, limits, an allow-list). Each runs over
stdio with ``python -m servers.<name> [ARGS]``. :data:`MCP_CONFIG` is the ``mcpServers`` config that
starts them all.
The servers know nothing of the sandbox.

The server objects are imported lazily: importing the package must not import the modules, or
``python -m servers.weather`` would load the module twice (runpy warns about exactly that).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from servers.calculator import make_server as make_calculator_server
    from servers.calculator import server as calculator_server
    from servers.fetch import make_server as make_fetch_server
    from servers.files import make_server as make_files_server
    from servers.music import make_server as make_music_server
    from servers.music import server as music_server
    from servers.python import make_server as make_python_server
    from servers.weather import make_server as make_weather_server
    from servers.weather import server as weather_server

MCP_CONFIG = Path(__file__).with_name("mcp.json")

# public name -> (module, attribute)
_LAZY: dict[str, tuple[str, str]] = {
    "calculator_server": ("servers.calculator", "server"),
    "make_calculator_server": ("servers.calculator", "make_server"),
    "make_fetch_server": ("servers.fetch", "make_server"),
    "make_files_server": ("servers.files", "make_server"),
    "make_music_server": ("servers.music", "make_server"),
    "make_python_server": ("servers.python", "make_server"),
    "make_weather_server": ("servers.weather", "make_server"),
    "music_server": ("servers.music", "server"),
    "weather_server": ("servers.weather", "server"),
}

__all__ = [
    "MCP_CONFIG",
    "calculator_server",
    "make_calculator_server",
    "make_fetch_server",
    "make_files_server",
    "make_music_server",
    "make_python_server",
    "make_weather_server",
    "music_server",
    "weather_server",
]


def __getattr__(name: str) -> object:
    """Import a server module on first use of one of its public names (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module 'servers' has no attribute {name!r}")
    module, attribute = _LAZY[name]
    return getattr(importlib.import_module(module), attribute)
