"""The seed task suite: it parses, names real servers and tools, and its answers match the servers' data."""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from mcp import Client
from mcp.server import MCPServer

import servers
from rewards import check_state
from sandbox.records import Task, read_tasks
from servers.files import make_server as make_files_server
from servers.music import make_server

SEED = Path(__file__).resolve().parents[2] / "sandbox" / "data" / "seed.jsonl"
TASKS = read_tasks(SEED)


def _servers() -> dict[str, MCPServer]:
    return {
        "weather": servers.weather_server,
        "music": make_server(),
        "calculator": servers.calculator_server,
        "files": make_files_server(tempfile.mkdtemp(prefix="seed-files-")),
    }


async def _tool_schemas() -> dict[str, dict[str, dict[str, Any]]]:
    """server name -> tool name -> input schema."""
    schemas: dict[str, dict[str, dict[str, Any]]] = {}
    for name, server in _servers().items():
        async with Client(server) as client:
            schemas[name] = {tool.name: tool.input_schema for tool in (await client.list_tools()).tools}
    return schemas


def test_seed_suite_is_big_enough_and_varied() -> None:
    assert len(TASKS) >= 12
    tags = {tag for task in TASKS for tag in task.tags}
    assert {"weather", "music", "calculator", "no-tool"} <= tags


def test_seed_names_only_configured_servers() -> None:
    configured = set(json.loads(servers.MCP_CONFIG.read_text(encoding="utf-8"))["mcpServers"])
    for task in TASKS:
        assert task.servers, f"{task.id} names no server"
        assert set(task.servers) <= configured, task.id


@pytest.mark.anyio
async def test_ideal_calls_fit_the_tool_schemas() -> None:
    schemas = await _tool_schemas()
    for task in TASKS:
        tools = {tool: schema for server in task.servers for tool, schema in schemas[server].items()}
        for call in task.ideal_calls:
            assert call.name in tools, f"{task.id}: no tool {call.name} on {task.servers}"
            properties = tools[call.name].get("properties", {})
            for parameter, acceptable in call.arguments.items():
                assert parameter in properties, f"{task.id}: {call.name} has no parameter {parameter}"
                assert acceptable, f"{task.id}: {call.name}.{parameter} lists no acceptable value"
                validator = Draft202012Validator(properties[parameter])
                for value in acceptable:
                    assert validator.is_valid(value), f"{task.id}: {call.name}.{parameter}={value!r}"


def test_no_tool_tasks_have_no_ideal_calls() -> None:
    for task in TASKS:
        assert ("no-tool" in task.tags) == (not task.needs_tool), task.id


# What each tool task's answer should be, read from the servers with the first acceptable arguments.
Oracle = tuple[str, list[tuple[str, dict[str, Any]]], Callable[[Any], str]]


def _calculator(expression: str) -> Oracle:
    return "calculator", [("calculate", {"expression": expression})], lambda out: out["exact"]


ORACLES: dict[str, Oracle] = {
    "weather-denver-temp-8pm": (
        "weather",
        [("get_hourly_forecast", {"location": "Denver", "date": "today", "start_hour": 20, "end_hour": 20})],
        lambda out: str(out["hours"][0]["temp_f"]),
    ),
    "weather-denver-feels-like-8pm": (
        "weather",
        [("get_hourly_forecast", {"location": "Denver", "date": "today", "start_hour": 20, "end_hour": 20})],
        lambda out: str(out["hours"][0]["feels_like_f"]),
    ),
    "weather-paris-high-tomorrow": (
        "weather",
        [("get_daily_forecast", {"location": "Paris", "date": "tomorrow"})],
        lambda out: str(out["high_f"]),
    ),
    "weather-boston-snow-chance": (
        "weather",
        [("get_daily_forecast", {"location": "Boston", "date": "tomorrow"})],
        lambda out: str(out["precipitation_chance_pct"]),
    ),
    "weather-denver-temp-swing": (
        "weather",
        [("get_daily_forecast", {"location": "Denver", "date": "today"})],
        lambda out: str(out["high_f"] - out["low_f"]),
    ),
    "music-play-toxic": ("music", [("play", {"track_id": "lib-001"})], lambda out: out["track"]["artist"]),
    "music-play-circles": ("music", [("play", {"track_id": "lib-006"})], lambda out: out["track"]["artist"]),
    "music-play-womanizer-now-playing": (
        "music",
        [("play", {"track_id": "cat-002"}), ("now_playing", {})],
        lambda out: out["track"]["title"],
    ),
    "music-last-played": ("music", [("get_recently_played", {})], lambda out: out["plays"][0]["title"]),
    "music-most-played-today": (
        "music",
        [("get_recently_played", {"limit": 50})],
        lambda out: _most_common(
            [p["title"] for p in out["plays"] if p["played_at"].startswith("2026-11-26")]
        ),
    ),
    "calc-pens-word-problem": _calculator("17*24 - 39"),
    "calc-percent-of": _calculator("240 * 15 / 100"),
    "calc-fraction-sum": _calculator("1/3 + 1/6"),
    "calc-two-to-the-64": _calculator("2**64"),
}


def _most_common(titles: list[str]) -> str:
    return max(set(titles), key=titles.count)


def _first_answer(task: Task) -> str:
    return task.acceptable_answers[0]


@pytest.mark.anyio
@pytest.mark.parametrize("task_id", sorted(ORACLES))
async def test_expected_answers_match_the_server_data(task_id: str) -> None:
    task = next(task for task in TASKS if task.id == task_id)
    server_name, calls, extract = ORACLES[task_id]
    async with Client(_servers()[server_name]) as client:
        for name, arguments in calls:
            result = await client.call_tool(name, arguments)
            assert result.is_error is False
    assert result.structured_content is not None
    assert extract(result.structured_content) == _first_answer(task)


def test_every_task_with_a_tool_has_an_oracle_or_a_story() -> None:
    # Tasks outside ORACLES are judged by words ("coat") or need no tool; keep that list deliberate.
    # Tasks with expected_state are checked by their solutions' end state (below).
    stated = {task.id for task in TASKS if task.expected_state}
    unchecked = {task.id for task in TASKS if task.needs_tool} - set(ORACLES) - stated
    assert unchecked == {"weather-denver-outfit-tonight"}


STATE_TASKS = sorted(task.id for task in TASKS if task.expected_state)


@pytest.mark.anyio
@pytest.mark.parametrize("task_id", STATE_TASKS)
async def test_solutions_reach_the_expected_state_and_no_minefield(task_id: str) -> None:
    task = next(task for task in TASKS if task.id == task_id)
    assert task.solution, task_id
    (server_name,) = task.servers
    async with Client(_servers()[server_name]) as client:
        before = {}
        for _, uri in task.state_resources:
            before[uri] = json.loads((await client.read_resource(uri)).contents[0].text)  # type: ignore[union-attr]
        for call in task.solution:
            assert (await client.call_tool(call.name, call.arguments)).is_error is False
        state: dict[str, Any] = {}
        for server, uri in task.state_resources:
            text = (await client.read_resource(uri)).contents[0].text  # type: ignore[union-attr]
            state.setdefault(server, {})[uri] = json.loads(text)
    for check in task.expected_state:
        assert check_state(check, state).holds, (task_id, check)
    for mine in task.minefields:
        assert mine.state is None or not check_state(mine.state, state).holds, (task_id, mine)
    # and the state checks are not already true before anything ran (they can fail)
    initial = {server: {uri: before[uri]} for server, uri in task.state_resources}
    if any(check.op != "equals" or check.value is not None for check in task.expected_state):
        assert not all(check_state(check, initial).holds for check in task.expected_state), task_id


def test_outfit_answer_words_fit_the_cold_evening() -> None:
    task = next(task for task in TASKS if task.id == "weather-denver-outfit-tonight")
    assert task.answer_match == "contains"
    assert all(re.fullmatch(r"[a-z]+", word) for word in task.acceptable_answers)
