"""Rewards by name, and scoring a trace."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest
from _reward_builders import answer, task, trace

import rewards
from rewards import RewardError, available_rewards, score_trace
from sandbox.records import Reward, Task, Trace

FOUR = task(expected="4", match="number")


def no_entry_points(group: str) -> list[EntryPoint]:
    return []


def test_without_the_package_installed_no_reward_is_found_and_the_error_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("rewards._registry.entry_points", no_entry_points)
    with pytest.raises(RewardError, match=r"pip install -e \."):
        available_rewards()


def test_the_bundled_rewards_are_the_installed_entry_points_and_declare_their_versions() -> None:
    found = available_rewards()
    assert {"tool_syntax", "outcome", "cot", "process", "process_mean", "bfcl"} <= set(found)
    assert found["outcome"] is rewards.outcome_reward
    for name, reward in found.items():
        declared = reward.version  # type: ignore[attr-defined]
        verdict = reward(trace(FOUR, [answer(0, "4")]), FOUR)
        assert verdict.version == declared, name


def test_an_entry_point_adds_a_reward(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = EntryPoint(name="mine", value="rewards:outcome_reward", group="sandbox.rewards")
    monkeypatch.setattr("rewards._registry.entry_points", lambda group: [extra])
    assert available_rewards()["mine"] is rewards.outcome_reward


def test_an_entry_point_that_fails_to_load_names_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    bad = EntryPoint(name="ghost", value="no_such_module_anywhere:reward", group="sandbox.rewards")
    monkeypatch.setattr("rewards._registry.entry_points", lambda group: [bad])
    with pytest.raises(RewardError, match=r"'ghost'.*failed to load"):
        available_rewards()


def test_score_trace_fills_a_copy() -> None:
    original = trace(FOUR, [answer(0, "4")])
    before = original.model_dump()
    scored = score_trace(original, FOUR, {"outcome": rewards.outcome_reward, "cot": rewards.cot_reward})
    assert scored.rewards["outcome"].value == 1.0
    assert scored.rewards["cot"].value == 1.2
    assert original.model_dump() == before


def test_score_trace_keeps_other_rewards_already_there() -> None:
    earlier = Reward(name="judge", version="1", value=0.5)
    original = trace(FOUR, [answer(0, "4")]).model_copy(update={"rewards": {"judge": earlier}})
    scored = score_trace(original, FOUR, {"outcome": rewards.outcome_reward})
    assert set(scored.rewards) == {"judge", "outcome"}


def crashing(trace: Trace, task: Task) -> Reward:
    raise ZeroDivisionError("oops")


def test_a_crashing_reward_is_an_error_never_a_zero() -> None:
    with pytest.raises(RewardError, match="'crashing' crashed on trace 'trace-1'") as caught:
        score_trace(trace(FOUR, [answer(0, "4")]), FOUR, {"crashing": crashing})
    assert isinstance(caught.value.__cause__, ZeroDivisionError)


def test_a_reward_that_returns_a_number_is_an_error() -> None:
    with pytest.raises(RewardError, match="returned float"):
        score_trace(trace(FOUR), FOUR, {"number": lambda trace, task: 0.0})  # type: ignore[dict-item]


def test_the_installed_entry_points_are_the_bundled_rewards() -> None:
    found = available_rewards()
    for name in ("cot", "outcome", "process", "process_mean", "tool_syntax"):
        assert found[name] is getattr(rewards, f"{name}_reward")
