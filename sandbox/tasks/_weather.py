"""The weather family: places x days x hours x question kinds, read from the weather server.

Kinds: the temperature and the feels-like temperature at an hour (hourly forecast), the day's high,
low, chance of precipitation and high-low swing (daily forecast), and what to wear out in the
evening. The last holds the **hourly-vs-daily trap**: on a day whose daily high is warm
(:data:`WARM_HIGH_F` or more) but whose evening hour is cold (:data:`COLD_EVENING_F` or less), the
right answer is a coat, found only in the hourly forecast; the light clothes the high suggests are
the task's distractors. Evenings that are warm (:data:`WARM_EVENING_F` or more) ask the converse.
Which days are traps is read from the data, never listed here. The place is the split's value.
Every answer must rest on the task's forecast call (``Task.evidence`` = its ideal call): a right
"t-shirt" for a forecast nobody read, or read for another place or day, is a guess.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from sandbox.records import Task
from sandbox.tasks._common import (
    date_argument,
    date_variants,
    day_phrase,
    day_possessive,
    draw,
    hour_phrase,
    ideal,
    slug,
    solution,
    task,
    variants,
)
from sandbox.tasks._split import PLACE, Split, split_of, value_tag
from sandbox.tasks._world import World

NAME = "weather"
HOURS = range(7, 24)  # the hours a question asks about
EVENING = range(18, 24)  # the hours someone goes out at
WARM_HIGH_F = 60  # a daily high that suggests light clothes
COLD_EVENING_F = 45  # an evening that needs a coat
WARM_EVENING_F = 65  # an evening for a t-shirt

WARM_CLOTHES = ["coat", "jacket", "parka", "warm", "warmly", "layer", "layers"]
LIGHT_CLOTHES = ["t-shirt", "tank top", "shorts", "sandals", "flip-flops", "sundress", "short sleeves"]
SUMMER_CLOTHES = ["t-shirt", "short sleeves", "shorts", "tank top", "sandals"]
WINTER_CLOTHES = ["coat", "parka", "jacket", "sweater", "gloves", "scarf"]


@dataclass(frozen=True)
class Question:
    kind: str
    place: str
    date: str
    hour: int | None = None

    @property
    def id(self) -> str:
        hour = "" if self.hour is None else f"-{self.hour:02d}h"
        return f"weather-{self.kind}-{slug(self.place)}-{self.date}{hour}"


def is_trap(world: World, place: str, date: str, hour: int) -> bool:
    """The daily high suggests light clothes, the hour itself is cold."""
    high = world.daily[place, date]["high_f"]
    return high >= WARM_HIGH_F and world.hourly[place, date][hour]["temp_f"] <= COLD_EVENING_F


def questions(world: World, split: Split) -> list[Question]:
    """Every question this split can ask (its places only)."""
    found: list[Question] = []
    for place in world.places:
        if split_of(PLACE, place) != split:
            continue
        for date in world.dates:
            found += [Question(kind, place, date) for kind in ("high", "low", "precip", "swing")]
            found += [Question(kind, place, date, hour) for kind in ("temp", "feels") for hour in HOURS]
            for hour in EVENING:
                if is_trap(world, place, date, hour):
                    found.append(Question("wear-cold", place, date, hour))
                elif world.hourly[place, date][hour]["temp_f"] >= WARM_EVENING_F:
                    found.append(Question("wear-warm", place, date, hour))
    return found


def _number(value: int) -> list[str]:
    return [str(value)]


def build(world: World, question: Question, rng: random.Random) -> Task:
    place, date, hour = question.place, question.date, question.hour
    day = day_phrase(world, date)
    daily, hours = world.daily[place, date], world.hourly[place, date]
    arguments = {"location": variants(place), "date": date_variants(world, date)}
    concrete = {"location": place, "date": date_argument(world, date)}
    fields: dict[str, Any] = {"id": question.id, "servers": [NAME], "answer_match": "number"}
    tags = [NAME, value_tag(PLACE, place)]
    daily_call = ideal("get_daily_forecast", **arguments)
    if hour is not None:
        # Any range that holds the hour reads the same value; the reference asks for that hour alone,
        # so its result is one hour's line, not the whole day's 24 (what a demonstration teaches).
        fields["ideal_calls"] = [
            ideal(
                "get_hourly_forecast",
                **arguments,
                start_hour=["", *range(0, hour + 1)],
                end_hour=["", *range(hour, 24)],
            )
        ]
        fields["solution"] = [solution("get_hourly_forecast", **concrete, start_hour=hour, end_hour=hour)]
        tags.append("hourly")
        at = f"at {hour_phrase(hour)} {day}"
    else:
        fields["ideal_calls"] = [daily_call]
        fields["solution"] = [solution("get_daily_forecast", **concrete)]
        tags.append("daily")
    kind = question.kind
    if kind == "temp":
        fields["prompt"] = rng.choice(
            [f"What will the temperature be in {place} {at}?", f"How warm will it be in {place} {at}?"]
        )
        fields["expected_answer"] = _number(hours[hour]["temp_f"])  # type: ignore[index]
    elif kind == "feels":
        fields["prompt"] = f"What will it feel like in {place} {at}, with the wind?"
        fields["expected_answer"] = _number(hours[hour]["feels_like_f"])  # type: ignore[index]
    elif kind == "high":
        fields["prompt"] = rng.choice(
            [f"What's the high in {place} {day}?", f"How hot will {place} get {day}?"]
        )
        fields["expected_answer"] = _number(daily["high_f"])
    elif kind == "low":
        fields["prompt"] = f"What's the lowest temperature in {place} {day}?"
        fields["expected_answer"] = _number(daily["low_f"])
    elif kind == "precip":
        fields["prompt"] = f"What's the chance of precipitation in {place} {day}?"
        chance = daily["precipitation_chance_pct"]
        fields["expected_answer"] = [str(chance), f"{chance}%"]
    elif kind == "swing":
        whose = day_possessive(world, date)
        fields["prompt"] = f"How many degrees apart are {whose} high and low in {place}?"
        fields["expected_answer"] = _number(daily["high_f"] - daily["low_f"])
        fields["servers"] = [NAME, "calculator"]
        tags.append("multi-step")
    else:
        weekday = day.removeprefix("on ").split(",")[0]
        night = {"today": "tonight", "tomorrow": "tomorrow night"}.get(day, f"on {weekday} night")
        fields["prompt"] = rng.choice(
            [
                f"I'm going out in {place} at {hour_phrase(hour)} {night}. What should I wear?",  # type: ignore[arg-type]
                f"What should I wear for dinner out in {place} at {hour_phrase(hour)} {night}?",  # type: ignore[arg-type]
            ]
        )
        fields["answer_match"] = "contains"
        if kind == "wear-cold":
            fields["expected_answer"], fields["distractors"] = WARM_CLOTHES, LIGHT_CLOTHES
            tags += ["trap", "hidden-detail"]
        else:
            fields["expected_answer"], fields["distractors"] = SUMMER_CLOTHES, WINTER_CLOTHES
    fields["evidence"] = list(fields["ideal_calls"])  # every answer is a fact only the forecast holds
    fields["tags"] = [*tags, kind]
    return task(**fields)


async def make(world: World, split: Split, n: int, rng: random.Random) -> list[Task]:
    chosen = draw(
        questions(world, split),
        rng,
        n,
        NAME,
        split,
        key=lambda question: question.id,
        group=lambda question: question.kind,
    )
    return [build(world, question, rng) for question in chosen]
