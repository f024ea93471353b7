"""The gauntlet (``sandbox gauntlet``): the oracle and every attack on every task, scored by every reward.

For each task the oracle (:class:`~sandbox.models.OracleModel`) plays the reference solution
through the real episode loop and the real servers (:func:`run_sample`, so a stateful server is the
episode's own); each attack of :mod:`sandbox.runs._attacks` is then built from that trace and run
the same way as a scripted model. Every trace is scored by every reward.

What it checks, per reward:

- **pairs**: for each attack, on how many tasks where both it and the oracle are scored (value not
  None) the attack scores *strictly below* the oracle. A pair *holds* when that is every such task,
  and there is at least one.
- **declared pairs**: a reward names the attacks it is meant to catch in an attribute
  ``catches`` (a set of attack names; the bundled rewards set it beside their version). A declared
  pair that does not hold is a failure.
- **maximum**: a reward may declare ``maximum``, a function ``(trace, task) -> float | None`` giving
  the most it can pay that trace (a constant for most; the process sum's depends on the number of
  steps). The oracle must reach it on every task it is scored on; where it does not, a failure.

Nothing here renders; :class:`GauntletReport` holds the traces and answers the questions above.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from rewards import RewardFn, score_trace
from sandbox.episodes import Limits
from sandbox.hub import ServerConfig, ToolHub, load_config
from sandbox.models import OracleModel, ScriptedModel
from sandbox.records import ConfigError, Sampling, Task, Trace, read_tasks
from sandbox.runs._attacks import ATTACKS, Attack
from sandbox.runs._spec import run_sample, select_rewards

TOLERANCE = 1e-9  # the oracle "reaches" a maximum within this
DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Pair:
    """One reward against one attack: on ``below`` of the ``scored`` tasks (both scored) the attack
    scored strictly lower than the oracle; ``declared`` when the reward claims to catch it."""

    reward: str
    attack: str
    below: int
    scored: int
    declared: bool
    escaped: tuple[str, ...] = ()  # tasks where the attack was not below the oracle

    @property
    def holds(self) -> bool:
        return self.scored > 0 and self.below == self.scored


@dataclass(frozen=True)
class OracleMax:
    """Whether the oracle reached a reward's declared maximum: on ``reached`` of ``checked`` tasks
    (``declared`` False: the reward declares no maximum)."""

    reward: str
    declared: bool
    reached: int
    checked: int
    missed: tuple[str, ...] = ()

    @property
    def holds(self) -> bool:
        return not self.declared or self.reached == self.checked


@dataclass
class GauntletReport:
    """The traces of a gauntlet run, and what they show."""

    rewards: list[str]
    attacks: list[str]
    catches: dict[str, frozenset[str]]
    maxima: dict[str, Callable[[Trace, Task], float | None] | None]
    tasks: list[Task] = field(default_factory=list)
    oracle: dict[str, Trace] = field(default_factory=dict)  # by task id
    attacked: dict[tuple[str, str], Trace] = field(default_factory=dict)  # by (task id, attack)

    def pair(self, reward: str, attack: str) -> Pair:
        below, scored, escaped = 0, 0, []
        for task in self.tasks:
            trace = self.attacked.get((task.id, attack))
            if trace is None:
                continue
            mine, theirs = _value(trace, reward), _value(self.oracle[task.id], reward)
            if mine is None or theirs is None:
                continue
            scored += 1
            if mine < theirs - TOLERANCE:
                below += 1
            else:
                escaped.append(task.id)
        declared = attack in self.catches.get(reward, frozenset())
        return Pair(reward, attack, below, scored, declared, tuple(escaped))

    def pairs(self) -> list[Pair]:
        return [self.pair(reward, attack) for reward in self.rewards for attack in self.attacks]

    def oracle_max(self, reward: str) -> OracleMax:
        maximum = self.maxima.get(reward)
        if maximum is None:
            return OracleMax(reward, False, 0, 0)
        reached, checked, missed = 0, 0, []
        for task in self.tasks:
            trace = self.oracle[task.id]
            value, best = _value(trace, reward), maximum(trace, task)
            if value is None or best is None:
                continue
            checked += 1
            if value >= best - TOLERANCE:
                reached += 1
            else:
                missed.append(f"{task.id} ({value:g} < {best:g})")
        return OracleMax(reward, True, reached, checked, tuple(missed))

    def failures(self) -> list[str]:
        """One line per declared pair that does not hold and per maximum the oracle missed."""
        lines = []
        for pair in self.pairs():
            if pair.declared and not pair.holds:
                where = ", ".join(pair.escaped) or "no task scored both"
                lines.append(
                    f"{pair.reward} claims to catch {pair.attack}, but it scored the attack no lower than "
                    f"the oracle on {len(pair.escaped)} of {pair.scored} task(s): {where}"
                )
        for reward in self.rewards:
            best = self.oracle_max(reward)
            if not best.holds:
                lines.append(
                    f"the oracle misses {reward}'s maximum on {len(best.missed)} of {best.checked} task(s): "
                    + ", ".join(best.missed)
                )
        return lines


def _value(trace: Trace, reward: str) -> float | None:
    verdict = trace.rewards.get(reward)
    if verdict is None or verdict.value is None or math.isnan(verdict.value):
        return None
    return verdict.value


def declared_catches(reward: RewardFn) -> frozenset[str]:
    """The attacks a reward declares it catches (its ``catches`` attribute; none when absent)."""
    value: Any = getattr(reward, "catches", frozenset())
    return frozenset(value)


def declared_maximum(reward: RewardFn) -> Callable[[Trace, Task], float | None] | None:
    """A reward's declared ``maximum`` function, or None."""
    value: Any = getattr(reward, "maximum", None)
    return value if callable(value) else None


async def run_gauntlet(
    tasks: Sequence[Task],
    servers: Mapping[str, ServerConfig],
    rewards: Mapping[str, RewardFn],
    *,
    attacks: Sequence[Attack] = ATTACKS,
    limits: Limits = DEFAULT_LIMITS,
    parallel: int = 4,
) -> GauntletReport:
    """Run the oracle and every attack on every task against ``servers``, scoring with ``rewards``."""
    known = {attack.name for attack in attacks}
    for name, reward in rewards.items():
        unknown = sorted(declared_catches(reward) - known)
        if unknown:
            raise ConfigError(f"reward {name!r} declares it catches unknown attack(s) {unknown}")
    report = GauntletReport(
        rewards=list(rewards),
        attacks=[attack.name for attack in attacks],
        catches={name: declared_catches(reward) for name, reward in rewards.items()},
        maxima={name: declared_maximum(reward) for name, reward in rewards.items()},
        tasks=list(tasks),
    )
    oracle = OracleModel(tasks)
    limiter = anyio.CapacityLimiter(max(1, parallel))
    async with ToolHub(servers, call_timeout=limits.call_timeout) as hub:

        async def episode(task: Task, model: OracleModel | ScriptedModel) -> Trace:
            trace = await run_sample(task, 0, model, hub, limits, mode="free", sampling=Sampling())
            return score_trace(trace, task, rewards)

        async def one_task(task: Task) -> None:
            async with limiter:
                report.oracle[task.id] = await episode(task, oracle)
                max_steps = task.max_steps or limits.max_steps
                own = [step.raw_text for step in report.oracle[task.id].steps]
                for attack in attacks:
                    turns = attack.build(task, report.oracle[task.id], max_steps)
                    if turns is None or turns == own:
                        continue
                    model = ScriptedModel(turns, name=f"attack:{attack.name}")
                    report.attacked[task.id, attack.name] = await episode(task, model)

        async with anyio.create_task_group() as group:
            for task in tasks:
                group.start_soon(one_task, task)
    return report


async def gauntlet(
    tasks: Path, servers: Path, rewards: str = "all", *, limits: Limits = DEFAULT_LIMITS, parallel: int = 4
) -> GauntletReport:
    """The gauntlet from files: a task file, an ``mcpServers`` config and reward names ("all")."""
    task_list = read_tasks(tasks)
    if not task_list:
        raise ConfigError(f"{tasks}: no tasks")
    used = sorted({name for task in task_list for name in task.servers})
    config = load_config(servers, only=used)
    unknown = [name for name in used if name not in config]
    if unknown:
        raise ConfigError(f"tasks name server(s) {unknown} that {servers} does not configure")
    chosen = select_rewards(rewards)
    return await run_gauntlet(
        task_list, {name: config[name] for name in used}, chosen, limits=limits, parallel=parallel
    )
