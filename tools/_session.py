"""One-shot MCP sessions for tests and scripts."""

from __future__ import annotations

from typing import Any

from mcp import Client
from mcp.types import CallToolResult, Tool

from sandbox.hub import list_all_tools


async def list_tools(target: Any) -> list[Tool]:
    """Every tool a server lists. ``target`` is anything ``mcp.Client`` takes."""
    async with Client(target) as client:
        return await list_all_tools(client)


async def call_tool(target: Any, name: str, arguments: dict[str, Any] | None = None) -> CallToolResult:
    """Call one tool in a fresh session."""
    async with Client(target) as client:
        return await client.call_tool(name, arguments or {})
