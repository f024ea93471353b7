"""The HTML trace viewer (``sandbox view``): one self-contained page per trace file or run folder,
opened from disk with no server and no network."""

from sandbox.view._html import (
    Loaded,
    Report,
    RewardStats,
    call_problem,
    default_output,
    failed_call,
    load_traces,
    render_report,
    reward_stats,
    write_report,
)

__all__ = [
    "Loaded",
    "Report",
    "RewardStats",
    "call_problem",
    "default_output",
    "failed_call",
    "load_traces",
    "render_report",
    "reward_stats",
    "write_report",
]
