"""Demonstrations: the oracle's gold episodes, with thoughts a model should learn, as a run folder.

:func:`write_demos` plays every task's reference solution (``OracleModel(thoughts="demo")``, see
``sandbox.models``) through the real servers and scores each trace with the run's rewards, exactly
as ``sandbox generate`` does for a model: one greedy sample per task into a run folder that
``sandbox export`` and ``sandbox train`` read like any other. The oracle writes its turns in the
spec's turn format (``auto``: the tag format; a family or a label such as ``hermes+think``: that
native format), so demonstrations train a model in the format it runs in.
"""

from __future__ import annotations

from dataclasses import replace

from sandbox.models import OracleModel
from sandbox.records import read_tasks
from sandbox.runs._generate import RunEvents, RunSummary, generate
from sandbox.runs._spec import RunSpec, check_spec
from sandbox.turns import choose_format


def demo_spec(spec: RunSpec) -> RunSpec:
    """``spec`` as a demonstration run: a run folder, one greedy sample per task, no model file."""
    return replace(spec, layout="folder", n=1, temperature=0.0, model=None, lora=None, http=None, parallel=1)


async def write_demos(spec: RunSpec, *, events: RunEvents | None = None) -> RunSummary:
    """Write the demonstrations of ``spec``'s tasks (only those in ``spec.only`` when given) into
    the run folder ``spec.out``; ``resume`` and ``overwrite`` behave as in ``sandbox generate``."""
    spec = demo_spec(spec)
    check_spec(spec)
    tasks = read_tasks(spec.tasks)
    oracle = OracleModel(tasks, thoughts="demo", turn_format=choose_format(spec.turn_format, None))
    return await generate(spec, events=events, model=oracle)
