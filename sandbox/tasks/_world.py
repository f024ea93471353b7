"""What the generators know of the servers: read once through the hub, never typed by hand.

:func:`read_world` asks the real servers (over the hub, so over whatever transport the config
names): the weather server's places and days (``list_locations``) and every daily and hourly
forecast; the music server's library and catalog (its ``music://tracks`` resource) and its play
history (``get_recently_played``); the calculator evaluates every expression a task asks about
(:meth:`World.calculate`). Failures are one line (:class:`TaskGenerationError`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sandbox.hub import ToolHub
from sandbox.records import SandboxError


class TaskGenerationError(SandboxError):
    """A family cannot make the tasks asked for (bad arguments, a server that does not answer)."""


HISTORY_LIMIT = 50  # the most plays get_recently_played returns in one call


@dataclass
class World:
    """The servers' data as the generators see it (see module doc)."""

    hub: ToolHub
    places: list[str] = field(default_factory=list)
    dates: list[str] = field(default_factory=list)
    today: str = ""
    tomorrow: str = ""
    daily: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    hourly: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    library: list[dict[str, Any]] = field(default_factory=list)
    catalog: list[dict[str, Any]] = field(default_factory=list)
    plays: list[dict[str, Any]] = field(default_factory=list)  # most recent first
    _calculated: dict[str, dict[str, Any]] = field(default_factory=dict)

    async def call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """The structured result of one tool call; a failed call is a :class:`TaskGenerationError`."""
        result = await self.hub.call(tool, arguments)
        if result.is_error or result.structured is None:
            raise TaskGenerationError(f"{tool}({arguments}) failed while making tasks: {result.text[:200]}")
        return result.structured

    async def calculate(self, expression: str) -> dict[str, Any]:
        """The calculator's answer for ``expression`` (``exact``, ``decimal``, ``rounded``), cached."""
        if expression not in self._calculated:
            self._calculated[expression] = await self.call("calculate", {"expression": expression})
        return self._calculated[expression]


WEATHER, MUSIC, CALCULATOR = "weather", "music", "calculator"


async def read_world(hub: ToolHub, servers: Sequence[str]) -> World:
    """Read what the named servers hold (weather, music; the calculator is asked on use)."""
    world = World(hub)
    if WEATHER in servers:
        known = await world.call("list_locations", {})
        world.places, world.dates = list(known["locations"]), list(known["dates"])
        world.today, world.tomorrow = known["today"], known["tomorrow"]
        for place in world.places:
            for date in world.dates:
                arguments = {"location": place, "date": date}
                world.daily[place, date] = await world.call("get_daily_forecast", arguments)
                world.hourly[place, date] = (await world.call("get_hourly_forecast", arguments))["hours"]
    if MUSIC in servers:
        async with hub.episode([MUSIC]) as episode:
            tracks = await episode.read_state(MUSIC, "music://tracks")
        if not isinstance(tracks, dict):
            raise TaskGenerationError("the music server has no music://tracks resource to read tracks from")
        world.library, world.catalog = list(tracks["library"]), list(tracks["catalog"])
        history = await world.call("get_recently_played", {"limit": HISTORY_LIMIT})
        if history["total_plays"] > HISTORY_LIMIT:
            raise TaskGenerationError(
                f"the music history holds {history['total_plays']} plays, more than one call reads "
                f"({HISTORY_LIMIT}); the history tasks cannot be answered"
            )
        world.plays = list(history["plays"])
    return world
