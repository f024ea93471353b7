"""The weather server: the Denver story, consistency of the table, and argument handling."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client
from mcp.types import CallToolResult, TextContent

from servers.weather import _DAYS, DATES, server


def _text(result: CallToolResult) -> str:
    return " ".join(part.text for part in result.content if isinstance(part, TextContent))


async def _call(name: str, arguments: dict[str, Any]) -> CallToolResult:
    async with Client(server) as client:
        return await client.call_tool(name, arguments)


async def _ok(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await _call(name, arguments)
    assert result.is_error is False, _text(result)
    assert result.structured_content is not None
    return result.structured_content


@pytest.mark.anyio
async def test_denver_daily_sounds_mild() -> None:
    daily = await _ok("get_daily_forecast", {"location": "Denver", "date": "2026-11-26"})
    assert (daily["high_f"], daily["low_f"], daily["conditions"]) == (66, 33, "Sunny")


@pytest.mark.anyio
async def test_denver_evening_is_near_freezing() -> None:
    hourly = await _ok("get_hourly_forecast", {"location": "Denver", "date": "2026-11-26"})
    by_hour = {hour["hour"]: hour for hour in hourly["hours"]}
    eight_pm = by_hour[20]
    assert eight_pm["time"] == "20:00"
    assert 32 <= eight_pm["temp_f"] <= 36
    assert eight_pm["feels_like_f"] <= 31
    for hour in (19, 20, 21):
        assert 34 <= by_hour[hour]["temp_f"] <= 36
        assert 29 <= by_hour[hour]["feels_like_f"] <= 31


@pytest.mark.anyio
@pytest.mark.parametrize("location", sorted(_DAYS))
@pytest.mark.parametrize("date", DATES)
async def test_daily_high_and_low_are_the_hourly_extremes(location: str, date: str) -> None:
    daily = await _ok("get_daily_forecast", {"location": location, "date": date})
    hourly = await _ok("get_hourly_forecast", {"location": location, "date": date})
    temps = [hour["temp_f"] for hour in hourly["hours"]]
    assert len(temps) == 24
    assert (max(temps), min(temps)) == (daily["high_f"], daily["low_f"])
    assert all(hour["feels_like_f"] <= hour["temp_f"] for hour in hourly["hours"])


@pytest.mark.anyio
async def test_location_is_case_insensitive_and_today_is_fixed() -> None:
    daily = await _ok("get_daily_forecast", {"location": "  denver, co ", "date": "Today"})
    assert (daily["location"], daily["date"]) == ("Denver", "2026-11-26")
    tomorrow = await _ok("get_daily_forecast", {"location": "SAN FRANCISCO", "date": "tomorrow"})
    assert tomorrow["date"] == "2026-11-27"


@pytest.mark.anyio
async def test_hour_range_is_inclusive() -> None:
    hourly = await _ok(
        "get_hourly_forecast", {"location": "Paris", "date": "2026-11-27", "start_hour": 19, "end_hour": 21}
    )
    assert [hour["hour"] for hour in hourly["hours"]] == [19, 20, 21]


@pytest.mark.anyio
async def test_unknown_location_lists_the_known_ones() -> None:
    result = await _call("get_daily_forecast", {"location": "Tokyo", "date": "today"})
    assert result.is_error is True
    text = _text(result)
    assert "Unknown location 'Tokyo'" in text
    for place in ("Boston", "Denver", "Paris", "San Francisco", "Seattle"):
        assert place in text


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("date", "expected"),
    [("2026-12-01", "No forecast for 2026-12-01"), ("next week", "is not YYYY-MM-DD")],
)
async def test_bad_dates_say_what_is_available(date: str, expected: str) -> None:
    result = await _call("get_hourly_forecast", {"location": "Paris", "date": date})
    assert result.is_error is True
    assert expected in _text(result)
    assert "2026-11-26" in _text(result)


@pytest.mark.anyio
@pytest.mark.parametrize(("start", "end"), [(5, 2), (0, 24), (-1, 3)])
async def test_bad_hour_ranges_are_errors(start: int, end: int) -> None:
    result = await _call(
        "get_hourly_forecast", {"location": "Paris", "date": "today", "start_hour": start, "end_hour": end}
    )
    assert result.is_error is True


@pytest.mark.anyio
async def test_list_locations() -> None:
    known = await _ok("list_locations", {})
    assert {"Boston", "Denver", "Paris", "San Francisco", "Seattle"} <= set(known["locations"])
    assert known["locations"] == sorted(known["locations"]) and len(known["locations"]) == 18
    assert known["dates"] == list(DATES)
    assert (known["today"], known["tomorrow"]) == ("2026-11-26", "2026-11-27")
