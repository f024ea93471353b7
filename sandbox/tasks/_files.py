"""The files family: notes and lists written to the files server, checked on its state, read back.

The files server starts empty, so its tasks' values come from the other servers' data: places
(weather) and song titles (music), split like everywhere else. Kinds:

- ``note``: "Save a note in {place}.txt that says: pack for {place}"; the file must hold the note.
- ``list``: a file listing two to four song titles, one per line; the file must hold each.
- ``read-back``: write a song title to a file, read it back, say what it holds.
- ``forecast-note``: look up a day's high (weather server) and save it to a file; the answer is
  the high, and the file must hold it.

Checks read ``files://state`` (``files.<path>`` holds the file's text), never a tool. A read-back
answer must rest on the ``read_file`` call and a forecast-note answer on the forecast
(``Task.evidence``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.records import Task
from sandbox.tasks._common import (
    date_argument,
    date_variants,
    day_possessive,
    draw_until,
    ideal,
    kind_turns,
    milestone,
    slug,
    solution,
    state,
    task,
    variants,
    words,
)
from sandbox.tasks._split import PLACE, TITLE, Split, split_of, value_tag
from sandbox.tasks._world import World

NAME = "files"
STATE = "files://state"
KINDS = ("note", "list", "read-back", "forecast-note")
NOTES = ("pack for {0}", "book a hotel in {0}", "call the office in {0}")
LIST_FILES = ("playlist.txt", "songs.txt", "mix.txt")


@dataclass(frozen=True)
class Question:
    kind: str
    values: tuple[str, ...]
    extra: str = ""  # note: the note; forecast-note: the date

    @property
    def id(self) -> str:
        parts = [slug(value) for value in (*self.values, self.extra) if value]
        return f"files-{self.kind}-" + "-".join(parts)


def _holds(path: str, text: str) -> Any:
    return state(NAME, STATE, f"files.{path}", "contains", text)


def _write(path: str) -> Any:
    return ideal("write_file", path=[path, f"./{path}"])


def _drawer(
    world: World, split: Split, next_kind: Callable[[], str]
) -> Callable[[random.Random], Question | None]:
    places = [place for place in world.places if split_of(PLACE, place) == split]
    # a title in a comma list must read as one item
    titles = sorted(
        {
            t["title"]
            for t in (*world.library, *world.catalog)
            if split_of(TITLE, t["title"]) == split
            and "," not in t["title"]
            and "and" not in words(t["title"])
        }
    )

    def one(rng: random.Random) -> Question | None:
        kind = next_kind()
        if kind == "note":
            place = rng.choice(places)
            return Question(kind, (place,), rng.choice(NOTES).format(place))
        if kind == "forecast-note":
            return Question(kind, (rng.choice(places),), rng.choice(world.dates))
        if kind == "read-back":
            return Question(kind, (rng.choice(titles),))
        picked = tuple(rng.sample(titles, rng.randint(2, min(4, len(titles)))))
        return Question(kind, picked)

    return one


def build(world: World, question: Question, rng: random.Random) -> Task:
    kind, values = question.kind, question.values
    fields: dict[str, Any] = {"id": question.id, "servers": [NAME]}
    domain = TITLE
    if kind == "note":
        place = values[0]
        path, note = f"{slug(place)}.txt", question.extra
        fields |= {
            "prompt": f"Save a note in {path} that says: {note}",
            "ideal_calls": [_write(path)],
            "solution": [solution("write_file", path=path, content=f"{note}\n")],
            "expected_state": [_holds(path, note)],
            "milestones": [milestone(f"{path} holds the note", state=_holds(path, note))],
        }
        domain = PLACE
    elif kind == "list":
        path = rng.choice(LIST_FILES)
        shown = ", ".join(values[:-1]) + f" and {values[-1]}"
        checks = [_holds(path, title) for title in values]
        fields |= {
            "prompt": f"Make a file {path} listing {shown}, one per line.",
            "ideal_calls": [_write(path)],
            "solution": [solution("write_file", path=path, content="".join(f"{t}\n" for t in values))],
            "expected_state": checks,
            "milestones": [
                milestone(f"{path} exists", state=state(NAME, STATE, f"files.{path}", "exists")),
                milestone(f"{path} lists {values[-1]}", state=checks[-1]),
            ],
        }
    elif kind == "read-back":
        title = values[0]
        path = f"{slug(title)}.txt"
        read = ideal("read_file", path=[path, f"./{path}"])
        fields |= {
            "prompt": f'Write "{title}" to {path}, then read the file back and tell me what it says.',
            "expected_answer": [title],
            "answer_match": "contains",
            "ideal_calls": [_write(path), read],
            "evidence": [read],
            "solution": [
                solution("write_file", path=path, content=f"{title}\n"),
                solution("read_file", path=path),
            ],
            "expected_state": [_holds(path, title)],
            "milestones": [
                milestone(f"{path} holds the title", state=_holds(path, title)),
                milestone("read it back", call=read),
            ],
        }
    else:
        place, date = values[0], question.extra
        path = f"{slug(place)}-high.txt"
        high = str(world.daily[place, date]["high_f"])
        day = day_possessive(world, date)
        lookup = ideal("get_daily_forecast", location=variants(place), date=date_variants(world, date))
        fields |= {
            "prompt": f"Look up {day} high in {place}, save it in {path}, and tell me what it is.",
            "servers": ["weather", NAME],
            "expected_answer": [high],
            "answer_match": "number",
            "ideal_calls": [lookup, _write(path)],
            "evidence": [lookup],
            "solution": [
                solution("get_daily_forecast", location=place, date=date_argument(world, date)),
                solution("write_file", path=path, content=f"High in {place}: {high}°F\n"),
            ],
            "expected_state": [_holds(path, high)],
            "milestones": [
                milestone("looked up the forecast", call=lookup),
                milestone(f"{path} holds the high", state=_holds(path, high)),
            ],
        }
        domain = PLACE
    fields["tags"] = [NAME, "state", kind, *sorted({value_tag(domain, value) for value in values})]
    return task(**fields)


async def make(world: World, split: Split, n: int, rng: random.Random) -> list[Task]:
    drawer = _drawer(world, split, kind_turns(KINDS, rng))
    questions = draw_until(drawer, rng, n, NAME, split, key=lambda q: q.id)
    return [build(world, question, rng) for question in questions]
