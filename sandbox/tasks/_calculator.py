"""The calculator family: expressions and word problems whose numbers all come from the split.

Every operand is a whole number from 2 to 99 (to 20 or 12 where a kind wants small ones) of the
task's split (:func:`split_of` on the number domain), so no held-out task shows a number a train
task shows. The answer is what the calculator server returns for the task's expression (its
``decimal``, and its ``exact`` fraction where they differ; only the fraction where the question
asks for one); a draw whose decimal answer the calculator would round is left out.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from sandbox.records import IdealCall, Task
from sandbox.tasks._common import draw_until, kind_turns, solution, task
from sandbox.tasks._split import NUMBER, Split, split_of, value_tag
from sandbox.tasks._world import TaskGenerationError, World

NAME = "calculator"
TRIES_PER_KIND = 20
ITEMS = ["pens", "apples", "cups", "stickers", "marbles", "batteries"]


@dataclass(frozen=True)
class Problem:
    kind: str
    numbers: tuple[int, ...]

    @property
    def id(self) -> str:
        return f"calculator-{self.kind}-" + "-".join(map(str, self.numbers))


def _terminates(numerator: int, denominator: int) -> bool:
    """Whether the quotient has a finite decimal expansion (the denominator has no prime but 2 and 5)."""
    rest = Fraction(numerator, denominator).denominator
    for prime in (2, 5):
        while rest % prime == 0:
            rest //= prime
    return rest == 1


ANY, SMALL, TINY = range(2, 100), range(2, 21), range(2, 13)


@dataclass(frozen=True)
class Kind:
    """One kind of problem: the range of each number, what the numbers must satisfy, the expression."""

    ranges: tuple[range, ...]
    fits: Callable[[tuple[int, ...]], bool]
    expression: Callable[[tuple[int, ...]], str]
    fraction: bool = False  # the answer is asked for as a fraction (the calculator's exact value)


_KINDS: dict[str, Kind] = {
    "mul-sub": Kind((ANY, ANY, ANY), lambda v: v[0] * v[1] > v[2], lambda v: f"{v[0]} * {v[1]} - {v[2]}"),
    "sum-mul": Kind((ANY, ANY, ANY), lambda v: True, lambda v: f"({v[0]} + {v[1]}) * {v[2]}"),
    "fraction": Kind((ANY, SMALL), lambda v: v[0] % v[1] != 0, lambda v: f"{v[0]} / {v[1]}", True),
    "fraction-sum": Kind(
        (SMALL,) * 4, lambda v: v[0] < v[1] and v[2] < v[3], lambda v: f"{v[0]}/{v[1]} + {v[2]}/{v[3]}", True
    ),
    "power": Kind((SMALL, TINY), lambda v: v[1] <= 9, lambda v: f"{v[0]} ** {v[1]}"),
    "percent": Kind((ANY, ANY), lambda v: True, lambda v: f"{v[0]} / 100 * {v[1]}"),
    "boxes": Kind((ANY, ANY, ANY), lambda v: v[0] * v[1] > v[2], lambda v: f"{v[0]} * {v[1]} - {v[2]}"),
    "speed": Kind((ANY, TINY), lambda v: True, lambda v: f"{v[0]} * {v[1]}"),
    "share": Kind(
        (ANY, TINY), lambda v: v[0] > v[1] and _terminates(v[0], v[1]), lambda v: f"{v[0]} / {v[1]}"
    ),
}


def _prompt(problem: Problem, rng: random.Random) -> str:
    v, kind = problem.numbers, problem.kind
    if kind in ("boxes", "speed", "share"):
        if kind == "boxes":
            item = rng.choice(ITEMS)
            return (
                f"A store has {v[0]} boxes of {v[1]} {item} and gives away {v[2]} {item}. "
                f"How many {item} are left?"
            )
        if kind == "speed":
            return f"A train travels at {v[0]} miles per hour for {v[1]} hours. How many miles does it cover?"
        return f"{v[1]} friends share a {v[0]} dollar prize equally. How many dollars does each one get?"
    templates = {
        "mul-sub": "What is {0} * {1} - {2}?",
        "sum-mul": "What is ({0} + {1}) * {2}?",
        "fraction": "What is {0} divided by {1}, as a fraction?",
        "fraction-sum": "What is {0}/{1} + {2}/{3}, as a fraction?",
        "power": "What is {0} to the power of {1}, exactly?",
        "percent": "What is {0}% of {1}?",
    }
    return templates[kind].format(*v)


def _draw(split: Split, next_kind: Callable[[], str]) -> Callable[[random.Random], Problem | None]:
    def one(rng: random.Random) -> Problem | None:
        name = next_kind()
        kind = _KINDS[name]
        pools = [split_numbers(split, numbers) for numbers in kind.ranges]
        if not all(pools):
            return None
        for _ in range(TRIES_PER_KIND):  # the kind is drawn first, so rare fits are not drowned out
            values = tuple(rng.choice(pool) for pool in pools)
            if kind.fits(values):
                return Problem(name, values)
        return None

    return one


def expression(problem: Problem) -> str:
    return _KINDS[problem.kind].expression(problem.numbers)


async def build(world: World, problem: Problem, rng: random.Random) -> Task | None:
    """The task, or None when the calculator would round an answer asked for as a decimal."""
    source = expression(problem)
    result = await world.calculate(source)
    exact, decimal = result["exact"], result["decimal"]
    if _KINDS[problem.kind].fraction:
        answers = [exact]
    elif result["rounded"]:
        return None
    else:
        answers = list(dict.fromkeys([decimal, exact]))
    word = problem.kind in ("boxes", "speed", "share")
    return task(
        id=problem.id,
        prompt=_prompt(problem, rng),
        servers=[NAME],
        expected_answer=answers,
        answer_match="number",
        # The expression may be written many ways: the call must compute the reference's exact value.
        ideal_calls=[IdealCall(name="calculate", result={"exact": [exact]})],
        solution=[solution("calculate", expression=source)],
        tags=[
            NAME,
            "word-problem" if word else "expression",
            problem.kind,
            *sorted({value_tag(NUMBER, value) for value in problem.numbers}),
        ],
    )


def split_numbers(split: Split, numbers: range = ANY) -> list[int]:
    """The numbers of ``numbers`` that belong to ``split``."""
    return [number for number in numbers if split_of(NUMBER, number) == split]


async def make(world: World, split: Split, n: int, rng: random.Random) -> list[Task]:
    drawer = _draw(split, kind_turns(sorted(_KINDS), rng))
    problems = draw_until(drawer, rng, n * 2, NAME, split, key=lambda p: p.id)
    tasks: list[Task] = []
    for problem in problems:  # built in turn until n have an exact answer: one calculator call each
        built = await build(world, problem, rng)
        if built is not None:
            tasks.append(built)
        if len(tasks) == n:
            return tasks
    # half the draws rounded: never with these kinds, but said plainly
    raise TaskGenerationError(f"family {NAME!r}: only {len(tasks)} {split} task(s) have an exact answer")
