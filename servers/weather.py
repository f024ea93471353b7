"""Weather: daily and hourly forecasts from a fixed table.

The data is deterministic: no clock and no network. It covers eighteen places over three days, and
its "today" is fixed at 2026-11-26 ("tomorrow" is 2026-11-27), so a task written against it keeps its
answer forever.

One day tells a story on purpose: Denver on 2026-11-26 reads "sunny, high 66, low 33" in the daily
summary, but a cold front arrives at dusk, so the evening (19:00-21:00) is 34-36°F and feels like
29-31°F. Only the hourly forecast shows it. A few other days have a front of their own (:class:`_Front`:
a warm afternoon, then the temperature falls towards a cold night from the front's hour on), so task
generators find more such days in the data. Daily figures are always derived from the hourly table, so
the daily high and low are the max and min of that day's hours.

Run it over stdio with ``python -m servers.weather``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date as Date
from typing import Annotated

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

TODAY = "2026-11-26"
TOMORROW = "2026-11-27"
DATES = ("2026-11-26", "2026-11-27", "2026-11-28")

# Daylight hours use the day's conditions; the rest use the night wording ("Sunny" -> "Clear").
_DAYLIGHT = range(7, 18)
_NIGHT_WORDING = {"Sunny": "Clear", "Mostly sunny": "Mostly clear"}


# --------------------------------------------------------------------------- output records


class DailyForecast(BaseModel):
    """One day's summary for one place."""

    location: str = Field(description="The place, as the server names it.")
    date: str = Field(description="The day, YYYY-MM-DD.")
    high_f: int = Field(description="Highest temperature of the day, °F.")
    low_f: int = Field(description="Lowest temperature of the day (midnight to midnight), °F.")
    conditions: str = Field(description="Daytime conditions, e.g. 'Sunny'.")
    precipitation_chance_pct: int = Field(description="Chance of precipitation, percent.")


class HourForecast(BaseModel):
    """One hour of a forecast."""

    hour: int = Field(description="Hour of the day, 0-23 (local time).")
    time: str = Field(description="The hour as HH:00 (local time).")
    temp_f: int = Field(description="Air temperature, °F.")
    feels_like_f: int = Field(description="Apparent temperature including wind chill, °F.")
    conditions: str = Field(description="Sky and precipitation, e.g. 'Clear'.")
    wind_mph: int = Field(description="Sustained wind speed, mph.")


class HourlyForecast(BaseModel):
    """The hours of one day for one place, in order."""

    location: str = Field(description="The place, as the server names it.")
    date: str = Field(description="The day, YYYY-MM-DD.")
    hours: list[HourForecast] = Field(description="One entry per hour in the requested range.")


class KnownPlaces(BaseModel):
    """What the forecast table covers."""

    locations: list[str] = Field(description="Places with forecasts.")
    dates: list[str] = Field(description="Days with forecasts, YYYY-MM-DD.")
    today: str = Field(description="The date 'today' stands for.")
    tomorrow: str = Field(description="The date 'tomorrow' stands for.")


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class _Front:
    """A cold front arriving at ``hour``: from then on the temperature halves its distance to
    ``night`` each hour, and the wind blows at ``wind`` mph for the front's first two hours."""

    hour: int
    night: int
    wind: int


@dataclass(frozen=True)
class _Day:
    """Parameters for one generated day: the hourly curve runs from ``low`` at 06:00 to ``high`` at 15:00
    (until a ``front``, if the day has one)."""

    high: int
    low: int
    conditions: str
    precipitation: int
    wind: int
    front: _Front | None = None


_DAYS: dict[str, dict[str, _Day]] = {
    "Boston": {
        "2026-11-26": _Day(44, 31, "Sunny", 0, 9),
        "2026-11-27": _Day(40, 29, "Snow showers", 60, 14),
        "2026-11-28": _Day(38, 25, "Partly cloudy", 10, 11),
    },
    "Denver": {
        # 2026-11-26 is written out hour by hour in _DENVER_FRONT; this entry gives its summary wording.
        "2026-11-26": _Day(66, 33, "Sunny", 0, 4),
        "2026-11-27": _Day(45, 28, "Partly cloudy", 10, 8),
        "2026-11-28": _Day(52, 30, "Sunny", 0, 5),
    },
    "Paris": {
        "2026-11-26": _Day(50, 41, "Light rain", 70, 10),
        "2026-11-27": _Day(46, 37, "Cloudy", 20, 7),
        "2026-11-28": _Day(44, 34, "Partly cloudy", 10, 6),
    },
    "San Francisco": {
        "2026-11-26": _Day(61, 49, "Partly cloudy", 10, 8),
        "2026-11-27": _Day(58, 50, "Rain", 80, 15),
        "2026-11-28": _Day(60, 48, "Sunny", 0, 6),
    },
    "Seattle": {
        "2026-11-26": _Day(49, 42, "Rain", 90, 12),
        "2026-11-27": _Day(50, 43, "Showers", 60, 10),
        "2026-11-28": _Day(47, 38, "Cloudy", 30, 5),
    },
    "Atlanta": {
        "2026-11-26": _Day(63, 45, "Partly cloudy", 10, 7),
        "2026-11-27": _Day(66, 48, "Sunny", 0, 6),
        "2026-11-28": _Day(58, 46, "Rain", 70, 11),
    },
    "Austin": {
        "2026-11-26": _Day(71, 50, "Partly cloudy", 10, 8),
        "2026-11-27": _Day(68, 44, "Sunny", 0, 9, _Front(17, 36, 21)),
        "2026-11-28": _Day(80, 64, "Sunny", 0, 7),
    },
    "Berlin": {
        "2026-11-26": _Day(42, 33, "Cloudy", 20, 9),
        "2026-11-27": _Day(40, 31, "Snow showers", 40, 11),
        "2026-11-28": _Day(38, 29, "Partly cloudy", 10, 7),
    },
    "Chicago": {
        "2026-11-26": _Day(48, 36, "Cloudy", 20, 12),
        "2026-11-27": _Day(62, 41, "Sunny", 0, 10, _Front(17, 34, 20)),
        "2026-11-28": _Day(39, 30, "Snow showers", 50, 15),
    },
    "Dublin": {
        "2026-11-26": _Day(49, 40, "Showers", 70, 15),
        "2026-11-27": _Day(47, 38, "Cloudy", 30, 12),
        "2026-11-28": _Day(46, 37, "Rain", 80, 16),
    },
    "London": {
        "2026-11-26": _Day(52, 44, "Rain", 80, 13),
        "2026-11-27": _Day(50, 41, "Cloudy", 30, 10),
        "2026-11-28": _Day(48, 39, "Partly cloudy", 10, 8),
    },
    "Miami": {
        "2026-11-26": _Day(81, 70, "Partly cloudy", 20, 9),
        "2026-11-27": _Day(83, 72, "Sunny", 0, 8),
        "2026-11-28": _Day(80, 71, "Thunderstorms", 60, 12),
    },
    "Minneapolis": {
        "2026-11-26": _Day(35, 22, "Cloudy", 20, 10),
        "2026-11-27": _Day(41, 25, "Partly cloudy", 10, 9),
        "2026-11-28": _Day(61, 30, "Sunny", 0, 8, _Front(18, 27, 22)),
    },
    "Montreal": {
        "2026-11-26": _Day(34, 24, "Snow showers", 60, 12),
        "2026-11-27": _Day(30, 20, "Cloudy", 20, 10),
        "2026-11-28": _Day(33, 23, "Partly cloudy", 10, 8),
    },
    "Phoenix": {
        "2026-11-26": _Day(72, 45, "Sunny", 0, 6, _Front(17, 38, 20)),
        "2026-11-27": _Day(68, 47, "Sunny", 0, 5),
        "2026-11-28": _Day(70, 48, "Mostly sunny", 0, 4),
    },
    "Prague": {
        "2026-11-26": _Day(41, 32, "Cloudy", 30, 7),
        "2026-11-27": _Day(39, 30, "Partly cloudy", 10, 6),
        "2026-11-28": _Day(43, 34, "Light rain", 60, 9),
    },
    "Salt Lake City": {
        "2026-11-26": _Day(64, 34, "Sunny", 0, 5, _Front(17, 31, 18)),
        "2026-11-27": _Day(47, 30, "Partly cloudy", 10, 7),
        "2026-11-28": _Day(44, 28, "Snow showers", 40, 9),
    },
    "Sydney": {
        "2026-11-26": _Day(77, 63, "Sunny", 0, 11),
        "2026-11-27": _Day(73, 62, "Showers", 50, 14),
        "2026-11-28": _Day(79, 65, "Sunny", 0, 10),
    },
}

# Denver, 2026-11-26: (temp_f, wind_mph, conditions) per hour. Warm sunny afternoon, then a cold front
# at dusk; the day's low comes at 23:00.
_DENVER_FRONT: tuple[tuple[int, int, str], ...] = (
    (40, 3, "Clear"),  # 00:00
    (39, 3, "Clear"),
    (38, 3, "Clear"),
    (38, 3, "Clear"),
    (37, 3, "Clear"),
    (37, 3, "Clear"),
    (37, 3, "Clear"),  # 06:00
    (39, 3, "Sunny"),
    (44, 4, "Sunny"),
    (50, 4, "Sunny"),
    (56, 5, "Sunny"),
    (60, 5, "Sunny"),
    (63, 6, "Sunny"),  # 12:00
    (65, 6, "Sunny"),
    (66, 7, "Sunny"),
    (66, 7, "Sunny"),
    (63, 9, "Sunny"),
    (52, 14, "Windy"),
    (41, 10, "Clear and breezy"),  # 18:00
    (36, 6, "Clear"),
    (35, 6, "Clear"),  # 20:00
    (34, 5, "Clear"),
    (34, 4, "Clear"),
    (33, 4, "Clear"),  # 23:00
)


def _curve(hour: int) -> float:
    """Share of the day's range reached at ``hour``: exactly 0 at 06:00 and exactly 1 at 15:00."""
    if 6 <= hour <= 15:
        return (1 - math.cos(math.pi * (hour - 6) / 9)) / 2
    # Cooling runs from 15:00 to 06:00 next morning (15 hours); the small hours continue it.
    since_peak = hour - 15 if hour > 15 else hour + 24 - 15
    return (1 + math.cos(math.pi * since_peak / 15)) / 2


def _feels_like(temp_f: int, wind_mph: int) -> int:
    """NWS wind chill, defined for temp <= 50°F and wind > 3 mph; otherwise the air temperature."""
    if temp_f > 50 or wind_mph <= 3:
        return temp_f
    gust = wind_mph**0.16
    return round(35.74 + 0.6215 * temp_f - 35.75 * gust + 0.4275 * temp_f * gust)


def _hour(hour: int, temp_f: int, wind_mph: int, conditions: str) -> HourForecast:
    return HourForecast(
        hour=hour,
        time=f"{hour:02d}:00",
        temp_f=temp_f,
        feels_like_f=_feels_like(temp_f, wind_mph),
        conditions=conditions,
        wind_mph=wind_mph,
    )


def _generated_hours(day: _Day) -> list[HourForecast]:
    hours: list[HourForecast] = []
    for hour in range(24):
        share = _curve(hour)
        temp = day.low + round(share * (day.high - day.low))
        wind = day.wind + round(2 * share)  # afternoons are a little windier
        night = hour not in _DAYLIGHT
        conditions = _NIGHT_WORDING.get(day.conditions, day.conditions) if night else day.conditions
        front = day.front
        if front is not None and hour >= front.hour:
            since = hour - front.hour
            before = hours[front.hour - 1].temp_f
            temp = front.night + round((before - front.night) * 0.5 ** (since + 1))
            wind = front.wind if since < 2 else day.wind
            night_conditions = _NIGHT_WORDING.get(day.conditions, day.conditions)
            conditions = ("Windy", "Breezy")[since] if since < 2 else night_conditions
        hours.append(_hour(hour, temp, wind, conditions))
    return hours


def _all_hours(place: str, day: str) -> list[HourForecast]:
    if (place, day) == ("Denver", "2026-11-26"):
        return [_hour(hour, *row) for hour, row in enumerate(_DENVER_FRONT)]
    return _generated_hours(_DAYS[place][day])


# --------------------------------------------------------------------------- argument parsing


def _resolve_location(location: str) -> str:
    """The table's name for ``location``: case-insensitive, and 'Denver, CO' finds 'Denver'."""
    wanted = " ".join(location.split()).casefold()
    by_key = {name.casefold(): name for name in _DAYS}
    for candidate in (wanted, wanted.split(",")[0].strip()):
        if candidate in by_key:
            return by_key[candidate]
    known = ", ".join(sorted(_DAYS))
    raise ToolError(f"Unknown location {location!r}. Known locations: {known}.")


def _resolve_date(date: str) -> str:
    """An ISO date in the table; 'today' and 'tomorrow' are the data's fixed days."""
    wanted = date.strip().casefold()
    relative = {"today": TODAY, "tomorrow": TOMORROW}
    if wanted in relative:
        return relative[wanted]
    try:
        iso = Date.fromisoformat(wanted).isoformat()
    except ValueError:
        raise ToolError(
            f"Date {date!r} is not YYYY-MM-DD. Use e.g. {TODAY!r}, 'today' or 'tomorrow'."
        ) from None
    if iso not in DATES:
        raise ToolError(f"No forecast for {iso}. Forecasts exist for: {', '.join(DATES)} (today is {TODAY}).")
    return iso


# --------------------------------------------------------------------------- the forecasts


def daily_forecast(location: str, date: str) -> DailyForecast:
    """The day's summary; ToolError for an unknown place or date."""
    place, day = _resolve_location(location), _resolve_date(date)
    hours = _all_hours(place, day)
    summary = _DAYS[place][day]
    return DailyForecast(
        location=place,
        date=day,
        high_f=max(hour.temp_f for hour in hours),
        low_f=min(hour.temp_f for hour in hours),
        conditions=summary.conditions,
        precipitation_chance_pct=summary.precipitation,
    )


def hourly_forecast(location: str, date: str, start_hour: int = 0, end_hour: int = 23) -> HourlyForecast:
    """The hours ``start_hour`` to ``end_hour`` of one day; ToolError for a bad range, place or date."""
    if start_hour > end_hour:
        raise ToolError(f"start_hour ({start_hour}) is after end_hour ({end_hour}); both are 0-23.")
    place, day = _resolve_location(location), _resolve_date(date)
    hours = _all_hours(place, day)[start_hour : end_hour + 1]
    return HourlyForecast(location=place, date=day, hours=hours)


# --------------------------------------------------------------------------- the server

_READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)

Location = Annotated[
    str,
    Field(
        description="City name, e.g. 'Denver' or 'San Francisco' (case-insensitive).",
        min_length=1,
        max_length=100,
    ),
]
DateArg = Annotated[
    str,
    Field(
        description=f"Day as YYYY-MM-DD, or 'today' ({TODAY}) or 'tomorrow' ({TOMORROW}).",
        min_length=1,
        max_length=20,
    ),
]
StartHour = Annotated[int, Field(description="First hour to include, 0-23 (local time).", ge=0, le=23)]
EndHour = Annotated[int, Field(description="Last hour to include, 0-23 (local time).", ge=0, le=23)]


# The model reads this text as written: a docstring inside make_server would carry its indentation.
_DAILY_DESCRIPTION = """Summary of one day: high, low, daytime conditions and chance of precipitation.

The summary does not say when it is warm or cold; use get_hourly_forecast for a time of day."""


def make_server() -> MCPServer:
    """A weather server (it keeps no state: every server object answers the same)."""
    server = MCPServer(
        "weather",
        version="1.0.0",
        instructions=(
            "Forecasts for a few fixed places and days. The daily summary hides how the day evolves: "
            "use the hourly forecast for a particular time of day."
        ),
    )

    @server.tool(annotations=_READ_ONLY, description=_DAILY_DESCRIPTION)
    def get_daily_forecast(location: Location, date: DateArg) -> DailyForecast:
        return daily_forecast(location, date)

    @server.tool(annotations=_READ_ONLY)
    def get_hourly_forecast(
        location: Location,
        date: DateArg,
        start_hour: StartHour = 0,
        end_hour: EndHour = 23,
    ) -> HourlyForecast:
        """Hour-by-hour temperature, feels-like temperature, conditions and wind for one day."""
        return hourly_forecast(location, date, start_hour, end_hour)

    @server.tool(annotations=_READ_ONLY)
    def list_locations() -> KnownPlaces:
        """The places and days this server has forecasts for, and which dates 'today' and 'tomorrow' mean."""
        return KnownPlaces(locations=sorted(_DAYS), dates=list(DATES), today=TODAY, tomorrow=TOMORROW)

    return server


server = make_server()

if __name__ == "__main__":
    server.run()  # stdio; MCPServer sends its logs to stderr, stdout is the wire
