"""The reward seam, named once for every reward module and the registry."""

from __future__ import annotations

from sandbox.records import RewardFn

__all__ = ["RewardFn"]
