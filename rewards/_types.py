"""The reward seam, in its own file so every reward module and the registry can name it."""

from __future__ import annotations

from collections.abc import Callable

from sandbox.records._records import Reward, Task, Trace

RewardFn = Callable[[Trace, Task], Reward]
"""A reward: a pure, deterministic function of a trace and its task."""
