"""One episode: a task, a model and a tool hub in, one :class:`~sandbox.records.Trace` out
(:func:`run_episode`), stopping at an answer or at the :class:`Limits`."""

from sandbox.episodes._episode import Hub, Limits, Mode, episode_format, grammar_for, run_episode

__all__ = ["Hub", "Limits", "Mode", "episode_format", "grammar_for", "run_episode"]
