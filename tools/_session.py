"""One-shot MCP sessions for tests and scripts."""

from __future__ import annotations

from typing import Any

from mcp import Client
from mcp.types import CallToolResult, Tool


async def list_tools(target: Any) -> list[Tool]:
    """Every tool a server lists, following pagination. ``target`` is anything ``mcp.Client`` takes."""
    async with Client(target) as client:
        tools: list[Tool] = []
        cursor = None
        while True:
            page = await client.list_tools(cursor=cursor)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                return tools


async def call_tool(target: Any, name: str, arguments: dict[str, Any] | None = None) -> CallToolResult:
    """Call one tool in a fresh session."""
    async with Client(target) as client:
        return await client.call_tool(name, arguments or {})
