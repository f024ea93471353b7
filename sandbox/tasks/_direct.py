"""The direct family: questions a tool is offered for but not needed, answered from the prompt alone.

Each task offers a server that looks useful (the calculator for a small sum, the weather server for
a question about a trip, the music server for a question about a playlist) and declares that no
call is needed: ``ideal_calls`` is empty and there is no ``solution``, so tool_syntax pays 0.0 for
answering directly and less for any call (−0.5 is what a task that *needs* a tool pays for none),
and the oracle answers at once. The values (numbers, places, titles) come from the servers' data
and the task's split; the answer is computed from the prompt's text (the sum by the calculator).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from sandbox.records import Task
from sandbox.tasks._common import draw_until, kind_turns, slug, task, words
from sandbox.tasks._split import NUMBER, PLACE, TITLE, Split, split_of, value_tag
from sandbox.tasks._world import World

NAME = "direct"
SMALL = range(1, 31)  # a sum of two of these needs no calculator
KINDS = ("sum", "land", "drive", "count-songs", "first-title")


@dataclass(frozen=True)
class Question:
    kind: str
    values: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"direct-{self.kind}-" + "-".join(slug(value) for value in self.values)


def _disjoint(values: tuple[str, ...]) -> bool:
    """No two values share a word (one must never be read as naming another)."""
    seen: set[str] = set()
    for value in values:
        if words(value) & seen:
            return False
        seen |= words(value)
    return True


def _drawer(
    world: World, split: Split, next_kind: Callable[[], str]
) -> Callable[[random.Random], Question | None]:
    numbers = [str(n) for n in SMALL if split_of(NUMBER, n) == split]
    places = [place for place in world.places if split_of(PLACE, place) == split]
    titles = sorted({track["title"] for track in world.library if split_of(TITLE, track["title"]) == split})

    def one(rng: random.Random) -> Question | None:
        kind = next_kind()
        if kind == "sum":
            values = (rng.choice(numbers), rng.choice(numbers))
            return Question(kind, values)
        if kind in ("land", "drive"):
            picked = tuple(rng.sample(places, 2))
        else:
            picked = tuple(rng.sample(titles, rng.randint(2, min(4, len(titles)))))
        return Question(kind, picked) if _disjoint(picked) else None

    return one


async def build(world: World, question: Question, rng: random.Random) -> Task:
    kind, values = question.kind, question.values
    fields: dict[str, object] = {"id": question.id, "ideal_calls": [], "answer_match": "contains"}
    domain = PLACE
    if kind == "sum":
        a, b = values
        result = await world.calculate(f"{a} + {b}")
        fields |= {
            "prompt": rng.choice([f"What is {a}+{b}?", f"What is {a} plus {b}?"]),
            "servers": ["calculator"],
            "expected_answer": [result["exact"]],
            "answer_match": "number",
        }
        domain = NUMBER
    elif kind in ("land", "drive"):
        first, second = values
        quote = f'My friend wrote: "I land in {first} on Friday and then drive on to {second}."'
        asked = "land in" if kind == "land" else "drive to"
        answer, other = (first, second) if kind == "land" else (second, first)
        fields |= {
            "prompt": f"{quote} Which city does my friend {asked}?",
            "servers": ["weather"],
            "expected_answer": [answer],
            "distractors": [other],
        }
    elif kind == "count-songs":
        listed = "\n".join(f"- {title}" for title in values)
        fields |= {
            "prompt": f"Here is my playlist:\n{listed}\nHow many songs are on it?",
            "servers": ["music"],
            "expected_answer": [str(len(values))],
            "answer_match": "number",
        }
        domain = TITLE
    else:
        shown = ", ".join(values[:-1]) + f" or {values[-1]}"
        first = min(values, key=str.casefold)
        fields |= {
            "prompt": f"Which of these song titles comes first in alphabetical order: {shown}?",
            "servers": ["music"],
            "expected_answer": [first],
            "distractors": [value for value in values if value != first],
        }
        domain = TITLE
    fields["tags"] = ["no-tool", NAME, kind, *sorted({value_tag(domain, value) for value in values})]
    return task(**fields)


async def make(world: World, split: Split, n: int, rng: random.Random) -> list[Task]:
    drawer = _drawer(world, split, kind_turns(KINDS, rng))
    questions = draw_until(drawer, rng, n, NAME, split, key=lambda q: q.id)
    return [await build(world, question, rng) for question in questions]
