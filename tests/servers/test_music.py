"""The music server: search in library and catalog, playback state, and per-server isolation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mcp import Client
from mcp.types import CallToolResult, TextContent

from servers.music import make_server


def _text(result: CallToolResult) -> str:
    return " ".join(part.text for part in result.content if isinstance(part, TextContent))


async def _ok(client: Client, name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    result = await client.call_tool(name, arguments or {})
    assert result.is_error is False, _text(result)
    assert result.structured_content is not None
    return result.structured_content


@pytest.mark.anyio
async def test_library_search_finds_boywithukes_toxic() -> None:
    async with Client(make_server()) as client:
        found = await _ok(client, "search_library", {"query": "toxic"})
    assert [(t["id"], t["artist"], t["source"]) for t in found["tracks"]] == [
        ("lib-001", "BoyWithUke", "library")
    ]


@pytest.mark.anyio
async def test_catalog_search_finds_britneys_toxic() -> None:
    async with Client(make_server()) as client:
        found = await _ok(client, "search_catalog", {"query": "Toxic"})
    assert found["tracks"][0]["artist"] == "Britney Spears"
    assert found["tracks"][0]["id"].startswith("cat-")


@pytest.mark.anyio
async def test_search_matches_every_word_across_fields() -> None:
    async with Client(make_server()) as client:
        found = await _ok(client, "search_catalog", {"query": "britney circus"})
        nothing = await _ok(client, "search_library", {"query": "no such song"})
    assert [t["title"] for t in found["tracks"]] == ["Womanizer"]
    assert nothing["tracks"] == []


@pytest.mark.anyio
async def test_blank_query_is_an_error() -> None:
    async with Client(make_server()) as client:
        result = await client.call_tool("search_library", {"query": "   "})
    assert result.is_error is True
    assert "empty" in _text(result)


@pytest.mark.anyio
async def test_history_shows_toxic_played_most_today() -> None:
    async with Client(make_server()) as client:
        recent = await _ok(client, "get_recently_played")
    today = [play for play in recent["plays"] if play["played_at"].startswith("2026-11-26")]
    titles = [play["title"] for play in today]
    assert max(set(titles), key=titles.count) == "Toxic"
    assert titles.count("Toxic") >= 3
    assert recent["plays"][0]["title"] == "Sweater Weather"
    played = [play["played_at"] for play in recent["plays"]]
    assert played == sorted(played, reverse=True)


@pytest.mark.anyio
async def test_play_changes_now_playing_and_history() -> None:
    async with Client(make_server()) as client:
        before = await _ok(client, "now_playing")
        started = await _ok(client, "play", {"track_id": "lib-001"})
        now = await _ok(client, "now_playing")
        recent = await _ok(client, "get_recently_played", {"limit": 1})
    assert before == {"playing": False, "track": None, "started_at": None}
    assert started == now
    assert now["playing"] is True
    assert (now["track"]["title"], now["track"]["artist"]) == ("Toxic", "BoyWithUke")
    assert recent["plays"][0]["track_id"] == "lib-001"
    assert recent["plays"][0]["played_at"] == now["started_at"]


@pytest.mark.anyio
async def test_later_plays_are_stamped_later() -> None:
    async with Client(make_server()) as client:
        first = await _ok(client, "play", {"track_id": "cat-001"})
        second = await _ok(client, "play", {"track_id": "lib-002"})
    assert first["started_at"] < second["started_at"]
    assert second["track"]["id"] == "lib-002"


@pytest.mark.anyio
async def test_unknown_track_id_is_a_tool_error() -> None:
    async with Client(make_server()) as client:
        result = await client.call_tool("play", {"track_id": "spotify:track:123"})
        still = await _ok(client, "now_playing")
    assert result.is_error is True
    assert "Unknown track id" in _text(result)
    assert "search_library" in _text(result)
    assert still["playing"] is False


@pytest.mark.anyio
async def test_each_server_has_its_own_state() -> None:
    async with Client(make_server()) as client:
        await _ok(client, "play", {"track_id": "lib-003"})
        total = (await _ok(client, "get_recently_played"))["total_plays"]
    async with Client(make_server()) as fresh:
        now = await _ok(fresh, "now_playing")
        fresh_total = (await _ok(fresh, "get_recently_played"))["total_plays"]
    assert now["playing"] is False
    assert fresh_total == total - 1


async def _state(client: Client) -> dict[str, Any]:
    result = await client.read_resource("music://state")
    return json.loads(result.contents[0].text)  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_state_resource_follows_playback_and_is_not_a_tool() -> None:
    async with Client(make_server()) as client:
        before = await _state(client)
        await _ok(client, "play", {"track_id": "cat-001"})
        await _ok(client, "play", {"track_id": "lib-001"})
        after = await _state(client)
        tools = {tool.name for tool in (await client.list_tools()).tools}
        resources = [str(resource.uri) for resource in (await client.list_resources()).resources]
    assert before == {"now_playing": None, "started_at": None, "session_plays": [], "total_plays": 15}
    assert after["now_playing"] == "lib-001"
    assert after["session_plays"] == ["cat-001", "lib-001"]
    assert after["total_plays"] == 17
    assert sorted(resources) == ["music://state", "music://tracks"]
    assert not any("state" in name or "tracks" in name for name in tools)


@pytest.mark.anyio
async def test_tracks_resource_lists_the_library_and_the_catalog() -> None:
    async with Client(make_server()) as client:
        result = await client.read_resource("music://tracks")
        found = await _ok(client, "search_library", {"query": "Toxic"})
    tracks = json.loads(result.contents[0].text)  # type: ignore[union-attr]
    assert tracks["library"][0] == found["tracks"][0]
    assert {track["source"] for track in tracks["catalog"]} == {"catalog"}
    titles = {track["title"] for track in tracks["library"]} & {track["title"] for track in tracks["catalog"]}
    assert {"Toxic", "Circles", "Ghost"} <= titles


@pytest.mark.anyio
async def test_each_server_has_its_own_state_resource() -> None:
    async with Client(make_server()) as one, Client(make_server()) as two:
        await _ok(one, "play", {"track_id": "lib-002"})
        assert (await _state(one))["now_playing"] == "lib-002"
        assert (await _state(two))["now_playing"] is None
