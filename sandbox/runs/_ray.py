"""``sandbox generate --ray [ADDRESS]``: the pending (task, sample) pairs of a run, sharded over Ray.

Each Ray worker is an actor that owns what a local run owns: a model (llama.cpp in process, batched
over ``--parallel`` sequences, or an OpenAI-compatible fleet behind ``--base-url``), a ``ToolHub``
with the run's servers, and the rewards. The driver -- the ``sandbox generate`` process -- keeps the
run folder: it hands each worker the next pending pair, receives the scored trace as JSON and
appends it to ``traces.jsonl`` (flushed, fsynced) exactly as a local run does. One writer means the
run folder format, ``--resume`` and the guarantee that nothing is lost or written twice are those of
a local run, whichever worker ran which pair; a worker that dies loses only the pairs in flight,
which a resume runs again.

``ADDRESS`` is what ``ray.init`` takes: ``auto`` (a cluster this machine is part of),
``ray://HOST:10001`` (a remote cluster), or ``local`` to start a private instance on this machine
(loopback only). Workers read the task file, the server config and the model from the same paths as
the driver: on a cluster, put them on a shared filesystem or at the same place on every node.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from rewards import score_trace
from sandbox.episodes import Mode
from sandbox.hub import ToolHub
from sandbox.records import ConfigError, Task, Trace, trace_line, validate_line
from sandbox.runs._spec import RunSpec, check_run_inputs, open_model, run_sample

LOCAL = "local"


def init_ray(address: str, *, num_cpus: int | None = None) -> Any:
    """Connect to (or, for ``local``, start) a Ray cluster; a clear error when Ray is missing."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("--ray needs Ray: pip install 'agent-sandbox[ray]'") from exc
    if ray.is_initialized():
        return ray
    options: dict[str, Any] = {"log_to_driver": False, "include_dashboard": False}
    try:
        if address == LOCAL:
            ray.init(num_cpus=num_cpus, _node_ip_address="127.0.0.1", **options)
        else:
            ray.init(address=address, **options)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"could not reach the Ray cluster at {address!r}: {exc}") from exc
    return ray


class EpisodeWorker:
    """One Ray actor's state: model, hub and rewards, built from the run's options on the worker."""

    def __init__(self, options: RunSpec, folder: str) -> None:
        os.chdir(folder)
        self._options = options
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._owner: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None
        self._model: Any = None
        self._hub: Any = None
        self._rewards: Any = None
        self._limits: Any = None
        self._sampling: Any = None

    async def start(self, sampling_json: str) -> str:
        """Build everything; returns the worker's host name. Raises what a local run would raise."""
        from sandbox.records import Sampling

        self._sampling = Sampling.model_validate_json(sampling_json)
        self._owner = asyncio.get_running_loop().create_task(self._own())
        await self._ready.wait()
        if self._failure is not None:
            raise self._failure
        import socket

        return socket.gethostname()

    async def _own(self) -> None:
        # The hub is entered and left in this one task: anyio's task groups must close where they open.
        options = self._options
        try:
            _, servers, self._rewards = check_run_inputs(options)
            self._limits = options.limits
            self._model = open_model(options)
            async with ToolHub(
                servers,
                call_timeout=options.call_timeout,
                start_timeout=options.start_timeout,
                pool_size=options.parallel,
            ) as hub:
                self._hub = hub
                self._ready.set()
                await self._stop.wait()
        except BaseException as exc:  # reported to the driver by start()
            self._failure = exc
            self._ready.set()
        finally:
            if self._model is not None:
                await self._model.aclose()

    async def run(self, task_json: str, sample: int, mode: Mode) -> str:
        """One scored episode, as JSON (a trace travels as the line it will be in the run folder)."""
        task = Task.model_validate_json(task_json)
        trace = await run_sample(
            task,
            sample,
            self._model,
            self._hub,
            self._limits,
            mode=mode,
            sampling=self._sampling,
            turn_format=self._options.turn_format,
        )
        trace = await asyncio.to_thread(score_trace, trace, task, self._rewards)
        return trace_line(trace)

    async def stop(self) -> None:
        self._stop.set()
        if self._owner is not None:
            await self._owner


async def run_on_ray(
    options: RunSpec,
    sampling_json: str,
    mode: Mode,
    pending: list[tuple[Task, int]],
    on_trace: Callable[[Trace], Awaitable[None] | None],
) -> list[str]:
    """Run ``pending`` on ``options.ray_workers`` actors, ``options.parallel`` episodes each; every
    trace goes to ``on_trace`` in the driver as it arrives. Returns the workers' host names."""
    ray = init_ray(options.ray or LOCAL, num_cpus=options.ray_cpus)
    workers = max(1, min(options.ray_workers, len(pending)))
    actor_class = ray.remote(num_cpus=options.ray_worker_cpus, max_concurrency=options.parallel + 2)(
        EpisodeWorker
    )
    # Options travel as they are, with this process's folder: a worker works from the same folder, so
    # relative paths (tasks, config, a server's arguments) mean what they mean here. A worker's
    # llama.cpp uses the CPUs it reserved, not every core: workers on one machine would otherwise
    # oversubscribe it (llama.cpp's threads spin while they wait).
    threads = options.threads if options.threads is not None else max(1, int(options.ray_worker_cpus))
    local = dataclasses.replace(options, ray=None, threads=threads)
    actors = [actor_class.remote(local, os.getcwd()) for _ in range(workers)]
    try:
        hosts = await _unwrapped(asyncio.gather(*(actor.start.remote(sampling_json) for actor in actors)))
        queue: Iterator[tuple[Task, int]] = iter(pending)

        async def feed(actor: Any) -> None:
            for task, sample in queue:  # one shared iterator: each pair goes to one episode slot
                line = await actor.run.remote(task.model_dump_json(), sample, mode)
                result = on_trace(validate_line(Trace, line))
                if result is not None:
                    await result

        await _unwrapped(asyncio.gather(*(feed(actor) for actor in actors for _ in range(options.parallel))))
        return list(hosts)
    finally:
        for actor in actors:
            with contextlib.suppress(Exception):
                await actor.stop.remote()
            with contextlib.suppress(Exception):
                ray.kill(actor)


async def _unwrapped(work: Awaitable[Any]) -> Any:
    """Re-raise a worker's error as the error it was (a ConfigError stays a one-line ConfigError)."""
    from ray.exceptions import RayTaskError

    try:
        return await work
    except RayTaskError as exc:
        raise exc.as_instanceof_cause() from None
