"""Task families with held-out splits: tasks made from the bundled servers' own data.

One generator per bundled server family: ``weather`` (places x days x hours x question kinds,
with the hourly-vs-daily trap), ``music`` (library vs catalog twins, catalog plays, the history),
``calculator`` (expressions and word problems), ``files`` (notes and lists written, read back) and
``direct`` (a tool is offered but not needed). Every answer, ideal call, reference solution and
state check is computed from what the servers return through the hub, never typed by hand.

The split (``train`` or ``heldout``) partitions every value domain (places, titles, numbers) by a
stable hash (:func:`split_of`), so held-out tasks use no value any train task uses.

- :func:`make_tasks` (sync) / :func:`generate_tasks` (async): ``(family, n, seed, split, servers=)``
  -> list of :class:`~sandbox.records.Task`; :data:`FAMILIES` names the families (``"all"`` mixes
  them round-robin).
- :class:`TaskMaker`: one open hub and the servers' data for many requests (tests, ``improve``).
- :func:`write_tasks`: a task file; :func:`check_request` and :func:`check_output`: the checks alone.
- :class:`TaskGenerationError`: what cannot be made (one line).
"""

from sandbox.tasks._generate import (
    ALL,
    BUNDLED_SERVERS,
    FAMILIES,
    TaskMaker,
    check_output,
    check_request,
    generate_tasks,
    make_tasks,
    write_tasks,
)
from sandbox.tasks._split import HELDOUT_SHARE, SPLITS, Split, split_of, value_tag
from sandbox.tasks._world import TaskGenerationError

__all__ = [
    "ALL",
    "BUNDLED_SERVERS",
    "FAMILIES",
    "HELDOUT_SHARE",
    "SPLITS",
    "Split",
    "TaskGenerationError",
    "TaskMaker",
    "check_output",
    "check_request",
    "generate_tasks",
    "make_tasks",
    "split_of",
    "value_tag",
    "write_tasks",
]
