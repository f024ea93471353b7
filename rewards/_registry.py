"""Rewards by name, and scoring a trace with them.

Rewards register under the entry-point group ``sandbox.rewards`` (``name = "module:function"``), so
a user's reward plugs in exactly like a bundled one: the bundled rewards are entry points of this
project's own package, and nothing else lists them. A reward declares its version as an attribute
``version`` (the bundled ones do through :func:`rewards._budget.bounded`); a run folder records it.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points

from rewards._types import RewardFn
from sandbox.records import Reward, RewardError, Task, Trace

ENTRY_POINT_GROUP = "sandbox.rewards"


def available_rewards() -> dict[str, RewardFn]:
    """Every reward registered as an entry point, by name. None registered means the project was
    never installed (its own rewards are entry points): that is one clear error, not an empty run."""
    rewards: dict[str, RewardFn] = {}
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = entry_point.load()
        except Exception as exc:
            raise RewardError(
                f"reward {entry_point.name!r} ({entry_point.value}) failed to load: {exc!r}; "
                f"fix or uninstall the package that registers it"
            ) from exc
        if not callable(loaded):
            raise RewardError(f"reward {entry_point.name!r} ({entry_point.value}) is not callable")
        rewards[entry_point.name] = loaded
    if not rewards:
        raise RewardError(
            f"no rewards are registered in the {ENTRY_POINT_GROUP!r} entry-point group: install the "
            "project (pip install -e .) so that its rewards are found"
        )
    return rewards


def score_trace(trace: Trace, task: Task, rewards: Mapping[str, RewardFn]) -> Trace:
    """A copy of ``trace`` with each reward's verdict in ``trace.rewards`` under its name.

    Rewards already on the trace are kept unless one of ``rewards`` has the same name. Raises
    :class:`RewardError`, naming the reward and the trace, when a reward raises or returns something
    other than a :class:`Reward`.
    """
    scored = {name: _run(name, reward, trace, task) for name, reward in rewards.items()}
    return trace.model_copy(update={"rewards": {**trace.rewards, **scored}})


def _run(name: str, reward: RewardFn, trace: Trace, task: Task) -> Reward:
    try:
        verdict: object = reward(trace, task)
    except Exception as exc:
        raise RewardError(f"reward {name!r} crashed on trace {trace.id!r}: {exc!r}") from exc
    if not isinstance(verdict, Reward):
        kind = type(verdict).__name__
        raise RewardError(f"reward {name!r} returned {kind} on trace {trace.id!r}, not a Reward")
    return verdict
