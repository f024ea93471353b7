"""Rewards by name. Bundled and third-party rewards register the same way: an entry point in the
``sandbox.rewards`` group whose object is ``(trace, task) -> Reward``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib.metadata import entry_points

from sandbox._errors import ConfigError
from sandbox._records import Reward, Task, Trace

RewardFn = Callable[[Trace, Task], Reward]
REWARD_GROUP = "sandbox.rewards"


def reward_names() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=REWARD_GROUP))


def load_rewards(spec: str = "all") -> dict[str, RewardFn]:
    """The rewards named in ``spec`` ("all", or comma-separated names), in that order."""
    available = {ep.name: ep for ep in entry_points(group=REWARD_GROUP)}
    if not available:
        raise ConfigError(
            f"no rewards registered in the {REWARD_GROUP!r} entry-point group; install the project "
            "(pip install -e .) so its rewards register"
        )
    names = (
        sorted(available)
        if spec.strip() in ("all", "")
        else [n.strip() for n in spec.split(",") if n.strip()]
    )
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ConfigError(f"unknown reward(s) {unknown}; available: {sorted(available)}")
    loaded: dict[str, RewardFn] = {}
    for name in names:
        try:
            loaded[name] = available[name].load()
        except (ImportError, AttributeError) as exc:
            raise ConfigError(
                f"reward {name!r} ({available[name].value}) could not be loaded: {exc}"
            ) from exc
    return loaded


def score(trace: Trace, rewards: Mapping[str, RewardFn]) -> Trace:
    """The trace with every reward's verdict added.

    A reward that raises is a bug in the reward, not a fact about the model: its verdict is
    recorded as unscored (``value=None``) with the exception, never as 0.0.
    """
    verdicts = dict(trace.rewards)
    for name, fn in rewards.items():
        try:
            reward = fn(trace, trace.task)
        except Exception as exc:
            reward = Reward(
                name=name, version="?", value=None, reason=f"reward raised {type(exc).__name__}: {exc}"
            )
        verdicts[name] = reward
    return trace.model_copy(update={"rewards": verdicts})
