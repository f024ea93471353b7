"""The room's public names."""

from __future__ import annotations

import rewards


def test_all_is_sorted_and_complete() -> None:
    assert rewards.__all__ == sorted(rewards.__all__)
    public = {name for name in vars(rewards) if not name.startswith("_")}
    assert public == set(rewards.__all__)
