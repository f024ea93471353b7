"""What the families share: phrasing of hours and days, argument variants, drawing without repeats."""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Callable, Sequence
from datetime import date as Date
from datetime import timedelta
from typing import Any, TypeVar

from sandbox.records import IdealCall, Milestone, Minefield, SolutionCall, StateCheck, Task
from sandbox.tasks._split import Split
from sandbox.tasks._world import TaskGenerationError, World

T = TypeVar("T")

# A family tries this many draws per task asked for before it says it has run out of distinct tasks.
DRAWS_PER_TASK = 50
# ... and gives up sooner when this many draws in a row found nothing new (the pool is used up).
STALE_DRAWS = 5000


def variants(*values: str) -> list[str]:
    """Each value as written and casefolded, each once, in order (acceptable argument values)."""
    seen: list[str] = []
    for value in values:
        for form in (value, value.casefold()):
            if form not in seen:
                seen.append(form)
    return seen


def slug(text: str) -> str:
    """``San Francisco`` -> ``san-francisco``: a file name part made of the value."""
    return re.sub(r"[^a-z0-9]+", "-", text.casefold()).strip("-")


def words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.casefold()))


def hour_phrase(hour: int) -> str:
    """17 -> ``5pm``, 12 -> ``noon``, 7 -> ``7am``."""
    if hour == 12:
        return "noon"
    return f"{hour}am" if hour < 12 else f"{hour - 12}pm"


def day_phrase(world: World, iso: str) -> str:
    """``today``, ``tomorrow`` or ``on Saturday, November 28``."""
    if iso == world.today:
        return "today"
    if iso == world.tomorrow:
        return "tomorrow"
    day = Date.fromisoformat(iso)
    return f"on {day.strftime('%A, %B')} {day.day}"


def day_possessive(world: World, iso: str) -> str:
    """``today's``, ``tomorrow's`` or ``Saturday's``."""
    if iso in (world.today, world.tomorrow):
        return f"{day_phrase(world, iso)}'s"
    return f"{Date.fromisoformat(iso).strftime('%A')}'s"


def date_argument(world: World, iso: str) -> str:
    """The date as the reference solution passes it: ``today``, ``tomorrow`` or the ISO date."""
    return {world.today: "today", world.tomorrow: "tomorrow"}.get(iso, iso)


def date_variants(world: World, iso: str) -> list[str]:
    """Acceptable values of a date argument: the ISO date, and ``today``/``tomorrow`` where it is one."""
    relative = date_argument(world, iso)
    return [iso] if relative == iso else [iso, relative]


def day_before(iso: str) -> str:
    return (Date.fromisoformat(iso) - timedelta(days=1)).isoformat()


def ideal(name: str, **arguments: list[Any]) -> IdealCall:
    return IdealCall(name=name, arguments=arguments)


def solution(name: str, **arguments: Any) -> SolutionCall:
    return SolutionCall(name=name, arguments=arguments)


def state(server: str, resource: str, path: str, op: str = "equals", value: Any = None) -> StateCheck:
    return StateCheck.model_validate(
        {"server": server, "resource": resource, "path": path, "op": op, "value": value}
    )


def milestone(name: str, **kind: Any) -> Milestone:
    return Milestone.model_validate({"name": name, **kind})


def minefield(name: str, **kind: Any) -> Minefield:
    return Minefield.model_validate({"name": name, **kind})


def draw(
    pool: Sequence[T],
    rng: random.Random,
    n: int,
    family: str,
    split: Split,
    key: Callable[[T], str],
    group: Callable[[T], str] | None = None,
) -> list[T]:
    """``n`` distinct items of ``pool`` (by ``key``) in a random order; fewer than ``n``: one clear error.

    With ``group`` the draw is stratified: the groups (say, question kinds) take turns, in a random
    order, each giving its next item, so a rare kind is not drowned by a common one.
    """
    unique = list({key(item): item for item in pool}.values())
    if n > len(unique):
        raise TaskGenerationError(
            f"family {family!r} has {len(unique)} distinct {split} task(s); --n {n} asks for more"
        )
    if group is None:
        return rng.sample(unique, n)
    groups: dict[str, list[T]] = {}
    for item in unique:
        groups.setdefault(group(item), []).append(item)
    queues = [rng.sample(items, len(items)) for _, items in sorted(groups.items())]
    rng.shuffle(queues)
    chosen: list[T] = []
    while len(chosen) < n:
        for queue in queues:
            if queue and len(chosen) < n:
                chosen.append(queue.pop())
    return chosen


def kind_turns(kinds: Sequence[str], rng: random.Random) -> Callable[[], str]:
    """The kinds in turn, in one random order: each call gives the next, so a draw of n tasks holds
    every kind about n / len(kinds) times (a kind drawn at random each time can be missed entirely)."""
    order = rng.sample(list(kinds), len(kinds))
    turn = itertools.count()
    return lambda: order[next(turn) % len(order)]


def draw_until(
    make: Callable[[random.Random], T | None],
    rng: random.Random,
    n: int,
    family: str,
    split: Split,
    key: Callable[[T], str],
) -> list[T]:
    """``n`` items of distinct keys from ``make(rng)`` (None: a draw that does not fit, drawn again);
    too few distinct ones (see :data:`DRAWS_PER_TASK`, :data:`STALE_DRAWS`): one clear error."""
    found: dict[str, T] = {}
    stale = draws = 0
    while draws < n * DRAWS_PER_TASK and stale < STALE_DRAWS:
        draws += 1
        item = make(rng)
        if item is not None and key(item) not in found:
            found[key(item)] = item
            stale = 0
            if len(found) == n:
                return list(found.values())
        else:
            stale += 1
    raise TaskGenerationError(
        f"family {family!r} found only {len(found)} distinct {split} task(s) in {draws} draws; "
        f"--n {n} asks for more"
    )


def task(**fields: Any) -> Task:
    """A task from its fields (validated like a task file's line)."""
    return Task.model_validate(fields)
