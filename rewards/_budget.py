"""Time and depth budgets: a reward that would run too long or recurse too deep says it cannot score.

Every bundled reward runs inside a budget (:func:`bounded`): :data:`REWARD_SECONDS` of wall time per
reward and trace, and :data:`MAX_DEPTH` levels of nesting in any JSON value it walks (a tool's input
schema, a call's arguments). Past either, the reward returns ``value=None`` with the reason, never a
hang, a ``RecursionError`` or a crash. The budget is enforced in three ways, because Python cannot stop
a thread from outside:

- the rewards' own loops call :func:`check_time` (once per step, per call, per comparison), so they
  stop at the deadline;
- work handed to a library that cannot be interrupted from inside is given the time that is left:
  a ``pattern`` search runs in the ``regex`` engine with its ``timeout`` (see :mod:`rewards._schemas`),
  a math-verify comparison runs in a worker process that is killed when its time is up (see
  :mod:`rewards._math`);
- a nested value is measured before anything recurses into it (:func:`check_depth`, iterative).

A budget is a context variable, so each worker thread that scores traces has its own, and a reward
that calls another (``cot`` judges the answer as ``outcome`` does) spends the caller's budget rather
than opening a second one. :func:`reward_budget` opens one explicitly, with other limits (tests use it
to attack a reward with a tiny budget).
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sandbox.records import Reward, Task, Trace

REWARD_SECONDS = 30.0  # wall time one reward may spend on one trace
MAX_DEPTH = 64  # nesting of a JSON value (a schema, a call's arguments) that a reward walks


class BudgetExceeded(Exception):
    """A reward ran past its time or depth budget; ``str(exc)`` says where. Turned into ``value=None``."""


@dataclass(frozen=True)
class Budget:
    """A deadline (``time.monotonic()`` seconds) and a nesting limit for the reward running now."""

    seconds: float
    deadline: float
    max_depth: int

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


_current: ContextVar[Budget | None] = ContextVar("reward_budget", default=None)


@contextlib.contextmanager
def reward_budget(seconds: float = REWARD_SECONDS, max_depth: int = MAX_DEPTH) -> Iterator[Budget]:
    """Open a budget for the rewards run inside the block (an open one is kept: budgets do not nest)."""
    open_budget = _current.get()
    if open_budget is not None:
        yield open_budget
        return
    budget = Budget(seconds=seconds, deadline=time.monotonic() + seconds, max_depth=max_depth)
    token = _current.set(budget)
    try:
        yield budget
    finally:
        _current.reset(token)


def current_budget() -> Budget | None:
    """The budget open in this context, if any."""
    return _current.get()


def check_time(doing: str) -> None:
    """Raise :class:`BudgetExceeded` when the open budget's deadline has passed (``doing``: where)."""
    budget = _current.get()
    if budget is not None and budget.remaining() <= 0:
        raise BudgetExceeded(f"ran past its time budget of {budget.seconds:g} s while {doing}")


def time_left(most: float, doing: str) -> float:
    """Seconds that one bounded operation may take: ``most``, or less when the budget ends sooner."""
    check_time(doing)
    budget = _current.get()
    return most if budget is None else min(most, budget.remaining())


def max_depth() -> int:
    budget = _current.get()
    return MAX_DEPTH if budget is None else budget.max_depth


def depth_of(value: Any, limit: int) -> int:
    """How deeply ``value``'s dicts and lists nest (a scalar is 0), counted without recursion and
    stopping once past ``limit`` (so a value a million levels deep costs ``limit`` steps)."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth + 1)
        if deepest > limit:
            return deepest
        pending.extend((child, depth + 1) for child in children)
    return deepest


def check_depth(value: Any, what: str) -> None:
    """Raise :class:`BudgetExceeded` when ``value`` nests deeper than the budget allows."""
    limit = max_depth()
    if depth_of(value, limit) > limit:
        raise BudgetExceeded(f"{what} nest deeper than {limit} levels")


RewardFn = Callable[[Trace, Task], Reward]


def bounded(name: str, version: str) -> Callable[[RewardFn], RewardFn]:
    """Run a reward inside a budget; past it, the reward is ``value=None`` with the reason. The
    wrapped reward declares ``name`` and ``version`` as attributes, which a run folder records
    without scoring anything, and ``catches`` and ``maximum`` (none yet: see :func:`declare`)."""

    def decorate(reward: RewardFn) -> RewardFn:
        @functools.wraps(reward)
        def within_budget(trace: Trace, task: Task) -> Reward:
            with reward_budget():
                try:
                    return reward(trace, task)
                except BudgetExceeded as exc:
                    return Reward(name=name, version=version, value=None, reason=f"cannot score: {exc}")

        within_budget.reward_name = name  # type: ignore[attr-defined]
        within_budget.version = version  # type: ignore[attr-defined]
        within_budget.catches = frozenset()  # type: ignore[attr-defined]
        within_budget.maximum = None  # type: ignore[attr-defined]
        return within_budget

    return decorate


Maximum = Callable[[Trace, Task], float | None]


def declare(reward: RewardFn, *, catches: frozenset[str], maximum: Maximum) -> RewardFn:
    """Set what ``sandbox gauntlet`` checks of a reward: ``catches``, the attacks (by name, see
    ``sandbox.runs``) it must score strictly below the reference solution on every task, and
    ``maximum``, the most it can pay a trace (the reference solution must reach it)."""
    reward.catches = catches  # type: ignore[attr-defined]
    reward.maximum = maximum  # type: ignore[attr-defined]
    return reward
