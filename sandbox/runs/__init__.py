"""Runs: many episodes from one :class:`RunSpec`, each scored and written as it finishes.

- :func:`generate` -- the one run pipeline: ``sandbox generate`` (n samples per task into a run
  folder that resumes) and ``sandbox run`` (one sample per task into one trace file) both call it;
  a :class:`RunEvents` listener hears of its progress and a :class:`RunSummary` says what it did.
- The run folder (``config.json`` as :class:`RunConfig`, ``traces.jsonl``): :data:`CONFIG_FILE`,
  :data:`TRACES_FILE`, :func:`run_trace_file`; each (task, sample) samples with :func:`derive_seed`.
- :func:`select_rewards` and :func:`check_run_inputs`: what a run needs, checked before it starts;
  a judge's backend from :func:`open_judge` (a GGUF, or a :class:`JudgeServer`).
- :func:`score_file` (``sandbox score``): re-score traces with no episode run again.
- :func:`replay_file` and :func:`replay_trace` (``sandbox replay``): re-run recorded episodes against
  their recorded tool results; :func:`first_difference` says where two runs part.
- :func:`gauntlet` and :func:`run_gauntlet` (``sandbox gauntlet``): the oracle and every attack of
  :data:`ATTACKS` on every task, a :class:`GauntletReport` of which reward catches which attack.
- :func:`write_demos` (``sandbox demos``): the oracle's gold episodes with demonstration thoughts,
  scored, as a run folder to train on.
- :func:`init_ray`: the Ray cluster ``sandbox generate --ray`` shards a run over.
- :func:`run_stoppable`: ``anyio.run`` that a first Ctrl-C stops within a token (``KeyboardInterrupt``
  once everything has closed) and a second at once (exit :data:`INTERRUPTED`).
"""

from sandbox.runs._attacks import ATTACKS, Attack
from sandbox.runs._demos import demo_spec, write_demos
from sandbox.runs._folder import (
    CONFIG_FILE,
    TRACES_FILE,
    ModelRef,
    RunConfig,
    RunFolder,
    TraceFile,
    config_differences,
    model_ref,
    reward_versions,
    run_trace_file,
)
from sandbox.runs._gauntlet import GauntletReport, OracleMax, Pair, gauntlet, run_gauntlet
from sandbox.runs._generate import RunEvents, RunSummary, generate
from sandbox.runs._ray import init_ray
from sandbox.runs._replay import (
    NotReplayableError,
    ReplayHub,
    ReplayModel,
    ReplayReport,
    check_replay_format,
    check_replay_paths,
    check_replayable,
    first_difference,
    replay_file,
    replay_trace,
)
from sandbox.runs._score import ScoreSummary, score_file
from sandbox.runs._spec import (
    HttpModelOptions,
    JudgeServer,
    RunSpec,
    check_run_inputs,
    check_spec,
    derive_seed,
    open_judge,
    open_model,
    run_sample,
    select_rewards,
)
from sandbox.runs._stop import INTERRUPTED, run_stoppable

__all__ = [
    "ATTACKS",
    "Attack",
    "CONFIG_FILE",
    "GauntletReport",
    "HttpModelOptions",
    "INTERRUPTED",
    "JudgeServer",
    "ModelRef",
    "NotReplayableError",
    "OracleMax",
    "Pair",
    "ReplayHub",
    "ReplayModel",
    "ReplayReport",
    "RunConfig",
    "RunEvents",
    "RunFolder",
    "RunSpec",
    "RunSummary",
    "ScoreSummary",
    "TRACES_FILE",
    "TraceFile",
    "check_replay_format",
    "check_replay_paths",
    "check_replayable",
    "check_run_inputs",
    "check_spec",
    "config_differences",
    "demo_spec",
    "derive_seed",
    "first_difference",
    "gauntlet",
    "generate",
    "init_ray",
    "model_ref",
    "open_judge",
    "open_model",
    "replay_file",
    "replay_trace",
    "reward_versions",
    "run_gauntlet",
    "run_sample",
    "run_stoppable",
    "run_trace_file",
    "score_file",
    "select_rewards",
    "write_demos",
]
