"""Per-reward running sums: the one accumulator behind every mean a command prints or a report shows."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sandbox.records._records import Trace


def total_reward(trace: Trace, reward: str | None = None) -> float | None:
    """The trace's total reward: one reward's value, or the sum of all non-None values (None if none)."""
    if reward is not None:
        chosen = trace.rewards.get(reward)
        return None if chosen is None else chosen.value
    values = [r.value for r in trace.rewards.values() if r.value is not None]
    return math.fsum(values) if values else None


@dataclass
class RewardTally:
    """Each reward's count of traces seen, count scored (a finite value), sum, low and high.

    A reward that could not score a trace (value None) counts as seen, not scored, so a mean is
    always over the traces the reward judged, and ``scored / seen`` says how many that was.
    """

    seen: dict[str, int] = field(default_factory=dict)
    scored: dict[str, int] = field(default_factory=dict)
    sums: dict[str, float] = field(default_factory=dict)
    lows: dict[str, float] = field(default_factory=dict)
    highs: dict[str, float] = field(default_factory=dict)

    def add(self, values: Mapping[str, float | None]) -> None:
        """Count one trace's reward values (name -> value)."""
        for name, value in values.items():
            self.seen[name] = self.seen.get(name, 0) + 1
            self.scored.setdefault(name, 0)
            self.sums.setdefault(name, 0.0)
            if value is None or not math.isfinite(value):
                continue
            self.scored[name] += 1
            self.sums[name] += value
            self.lows[name] = min(self.lows.get(name, value), value)
            self.highs[name] = max(self.highs.get(name, value), value)

    def add_trace(self, trace: Trace, names: Iterable[str] | None = None) -> None:
        """Count a trace's rewards (only ``names`` when given; a missing one counts as unscored)."""
        chosen = trace.rewards if names is None else names
        self.add({name: _value(trace, name) for name in chosen})

    def names(self) -> list[str]:
        """The rewards seen, in the order first seen."""
        return list(self.seen)

    def mean(self, name: str) -> float | None:
        count = self.scored.get(name, 0)
        return self.sums[name] / count if count else None

    def means(self) -> dict[str, float | None]:
        return {name: self.mean(name) for name in self.names()}


def _value(trace: Trace, name: str) -> float | None:
    reward = trace.rewards.get(name)
    return None if reward is None else reward.value
