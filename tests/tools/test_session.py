import sys
from pathlib import Path

import pytest
from mcp import StdioServerParameters

from tools import call_tool, list_tools

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.anyio
async def test_list_and_call_in_memory() -> None:
    from servers.calculator import server

    assert [t.name for t in await list_tools(server)] == ["calculate"]
    result = await call_tool(server, "calculate", {"expression": "1/3 + 1/6"})
    assert not result.is_error and result.structured_content is not None
    assert result.structured_content["exact"] == "1/2"


@pytest.mark.anyio
async def test_list_over_stdio() -> None:
    params = StdioServerParameters(command=sys.executable, args=["-m", "servers.weather"], cwd=str(ROOT))
    names = {t.name for t in await list_tools(params)}
    assert {"get_daily_forecast", "get_hourly_forecast"} <= names
